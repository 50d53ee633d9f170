"""数据质量: the nightly check's findings: outlets that did not report, and values far
outside the outlet's own history."""

import pandas as pd
import streamlit as st

from core.metrics.data_quality import OUTLIER_SIGMAS, report
from core.platform.permissions import Action
from ui import widgets

actor = widgets.require(Action.VIEW_DATA_QUALITY)


def amount(value: float | None, is_money: bool) -> str | None:
    """A value with its unit: deposits are stored in fen and read in 元, counts in 人."""
    if value is None:
        return None
    if is_money:
        return f"{value / 100:,.2f} 元"
    return f"{value:,.0f} 人" if float(value).is_integer() else f"{value:,.1f} 人"


st.title("数据质量")

with widgets.db() as session:
    result = report(session, actor=actor)
if result.day is None:
    widgets.empty_state(
        "夜间数据检查还没有运行过。它每天 07:00 检查前一天的网点日报；管理员也可在「定时任务」中立即运行。"
    )
    st.stop()

st.caption(
    f"检查日期：{result.day} · 异常值指与该网点近 90 天均值相差超过 {OUTLIER_SIGMAS} 个标准差"
)
a, b = st.columns(2)
a.metric("未上报网点", f"{len(result.missing):,} 个")
b.metric("异常值", f"{len(result.outliers):,} 个")

missing_tab, outlier_tab = st.tabs(["未上报网点", "异常值"])
with missing_tab:
    if not result.missing:
        st.success("所有网点都已上报。")
    else:
        frame = pd.DataFrame(
            [
                {"网点编码": f.outlet_code, "网点": f.outlet_name, "市州": f.city}
                for f in result.missing
            ]
        )
        st.dataframe(frame, placeholder="—", hide_index=True, key="dq_missing")
        widgets.table_download(frame, f"未上报网点_{result.day}", key="dq_missing_dl")
with outlier_tab:
    if not result.outliers:
        st.success("没有发现异常值。")
    else:
        frame = pd.DataFrame(
            [
                {
                    "网点编码": f.outlet_code,
                    "网点": f.outlet_name,
                    "市州": f.city,
                    "指标": f.metric,
                    "当日值": amount(f.value, f.is_money),
                    "近 90 天均值": amount(f.mean, f.is_money),
                    "标准差": amount(f.stddev, f.is_money),
                }
                for f in result.outliers
            ]
        )
        st.dataframe(frame, placeholder="—", hide_index=True, key="dq_outliers")
        widgets.table_download(frame, f"异常值_{result.day}", key="dq_outliers_dl")
        st.caption(
            "异常值可能是录入错误（多输了位数），也可能是真实的突增（例如单位集中开户），请核实后必要时重新导入更正。"
        )
