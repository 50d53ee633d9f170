"""审核与预算设置 (admins): the review stages and their reviewers, each city's yearly
budget cap, and the list of prohibited or risky marketing expressions."""

import pandas as pd
import streamlit as st

from core.campaigns.budget import city_budgets, set_city_budgets
from core.campaigns.compliance import SEVERITY_LABELS, list_terms, save_term
from core.campaigns.stages import reviewers, set_stages, stages
from core.platform.clock import shanghai_today
from core.platform.errors import DomainError
from core.platform.formatting import format_yuan
from core.platform.org import cities
from core.platform.permissions import Action
from ui import widgets
from ui.campaign_editor import fen

actor = widgets.require(Action.MANAGE_SETTINGS)
st.title("审核与预算设置")
stage_tab, budget_tab, terms_tab = st.tabs(["审核环节", "市州预算", "合规词库"])

with stage_tab, widgets.db() as session:
    current = stages(session)
    people = dict(reviewers(session, actor=actor))
with stage_tab:
    st.caption("方案按顺序逐个环节审核；每个环节的任一审核员即可作出决定。")
    count = st.number_input(
        "环节数", min_value=1, max_value=5, value=max(1, len(current)), key="stage_count"
    )
    definition = []
    for position in range(1, int(count) + 1):
        existing = current[position - 1] if position <= len(current) else None
        left, right = st.columns([1, 2])
        name = left.text_input(
            f"第 {position} 环节名称",
            value=existing.name if existing else "",
            key=f"stage_name_{position}",
        )
        members = right.multiselect(
            f"第 {position} 环节审核员",
            list(people),
            default=[m for m in (existing.reviewer_ids if existing else []) if m in people],
            format_func=people.get,
            key=f"stage_members_{position}",
            placeholder="选择省分审核员",
        )
        definition.append((name, members))
    if st.button("保存审核环节", type="primary", key="stage_save"):
        try:
            with widgets.db() as session:
                set_stages(session, actor=actor, definition=definition)
            st.toast("审核环节已保存", icon=":material/check_circle:")
            st.rerun()
        except DomainError as exc:
            widgets.show_error(exc)

with budget_tab:
    year = st.number_input(
        "年度", min_value=2020, max_value=2100, value=shanghai_today().year, key="budget_year"
    )
    with widgets.db() as session:
        caps = city_budgets(session, actor=actor, year=int(year))
        city_list = cities(session)
    frame = pd.DataFrame(
        [{"市州": c.name, "年度预算(元)": caps.get(c.id, 0) / 100} for c in city_list]
    )
    edited = st.data_editor(
        frame,
        hide_index=True,
        disabled=["市州"],
        key=f"budget_editor_{year}",
        column_config={
            "年度预算(元)": st.column_config.NumberColumn(
                min_value=0, step=10000, format="localized"
            )
        },
    )
    st.caption(
        "预算指邮政出资上限；方案的预计邮政出资与同年已批方案合计超过预算时，设计和审核页面会提示。"
    )
    if st.button("保存预算", type="primary", key="budget_save"):
        wanted = {
            city.id: fen(value)
            for city, value in zip(city_list, edited["年度预算(元)"].tolist(), strict=True)
        }
        try:
            with widgets.db() as session:
                changed = set_city_budgets(session, actor=actor, year=int(year), caps=wanted)
            st.toast(f"已更新 {changed} 个市州的预算", icon=":material/check_circle:")
        except DomainError as exc:
            widgets.show_error(exc)
    st.caption("合计：" + format_yuan(sum(fen(v) for v in edited["年度预算(元)"].tolist())))

with terms_tab:
    with widgets.db() as session:
        terms = list_terms(session, actor=actor)
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "用语": t.term,
                    "级别": SEVERITY_LABELS[t.severity],
                    "建议": t.suggestion,
                    "状态": "启用" if t.active else "停用",
                }
                for t in terms
            ]
        ),
        hide_index=True,
        key="terms_table",
    )
    with st.form("term_form", clear_on_submit=True):
        left, middle = st.columns([2, 1])
        term = left.text_input("用语", key="term_text", placeholder="例如：稳赚")
        severity = middle.selectbox(
            "级别",
            list(SEVERITY_LABELS),
            format_func=SEVERITY_LABELS.get,
            key="term_severity",
            placeholder="请选择",
        )
        suggestion = st.text_input("修改建议", key="term_suggestion")
        active = st.toggle("启用", value=True, key="term_active")
        if st.form_submit_button("保存用语（同名则更新）", type="primary"):
            try:
                with widgets.db() as session:
                    save_term(
                        session,
                        actor=actor,
                        term=term,
                        severity=severity,
                        suggestion=suggestion,
                        active=active,
                    )
                st.toast("已保存", icon=":material/check_circle:")
                st.rerun()
            except DomainError as exc:
                widgets.show_error(exc)
