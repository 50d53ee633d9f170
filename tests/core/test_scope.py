"""Data scope in every read and every reference (DESIGN.md, "Trust at the boundary").

The read matrix: every core read, for every role, over data in two cities, returns exactly
the rows of the actor's scope for that read's action (all of them, the planner's city C1,
the manager's outlet O111) or is refused. The reference cases: every write that names
another entity refuses one of another city (or, for codes and posters, a campaign that is
not approved, scheduled or running) with a Chinese reason, and writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time

import pytest
import sqlalchemy as sa
from sqlmodel import Session, SQLModel

from core.campaigns.design import CampaignDesign, TargetMode
from core.campaigns.merchants import MerchantInput, list_merchants, save_merchant
from core.campaigns.plans import (
    campaign_detail,
    editor_choices,
    list_campaigns,
    managed_cities,
    save_draft,
)
from core.campaigns.review import compare_versions, review_queue
from core.campaigns.targets import board_campaigns
from core.channels.codes import (
    CodeInput,
    batch_codes,
    code_choices,
    code_cities,
    create_code,
    list_codes,
)
from core.channels.events import NewEvent, add_events
from core.channels.funnel import GroupBy, daily, funnel, import_events
from core.channels.staff import hand_over
from core.metrics.data_quality import report as quality_report
from core.metrics.outlet_detail import rank_history
from core.metrics.rankings import board_scopes
from core.platform.clock import SHANGHAI
from core.platform.errors import DomainError, PermissionDenied
from core.platform.org import units_in_scope
from core.platform.permissions import Action, Actor, Scope, scope_of
from core.posters.studio import batch_posters, campaign_content
from core.posters.templates import PosterContent
from db.engine import write_transaction
from db.models import (
    Campaign,
    ChannelCode,
    ChannelType,
    DataQualityIssue,
    EventType,
    Merchant,
    OrgLevel,
    Role,
    Staff,
)
from tests.factories import Tree, make_campaign, make_staff, make_tree, make_users

ROLES = (
    Role.ADMIN,
    Role.PROVINCE_REVIEWER,
    Role.CITY_PLANNER,
    Role.OUTLET_MANAGER,
    Role.DESIGNER,
)
DAYS = {"O111": date(2026, 11, 1), "O112": date(2026, 11, 2), "O211": date(2026, 11, 3)}


@dataclass
class World:
    tree: Tree
    users: dict[Role, Actor]
    campaigns: dict[str, int]  # "C1 approved" → id
    merchants: dict[str, int]  # city code → one of its merchants
    staff: dict[str, int]  # outlet code → its member of staff

    def city_code(self, city_id: int) -> str:
        return next(code for code, unit in self.tree.cities.items() if unit.id == city_id)

    def city_of(self, tag: str) -> str:
        """The city code of a city or outlet code."""
        unit = self.tree.outlets.get(tag) or self.tree.cities[tag]
        return self.city_code(unit.city_id)


@pytest.fixture
def world(session: Session) -> World:
    """Cities C1 and C2 with the same things in each: campaigns waiting for review, approved
    and rejected; merchants; staff at O111, O112 (C1) and O211 (C2), a code per outlet
    with staff, one event per code, a data-quality finding per outlet with staff."""
    tree = make_tree(session)
    users = make_users(session)
    campaigns = {
        f"{city} {state}": make_campaign(session, city, f"{city}{state}活动", state)
        for city in ("C1", "C2")
        for state in ("submitted", "approved", "rejected", "draft")
    }
    merchants = {
        city: session.exec(
            sa.select(Merchant.id).where(Merchant.city_id == tree.cities[city].id)
        ).first()[0]
        for city in ("C1", "C2")
    }
    staff = {code: make_staff(session, code, f"{code}员工") for code in DAYS}
    system = Actor.system("test")
    codes = []
    for city in ("C1", "C2"):
        codes += batch_codes(session, actor=system, city_id=tree.cities[city].id).codes
    with write_transaction(session):
        events = [
            NewEvent(
                session.get(ChannelCode, code.id),
                datetime.combine(DAYS[code.outlet_name.removesuffix("支局")], time(10), SHANGHAI),
                EventType.SCAN,
                f"customer-{code.id}",
                None,
            )
            for code in codes
        ]
        add_events(session, events, "import")
        session.add_all(
            DataQualityIssue(date=date(2026, 11, 5), outlet_id=tree.outlets[o].id, kind="missing")
            for o in DAYS
        )
    return World(tree, users, campaigns, merchants, staff)


# --- reads -----------------------------------------------------------------------------------

Tags = set[str]
ReadFn = Callable[[Session, Actor, World], Tags]


def _each(ids: list, read: Callable[[object], str]) -> Tags:
    """Tags of the ids a detail read answers; refused for every one: the read is refused."""
    tags, refused = set(), 0
    for item in ids:
        try:
            tags.add(read(item))
        except PermissionDenied:
            refused += 1
    if ids and refused == len(ids):
        raise PermissionDenied("refused for every id")
    return tags


def _city(name: str) -> str:
    return name.removesuffix("市")


def _outlet(name: str) -> str:
    return name.removesuffix("支局")


def _campaign_ids(w: World) -> list[int]:
    return list(w.campaigns.values())


def _detail(s: Session, a: Actor, w: World) -> Tags:
    return _each(
        _campaign_ids(w), lambda c: _city(campaign_detail(s, actor=a, campaign_id=c).row.city)
    )


def _compare(s: Session, a: Actor, w: World) -> Tags:
    def read(cid: int) -> str:
        compare_versions(s, actor=a, campaign_id=cid, left=None, right=None)
        return w.city_of(next(k for k, v in w.campaigns.items() if v == cid).split()[0])

    return _each(_campaign_ids(w), read)


def _poster_text(s: Session, a: Actor, w: World) -> Tags:
    def read(cid: int) -> str:
        return campaign_content(s, actor=a, campaign_id=cid).title[:2]

    return _each(_campaign_ids(w), read)


def _editor(s: Session, a: Actor, w: World) -> Tags:
    cities = [c.id for c in w.tree.cities.values()]
    return _each(cities, lambda c: _city(editor_choices(s, actor=a, city_id=c).city_name))


def _code_choices(s: Session, a: Actor, w: World) -> Tags:
    def read(city_id: int) -> str:
        code_choices(s, actor=a, city_id=city_id)
        return w.city_code(city_id)

    return _each([c.id for c in w.tree.cities.values()], read)


def _rank_history(s: Session, a: Actor, w: World) -> Tags:
    def read(code: str) -> str:
        rank_history(s, actor=a, outlet_id=w.tree.outlets[code].id, metric="new_friends")
        return code

    return _each(list(w.tree.outlets), read)


def _funnel_days(s: Session, a: Actor, w: World) -> Tags:
    by_day = {day: code for code, day in DAYS.items()}
    rows = daily(s, actor=a, start=date(2026, 11, 1), end=date(2026, 11, 30))
    return {by_day[day] for day, _, _ in rows}


# name: (action, read); each read returns city codes or outlet codes
READS: dict[str, tuple[Action, ReadFn]] = {
    "list_campaigns": (
        Action.VIEW_CAMPAIGNS,
        lambda s, a, w: {_city(r.city) for r in list_campaigns(s, actor=a)},
    ),
    "review_queue": (
        Action.VIEW_CAMPAIGNS,
        lambda s, a, w: {_city(r.city) for r in review_queue(s, actor=a)},
    ),
    "campaign_detail": (Action.VIEW_CAMPAIGNS, _detail),
    "compare_versions": (Action.VIEW_CAMPAIGNS, _compare),
    "campaign_content": (Action.VIEW_CAMPAIGNS, _poster_text),
    "board_campaigns": (
        Action.VIEW_METRICS,
        lambda s, a, w: {w.city_code(c.city_id) for c in board_campaigns(s, actor=a)},
    ),
    "managed_cities": (
        Action.MANAGE_CAMPAIGNS,
        lambda s, a, w: {_city(n) for _, n in managed_cities(s, actor=a)},
    ),
    "editor_choices": (Action.MANAGE_CAMPAIGNS, _editor),
    "list_merchants": (
        Action.VIEW_MERCHANTS,
        lambda s, a, w: {_city(m.city) for m in list_merchants(s, actor=a)},
    ),
    "list_codes": (
        Action.VIEW_CHANNEL_CODES,
        lambda s, a, w: {_outlet(c.outlet_name) for c in list_codes(s, actor=a)},
    ),
    "code_cities": (
        Action.VIEW_CHANNEL_CODES,
        lambda s, a, w: {_city(n) for _, n in code_cities(s, actor=a)},
    ),
    "code_choices": (Action.MANAGE_CHANNEL_CODES, _code_choices),
    "funnel": (
        Action.VIEW_CHANNEL_STATS,
        lambda s, a, w: {
            _outlet(r.key)
            for r in funnel(
                s,
                actor=a,
                start=date(2026, 11, 1),
                end=date(2026, 11, 30),
                group_by=GroupBy.OUTLET,
            )
        },
    ),
    "funnel_daily": (Action.VIEW_CHANNEL_STATS, _funnel_days),
    "data_quality": (
        Action.VIEW_DATA_QUALITY,
        lambda s, a, w: {
            f.outlet_code for f in quality_report(s, actor=a, day=date(2026, 11, 5)).missing
        },
    ),
    "board_scopes": (
        Action.VIEW_METRICS,
        lambda s, a, w: {_city(n) for _, n in board_scopes(s, actor=a).cities},
    ),
    "outlets_in_scope": (
        Action.VIEW_OUTLET_DETAIL,
        lambda s, a, w: {
            u.code
            for u in units_in_scope(
                s, actor=a, action=Action.VIEW_OUTLET_DETAIL, level=OrgLevel.OUTLET
            )
        },
    ),
    "rank_history": (Action.VIEW_OUTLET_DETAIL, _rank_history),
}


def _expected(world: World, actor: Actor, action: Action, everything: Tags) -> Tags | None:
    """What the actor's scope for `action` leaves of everything there is (None: refused;
    the scope is never empty here: C1 and O111 hold data)."""
    scope = scope_of(actor, action)
    if scope is None:
        return None
    if scope is Scope.PROVINCE:
        return everything
    if scope is Scope.CITY:
        return {t for t in everything if world.city_of(t) == "C1"}
    return {t for t in everything if t in ("O111", "C1")}  # the manager's outlet (and city)


def _answer(session: Session, actor: Actor, world: World, fn: ReadFn) -> Tags | str:
    try:
        return fn(session, actor, world)
    except PermissionDenied:
        return "refused"


# The reads in groups that share one world (a world per read and role costs minutes).
GROUPS = {
    "campaigns": [
        "list_campaigns",
        "review_queue",
        "campaign_detail",
        "compare_versions",
        "campaign_content",
        "board_campaigns",
        "managed_cities",
        "editor_choices",
    ],
    "merchants": ["list_merchants"],
    "codes": ["list_codes", "code_cities", "code_choices", "funnel", "funnel_daily"],
    "outlets": ["data_quality", "board_scopes", "outlets_in_scope", "rank_history"],
}


def test_every_read_is_in_a_group() -> None:
    grouped = [read for reads in GROUPS.values() for read in reads]
    assert sorted(grouped) == sorted(READS)


@pytest.mark.parametrize("group", list(GROUPS))
@pytest.mark.parametrize("role", ROLES)
def test_every_read_returns_only_the_actors_scope(
    session: Session, world: World, role: Role, group: str
) -> None:
    actor, answers, expected = world.users[role], {}, {}
    for read in GROUPS[group]:
        action, fn = READS[read]
        everything = fn(session, Actor.system(), world)
        assert {world.city_of(t) for t in everything} == {"C1", "C2"}, read  # data in both
        expected[read] = _expected(world, actor, action, everything) or "refused"
        answers[read] = _answer(session, actor, world, fn)
    assert answers == expected


# --- references -------------------------------------------------------------------------------

WriteFn = Callable[[Session, World], object]


def _planner(w: World) -> Actor:
    return w.users[Role.CITY_PLANNER]


def _c1_design(s: Session, w: World) -> CampaignDesign:
    """The design of C1's draft (the factory would add a merchant for a new one)."""
    return CampaignDesign.model_validate(s.get(Campaign, w.campaigns["C1 draft"]).design)


