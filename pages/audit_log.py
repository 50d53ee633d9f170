"""审计日志: every data change and login event, filterable, downloadable (admins)."""

from datetime import timedelta

import pandas as pd
import streamlit as st

from core.platform.audit import AuditAction, AuditFilter, describe_change, list_audit
from core.platform.clock import format_timestamp, shanghai_today
from core.platform.permissions import Action
from ui import widgets

actor = widgets.require(Action.VIEW_AUDIT)
st.title("审计日志")

today = shanghai_today()
left, middle, right = st.columns([2, 1, 2])
period = left.date_input("日期范围", value=(today - timedelta(days=6), today), key="audit_period")
who = middle.text_input("操作人", key="audit_actor", placeholder="用户名")
actions = right.multiselect(
    "操作类型",
    list(AuditAction),
    format_func=lambda a: a.label,
    key="audit_actions",
    placeholder="全部类型",
)
text = st.text_input("摘要包含", key="audit_text", placeholder="例如 文件名、用户名")

start, end = (period[0], period[-1]) if isinstance(period, tuple) and period else (None, None)
with widgets.db() as session:
    entries = list_audit(
        session,
        actor=actor,
        filters=AuditFilter(
            start=start, end=end, actor_name=who, actions=tuple(actions), text=text
        ),
    )

if not entries:
    widgets.empty_state("所选条件下没有审计记录。可以放宽日期范围或清空筛选条件。")
    st.stop()


frame = pd.DataFrame(
    [
        {
            "时间": format_timestamp(e.at),
            "操作人": e.actor_name,
            "操作": e.action_label,
            "对象": e.target,
            "摘要": e.summary,
            "变更明细": describe_change(e.before, e.after),
        }
        for e in entries
    ]
)
st.caption(f"共 {len(frame)} 条（最多显示 500 条，最新的在前）")
st.dataframe(
    frame,
    hide_index=True,
    key="audit_table",
    column_config={
        "摘要": st.column_config.TextColumn(width="large"),
        "变更明细": st.column_config.TextColumn(width="large"),
    },
)
widgets.table_download(frame, f"审计日志_{start}_{end}", key="audit_dl")
