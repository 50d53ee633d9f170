"""渠道活码 and 渠道转化 pages."""

from datetime import timedelta

from sqlmodel import Session, select

from core.channels.codes import CodeInput, create_code
from core.channels.events import record_event
from core.platform.clock import shanghai_today
from db.engine import get_engine
from db.models import ChannelCode, ChannelType, EventType, Role, WeComOutbox
from tests.factories import make_staff


def test_designer_batch_creates_codes_and_a_manager_sees_their_own(
    app_for, world, sqlite_url
) -> None:
    with Session(get_engine(sqlite_url)) as session:
        for outlet, name in (("O111", "张三"), ("O112", "李四")):
            make_staff(session, outlet, name)
    at = app_for(Role.DESIGNER).run()
    at.switch_page("pages/codes.py").run()
    assert not at.exception
    at.selectbox(key="codes_city").set_value(world[0].cities["C1"].id).run()
    at.button(key="batch_go").click().run()
    assert any("新建 2 个" in s.value for s in at.success)
    at.run()
    assert len(at.dataframe[0].value) == 2
    manager = app_for(Role.OUTLET_MANAGER).run()
    manager.switch_page("pages/codes.py").run()
    assert list(manager.dataframe[0].value["网点"]) == ["O111支局"]
    assert [t.label for t in manager.tabs] == ["下载"]  # fetch only, no creating


def test_funnel_page(app_for, world, sqlite_url) -> None:
    with Session(get_engine(sqlite_url)) as session:
        staff = make_staff(session, "O111", "张三")
        code = create_code(
            session,
            actor=world[1][Role.ADMIN],
            data=CodeInput("柜台码", ChannelType.COUNTER, world[0].outlets["O111"].id, (staff,)),
        )
        record_event(session, slug=code.slug, customer_id="wm1", event_type=EventType.ADD_FRIEND)
        assert session.exec(select(ChannelCode)).one().adds_count == 1
    at = app_for(Role.CITY_PLANNER).run()
    at.switch_page("pages/funnel.py").run()
    assert not at.exception
    assert at.metric[1].value == "1 人"  # one friend added
    table = at.dataframe[0].value
    assert list(table["渠道类型"]) == ["网点柜台"]
    # the cards and the table name the same rates
    assert {"扫码→加好友", "加好友→进群", "加好友→转化"} <= set(table.columns)
    assert at.metric[3].delta.startswith("加好友→转化")


def test_empty_funnel_does_not_send_an_outlet_manager_to_import(app_for, world) -> None:
    at = app_for(Role.OUTLET_MANAGER).run()
    at.switch_page("pages/funnel.py").run()
    assert not at.exception
    text = " ".join(i.value for i in at.info)
    assert "还没有渠道事件" in text and "导入" not in text
    planner = app_for(Role.CITY_PLANNER).run()
    planner.switch_page("pages/funnel.py").run()
    assert "导入" in " ".join(i.value for i in planner.info)


def test_poster_studio_previews_and_makes_a_batch(app_for, world, sqlite_url) -> None:
    from core.campaigns.compliance import seed_default_terms

    with Session(get_engine(sqlite_url)) as session:
        make_staff(session, "O111", "张三")
        seed_default_terms(session)
        session.commit()
    at = app_for(Role.DESIGNER).run()
    at.switch_page("pages/posters.py").run()
    assert not at.exception and not at.error
    assert at.get("image") or at.get("imgs") or "实时预览" in str(at._tree)  # the live preview
    at.text_input(key="poster_title").input("稳赚存款节").run()
    assert any("合规提示" in w.value for w in at.warning)
    at.selectbox(key="batch_city").set_value(world[0].cities["C1"].id).run()
    at.button(key="batch_posters").click().run()
    assert any("已生成 1 张专属海报" in s.value for s in at.success)


def test_planner_creates_one_code_with_the_form_and_bad_input_is_refused(
    app_for, world, sqlite_url
) -> None:
    with Session(get_engine(sqlite_url)) as session:
        staff = make_staff(session, "O111", "张三")
    at = app_for(Role.CITY_PLANNER).run()
    at.switch_page("pages/codes.py").run()
    at.selectbox(key="code_outlet").set_value(world[0].outlets["O111"].id).run()
    at.button(key="code_create").click().run()
    assert any("活码名称" in e.value for e in at.error)  # nothing filled in yet
    at.text_input(key="code_name").input("五一路柜台")
    at.multiselect(key=f"code_staff_{world[0].outlets['O111'].id}").select(staff)
    at.button(key="code_create").click().run()
    assert not at.error
    with Session(get_engine(sqlite_url)) as session:
        assert session.exec(select(ChannelCode.name)).all() == ["五一路柜台"]


