"""活动设计, 活动方案, 方案审核, 联盟商户, 消息通知 and 审核与预算设置 as Streamlit renders them."""

from sqlmodel import Session, select

from core.campaigns import attachments
from core.campaigns import plans as campaigns
from core.campaigns.approvals import Decision, decide_plan, submit_plan
from core.campaigns.attachments import add_attachment
from core.campaigns.plans import save_draft
from db.engine import get_engine
from db.models import Campaign, Merchant, Notification, PlanState, ReviewStage, Role
from tests.factories import complete_design, make_stages
from ui import plan_detail, plan_view


def _plan(url: str, users, *, submit: bool = True) -> int:
    with Session(get_engine(url)) as session:
        make_stages(session, ["reviewer"])
        cid = save_draft(
            session, actor=users[Role.CITY_PLANNER], design=complete_design(session)
        ).id
        if submit:
            submit_plan(session, actor=users[Role.CITY_PLANNER], campaign_id=cid)
    return cid


def test_planner_saves_a_draft_and_is_told_what_is_missing_on_submit(app_for, sqlite_url) -> None:
    at = app_for(Role.CITY_PLANNER).run()
    at.switch_page("pages/campaigns.py").run()
    assert not at.exception
    key = next(t.key for t in at.text_input if t.key and t.key.endswith("_name"))
    at.text_input(key=key).input("元旦逢8权益日").run()
    assert any("尚未设置年度营销预算" in w.value for w in at.warning)  # the live budget panel
    at.button(key="design_submit").click().run()
    assert not at.exception
    message = next(e.value for e in at.error if "草稿已保存，但还不能提交审核" in e.value)
    assert "请至少设置一种权益券" in message
    with Session(get_engine(sqlite_url)) as session:
        saved = session.exec(select(Campaign)).one()  # the draft was kept although submit failed
        assert saved.name == "元旦逢8权益日" and saved.state is PlanState.DRAFT
    picker = next(s for s in at.selectbox if s.key and s.key.startswith("design_pick_"))
    assert picker.value == saved.id  # the picker names the saved draft, not 新建活动


def test_deleting_a_draft_asks_first(app_for, world, sqlite_url) -> None:
    cid = _plan(sqlite_url, world[1], submit=False)
    at = app_for(Role.CITY_PLANNER)
    at.query_params["plan"] = str(cid)
    at.run()
    at.switch_page("pages/campaigns.py").run()
    at.button(key="design_delete").click().run()
    assert not at.exception
    with Session(get_engine(sqlite_url)) as session:
        assert session.get(Campaign, cid) is not None  # one click deletes nothing
    at.button(key="design_delete_confirm").click().run()
    with Session(get_engine(sqlite_url)) as session:
        assert session.get(Campaign, cid) is None


def test_a_resubmitted_plan_no_longer_shows_the_old_return_comment(
    app_for, world, sqlite_url
) -> None:
    cid = _plan(sqlite_url, world[1])
    with Session(get_engine(sqlite_url)) as session:
        decide_plan(
            session,
            actor=world[1][Role.PROVINCE_REVIEWER],
            campaign_id=cid,
            decision=Decision.RETURN,
            comment="请把寄递券数量减半",
            expected_lock=session.get(Campaign, cid).lock_version,
        )
    at = app_for(Role.CITY_PLANNER)
    at.query_params["plan"] = str(cid)
    at.run()
    at.switch_page("pages/plans.py").run()
    assert any("请把寄递券数量减半" in w.value for w in at.warning)
    with Session(get_engine(sqlite_url)) as session:
        submit_plan(session, actor=world[1][Role.CITY_PLANNER], campaign_id=cid)
    at.run()
    shown = [*at.warning, *at.info]
    assert not any("请把寄递券数量减半" in w.value for w in shown)


def test_plans_page_shows_state_stage_and_next_step(app_for, world, sqlite_url) -> None:
    cid = _plan(sqlite_url, world[1])
    at = app_for(Role.CITY_PLANNER)
    at.query_params["plan"] = str(cid)
    at.run()
    at.switch_page("pages/plans.py").run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["状态"]) == ["已提交"] and "第 1/1 环节" in table["审核环节"][0]
    assert at.subheader[0].value == "12月逢8会员权益日"


def test_reviewer_queue_and_plan_detail(app_for, world, sqlite_url) -> None:
    _plan(sqlite_url, world[1])
    at = app_for(Role.PROVINCE_REVIEWER).run()
    at.switch_page("pages/approvals.py").run()
    assert not at.exception
    queue = at.dataframe[0].value
    assert list(queue["活动"]) == ["12月逢8会员权益日"] and queue["轮到我"][0] == "是"
    assert at.text_area(key=next(t.key for t in at.text_area)).value == ""
    labels = [b.label for b in at.button]
    assert {"通过", "退回修改", "驳回"} <= set(labels)


