"""Partner merchants (联盟商户): the directory a city keeps, search, add, edit and import.
Contact numbers are masked for everyone but admins."""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session, select

from core.platform import audit
from core.platform.audit import AuditAction
from core.platform.cells import CellError, parse_code, parse_text
from core.platform.clock import utcnow
from core.platform.errors import FieldProblem, NotFound, ValidationFailed
from core.platform.formatting import mask_phone
from core.platform.permissions import (
    Action,
    Actor,
    Role,
    Scope,
    ensure_allowed,
    scope_filter,
    scope_of,
)
from core.platform.references import reference_problems
from core.platform.tabular import Column, FileReport, RowProblem, read_table
from db.engine import write_transaction
from db.models import Merchant, MerchantOutlet, OrgLevel, OrgUnit

CATEGORIES = ["餐饮", "超市", "加油站", "药店", "生鲜", "母婴", "家电", "服装", "体检", "其他"]
PHONE = re.compile(r"^[0-9+\-() ]{7,20}$")
IMPORT_COLUMNS = (
    Column("name", "商户名称"),
    Column("city_code", "所属市编码"),
    Column("category", "类别", required=False),
    Column("address", "地址", required=False),
    Column("contact_name", "联系人", required=False),
    Column("contact_phone", "联系电话", required=False),
    Column("outlet_codes", "绑定网点编码", aliases=("绑定网点",), required=False),
)


@dataclass(frozen=True)
class MerchantInput:
    city_id: int
    name: str
    category: str = "其他"
    address: str = ""
    contact_name: str = ""
    contact_phone: str | None = ""  # None: keep the stored number (others only see it masked)
    outlet_ids: tuple[int, ...] = ()
    active: bool = True


@dataclass(frozen=True)
class MerchantRead:
    id: int
    city_id: int
    city: str
    name: str
    category: str
    address: str
    contact_name: str
    contact_phone: str  # masked unless the reader is an admin
    outlet_ids: tuple[int, ...]
    outlet_names: tuple[str, ...]
    active: bool


def list_merchants(
    session: Session,
    *,
    actor: Actor,
    city_id: int | None = None,
    text: str = "",
    include_inactive: bool = False,
) -> list[MerchantRead]:
    ensure_allowed(actor, Action.VIEW_MERCHANTS)
    query = (
        select(Merchant)
        .where(scope_filter(actor, Action.VIEW_MERCHANTS, city_column=Merchant.city_id))
        .order_by(Merchant.city_id, Merchant.name)
    )
    if city_id is not None:
        query = query.where(Merchant.city_id == city_id)
    if not include_inactive:
        query = query.where(Merchant.active)
    if text.strip():
        like = f"%{text.strip()}%"
        query = query.where(
            sa.or_(
                Merchant.name.like(like), Merchant.address.like(like), Merchant.category.like(like)
            )
        )
    merchants = session.exec(query).all()
    return _reads(session, merchants, unmasked=not phones_masked(actor))


def phones_masked(actor: Actor) -> bool:
    """Contact numbers are shown masked (138****5678) to everyone but admins."""
    return actor.role is not Role.ADMIN


def _reads(session: Session, merchants: list[Merchant], *, unmasked: bool) -> list[MerchantRead]:
    ids = [m.id for m in merchants]
    links: dict[int, list[tuple[int, str]]] = {}
    if ids:
        rows = session.execute(
            sa.select(MerchantOutlet.merchant_id, OrgUnit.id, OrgUnit.name)
            .join(OrgUnit, OrgUnit.id == MerchantOutlet.outlet_id)
            .where(MerchantOutlet.merchant_id.in_(ids))
            .order_by(OrgUnit.code)
        )
        for merchant_id, outlet_id, name in rows:
            links.setdefault(merchant_id, []).append((outlet_id, name))
    cities = dict(
        session.execute(
            sa.select(OrgUnit.id, OrgUnit.name).where(OrgUnit.level == OrgLevel.CITY)
        ).all()
    )
    return [
        MerchantRead(
            m.id,
            m.city_id,
            cities.get(m.city_id, ""),
            m.name,
            m.category,
            m.address,
            m.contact_name,
            m.contact_phone if unmasked else mask_phone(m.contact_phone),
            tuple(o for o, _ in links.get(m.id, [])),
            tuple(n for _, n in links.get(m.id, [])),
            m.active,
        )
        for m in merchants
    ]


def _field_problems(data: MerchantInput) -> list[FieldProblem]:
    problems = []
    if not data.name.strip() or len(data.name) > 100:
        problems.append(FieldProblem("name", "商户名称须为 1–100 个字"))
    if data.category not in CATEGORIES:
        problems.append(FieldProblem("category", f"类别须为：{'、'.join(CATEGORIES)}"))
    if data.contact_phone and not PHONE.match(data.contact_phone):
        problems.append(FieldProblem("contact_phone", "联系电话格式不正确"))
    if len(data.address) > 200:
        problems.append(FieldProblem("address", "地址最多 200 字"))
    return problems


def _problems(session: Session, actor: Actor, data: MerchantInput) -> list[FieldProblem]:
    """The field checks, and that the bound outlets are outlets of the merchant's city."""
    return _field_problems(data) + reference_problems(
        session,
        actor=actor,
        action=Action.MANAGE_MERCHANTS,
        city_id=data.city_id,
        outlets=data.outlet_ids,
    )