def _draft(s: Session, w: World, **changes: object) -> object:
    design = _c1_design(s, w).model_copy(update={"name": "引用测试活动", **changes})
    return save_draft(s, actor=_planner(w), design=design)


def _rework(s: Session, w: World) -> object:
    """An existing draft of C1 saved again with an outlet of C2."""
    design = _c1_design(s, w).model_copy(
        update={
            "target_mode": TargetMode.OUTLETS,
            "target_outlet_ids": [w.tree.outlets["O211"].id],
        }
    )
    return save_draft(s, actor=_planner(w), design=design, campaign_id=w.campaigns["C1 draft"])


def _code(s: Session, w: World, actor: Actor | None = None, **changes: object) -> object:
    data = CodeInput(
        name="引用测试码",
        channel_type=ChannelType.COUNTER,
        outlet_id=w.tree.outlets["O111"].id,
        staff_ids=(w.staff["O111"],),
        **changes,
    )
    return create_code(s, actor=actor or _planner(w), data=data)


def _batch(s: Session, w: World, campaign: str, actor: Actor | None = None) -> object:
    return batch_codes(
        s,
        actor=actor or Actor.system("cli:test"),
        city_id=w.tree.cities["C1"].id,
        campaign_id=w.campaigns[campaign],
    )


def _posters(s: Session, w: World, campaign: str) -> object:
    return batch_posters(
        s,
        actor=w.users[Role.DESIGNER],
        city_id=w.tree.cities["C1"].id,
        campaign_id=w.campaigns[campaign],
        content=PosterContent(title="海报", subtitle="", benefits=("权益",)),
        workers=1,
    )