def test_returned_plan_shows_the_comment_to_the_planner(app_for, world, sqlite_url) -> None:
    cid = _plan(sqlite_url, world[1])
    with Session(get_engine(sqlite_url)) as session:
        lock = session.get(Campaign, cid).lock_version
        decide_plan(
            session,
            actor=world[1][Role.PROVINCE_REVIEWER],
            campaign_id=cid,
            decision=Decision.RETURN,
            comment="请压缩预算",
            expected_lock=lock,
        )
    at = app_for(Role.CITY_PLANNER)
    at.query_params["plan"] = str(cid)
    at.run()
    at.switch_page("pages/campaigns.py").run()
    assert any("请压缩预算" in w.value for w in at.warning)
    at.switch_page("pages/notifications.py").run()
    assert any("被退回修改" in m.value for m in at.markdown)
    with Session(get_engine(sqlite_url)) as session:
        assert all(
            n.read_at is not None
            for n in session.exec(select(Notification)).all()
            if n.user_id == world[1][Role.CITY_PLANNER].user_id
        )


def test_planner_adds_a_merchant(app_for, world, sqlite_url) -> None:
    at = app_for(Role.CITY_PLANNER).run()
    at.switch_page("pages/merchants.py").run()
    assert any("没有符合条件的商户" in i.value for i in at.info)
    at.text_input(key="madd_name").input("星沙好又多超市")
    at.text_input(key="madd_phone").input("0731-8888888")
    at.button(key="merchant_add").click().run()
    assert not at.exception
    with Session(get_engine(sqlite_url)) as session:
        merchant = session.exec(select(Merchant)).one()
        assert merchant.name == "星沙好又多超市" and merchant.city_id == world[0].cities["C1"].id


def test_admin_edits_review_stages(app_for, world, sqlite_url) -> None:
    at = app_for(Role.ADMIN).run()
    at.switch_page("pages/review_settings.py").run()
    assert not at.exception
    at.text_input(key="stage_name_1").input("专业部门审核")
    at.multiselect(key="stage_members_1").select(world[1][Role.PROVINCE_REVIEWER].user_id)
    at.button(key="stage_save").click().run()
    assert not at.error
    with Session(get_engine(sqlite_url)) as session:
        assert [s.name for s in session.exec(select(ReviewStage))] == ["专业部门审核"]


def test_plan_attachments_are_listed_without_loading_their_bytes(
    app_for, world, sqlite_url, monkeypatch
) -> None:
    cid = _plan(sqlite_url, world[1], submit=False)
    planner = world[1][Role.CITY_PLANNER]
    with Session(get_engine(sqlite_url)) as session:
        pdf = b"%PDF-1.4\n" + b"0" * 4096
        add_attachment(session, actor=planner, campaign_id=cid, filename="说明.pdf", data=pdf)
        submit_plan(session, actor=planner, campaign_id=cid)
    loads: list[int] = []
    real = attachments.attachment_content
    for module in (campaigns, plan_view, plan_detail):  # wherever a page might call it from
        monkeypatch.setattr(
            module,
            "attachment_content",
            lambda *a, **k: loads.append(1) or real(*a, **k),
            raising=False,
        )
    at = app_for(Role.PROVINCE_REVIEWER)
    at.query_params["plan"] = str(cid)
    at.run()
    at.switch_page("pages/plans.py").run()
    assert not at.exception
    assert any("附件（1）" in t.label for t in at.tabs)
    assert loads == []  # read when the button is clicked, not on every rerun


def test_admin_picks_a_city_and_binds_only_its_outlets(app_for, world) -> None:
    at = app_for(Role.ADMIN).run()
    at.switch_page("pages/merchants.py").run()
    assert not at.exception
    cities = at.selectbox(key="merchant_city")
    assert cities.options == ["全部市州", "C1市", "C2市"]
    cities.select(world[0].cities["C2"].id).run()
    outlets = at.multiselect(key="madd_outlets")
    assert sorted(outlets.options) == ["O211支局", "O212支局"]


def test_province_roles_filter_plans_by_city(app_for, world, sqlite_url) -> None:
    _plan(sqlite_url, world[1])
    at = app_for(Role.PROVINCE_REVIEWER).run()
    at.switch_page("pages/plans.py").run()
    assert len(at.dataframe[0].value) == 1
    at.selectbox(key="plans_city").select(world[0].cities["C2"].id).run()
    assert not at.dataframe and any("没有符合条件的活动方案" in i.value for i in at.info)
    at.selectbox(key="plans_city").select(world[0].cities["C1"].id).run()
    assert list(at.dataframe[0].value["活动"]) == ["12月逢8会员权益日"]


