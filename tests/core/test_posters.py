"""The studio's services: poster text from a campaign, compliance hints on poster copy,
and batches of personalised posters whose QR codes scan back to each code's URL."""

import io
import zipfile

import pytest
import zxingcpp
from PIL import Image
from sqlmodel import Session

from core.campaigns.compliance import seed_default_terms
from core.campaigns.plans import save_draft
from core.channels.codes import batch_codes, list_codes
from core.platform.errors import PermissionDenied, ValidationFailed
from core.posters.studio import _jobs, batch_posters, campaign_content, outlet_posters, poster_hits
from core.posters.templates import PosterContent
from db.models import Role
from tests.factories import complete_design, make_staff, make_tree, make_users


@pytest.fixture
def world(session: Session):
    tree = make_tree(session)
    users = make_users(session)
    for outlet, name in (("O111", "张三"), ("O111", "李四"), ("O112", "王五")):
        make_staff(session, outlet, name)
    return tree, users


def test_campaign_content_uses_its_name_days_and_coupons(session: Session, world) -> None:
    _, users = world
    cid = save_draft(session, actor=users[Role.CITY_PLANNER], design=complete_design(session)).id
    content = campaign_content(session, actor=users[Role.DESIGNER], campaign_id=cid)
    assert content.title == "12月逢8会员权益日"
    assert content.date_line == "12月8日 · 12月18日 · 12月28日"
    assert content.benefits[0] == "满100减20元"  # the name says it already


def test_a_campaign_gets_the_template_of_its_kind(session: Session, world) -> None:
    from core.posters.studio import campaign_template
    from db.models import CampaignKind

    _, users = world
    design = complete_design(session)
    planner, designer = users[Role.CITY_PLANNER], users[Role.DESIGNER]
    expected = {
        CampaignKind.RIGHTS_DAY: "rights_day",
        CampaignKind.FESTIVAL: "festival",
        CampaignKind.ECOMMERCE: "ecommerce",
    }
    for kind, template in expected.items():
        cid = save_draft(session, actor=planner, design=design.model_copy(update={"kind": kind})).id
        assert campaign_template(session, actor=designer, campaign_id=cid) == template


def test_poster_copy_gets_compliance_hints(session: Session, world) -> None:
    seed_default_terms(session)
    session.commit()
    hits = poster_hits(
        session, PosterContent(title="稳赚存款节", subtitle="零风险", benefits=("最高收益 4%",))
    )
    expected = {
        ("稳赚", "海报标题"),
        ("零风险", "海报副标题"),
        ("最高收益", "海报权益"),
        ("高收益", "海报权益"),
    }
    assert {(h.term, h.where) for h in hits} == expected


def test_batch_per_staff_every_poster_scans_to_its_own_code(session: Session, world) -> None:
    tree, users = world
    content = PosterContent(
        title="逢8会员权益日", subtitle="星级会员专享", benefits=("满100减20",), date_line="12月8日"
    )
    data, count = batch_posters(
        session,
        actor=users[Role.DESIGNER],
        city_id=tree.cities["C1"].id,
        per="staff",
        content=content,
        workers=1,
    )
    assert count == 3
    archive = zipfile.ZipFile(io.BytesIO(data))
    names = sorted(archive.namelist())
    assert len(names) == 3 and all(n.startswith("C1市_海报/O11") for n in names)
    urls = {c.name: c.url for c in list_codes(session, actor=users[Role.ADMIN])}
    for name in names:
        code_name = name.rsplit("/", 1)[1].removesuffix(".png")
        decoded = [
            r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(archive.read(name))))
        ]
        assert decoded == [urls[code_name]], name


def test_batches_need_the_right_to_make_posters(session: Session, world) -> None:
    tree, users = world
    content = PosterContent(title="x", subtitle="", benefits=("y",))
    with pytest.raises(PermissionDenied):
        batch_posters(
            session, actor=users[Role.CITY_PLANNER], city_id=tree.cities["C2"].id, content=content
        )
    with pytest.raises(PermissionDenied):
        batch_posters(
            session, actor=users[Role.OUTLET_MANAGER], city_id=tree.cities["C1"].id, content=content
        )


