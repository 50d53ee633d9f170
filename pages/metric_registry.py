"""指标库: the metric registry. Admins add a metric (it then appears in the import columns,
on the boards, in the CLI and the exports without a deploy), edit names, units, levels and
order, or deactivate one. Every change goes through one audited core function."""

import pandas as pd
import streamlit as st

from core.metrics.kinds import MetricKind
from core.metrics.registry import MetricForm, all_specs, save_metric
from core.platform.errors import DomainError
from core.platform.permissions import Action
from ui import widgets
from ui.text import md

actor = widgets.require(Action.MANAGE_METRIC_REGISTRY)
st.title("指标库")
widgets.show_flash()

with widgets.db() as session:
    found = all_specs(session)

KINDS = {MetricKind.FLOW: "流量（期间累计）", MetricKind.STOCK: "存量（期末值）"}
st.dataframe(
    pd.DataFrame(
        [
            {
                "排序": s.sort_order,
                "编码": s.key,
                "名称": s.label,
                "单位": s.unit,
                "类型": KINDS[s.kind],
                "金额": "是" if s.is_money else "",
                "网点": "✓" if s.at_outlet else "",
                "员工": "✓" if s.at_staff else "",
                "内置": "是" if s.builtin else "",
                "状态": "启用" if s.active else "停用",
            }
            for s in found.values()
        ]
    ),
    hide_index=True,
    key="registry_table",
)
st.caption(
    "新增指标后，网点日报和员工日报的导入模板会多出同名列（可选填），排行榜、命令行和导出随之出现该指标。"
    "金额类指标按元导入、以分精确存储。"
)

NEW = "__new__"
choice = st.selectbox(
    "编辑指标",
    [NEW, *found],
    format_func=lambda k: "＋ 新增指标" if k == NEW else f"{found[k].label}（{k}）",
    key="registry_pick",
    placeholder="请选择",
)
current = found.get(choice)
with st.form("registry_form"):
    left, right = st.columns(2)
    key = left.text_input(
        "指标编码（英文，创建后不可修改）",
        value=current.key if current else "",
        disabled=current is not None,
        max_chars=40,
    )
    name = right.text_input("中文名称", value=current.label if current else "", max_chars=40)
    unit = left.text_input("单位", value=current.unit if current else "", max_chars=10)
    order = right.number_input(
        "排序", value=current.sort_order if current else 100, step=10, min_value=0
    )
    kind = left.radio(
        "类型",
        list(KINDS),
        format_func=KINDS.get,
        index=list(KINDS).index(current.kind) if current else 0,
        horizontal=True,
    )
    money = right.checkbox("金额（元）", value=current.is_money if current else False)
    at_outlet = left.checkbox("网点层级", value=current.at_outlet if current else True)
    at_staff = right.checkbox("员工层级", value=current.at_staff if current else True)
    active = st.checkbox("启用", value=current.active if current else True)
    submitted = st.form_submit_button("保存", type="primary")

if submitted:
    form = MetricForm(
        key=(current.key if current else key).strip(),
        name=name,
        unit=unit,
        kind=MetricKind(kind),
        is_money=money,
        at_outlet=at_outlet,
        at_staff=at_staff,
        sort_order=int(order),
        active=active,
    )
    try:
        with widgets.db() as session:
            saved = save_metric(session, actor=actor, form=form)
    except DomainError as exc:
        widgets.show_error(exc)
    else:
        st.cache_data.clear()
        widgets.flash(f"已保存指标「{md(saved.label)}」")
        st.rerun()
