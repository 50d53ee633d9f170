"""The metric registry (指标库): every metric as data (key, Chinese name, unit, flow or
stock, money or not, the levels it exists at, order, active).

The six metrics of the outlet daily report are registry rows marked `builtin` (their values
stay in the wide outlet tables); every other metric keeps its values long, keyed by metric
key, so an admin adds one here and imports, boards, the CLI and exports follow without a
code change or a migration. `specs` is cached per process and re-read when the registry
changes (one cheap query per call).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, replace
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Session

from core.metrics.kinds import METRICS, MetricKind, MetricSpec
from core.platform import audit
from core.platform.audit import AuditAction
from core.platform.clock import utcnow
from core.platform.errors import FieldProblem, NotFound, ValidationFailed
from core.platform.permissions import Action, Actor, ensure_allowed
from db.engine import write_transaction
from db.models import MetricDef


class Level(StrEnum):
    OUTLET = "outlet"
    STAFF = "staff"


_lock = threading.Lock()
_cache: dict[str, tuple[tuple, dict[str, MetricSpec]]] = {}
KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,39}$")


def _spec(row: MetricDef) -> MetricSpec:
    builtin = METRICS.get(row.key) if row.builtin else None
    base = builtin or MetricSpec(row.key, row.name, MetricKind(row.kind), "", "", builtin=False)
    return replace(
        base,
        label=row.name,
        is_money=row.is_money if not builtin else builtin.is_money,
        unit=row.unit,
        at_outlet=row.at_outlet or bool(builtin),
        at_staff=row.at_staff,
        sort_order=row.sort_order,
        active=row.active,
    )


def _version(session: Session) -> tuple:
    return tuple(
        session.execute(sa.select(sa.func.count(), sa.func.max(MetricDef.updated_at))).one()
    )


def all_specs(session: Session) -> dict[str, MetricSpec]:
    """Every registry metric, active or not, in display order."""
    key = str(session.get_bind().url)
    version = _version(session)
    with _lock:
        cached = _cache.get(key)
        if cached is not None and cached[0] == version:
            return cached[1]
    rows = session.execute(sa.select(MetricDef)).scalars().all()
    # The builtin six always exist (their rows only carry names, units, levels and order).
    found = {**METRICS, **{row.key: _spec(row) for row in rows}}
    specs = dict(sorted(found.items(), key=lambda item: (item[1].sort_order, item[0])))
    with _lock:
        _cache[key] = (version, specs)
    return specs


def specs(session: Session, level: Level = Level.OUTLET) -> dict[str, MetricSpec]:
    """The active metrics of a level, in display order."""
    found = all_specs(session).items()
    if level is Level.STAFF:
        return {k: s for k, s in found if s.active and s.at_staff}
    return {k: s for k, s in found if s.active and s.at_outlet}


def spec_for(session: Session, key: str, level: Level = Level.OUTLET) -> MetricSpec:
    """One active metric of a level, or a Chinese refusal listing the choices."""
    available = specs(session, level)
    if key not in available:
        names = "、".join(f"{k}（{s.label}）" for k, s in available.items())
        raise ValidationFailed([FieldProblem("metric", f"未知或已停用的指标 {key}，可选：{names}")])
    return available[key]


@dataclass(frozen=True)
class MetricForm:
    key: str
    name: str
    unit: str = ""
    kind: MetricKind = MetricKind.FLOW
    is_money: bool = False
    at_outlet: bool = True
    at_staff: bool = False
    sort_order: int = 100
    active: bool = True


def _problems(form: MetricForm, existing: MetricDef | None) -> list[FieldProblem]:
    problems = []
    if not KEY_PATTERN.match(form.key):
        problems.append(
            FieldProblem("key", "指标编码须为 2–40 位小写字母、数字或下划线，以字母开头")
        )
    if not form.name.strip() or len(form.name.strip()) > 40:
        problems.append(FieldProblem("name", "指标名称不能为空，最多 40 个字"))
    if len(form.unit) > 10:
        problems.append(FieldProblem("unit", "单位最多 10 个字"))
    if not (form.at_outlet or form.at_staff):
        problems.append(FieldProblem("levels", "请至少选择一个层级（网点或员工）"))
    if existing is not None and existing.builtin:
        if form.kind.value != existing.kind or form.is_money != existing.is_money:
            problems.append(FieldProblem("kind", "内置指标的类型和金额属性不能修改"))
        if not form.at_outlet:
            problems.append(FieldProblem("levels", "内置指标必须保留网点层级"))
    elif existing is not None and (
        form.kind.value != existing.kind or form.is_money != existing.is_money
    ):
        problems.append(FieldProblem("kind", "指标已有数据时不能修改类型或金额属性，请新建指标"))
    return problems


def _name_taken(session: Session, form: MetricForm) -> list[FieldProblem]:
    # Import headers are matched by Chinese name: two metrics may not share one.
    taken = {s.label: k for k, s in all_specs(session).items() if k != form.key}
    if form.name.strip() in taken:
        return [
            FieldProblem(
                "name", f"名称「{form.name.strip()}」已被指标 {taken[form.name.strip()]} 使用"
            )
        ]
    return []


def save_metric(session: Session, *, actor: Actor, form: MetricForm) -> MetricSpec:
    """Add a metric or edit / (de)activate one; audited. Keys never change."""
    ensure_allowed(actor, Action.MANAGE_METRIC_REGISTRY)
    with write_transaction(session):
        row = session.get(MetricDef, form.key)
        if row is None and form.key in METRICS:  # a builtin whose row is missing: restore it
            six = METRICS[form.key]
            row = MetricDef(key=six.key, name=six.label, kind=six.kind.value, builtin=True)
            row.is_money, row.unit, row.at_staff = six.is_money, six.unit, six.at_staff
        before = row.model_dump(exclude={"updated_at"}) if row is not None else None
        problems = _problems(form, row) + _name_taken(session, form)
        if problems:
            raise ValidationFailed(problems)
        row = row or MetricDef(key=form.key, name=form.name, kind=form.kind.value)
        row.name, row.unit, row.kind = form.name.strip(), form.unit.strip(), form.kind.value
        row.is_money, row.at_outlet, row.at_staff = form.is_money, form.at_outlet, form.at_staff
        row.sort_order, row.active, row.updated_at = form.sort_order, form.active, utcnow()
        session.add(row)
        session.flush()
        audit.record(
            session,
            actor=actor,
            action=AuditAction.METRIC_DEF_SAVE,
            target_type="metric",
            target_id=form.key,
            summary=f"{'新增' if before is None else '修改'}指标 {form.key}（{row.name}）"
            + ("" if form.active else "，已停用"),
            before=before,
            after=row.model_dump(exclude={"updated_at"}),
        )
    return all_specs(session)[form.key]


def load_metric(session: Session, *, actor: Actor, key: str) -> MetricDef:
    ensure_allowed(actor, Action.MANAGE_METRIC_REGISTRY)
    row = session.get(MetricDef, key)
    if row is None:
        raise NotFound("指标不存在")
    return row
