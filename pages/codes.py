"""渠道活码: channel QR codes: the list with their health, one new code, a whole city's
batch, downloads (PNG/SVG/ZIP), handing a leaver's customers over, importing events."""

import pandas as pd
import streamlit as st

from core.channels.code_export import QR_SIZES, code_png, code_svg, codes_zip
from core.channels.codes import (
    batch_codes,
    code_choices,
    code_cities,
    create_code,
    list_codes,
)
from core.channels.funnel import IMPORT_COLUMNS, import_events
from core.platform.errors import DomainError
from core.platform.permissions import Action, allowed
from core.platform.settings import get_settings
from core.posters.studio import outlet_posters
from ui import widgets
from ui.code_form import code_form
from ui.code_manage import handover_pane, manage_pane
from ui.text import md

actor = widgets.require(Action.VIEW_CHANNEL_CODES)
st.title("渠道活码")
widgets.show_flash()
can_manage = allowed(actor, Action.MANAGE_CHANNEL_CODES)
live_wecom = get_settings().wecom_enabled

with widgets.db() as session:
    cities = code_cities(session, actor=actor)
names = dict(cities)
city_id = (
    cities[0][0]
    if len(cities) == 1
    else st.selectbox(
        "市州", list(names), format_func=names.get, key="codes_city", placeholder="请选择"
    )
)
with widgets.db() as session:
    codes = list_codes(session, actor=actor, city_id=city_id)

dead = [c for c in codes if c.problem]
if dead:
    named = "；".join(f"「{md(c.name)}」{md(c.problem)}" for c in dead[:3])
    named += " 等" if len(dead) > 3 else ""
    st.warning(
        f"有 {len(dead)} 个活码已无法接待客户：{named}。已排在下表最前，"
        "可在下方「管理活码」中更换员工、延长有效期或停用。",
        icon=":material/warning:",
    )
if codes:
    frame = pd.DataFrame(
        [
            {
                "活码": c.name,
                "状态": f"⚠ {c.problem}" if c.problem else "正常",
                "网点": c.outlet_name,
                "渠道": c.channel_type.label,
                "分配规则": c.rule.label,
                "接待员工": "、".join(c.staff_names),
                "扫码": c.scans,
                "加好友": c.adds,
                "流失": c.losses,
                "链接": c.url,
                **({"企业微信联系我": c.contact_way_url or "待同步"} if live_wecom else {}),
            }
            for c in sorted(codes, key=lambda c: not c.problem)
        ]
    )
    st.dataframe(
        frame,
        hide_index=True,
        key="codes_table",
        column_config={
            "状态": st.column_config.TextColumn(width="medium"),
            "链接": st.column_config.LinkColumn(),
        },
    )
else:
    widgets.empty_state(
        "还没有活码。"
        + (
            "可在下方新建，或为全市网点批量生成。"
            if can_manage
            else "市分或营销设计生成后会出现在这里。"
        )
    )

tabs = ["下载"] + (
    ["管理活码", "新建活码", "批量生成", "离职继承", "导入事件"] if can_manage else []
)
panes = dict(zip(tabs, st.tabs(tabs), strict=True))

with panes["下载"]:
    if not codes:
        st.caption("没有可下载的活码。")
    else:
        size = st.select_slider(
            "二维码尺寸（像素）",
            QR_SIZES,
            value=600,
            key="codes_size",
            help="纠错等级 H，可在中心放置标志",
        )
        one = st.selectbox(
            "单个活码",
            codes,
            format_func=lambda c: f"{c.outlet_name} · {c.name}",
            key="codes_one",
            placeholder="请选择",
        )
        left, right = st.columns(2)
        left.download_button(
            "下载 PNG",
            lambda: code_png(one, size_px=size),  # drawn on click, not on every rerun
            f"{one.name}.png",
            "image/png",
            key="codes_png",
            on_click="ignore",
        )
        right.download_button(
            "下载 SVG",
            lambda: code_svg(one),
            f"{one.name}.svg",
            "image/svg+xml",
            key="codes_svg",
            on_click="ignore",
        )
        if actor.outlet_id is not None and st.button(
            "下载本网点专属海报（ZIP）", key="codes_my_posters", icon=":material/photo_library:"
        ):
            try:
                with st.spinner("正在生成本网点海报…"), widgets.db() as session:
                    posters, count = outlet_posters(session, actor=actor)
                st.download_button(
                    f"下载 {count} 张海报",
                    posters,
                    "本网点专属海报.zip",
                    "application/zip",
                    key="codes_my_posters_dl",
                    on_click="ignore",
                    type="primary",
                )
            except DomainError as exc:
                widgets.show_error(exc)
        if st.button(
            f"打包全部 {len(codes)} 个活码（ZIP）",
            key="codes_zip_make",
            icon=":material/folder_zip:",
        ):
            bar = st.progress(0.0, text="正在生成二维码…")
            data = codes_zip(
                codes,
                folder=names.get(city_id, "活码"),
                size_px=size,
                progress=lambda d, t: bar.progress(d / t, text=f"正在生成二维码 {d}/{t}"),
            )
            bar.empty()
            st.download_button(
                "下载 ZIP",
                data,
                f"{names.get(city_id, '活码')}_渠道活码.zip",
                "application/zip",
                key="codes_zip",
                on_click="ignore",
                type="primary",
            )


if can_manage:
    with widgets.db() as session:
        choices = code_choices(session, actor=actor, city_id=city_id)
    with panes["管理活码"]:
        manage_pane(actor, codes, choices)
    with panes["新建活码"]:
        data, slot_problems = code_form(choices)
        if st.button("创建活码", type="primary", key="code_create"):
            if slot_problems:
                st.error("接待时段有误：" + md("；".join(slot_problems)))
                st.stop()
            try:
                with widgets.db() as session:
                    created = create_code(session, actor=actor, data=data)
                st.toast(f"已创建活码「{md(created.name)}」", icon=":material/qr_code_2:")
                st.rerun()
            except DomainError as exc:
                widgets.show_error(exc)
    with panes["批量生成"]:
        per = st.radio(
            "生成方式",
            ["outlet", "staff"],
            format_func=lambda p: "每个网点一个" if p == "outlet" else "每位员工一个",
            horizontal=True,
            key="batch_per",
        )
        campaigns = dict(choices.campaigns)
        campaign = st.selectbox(
            "所属活动（可选）",
            [None, *campaigns],
            format_func=lambda c: "不关联活动" if c is None else campaigns[c],
            key="batch_campaign",
            placeholder="请选择",
        )
        st.caption(
            f"将为{md(names.get(city_id, ''))} {len(choices.outlets)} 个网点中有在职员工的网点生成；已有的同名活码会沿用，不会重复生成。"
        )
        if st.button("批量生成", type="primary", key="batch_go", icon=":material/auto_awesome:"):
            with st.spinner("正在生成活码…"), widgets.db() as session:
                result = batch_codes(
                    session, actor=actor, city_id=city_id, per=per, campaign_id=campaign
                )
            widgets.flash(
                f"新建 {len(result.created)} 个，沿用 {len(result.reused)} 个。可在「下载」中打包下载。"
            )
            st.rerun()

    with panes["离职继承"]:
        handover_pane(actor, choices, live_wecom=live_wecom)

    with panes["导入事件"]:
        widgets.import_panel(
            key="events",
            columns=IMPORT_COLUMNS,
            note="事件为 扫码/加好友/进群/转化。客户ID 导入时即加密，不保存原文。",
            done="事件已导入",
            run=lambda session, data, name, _dry_run, _progress: import_events(
                session, actor=actor, data=data, filename=name
            ),
        )
