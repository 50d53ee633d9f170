"""定时任务 (admins): the scheduled jobs, when they run next, how their last runs went, and
"run now"."""

from datetime import timedelta

import pandas as pd
import streamlit as st

from core.jobs.scheduler import job_overview, recent_runs, run_now
from core.platform.clock import format_timestamp, shanghai_today
from core.platform.permissions import Action
from ui import widgets
from ui.wecom_status import wecom_section

actor = widgets.require(Action.MANAGE_JOBS)
st.title("定时任务")
st.caption("任务由系统调度器按时自动运行；即使部署了多台服务器，同一任务的同一次运行也只执行一次。")

# Plain words: an emoji has no glyph in the fonts of many office PCs (a tofu box).
STATUS = {"ok": "成功", "failed": "失败", "running": "运行中"}
with widgets.db() as session:
    jobs = job_overview(session, actor=actor)

frame = pd.DataFrame(
    [
        {
            "任务": j.label,
            "计划": j.schedule,
            "下次运行": j.next_run.strftime("%Y-%m-%d %H:%M"),
            "上次计划时间": format_timestamp(j.last.scheduled_for) if j.last else "从未运行",
            "结果": STATUS.get(j.last.status, j.last.status) if j.last else "",
            "耗时(秒)": round(j.last.seconds, 1) if j.last and j.last.seconds is not None else None,
            "说明": (j.last.error.splitlines()[0] if j.last.error else j.last.summary)
            if j.last
            else "",
        }
        for j in jobs
    ]
)
st.dataframe(frame, placeholder="—", hide_index=True, key="jobs_table")

left, right = st.columns([2, 1])
labels = {j.id: j.label for j in jobs}
chosen = left.selectbox(
    "立即运行", list(labels), format_func=labels.get, key="jobs_pick", placeholder="请选择"
)
if right.button("立即运行", type="primary", key="jobs_run", icon=":material/play_arrow:"):
    with st.spinner(f"正在运行「{labels[chosen]}」…"), widgets.db() as session:
        outcome = run_now(session, actor=actor, job_id=chosen)
    (st.success if outcome == "ok" else st.error)(
        f"「{labels[chosen]}」：{STATUS.get(outcome or '', '未运行')}"
    )

wecom_section(actor)

st.subheader("运行记录")
since = st.date_input("起始日期", value=shanghai_today() - timedelta(days=7), key="jobs_since")
with widgets.db() as session:
    runs = recent_runs(session, actor=actor, since=since)
if not runs:
    widgets.empty_state("这段时间没有运行记录。")
    st.stop()
history = pd.DataFrame(
    [
        {
            "任务": labels.get(r.job, r.job),
            "计划时间": format_timestamp(r.scheduled_for),
            "开始": format_timestamp(r.started_at),
            "结果": STATUS.get(r.status, r.status),
            "耗时(秒)": round(r.seconds, 1) if r.seconds is not None else None,
            "尝试次数": r.attempts,
            "摘要或错误": r.error.splitlines()[0] if r.error else r.summary,
        }
        for r in runs
    ]
)
st.dataframe(history, placeholder="—", hide_index=True, key="jobs_history")
widgets.table_download(history, "定时任务运行记录", key="jobs_dl")