def test_plan_buttons_follow_state_and_role(app_for, world, sqlite_url) -> None:
    cid = _plan(sqlite_url, world[1])
    planner = app_for(Role.CITY_PLANNER)
    planner.query_params["plan"] = str(cid)
    planner.run()
    planner.switch_page("pages/plans.py").run()
    keys = {b.key for b in planner.button}
    assert "plans_withdraw" in keys and not keys & {"plans_edit", "plans_advance"}
    planner.button(key="plans_withdraw").click().run()
    assert not planner.exception
    with Session(get_engine(sqlite_url)) as session:
        assert session.get(Campaign, cid).state is PlanState.DRAFT
    assert "plans_edit" in {b.key for b in planner.button}

    with Session(get_engine(sqlite_url)) as session:
        session.get(Campaign, cid).state = PlanState.APPROVED
        session.commit()
    admin = app_for(Role.ADMIN)
    admin.query_params["plan"] = str(cid)
    admin.run()
    admin.switch_page("pages/plans.py").run()
    assert admin.button(key="plans_advance").label == "手动排期"
    admin.button(key="plans_advance").click().run()
    with Session(get_engine(sqlite_url)) as session:
        assert session.get(Campaign, cid).state is PlanState.SCHEDULED


def test_planner_imports_merchants_and_sees_the_bad_line(app_for, world, sqlite_url) -> None:
    at = app_for(Role.CITY_PLANNER).run()
    at.switch_page("pages/merchants.py").run()
    bad = "商户名称,所属市编码,绑定网点编码\n星沙超市,C1,O111\n远方商店,C1,O211\n".encode()
    at.file_uploader(key="merchant_upload").upload("m.csv", bad, "text/csv").run()
    at.button(key="merchant_submit").click().run()
    assert not at.exception and "文件未导入" in at.error[0].value
    problems = next(d.value for d in at.dataframe if "行号" in d.value.columns)
    assert list(problems["行号"]) == [3]
    good = "商户名称,所属市编码,绑定网点编码\n星沙超市,C1,O111\n".encode()
    at.file_uploader(key="merchant_upload").upload("m.csv", good, "text/csv").run()
    at.button(key="merchant_submit").click().run()
    assert any("新增 1 个商户" in s.value for s in at.success)
    with Session(get_engine(sqlite_url)) as session:
        assert [m.name for m in session.exec(select(Merchant))] == ["星沙超市"]


def test_plan_summary_names_an_outlet_and_a_merchant_that_share_an_id(
    app_for, world, sqlite_url
) -> None:
    from core.campaigns.design import TargetMode
    from db.models import OrgUnit

    planner = world[1][Role.CITY_PLANNER]
    with Session(get_engine(sqlite_url)) as session:
        make_stages(session, ["reviewer"])
        outlet = session.exec(select(OrgUnit).where(OrgUnit.code == "O111")).one()
        session.add(Merchant(id=outlet.id, city_id=outlet.city_id, name="星沙超市"))
        session.commit()
        base = complete_design(session)
        design = base.model_copy(
            update={
                "target_mode": TargetMode.OUTLETS,
                "target_outlet_ids": [outlet.id],
                "merchant_ids": [outlet.id],
                "coupons": [
                    c.model_copy(update={"merchant_ids": [outlet.id]}) for c in base.coupons
                ],
            }
        )
        cid = save_draft(session, actor=planner, design=design).id
    at = app_for(Role.CITY_PLANNER)
    at.query_params["plan"] = str(cid)
    at.run()
    at.switch_page("pages/plans.py").run()
    assert not at.exception
    summary = next(m.value for m in at.markdown if "参与网点" in m.value)
    assert "指定网点：O111支局" in summary and "参与商户**：星沙超市" in summary
    coupons = next(d.value for d in at.dataframe if "承兑商户" in d.value.columns)
    assert set(coupons["承兑商户"]) == {"星沙超市"}


