"""The role × action × scope matrix, stated once here as the contract and checked
against the registry; and scope enforcement on real org units."""

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from core.platform.errors import PermissionDenied
from core.platform.permissions import (
    ACTIONS,
    Action,
    Actor,
    Scope,
    allowed,
    ensure_allowed,
    scope_filter,
    scope_of,
)
from db.models import OrgLevel, OrgUnit, Role
from tests.factories import make_tree, make_users

A, R, P, M, D = (
    Role.ADMIN,
    Role.PROVINCE_REVIEWER,
    Role.CITY_PLANNER,
    Role.OUTLET_MANAGER,
    Role.DESIGNER,
)
PROV, CITY, OUTLET = Scope.PROVINCE, Scope.CITY, Scope.OUTLET

# action: (admin, reviewer, planner, manager, designer); None = refused
EXPECTED: dict[Action, tuple] = {
    Action.VIEW_DASHBOARD: (PROV, PROV, CITY, OUTLET, PROV),
    Action.VIEW_METRICS: (PROV, PROV, CITY, CITY, PROV),
    Action.VIEW_CITY_RANKING: (PROV, PROV, PROV, PROV, PROV),
    Action.VIEW_OUTLET_DETAIL: (PROV, PROV, CITY, OUTLET, PROV),
    Action.IMPORT_METRICS: (PROV, None, CITY, None, None),
    Action.IMPORT_ORG: (PROV, None, None, None, None),
    Action.MANAGE_USERS: (PROV, None, None, None, None),
    Action.VIEW_AUDIT: (PROV, None, None, None, None),
    Action.VIEW_CAMPAIGNS: (PROV, PROV, CITY, None, PROV),
    Action.MANAGE_CAMPAIGNS: (PROV, None, CITY, None, None),
    Action.REVIEW_PLANS: (None, PROV, None, None, None),
    Action.ADVANCE_CAMPAIGNS: (PROV, None, None, None, None),
    Action.VIEW_MERCHANTS: (PROV, PROV, CITY, None, PROV),
    Action.MANAGE_MERCHANTS: (PROV, None, CITY, None, None),
    Action.MANAGE_SETTINGS: (PROV, None, None, None, None),
    Action.VIEW_NOTIFICATIONS: (PROV, PROV, PROV, PROV, PROV),
    Action.MANAGE_JOBS: (PROV, None, None, None, None),
    Action.VIEW_DATA_QUALITY: (PROV, PROV, CITY, None, None),
    Action.VIEW_CHANNEL_CODES: (PROV, PROV, CITY, OUTLET, PROV),
    Action.MANAGE_CHANNEL_CODES: (PROV, None, CITY, None, PROV),
    Action.VIEW_CHANNEL_STATS: (PROV, PROV, CITY, OUTLET, PROV),
    Action.MANAGE_POSTERS: (PROV, None, CITY, None, PROV),
    Action.VIEW_STAFF_METRICS: (PROV, PROV, CITY, OUTLET, None),
    Action.MANAGE_METRIC_REGISTRY: (PROV, None, None, None, None),
    Action.IMPORT_COUPONS: (PROV, None, CITY, None, None),
    Action.IMPORT_TARGETS: (PROV, None, CITY, None, None),
    Action.VIEW_RESULTS: (PROV, PROV, CITY, None, PROV),
}
ROLES = (A, R, P, M, D)


def test_every_action_is_in_the_contract() -> None:
    assert set(EXPECTED) == set(Action) == set(ACTIONS)


@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize("role", ROLES)
def test_matrix(role: Role, action: Action) -> None:
    expected = EXPECTED[action][ROLES.index(role)]
    actor = Actor(user_id=1, username="u", display_name="u", role=role, city_id=10, outlet_id=20)
    assert scope_of(actor, action) == expected
    assert allowed(actor, action) is (expected is not None)
    if expected is None:
        with pytest.raises(PermissionDenied, match="无权"):
            ensure_allowed(actor, action)
    else:
        ensure_allowed(actor, action)


def _outlet_codes(session: Session, actor: Actor, action: Action) -> set[str]:
    query = sa.select(OrgUnit.code).where(
        OrgUnit.level == OrgLevel.OUTLET, scope_filter(actor, action)
    )
    return set(session.execute(query).scalars())


def test_scope_filters_on_the_tree(session: Session) -> None:
    tree = make_tree(session)
    users = make_users(session)
    detail = Action.VIEW_OUTLET_DETAIL
    assert _outlet_codes(session, users[A], detail) == set(tree.outlets)
    assert _outlet_codes(session, users[P], detail) == {"O111", "O112", "O113", "O121"}
    assert _outlet_codes(session, users[M], detail) == {"O111"}
    assert _outlet_codes(session, users[M], Action.VIEW_METRICS) == {"O111", "O112", "O113", "O121"}
    assert _outlet_codes(session, users[M], Action.IMPORT_METRICS) == set()


def test_outlet_manager_is_refused_another_outlets_detail_by_core(session: Session) -> None:
    tree = make_tree(session)
    manager = make_users(session)[M]
    ensure_allowed(manager, Action.VIEW_OUTLET_DETAIL, tree.outlets["O111"])
    with pytest.raises(PermissionDenied, match="不在您的数据范围内"):
        ensure_allowed(manager, Action.VIEW_OUTLET_DETAIL, tree.outlets["O112"])


def test_city_planner_scope_covers_city_county_and_outlets_only(session: Session) -> None:
    tree = make_tree(session)
    planner = make_users(session)[P]
    for unit in (tree.cities["C1"], tree.counties["K12"], tree.outlets["O121"]):
        assert allowed(planner, Action.VIEW_OUTLET_DETAIL, unit)
    for unit in (tree.cities["C2"], tree.outlets["O211"], tree.province):
        assert not allowed(planner, Action.VIEW_OUTLET_DETAIL, unit)
