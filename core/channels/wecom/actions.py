"""The calls the outbox runs: a code's contact way, greeting and tagging a new friend, and
the hand-over of a leaver's customers. Each reads what it needs, calls WeCom with no
transaction open, and stores WeCom's answer in a short transaction of its own."""

from __future__ import annotations

import threading
import time

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import select

from core.channels.codes import code_pool
from core.channels.events import welcome_text
from core.channels.wecom.client import WeComClient, WeComError
from core.channels.wecom.outbox import (
    WELCOME,
    WELCOME_TTL,
    Expired,
    Outcome,
    StepFailed,
    handler,
)
from core.channels.wecom_queue import CONTACT_WAY, GREET, TRANSFER
from db.engine import is_postgres, session_scope, write_transaction
from db.models import ChannelCode, WeComOutbox, WeComTag

TAG_EXISTS = 40071  # WeCom: a tag of that name already exists
TRANSFER_BATCH = 100
_tag_lock = threading.Lock()


@handler(CONTACT_WAY)
def sync_contact_way(client: WeComClient, row: WeComOutbox) -> Outcome:
    with session_scope() as session:
        code = session.get(ChannelCode, row.code_id)
        if code is None:
            return Outcome("活码已不存在")
        users = [s.wecom_userid for _, s in code_pool(session, code) if s.active][:100]
    if code.enabled and users:
        if code.wecom_config_id:
            client.update_contact_way(
                config_id=code.wecom_config_id, state=code.slug, users=users, remark=code.name
            )
            return Outcome(f"已更新联系我（{len(users)} 名员工）")
        config_id, qr_url = client.add_contact_way(state=code.slug, users=users, remark=code.name)
        _store_contact_way(code.id, config_id, qr_url)
        return Outcome(f"已创建联系我 {config_id}")
    if code.wecom_config_id:
        client.del_contact_way(config_id=code.wecom_config_id)
        _store_contact_way(code.id, None, None)
        return Outcome("已删除联系我（活码停用或无在职员工）")
    return Outcome("无需联系我（活码停用或无在职员工）")


def _store_contact_way(code_id: int, config_id: str | None, qr_url: str | None) -> None:
    with session_scope() as session, write_transaction(session):
        session.execute(
            sa.update(ChannelCode)
            .where(ChannelCode.id == code_id)
            .values(wecom_config_id=config_id, wecom_qr_url=qr_url)
        )


@handler(WELCOME)
def welcome(client: WeComClient, row: WeComOutbox) -> Outcome:
    """send_welcome_msg with the code's text (the customer's name filled in), unless the
    WelcomeCode is too old by now: then it is not attempted and kept as expired."""
    p = row.payload
    _fresh_enough(p)
    name = ""
    if "{客户昵称}" in p["welcome"]:
        name = client.customer_name(p["external_userid"])
        _fresh_enough(p)  # the name lookup may have been retried
    text = welcome_text(p["welcome"], nickname=name, outlet="", staff="")
    client.send_welcome_msg(welcome_code=p["welcome_code"], text=text)
    return Outcome(f"已发送欢迎语（回调后 {time.time() - p['issued_at']:.1f} 秒）")


def _fresh_enough(payload: dict) -> None:
    age = time.time() - float(payload["issued_at"])
    if age > WELCOME_TTL.total_seconds():
        raise Expired(
            f"欢迎码已过期：加好友 {age:.0f} 秒后才轮到发送（企业微信只保留约 20 秒），未发送欢迎语"
        )


@handler(GREET)
def greet(client: WeComClient, row: WeComOutbox) -> Outcome:
    """mark_tag with the code's source tags (and, for a call queued before welcomes had a
    lane of their own, send_welcome_msg first). Progress is kept, so a retry does not
    greet twice."""
    p = dict(row.payload)
    done = list(p.get("done", []))
    try:
        if "welcome" not in done and p.get("welcome_code") and p.get("welcome"):
            name = ""
            if "{客户昵称}" in p["welcome"]:
                name = client.customer_name(p["external_userid"])
            text = welcome_text(p["welcome"], nickname=name, outlet="", staff="")
            client.send_welcome_msg(welcome_code=p["welcome_code"], text=text)
            done.append("welcome")
        if "tags" not in done and p.get("tags"):
            ids = tag_ids(client, list(p["tags"]))
            client.mark_tag(userid=p["userid"], external_userid=p["external_userid"], tag_ids=ids)
            done.append("tags")
    except WeComError as exc:
        raise StepFailed(exc, {"done": done}) from exc
    said = "已发送欢迎语，" if "welcome" in done else ""
    return Outcome(f"{said}已打标签 {len(p.get('tags', []))} 个", {"done": done})


# (API base and corp, name) → id: a tag's id never changes
_tag_cache: dict[tuple[str, str], str] = {}


def tag_ids(client: WeComClient, names: list[str]) -> list[str]:
    """WeCom ids of tag names; tags missing in the corp are created once."""
    corp = f"{client.settings.wecom_api_base}|{client.settings.wecom_corp_id}"
    if all((corp, n) in _tag_cache for n in names):
        return [_tag_cache[(corp, n)] for n in names]
    with session_scope() as session:
        known = dict(
            session.exec(
                select(WeComTag.name, WeComTag.tag_id).where(WeComTag.name.in_(names))
            ).all()
        )
    missing = [n for n in names if n not in known]
    if missing:
        with _tag_lock:  # one creation per process; another process's creation is found below
            found = client.corp_tags()
            create = [n for n in missing if n not in found]
            if create:
                try:
                    found |= client.add_corp_tags(create)
                except WeComError as exc:
                    if exc.code != TAG_EXISTS:
                        raise
                    found = client.corp_tags()
            _store_tags({n: found[n] for n in missing if n in found})
            known |= {n: found[n] for n in missing if n in found}
    _tag_cache.update({(corp, n): i for n, i in known.items()})
    return [known[n] for n in names if n in known]


def _store_tags(tags: dict[str, str]) -> None:
    """Upserted: a worker in another process may be storing the same new tag right now."""
    if not tags:
        return
    with session_scope() as session, write_transaction(session):
        insert = postgresql.insert if is_postgres(session) else sqlite.insert
        statement = insert(WeComTag.__table__).values(
            [{"name": name, "tag_id": tag_id} for name, tag_id in tags.items()]
        )
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["name"], set_={"tag_id": statement.excluded.tag_id}
            )
        )


FAIL_REASONS = {
    40097: "客户不存在或已被继承",
    40129: "客户已在接替员工名下",
    41026: "接替员工未开通客户联系功能",
    40100: "客户已在继承中",
}


@handler(TRANSFER)
def transfer(client: WeComClient, row: WeComOutbox) -> Outcome:
    p = row.payload
    customers = client.customers_of(p["handover_userid"])
    failed: dict[int, int] = {}
    for start in range(0, len(customers), TRANSFER_BATCH):
        for _, code in client.transfer_resigned(
            handover=p["handover_userid"],
            takeover=p["takeover_userid"],
            external_userids=customers[start : start + TRANSFER_BATCH],
        ):
            if code:
                failed[code] = failed.get(code, 0) + 1
    moved = len(customers) - sum(failed.values())
    reasons = "；".join(f"{FAIL_REASONS.get(c, f'错误码 {c}')} {n} 位" for c, n in failed.items())
    return Outcome(
        f"企业微信已受理 {moved} 位客户的继承"
        + (f"，{sum(failed.values())} 位未受理：{reasons}" if failed else "")
    )
