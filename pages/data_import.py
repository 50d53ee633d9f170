"""数据导入: upload daily outlet metrics (and, for admins, the org tree)."""

import pandas as pd
import streamlit as st

from core.metrics_import import IMPORT_COLUMNS, import_metrics
from core.org_import import COLUMNS as ORG_COLUMNS
from core.org_import import import_org
from core.permissions import Action, allowed
from ui import widgets

actor = widgets.require(Action.IMPORT_METRICS)
st.title("数据导入")

tab_names = ["网点日报"] + (["机构树"] if allowed(actor, Action.IMPORT_ORG) else [])
tabs = st.tabs(tab_names)


def template(columns) -> bytes:
    return pd.DataFrame(columns=[c.zh for c in columns]).to_csv(index=False).encode("utf-8-sig")


with tabs[0]:
    st.markdown(
        "上传 **CSV**（UTF-8 或 GBK）或 **XLSX**，表头用中文或英文均可："
        + "、".join(f"{c.zh}（`{c.key}`）" for c in IMPORT_COLUMNS)
        + "。日期可写作 2026-11-08、2026/11/08 或 2026年11月8日；金额可带千分位。"
    )
    st.caption("整个文件要么全部导入，要么一行都不导入；同一日期和网点重复导入会覆盖旧值。")
    st.download_button(
        "下载空白模板",
        template(IMPORT_COLUMNS),
        "网点日报模板.csv",
        "text/csv",
        on_click="ignore",
        icon=":material/download:",
    )
    upload = st.file_uploader("选择文件", type=["csv", "xlsx"], key="metrics_upload")
    dry_run = st.checkbox("仅校验，不写入", key="metrics_dry_run")
    if st.button("开始导入", type="primary", key="metrics_submit", disabled=upload is None):
        bar = st.progress(0.0, text="准备中…")
        with widgets.db() as session:
            report = import_metrics(
                session,
                actor=actor,
                data=upload.getvalue(),
                filename=upload.name,
                dry_run=dry_run,
                progress=lambda fraction, text: bar.progress(fraction, text=text),
            )
        bar.empty()
        if report.ok and not dry_run:
            st.cache_data.clear()  # boards and totals must show the new numbers
            st.toast("导入完成", icon=":material/check_circle:")
        widgets.import_report(report, "metrics")

if len(tabs) > 1:
    with tabs[1]:
        st.markdown(
            "机构表列："
            + "、".join(f"{c.zh}（`{c.key}`）" for c in ORG_COLUMNS)
            + "。层级为 省/市/区县/网点（或 province/city/county/outlet）。按编码新增或更新名称和上级。"
        )
        st.download_button(
            "下载空白模板",
            template(ORG_COLUMNS),
            "机构模板.csv",
            "text/csv",
            on_click="ignore",
            icon=":material/download:",
        )
        org_upload = st.file_uploader("选择文件", type=["csv", "xlsx"], key="org_upload")
        org_dry_run = st.checkbox("仅校验，不写入", key="org_dry_run")
        if st.button("开始导入", type="primary", key="org_submit", disabled=org_upload is None):
            with st.spinner("正在导入机构…"), widgets.db() as session:
                org_report = import_org(
                    session,
                    actor=actor,
                    data=org_upload.getvalue(),
                    filename=org_upload.name,
                    dry_run=org_dry_run,
                )
            if org_report.ok and not org_dry_run:
                st.cache_data.clear()
                st.toast("机构已更新", icon=":material/check_circle:")
            widgets.import_report(org_report, "org")