def test_without_a_campaign_a_batch_takes_the_templates_own_text(session: Session, world) -> None:
    tree, users = world
    data, count = batch_posters(
        session, actor=users[Role.DESIGNER], city_id=tree.cities["C1"].id, workers=1
    )
    assert count == 2 and len(zipfile.ZipFile(io.BytesIO(data)).namelist()) == 2


def test_an_outlet_manager_fetches_their_own_posters(session: Session, world) -> None:
    tree, users = world
    with pytest.raises(ValidationFailed, match="还没有渠道活码"):
        outlet_posters(session, actor=users[Role.OUTLET_MANAGER])
    content = PosterContent(title="逢8会员权益日", subtitle="", benefits=("满100减20",))
    batch_posters(
        session,
        actor=users[Role.DESIGNER],
        city_id=tree.cities["C1"].id,
        content=content,
        workers=1,
    )
    data, count = outlet_posters(session, actor=users[Role.OUTLET_MANAGER])
    assert count == 1 and len(zipfile.ZipFile(io.BytesIO(data)).namelist()) == 1  # only O111's


def test_only_personal_codes_put_a_staff_name_on_the_poster(session: Session, world) -> None:
    tree, users = world
    designer, city = users[Role.DESIGNER], tree.cities["C1"].id
    base = PosterContent(title="逢8会员权益日", subtitle="", benefits=("满100减20",))
    outlet_codes = batch_codes(session, actor=designer, city_id=city, per="outlet").codes
    staff_codes = batch_codes(session, actor=designer, city_id=city, per="staff").codes

    def staff_lines(codes) -> dict[str, str]:
        return {job.name: job.content.staff_name for _, job in _jobs(codes, base, "rights_day")}

    # O111 has two staff: its outlet code is shared, so no name (not "客户经理 网点柜台").
    assert staff_lines(outlet_codes) == {
        "O111支局/O111支局·网点柜台.png": "",
        "O112支局/O112支局·网点柜台.png": "客户经理 王五",  # O112's only member of staff
    }
    assert sorted(staff_lines(staff_codes).values()) == [
        "客户经理 张三",
        "客户经理 李四",
        "客户经理 王五",
    ]


def test_an_outlets_posters_carry_a_campaign_only_while_it_may_be_carried(
    session: Session, world, monkeypatch
) -> None:
    from core.campaigns.approvals import advance_campaign
    from core.campaigns.states import PlanAction
    from core.platform.permissions import Actor
    from core.posters import studio as posters
    from tests.factories import make_campaign

    tree, users = world
    campaign = make_campaign(session, "C1", "逢8会员权益日", "approved")
    batch_posters(
        session,
        actor=users[Role.DESIGNER],
        city_id=tree.cities["C1"].id,
        campaign_id=campaign,
        workers=1,
    )
    titles: list[str] = []
    real_zip = posters._zip

    def capture(folder, named_jobs, progress, workers):
        titles.extend(job.content.title for _, job in named_jobs)
        return real_zip(folder, named_jobs, progress, workers)

    monkeypatch.setattr(posters, "_zip", capture)
    outlet_posters(session, actor=users[Role.OUTLET_MANAGER])
    for action in (PlanAction.SCHEDULE, PlanAction.START, PlanAction.END):
        advance_campaign(session, actor=Actor.system(), campaign_id=campaign, action=action)
    outlet_posters(session, actor=users[Role.OUTLET_MANAGER])
    assert titles == ["逢8会员权益日", posters.OUTLET_DEFAULT_TEXT.title]


def test_a_batch_follows_the_chosen_campaigns_city_and_binds_it_only_while_it_may() -> None:
    from datetime import date

    from core.campaigns.targets import CampaignPeriod
    from core.posters.studio import batch_target
    from db.models import PlanState

    def period(state: PlanState) -> CampaignPeriod:
        return CampaignPeriod(7, "新春存款节", 42, date(2026, 1, 1), date(2026, 1, 31), state)

    running = batch_target(period(PlanState.RUNNING))
    assert (running.city_id, running.campaign_id) == (42, 7)
    assert "新春存款节" in running.note
    ended = batch_target(period(PlanState.ENDED))
    assert (ended.city_id, ended.campaign_id) == (42, None)
    assert "已结束" in ended.note