def save_merchant(
    session: Session, *, actor: Actor, data: MerchantInput, merchant_id: int | None = None
) -> MerchantRead:
    city = session.get(OrgUnit, data.city_id)
    if city is None or city.level != OrgLevel.CITY:
        raise ValidationFailed([FieldProblem("city_id", "请选择商户所属的市")])
    ensure_allowed(actor, Action.MANAGE_MERCHANTS, city)
    problems = _problems(session, actor, data)
    if problems:
        raise ValidationFailed(problems, summary="商户未保存")
    with write_transaction(session):
        merchant = _write(session, data, merchant_id, actor)
    return _reads(session, [merchant], unmasked=not phones_masked(actor))[0]


def _write(
    session: Session, data: MerchantInput, merchant_id: int | None, actor: Actor
) -> Merchant:
    if merchant_id is None:
        merchant, before = Merchant(city_id=data.city_id, name=""), None
    else:
        merchant = session.get(Merchant, merchant_id)
        if merchant is None:
            raise NotFound("商户不存在")
        ensure_allowed(actor, Action.MANAGE_MERCHANTS, session.get(OrgUnit, merchant.city_id))
        before = _snapshot(session, merchant)
    merchant.city_id, merchant.name, merchant.category = (
        data.city_id,
        data.name.strip(),
        data.category,
    )
    merchant.address, merchant.contact_name = data.address.strip(), data.contact_name.strip()
    if data.contact_phone is not None:
        merchant.contact_phone = data.contact_phone.strip()
    merchant.active, merchant.updated_at = data.active, utcnow()
    session.add(merchant)
    session.flush()
    session.execute(sa.delete(MerchantOutlet).where(MerchantOutlet.merchant_id == merchant.id))
    session.add_all(
        MerchantOutlet(merchant_id=merchant.id, outlet_id=o) for o in sorted(set(data.outlet_ids))
    )
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=AuditAction.MERCHANT_SAVE,
        target_type="merchant",
        target_id=merchant.id,
        summary=f"{'新增' if before is None else '修改'}商户「{merchant.name}」",
        before=before,
        after=_snapshot(session, merchant),
    )
    return merchant


def _snapshot(session: Session, merchant: Merchant) -> dict[str, object]:
    outlets = session.exec(
        select(MerchantOutlet.outlet_id).where(MerchantOutlet.merchant_id == merchant.id)
    ).all()
    return {
        "name": merchant.name,
        "category": merchant.category,
        "address": merchant.address,
        "contact_name": merchant.contact_name,
        "contact_phone": merchant.contact_phone,
        "outlets": sorted(outlets),
        "active": merchant.active,
    }


@dataclass
class MerchantImportReport(FileReport):
    created: int = 0

    def summary(self) -> str:
        if not self.ok:
            return self.refusal("商户")
        return f"导入成功：新增 {self.created} 个商户。"


def import_merchants(
    session: Session, *, actor: Actor, data: bytes, filename: str
) -> MerchantImportReport:
    """New merchants from CSV/XLSX, all or nothing; a planner imports only into their city."""
    ensure_allowed(actor, Action.MANAGE_MERCHANTS)
    table = read_table(data, filename, IMPORT_COLUMNS)
    report = MerchantImportReport(filename, rows=len(table.rows), problems=list(table.problems))
    units = {
        code: (uid, level, city_id)
        for code, uid, level, city_id in session.execute(
            sa.select(OrgUnit.code, OrgUnit.id, OrgUnit.level, OrgUnit.city_id)
        )
    }
    inputs = []
    for row in table.rows:
        try:
            city_code = parse_code(row.cells.get("city_code"), what="所属市编码")
            city = units.get(city_code)
            if city is None or city[1] != OrgLevel.CITY:
                raise CellError(f"市编码 {city_code} 不存在")
            if scope_of(actor, Action.MANAGE_MERCHANTS) is Scope.CITY and city[0] != actor.city_id:
                raise CellError("只能导入本市的商户")
            outlets = []
            for code in re.split(
                r"[;；,，、\s]+", str(row.cells.get("outlet_codes") or "").strip()
            ):
                if code:
                    unit = units.get(code)
                    if unit is None or unit[1] != OrgLevel.OUTLET or unit[2] != city[0]:
                        raise CellError(f"网点 {code} 不是该市的网点")
                    outlets.append(unit[0])
            item = MerchantInput(
                city_id=city[0],
                name=parse_text(row.cells.get("name"), max_len=100, what="商户名称"),
                category=parse_text(row.cells.get("category"), required=False, max_len=30)
                or "其他",
                address=parse_text(row.cells.get("address"), required=False, max_len=200),
                contact_name=parse_text(row.cells.get("contact_name"), required=False, max_len=50),
                contact_phone=parse_text(
                    row.cells.get("contact_phone"), required=False, max_len=20
                ),
                outlet_ids=tuple(outlets),
            )
        except CellError as exc:
            report.problems.append(RowProblem(row.line, "", "", str(exc)))
            continue
        problems = _field_problems(item)  # outlets were checked against `units` above
        report.problems.extend(RowProblem(row.line, p.field, "", p.message) for p in problems)
        if not problems:
            inputs.append(item)
    if not report.ok:
        return report
    with write_transaction(session):
        for item in inputs:
            _write(session, item, None, actor)
        report.created = len(inputs)
        audit.record(
            session,
            actor=actor,
            action=AuditAction.MERCHANT_IMPORT,
            target_type="file",
            target_id=filename[:64],
            summary=report.summary(),
        )
    return report
