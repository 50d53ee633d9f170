"""The form of one channel code (渠道活码): staff pool, rule, caps, window, tags and the
welcome message, read into a `CodeInput` for core.channels.create_code."""

from __future__ import annotations

import streamlit as st

from core.channels import CodeChoices, CodeInput
from db.models import AssignmentRule, ChannelType

WELCOME = "您好{客户昵称}，我是{网点名称}的{员工姓名}，很高兴为您服务！"


def code_form(choices: CodeChoices) -> CodeInput:
    outlet_names = dict(choices.outlets)
    a, b = st.columns(2)
    name = a.text_input("活码名称", key="code_name", placeholder="例如：星沙支局·柜台")
    channel = b.selectbox(
        "渠道", list(ChannelType), format_func=lambda t: t.label, key="code_channel"
    )
    outlet_id = a.selectbox(
        "网点", list(outlet_names), format_func=outlet_names.get, key="code_outlet"
    )
    rule = b.selectbox(
        "分配规则", list(AssignmentRule), format_func=lambda r: r.label, key="code_rule"
    )
    people = dict(choices.staff.get(outlet_id, []))
    staff_ids = st.multiselect(
        "接待员工（按顺序）",
        list(people),
        format_func=people.get,
        key=f"code_staff_{outlet_id}",
        placeholder="选择员工",
    )
    fallback = st.multiselect(
        "备用员工（都满额或不在班时接待）",
        [p for p in people if p not in staff_ids],
        format_func=people.get,
        key=f"code_fb_{outlet_id}",
        placeholder="可选",
    )
    c, d, e = st.columns(3)
    cap = c.number_input("每人每日上限（0 为不限）", min_value=0, value=0, key="code_cap")
    max_adds = d.number_input("添加上限（0 为不限）", min_value=0, value=0, key="code_max")
    until = e.date_input("有效期至", value=None, key="code_until")
    tags = st.text_input("来源标签（用「、」分隔）", value=f"{channel.label}", key="code_tags")
    welcome = st.text_area(
        "欢迎语",
        value=WELCOME,
        key="code_welcome",
        help="可用占位符：{客户昵称}、{网点名称}、{员工姓名}",
    )
    return CodeInput(
        name=name,
        channel_type=channel,
        outlet_id=outlet_id,
        staff_ids=tuple(staff_ids),
        fallback_staff_ids=tuple(fallback),
        rule=rule,
        daily_cap=cap or None,
        max_adds=max_adds or None,
        active_until=until,
        tags=tuple(t.strip() for t in tags.replace(",", "、").split("、") if t.strip()),
        welcome_message=welcome,
    )
