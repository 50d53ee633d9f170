"""Ways out of a dead code: edit, extend, re-staff and disable a channel code, each with
permission and scope checks, validation and an audit record."""

from datetime import date, timedelta

import pytest
from sqlmodel import Session, select

from core.channels.code_edits import (
    code_input,
    edit_code,
    extend_code,
    restaff_code,
    set_code_enabled,
)
from core.channels.codes import CodeInput, create_code
from core.channels.events import scan
from core.platform.clock import shanghai_today
from core.platform.errors import PermissionDenied, ValidationFailed
from db.models import AuditLog, ChannelCode, ChannelCodeStaff, ChannelType, Role
from tests.factories import make_staff, make_tree, make_users


@pytest.fixture
def world(session: Session):
    tree = make_tree(session)
    users = make_users(session)
    staff = {name: make_staff(session, "O111", name) for name in ("张三", "李四", "王五")}
    staff["赵六"] = make_staff(session, "O211", "赵六")
    data = CodeInput(
        name="柜台码",
        channel_type=ChannelType.COUNTER,
        outlet_id=tree.outlets["O111"].id,
        staff_ids=(staff["张三"],),
        active_until=shanghai_today() - timedelta(days=1),  # already expired: a dead code
    )
    code = create_code(session, actor=users[Role.CITY_PLANNER], data=data)
    return tree, users, staff, code


def audits(session: Session, action: str) -> list[AuditLog]:
    return list(session.exec(select(AuditLog).where(AuditLog.action == action)))


def test_a_dead_code_is_brought_back_by_extending_it(session: Session, world) -> None:
    _, users, _, code = world
    assert code.problem and "有效期" in code.problem
    assert scan(session, code.slug).status == 410
    later = shanghai_today() + timedelta(days=30)
    read = extend_code(session, actor=users[Role.CITY_PLANNER], code_id=code.id, active_until=later)
    assert read.problem is None and read.active_until == later
    assert scan(session, code.slug).status == 302
    (entry,) = audits(session, "code.extend")
    assert entry.after == {"active_until": later.isoformat()}
    with pytest.raises(ValidationFailed, match="早于今天"):
        extend_code(
            session,
            actor=users[Role.CITY_PLANNER],
            code_id=code.id,
            active_until=date(2020, 1, 1),
        )


def test_edit_changes_settings_keeps_slug_and_pool_and_records_what_changed(
    session: Session, world
) -> None:
    _, users, _, code = world
    data = code_input(session, actor=users[Role.DESIGNER], code_id=code.id)
    start = shanghai_today() + timedelta(days=3)
    changed = CodeInput(
        **{
            **data.__dict__,
            "name": "柜台码（新）",
            "tags": ("柜台", "权益日"),
            "active_from": start,
            "active_until": start + timedelta(days=10),
            "staff_ids": (),  # ignored: the pool changes through re-staffing
        }
    )
    read = edit_code(session, actor=users[Role.DESIGNER], code_id=code.id, data=changed)
    assert (read.slug, read.name, read.tags) == (code.slug, "柜台码（新）", ("柜台", "权益日"))
    assert read.active_from == start and read.staff_names == ("张三",)
    assert scan(session, code.slug).status == 410  # not started yet
    (entry,) = audits(session, "code.update")
    assert set(entry.after) == {"name", "tags", "active_from", "active_until"}
    assert entry.before["name"] == "柜台码"
    bad = CodeInput(**{**changed.__dict__, "name": ""})
    with pytest.raises(ValidationFailed, match="名称"):
        edit_code(session, actor=users[Role.DESIGNER], code_id=code.id, data=bad)
    session.rollback()
    assert session.get(ChannelCode, code.id).name == "柜台码（新）"  # nothing half-written


def test_restaff_replaces_the_pool_keeping_counters(session: Session, world) -> None:
    _, users, staff, code = world
    extend_code(session, actor=users[Role.ADMIN], code_id=code.id, active_until=None)
    scan(session, code.slug)
    read = restaff_code(
        session,
        actor=users[Role.CITY_PLANNER],
        code_id=code.id,
        staff_ids=(staff["李四"], staff["张三"]),
        fallback_staff_ids=(staff["王五"],),
    )
    assert read.staff_names == ("李四", "张三", "王五（备用）")
    session.rollback()
    kept = session.get(ChannelCodeStaff, (code.id, staff["张三"]))
    assert kept.assigned_total == 1 and not kept.fallback and kept.position == 1
    (entry,) = audits(session, "code.restaff")
    assert entry.before == {"staff": [staff["张三"]], "fallback": []}
    for bad, reason in [((), "至少"), ((staff["赵六"],), "本市")]:
        with pytest.raises(ValidationFailed, match=reason):
            restaff_code(session, actor=users[Role.CITY_PLANNER], code_id=code.id, staff_ids=bad)
    gone = make_staff(session, "O111", "孙七", active=False)
    with pytest.raises(ValidationFailed, match="离职"):
        restaff_code(session, actor=users[Role.CITY_PLANNER], code_id=code.id, staff_ids=(gone,))


def test_disable_and_enable(session: Session, world) -> None:
    _, users, _, code = world
    extend_code(session, actor=users[Role.ADMIN], code_id=code.id, active_until=None)
    read = set_code_enabled(session, actor=users[Role.DESIGNER], code_id=code.id, enabled=False)
    assert read.problem == "已停用" and not read.enabled
    assert scan(session, code.slug).status == 410
    with pytest.raises(ValidationFailed, match="已停用"):
        set_code_enabled(session, actor=users[Role.DESIGNER], code_id=code.id, enabled=False)
    assert set_code_enabled(
        session, actor=users[Role.DESIGNER], code_id=code.id, enabled=True
    ).enabled
    assert len(audits(session, "code.disable")) == len(audits(session, "code.enable")) == 1


@pytest.mark.parametrize("role", [Role.OUTLET_MANAGER, Role.PROVINCE_REVIEWER])
def test_roles_without_the_right_are_refused(session: Session, world, role: Role) -> None:
    _, users, staff, code = world
    actor = users[role]
    with pytest.raises(PermissionDenied):
        extend_code(session, actor=actor, code_id=code.id, active_until=None)
    with pytest.raises(PermissionDenied):
        set_code_enabled(session, actor=actor, code_id=code.id, enabled=False)
    with pytest.raises(PermissionDenied):
        restaff_code(session, actor=actor, code_id=code.id, staff_ids=(staff["李四"],))


def test_a_planner_of_another_city_is_refused(session: Session, world) -> None:
    from tests.factories import make_user

    _, _, _, code = world
    other = make_user(session, "planner2", Role.CITY_PLANNER, "C2")
    with pytest.raises(PermissionDenied, match="数据范围"):
        set_code_enabled(session, actor=other, code_id=code.id, enabled=False)
    session.rollback()
    assert session.get(ChannelCode, code.id).enabled