def test_planner_manages_a_dead_code_on_the_page(app_for, world, sqlite_url) -> None:
    """管理活码: extend, re-staff, edit and disable, each visible at once on the page."""
    with Session(get_engine(sqlite_url)) as session:
        zhang = make_staff(session, "O111", "张三")
        li = make_staff(session, "O111", "李四")
        create_code(
            session,
            actor=world[1][Role.CITY_PLANNER],
            data=CodeInput(
                name="旧柜台码",
                channel_type=ChannelType.COUNTER,
                outlet_id=world[0].outlets["O111"].id,
                staff_ids=(zhang,),
                active_until=shanghai_today() - timedelta(days=1),
            ),
        )
    at = app_for(Role.CITY_PLANNER).run()
    at.switch_page("pages/codes.py").run()
    assert not at.exception
    at.segmented_control(key="manage_what").set_value("延长有效期").run()
    code_id = at.selectbox(key="manage_code").value
    at.date_input(key=f"manage_until_{code_id}").set_value(shanghai_today() + timedelta(days=9))
    at.button(key="manage_extend").click().run()
    assert not at.exception and not at.error
    assert any("有效期已改为" in s.value for s in at.success)
    at.segmented_control(key="manage_what").set_value("更换接待员工").run()
    at.multiselect(key=f"manage_{code_id}_staff_{world[0].outlets['O111'].id}").select(li)
    at.button(key="manage_restaff").click().run()
    assert any("接待员工已更换" in s.value for s in at.success)
    at.segmented_control(key="manage_what").set_value("修改设置").run()
    at.text_input(key=f"edit_{code_id}_name").input("新柜台码")
    at.button(key="manage_save").click().run()
    assert not at.error, [e.value for e in at.error]
    at.segmented_control(key="manage_what").set_value("启用/停用").run()
    at.button(key="manage_disable").click().run()
    assert not at.exception and not at.error
    with Session(get_engine(sqlite_url)) as session:
        code = session.get(ChannelCode, code_id)
        assert (code.name, code.enabled) == ("新柜台码", False)
        assert code.active_until == shanghai_today() + timedelta(days=9)
    assert "正常" not in at.dataframe[0].value["状态"].tolist()


def test_admin_sees_the_wecom_mode_and_funnel_shows_losses(
    app_for, world, sqlite_url, monkeypatch
) -> None:
    from core.platform.settings import get_settings
    from tests.wecom_fake import AES_KEY, CORP_ID, SECRET, TOKEN

    tree, users = world
    with Session(get_engine(sqlite_url), expire_on_commit=False) as session:
        old_code = create_code(  # made in manual mode: no contact way
            session,
            actor=users[Role.DESIGNER],
            data=CodeInput(
                name="旧柜台码",
                channel_type=ChannelType.COUNTER,
                outlet_id=tree.outlets["O111"].id,
                staff_ids=(make_staff(session, "O111", "张三"),),
            ),
        )
    at = app_for(Role.ADMIN).run()
    at.switch_page("pages/jobs.py").run()
    assert not at.exception
    assert any("手动模式" in i.value for i in at.info)
    assert not [b for b in at.button if b.key == "wecom_sync_codes"]
    for name, value in {
        "WECOM_CORP_ID": CORP_ID,
        "WECOM_SECRET": SECRET,
        "WECOM_TOKEN": TOKEN,
        "WECOM_AES_KEY": AES_KEY,
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    at = app_for(Role.ADMIN).run()
    at.switch_page("pages/jobs.py").run()
    assert not at.exception
    assert any("实时模式" in s.value for s in at.success)
    assert [m.label for m in at.metric][:2] == ["上次获取 access_token", "上次收到回调"]
    assert any("1 个启用中的活码还没有企业微信联系我" in w.value for w in at.warning)
    at.button(key="wecom_sync_codes").click().run()
    assert not at.exception
    assert not [b for b in at.button if b.key == "wecom_sync_codes"]
    with Session(get_engine(sqlite_url)) as session:
        queued = session.exec(select(WeComOutbox.code_id)).all()
    assert queued == [old_code.id]
    at.switch_page("pages/codes.py").run()
    assert not at.exception
    at.switch_page("pages/funnel.py").run()
    assert not at.exception


def test_choosing_a_campaign_applies_its_template_and_its_city_to_the_batch(
    app_for, world, sqlite_url
) -> None:
    from db.models import Campaign, CampaignKind
    from tests.factories import make_campaign

    with Session(get_engine(sqlite_url)) as session:
        make_staff(session, "O111", "张三")
        cid = make_campaign(session, "C1", "新春存款节", "approved")
        campaign = session.get(Campaign, cid)
        campaign.kind = CampaignKind.FESTIVAL
        session.add(campaign)
        session.commit()
    at = app_for(Role.DESIGNER).run()
    at.switch_page("pages/posters.py").run()
    picked = next(o for o in at.selectbox(key="poster_campaign").options if "新春存款节" in o)
    at.selectbox(key="poster_campaign").select(picked).run()
    assert not at.exception
    assert at.selectbox(key="poster_template").value == "festival"
    assert at.text_input(key="poster_title").value == "新春存款节"
    assert not [s for s in at.selectbox if s.key in ("batch_city", "batch_campaign")]
    assert any("关联活动「新春存款节」" in c.value for c in at.caption)
    at.button(key="batch_posters").click().run()
    assert any("已生成 1 张专属海报" in s.value for s in at.success)