def test_coupon_form_adds_fills_and_removes_coupons(app_for, world, sqlite_url) -> None:
    from core.campaigns.design import CouponKind

    at = app_for(Role.CITY_PLANNER).run()
    at.switch_page("pages/campaigns.py").run()
    name_key = next(t.key for t in at.text_input if t.key and t.key.endswith("_name"))
    form = name_key.removesuffix("_name")
    at.text_input(key=name_key).input("元旦逢8权益日").run()
    at.button(key=f"{form}_coupon_add").click().run()
    at.button(key=f"{form}_coupon_add").click().run()
    assert not at.exception
    labels = {w.label for w in at.number_input}
    assert {"满（元）", "减免金额（元）", "发放数量（张）", "邮政出资（%）"} <= labels
    at.text_input(key=f"{form}_c0_name").input("满30减10").run()
    at.number_input(key=f"{form}_c0_threshold").set_value(30.0).run()
    at.number_input(key=f"{form}_c0_face").set_value(10.0).run()
    at.number_input(key=f"{form}_c0_quantity").set_value(500).run()
    at.segmented_control(key=f"{form}_c1_kind").set_value(CouponKind.SHIPPING).run()
    assert "满（元）" not in {w.label for w in at.number_input if w.key.startswith(f"{form}_c1")}
    at.button(key=f"{form}_c1_remove").click().run()
    assert not any(w.key.startswith(f"{form}_c1_") for w in at.number_input)
    at.button(key="design_save").click().run()
    assert not at.exception
    with Session(get_engine(sqlite_url)) as session:
        cid = session.exec(select(Campaign)).one().id
        detail = campaigns.campaign_detail(
            session, actor=world[1][Role.CITY_PLANNER], campaign_id=cid
        )
    (coupon,) = detail.design.coupons
    assert (coupon.name, coupon.kind, coupon.threshold_fen, coupon.face_value_fen) == (
        "满30减10",
        CouponKind.FULL_REDUCTION,
        3000,
        1000,
    )
    assert coupon.quantity == 500 and coupon.post_share_pct == 100


def test_a_resubmission_clears_the_cached_home_summary(app_for, world, sqlite_url) -> None:
    cid = _plan(sqlite_url, world[1])
    with Session(get_engine(sqlite_url)) as session:
        decide_plan(
            session,
            actor=world[1][Role.PROVINCE_REVIEWER],
            campaign_id=cid,
            decision=Decision.RETURN,
            comment="请压缩预算",
            expected_lock=session.get(Campaign, cid).lock_version,
        )
    planner = app_for(Role.CITY_PLANNER).run()
    assert any("被退回" in w.value for w in planner.warning)  # now cached for minutes
    planner.query_params["plan"] = str(cid)
    planner.switch_page("pages/campaigns.py").run()
    planner.button(key="design_submit").click().run()
    assert not planner.exception
    with Session(get_engine(sqlite_url)) as session:
        assert session.get(Campaign, cid).state is PlanState.SUBMITTED
    home = app_for(Role.CITY_PLANNER).run()
    assert not any("被退回" in w.value for w in home.warning)


def test_version_diff_lists_the_changed_fields_first(app_for, world, sqlite_url) -> None:
    planner, reviewer = world[1][Role.CITY_PLANNER], world[1][Role.PROVINCE_REVIEWER]
    cid = _plan(sqlite_url, world[1])
    with Session(get_engine(sqlite_url)) as session:
        decide_plan(
            session,
            actor=reviewer,
            campaign_id=cid,
            decision=Decision.RETURN,
            comment="请补充说明",
            expected_lock=session.get(Campaign, cid).lock_version,
        )
        detail = campaigns.campaign_detail(session, actor=planner, campaign_id=cid)
        changed = detail.design.model_copy(update={"notes": "已按意见补充执行要求。"})
        save_draft(
            session,
            actor=planner,
            design=changed,
            campaign_id=cid,
            expected_lock=session.get(Campaign, cid).lock_version,
        )
        submit_plan(session, actor=planner, campaign_id=cid)
    at = app_for(Role.PROVINCE_REVIEWER).run()
    at.switch_page("pages/approvals.py").run()
    assert not at.exception
    diff = next(d.value for d in at.dataframe if list(d.value.columns)[:1] == ["字段"])
    assert list(diff["字段"]) == ["方案说明"]  # only what changed, on top
    assert any(e.label.startswith("未改动的") for e in at.expander)


def test_specific_rights_days_are_picked_from_the_campaign_period(
    app_for, world, sqlite_url
) -> None:
    from core.campaigns.design import RuleKind

    at = app_for(Role.CITY_PLANNER).run()
    at.switch_page("pages/campaigns.py").run()
    name_key = next(t.key for t in at.text_input if t.key and t.key.endswith("_name"))
    form = name_key.removesuffix("_name")
    at.text_input(key=name_key).input("指定日期活动").run()
    at.radio(key=f"{form}_rule").set_value(RuleKind.DATES).run()
    picker = at.multiselect(key=f"{form}_dates")
    assert picker.placeholder.startswith("选择活动期内的日期")
    first, third = picker.options[0], picker.options[2]
    at.multiselect(key=f"{form}_dates").select(picker.options[2]).select(first).run()
    assert not at.exception
    at.button(key="design_save").click().run()
    with Session(get_engine(sqlite_url)) as session:
        saved = session.exec(select(Campaign)).one()
        detail = campaigns.campaign_detail(
            session, actor=world[1][Role.CITY_PLANNER], campaign_id=saved.id
        )
    dates = detail.design.rule.dates
    assert len(dates) == 2 and dates == sorted(dates)
    assert [f"{d.month}月{d.day}日" for d in dates] == [o.split("（")[0] for o in (first, third)]
