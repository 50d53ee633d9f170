"""海报工坊: design a poster from a template (text, background, logo, QR position) with a
live preview, export PNG/PDF, and make a city's personalised posters in one batch."""

from dataclasses import replace

import streamlit as st

from core.campaigns.targets import board_campaigns
from core.channels.codes import code_cities
from core.platform.errors import DomainError
from core.platform.permissions import Action
from core.posters.render import render_poster, to_pdf, to_png
from core.posters.studio import (
    batch_posters,
    batch_target,
    campaign_content,
    campaign_template,
    poster_hits,
)
from core.posters.templates import (
    MAX_BENEFITS,
    PosterContent,
    load_templates,
    sample_content,
)
from ui import plan_view, widgets
from ui.poster_style import style_controls
from ui.text import md

actor = widgets.require(Action.MANAGE_POSTERS)
st.title("海报工坊")

templates = load_templates()
with widgets.db() as session:
    campaigns = board_campaigns(session, actor=actor)
    cities = code_cities(session, actor=actor)


@st.cache_data(max_entries=32, show_spinner=False)
def preview_png(template_id: str, content: PosterContent) -> bytes:
    template = templates[template_id]
    return to_png(render_poster(template.scaled(0.5), content))


def fill_from_campaign() -> None:
    chosen = st.session_state.get("poster_campaign")
    if chosen is None:
        return
    with widgets.db() as session:
        content = campaign_content(session, actor=actor, campaign_id=chosen.id)
        template = campaign_template(session, actor=actor, campaign_id=chosen.id)
    st.session_state.update(
        poster_template=template,
        poster_title=content.title,
        poster_subtitle=content.subtitle,
        poster_benefits="\n".join(content.benefits),
        poster_date=content.date_line,
    )


controls, preview = st.columns([1, 1])
with controls:
    chosen_campaign = None
    if campaigns:
        chosen_campaign = st.selectbox(
            "活动",
            [None, *campaigns],
            format_func=lambda c: (
                "不关联活动（自由设计）" if c is None else f"{c.name}（{c.state.label}）"
            ),
            key="poster_campaign",
            on_change=fill_from_campaign,
            help="选择活动后自动套用该活动类型的模板并填入活动内容；批量生成也按该活动进行",
            placeholder="请选择",
        )
    template_id = st.selectbox(
        "模板",
        list(templates),
        format_func=lambda t: templates[t].name,
        key="poster_template",
        placeholder="请选择",
    )
    template = templates[template_id]
    sample = sample_content(template)
    for key, value in (
        ("poster_title", sample.title),
        ("poster_subtitle", sample.subtitle),
        ("poster_benefits", "\n".join(sample.benefits)),
        ("poster_date", sample.date_line),
        ("poster_outlet", sample.outlet_name),
        ("poster_staff", sample.staff_name),
    ):
        st.session_state.setdefault(key, value)
    title = st.text_input("标题", key="poster_title", max_chars=30)
    subtitle = st.text_input("副标题", key="poster_subtitle", max_chars=40)
    benefits = st.text_area(
        f"权益（每行一条，最多 {MAX_BENEFITS} 条）", key="poster_benefits", height=150
    )
    date_line = st.text_input("活动时间", key="poster_date", max_chars=40)
    a, b = st.columns(2)
    outlet = a.text_input(
        "网点名称", key="poster_outlet", max_chars=30, help="批量生成时按网点自动填写"
    )
    staff = b.text_input(
        "客户经理", key="poster_staff", max_chars=20, help="按员工批量生成时自动填写"
    )
    background, logo, position = style_controls()

content = PosterContent(
    title=title,
    subtitle=subtitle,
    benefits=tuple(line.strip() for line in benefits.splitlines() if line.strip()),
    date_line=date_line,
    outlet_name=outlet,
    staff_name=staff,
    qr_url=sample.qr_url,
    background=background,
    logo=logo,
    qr_position=position,
)
with preview:
    try:
        st.image(
            preview_png(template_id, content),
            caption="实时预览（二维码为示例，批量生成时换成各自的活码）",
            width=380,
        )
        # Full size is drawn only when a download is clicked, not on every keystroke.
        left, right = st.columns(2)
        left.download_button(
            "下载 PNG",
            lambda: to_png(render_poster(template, content)),
            f"{title or '海报'}.png",
            "image/png",
            key="poster_png",
            on_click="ignore",
            icon=":material/image:",
        )
        right.download_button(
            "下载 PDF",
            lambda: to_pdf(render_poster(template, content)),
            f"{title or '海报'}.pdf",
            "application/pdf",
            key="poster_pdf",
            on_click="ignore",
            icon=":material/picture_as_pdf:",
        )
    except DomainError as exc:
        widgets.show_error(exc)
    with widgets.db() as session:
        plan_view.compliance_panel(poster_hits(session, content))

st.divider()
st.subheader("批量专属海报")
st.caption(
    "为一个市的每个网点（或每位员工）各生成一张海报，每张带上自己的渠道活码，打包成 ZIP。已有的活码会沿用。"
)
names = dict(cities)
c1, c2 = st.columns(2)
campaign_id = None
if chosen_campaign is not None and chosen_campaign.city_id in names:
    # The campaign chosen above decides the city (and is bound while it still may be).
    target = batch_target(chosen_campaign)
    city_id, campaign_id = target.city_id, target.campaign_id
    c1.markdown(f"**市州**：{md(names[city_id])}")
    c1.caption(md(target.note))
else:
    city_id = c1.selectbox(
        "市州", list(names), format_func=names.get, key="batch_city", placeholder="请选择"
    )
per = c2.radio(
    "每张海报对应",
    ["outlet", "staff"],
    format_func=lambda p: "一个网点" if p == "outlet" else "一位员工",
    horizontal=True,
    key="batch_per",
)
if st.button("生成并打包", type="primary", key="batch_posters", icon=":material/collections:"):
    bar = st.progress(0.0, text="正在准备活码…")
    try:
        with widgets.db() as session:
            base = replace(content, outlet_name="", staff_name="", qr_url=None)
            data, count = batch_posters(
                session,
                actor=actor,
                city_id=city_id,
                per=per,
                campaign_id=campaign_id,
                template_id=template_id,
                content=base,
                progress=lambda d, t: bar.progress(d / t, text=f"正在生成海报 {d}/{t}"),
            )
        bar.empty()
        st.success(f"已生成 {count} 张专属海报。")
        st.download_button(
            "下载 ZIP",
            data,
            f"{names[city_id]}_专属海报.zip",
            "application/zip",
            key="batch_zip",
            on_click="ignore",
            type="primary",
        )
    except DomainError as exc:
        bar.empty()
        widgets.show_error(exc)