def _events(s: Session, w: World) -> object:
    slug = s.exec(
        sa.select(ChannelCode.slug).where(ChannelCode.outlet_id == w.tree.outlets["O111"].id)
    ).first()[0]
    staff = s.get(Staff, w.staff["O211"]).wecom_userid
    data = f"时间,活码,客户ID,事件,员工企微ID\n2026-11-08 10:00,{slug},c1,加好友,{staff}\n"
    report = import_events(
        s, actor=w.users[Role.DESIGNER], data=data.encode(), filename="events.csv"
    )
    if not report.ok:
        raise DomainError("；".join(p.reason for p in report.problems))
    return report


# name: (write, words the refusal must contain)
REFERENCES: dict[str, tuple[WriteFn, str]] = {
    "design targets another city's outlet": (
        lambda s, w: _draft(
            s,
            w,
            target_mode=TargetMode.OUTLETS,
            target_outlet_ids=[w.tree.outlets["O211"].id],
        ),
        "所选网点「O211支局」不属于本市（C1市）",
    ),
    "design targets another city's county": (
        lambda s, w: _draft(
            s,
            w,
            target_mode=TargetMode.COUNTIES,
            target_county_ids=[w.tree.counties["K21"].id],
        ),
        "所选区县「K21区」不属于本市（C1市）",
    ),
    "design binds another city's merchant": (
        lambda s, w: _draft(s, w, merchant_ids=[w.merchants["C2"]]),
        "不是本市（C1市）的联盟商户",
    ),
    "a coupon is redeemed by another city's merchant": (
        lambda s, w: _draft(
            s,
            w,
            coupons=[
                c.model_copy(update={"merchant_ids": [w.merchants["C2"]]})
                for c in _c1_design(s, w).coupons
            ],
        ),
        "不是本市（C1市）的联盟商户",
    ),
    "a saved draft is reworked with another city's outlet": (
        _rework,
        "所选网点「O211支局」不属于本市（C1市）",
    ),
    "a code carries another city's campaign": (
        lambda s, w: _code(s, w, campaign_id=w.campaigns["C2 approved"]),
        "活动「C2approved活动」不是本市（C1市）的活动",
    ),
    "a code carries a rejected campaign": (
        lambda s, w: _code(s, w, campaign_id=w.campaigns["C1 rejected"]),
        "活动「C1rejected活动」已被驳回，不能用于活码和海报",
    ),
    "a code carries a campaign still in review": (
        lambda s, w: _code(s, w, campaign_id=w.campaigns["C1 submitted"]),
        "尚未审批通过",
    ),
    "a code names another city's merchant": (
        lambda s, w: _code(s, w, merchant_id=w.merchants["C2"]),
        "不是本市（C1市）的联盟商户",
    ),
    "a code is staffed from another city": (
        lambda s, w: _code(s, w, fallback_staff_ids=(w.staff["O211"],)),
        "员工「O211员工」不是本市（C1市）网点的员工",
    ),
    "a CLI batch of codes takes another city's campaign": (
        lambda s, w: _batch(s, w, "C2 approved"),
        "不是本市（C1市）的活动",
    ),
    "a CLI batch of codes takes a draft": (
        lambda s, w: _batch(s, w, "C1 draft"),
        "尚未审批通过（当前为「草稿」）",
    ),
    "a batch of codes for outlets of another city": (
        lambda s, w: batch_codes(
            s,
            actor=_planner(w),
            city_id=w.tree.cities["C1"].id,
            outlet_ids=[w.tree.outlets["O211"].id],
        ),
        "所选网点「O211支局」不属于本市（C1市）",
    ),
    "posters of another city's campaign": (
        lambda s, w: _posters(s, w, "C2 approved"),
        "不是本市（C1市）的活动",
    ),
    "posters of a rejected campaign": (
        lambda s, w: _posters(s, w, "C1 rejected"),
        "已被驳回",
    ),
    "a merchant bound to another city's outlet": (
        lambda s, w: save_merchant(
            s,
            actor=_planner(w),
            data=MerchantInput(
                w.tree.cities["C1"].id,
                "引用测试店",
                "超市",
                outlet_ids=(w.tree.outlets["O211"].id,),
            ),
        ),
        "所选网点「O211支局」不属于本市（C1市）",
    ),
    "events credited to another city's staff": (_events, "不是活码"),
    "a hand-over to another city's staff": (
        lambda s, w: hand_over(
            s, actor=_planner(w), from_staff_id=w.staff["O111"], to_staff_id=w.staff["O211"]
        ),
        "同一网点",
    ),
}


def _everything(session: Session) -> dict[str, list[tuple]]:
    session.expire_all()
    return {
        table.name: sorted(map(tuple, session.execute(sa.select(table)).all()), key=repr)
        for table in SQLModel.metadata.sorted_tables
    }


@pytest.mark.parametrize("case", list(REFERENCES))
def test_a_reference_across_cities_or_to_an_unusable_campaign_is_refused(
    session: Session, world: World, case: str
) -> None:
    write, reason = REFERENCES[case]
    before = _everything(session)
    with pytest.raises(DomainError) as refused:
        write(session, world)
    assert reason in refused.value.message
    session.rollback()
    assert _everything(session) == before  # nothing written, not even an audit entry


def test_the_same_writes_go_through_with_the_citys_own_references(
    session: Session, world: World
) -> None:
    """The refusals above are about the references, not the writes themselves."""
    approved = world.campaigns["C1 approved"]
    _code(session, world, campaign_id=approved, merchant_id=world.merchants["C1"])
    assert _batch(session, world, "C1 approved").codes
    _draft(
        session,
        world,
        target_mode=TargetMode.OUTLETS,
        target_outlet_ids=[world.tree.outlets["O111"].id],
    )
    assert _posters(session, world, "C1 approved")[1] == 2
    running = make_campaign(session, "C1", "进行中的活动", "running")
    system = Actor.system("cli:test")
    city = world.tree.cities["C1"].id
    assert batch_codes(session, actor=system, city_id=city, campaign_id=running).codes
