"""数据导入: upload daily outlet metrics (and, for admins, the org tree)."""

import streamlit as st

from core.metrics.importing import IMPORT_COLUMNS, import_metrics
from core.platform.org_import import COLUMNS as ORG_COLUMNS
from core.platform.org_import import import_org
from core.platform.permissions import Action, allowed
from ui import widgets

actor = widgets.require(Action.IMPORT_METRICS)
st.title("数据导入")

tab_names = ["网点日报"] + (["机构树"] if allowed(actor, Action.IMPORT_ORG) else [])
tabs = st.tabs(tab_names)

with tabs[0]:
    widgets.import_panel(
        key="metrics",
        columns=IMPORT_COLUMNS,
        note="日期可写作 2026-11-08、2026/11/08 或 2026年11月8日；金额可带千分位。"
        "同一日期和网点重复导入会覆盖旧值。",
        template_name="网点日报模板",
        dry_run=True,
        run=lambda session, data, name, dry_run, progress: import_metrics(
            session, actor=actor, data=data, filename=name, dry_run=dry_run, progress=progress
        ),
    )

if len(tabs) > 1:
    with tabs[1]:
        widgets.import_panel(
            key="org",
            columns=ORG_COLUMNS,
            note="层级为 省/市/区县/网点（或 province/city/county/outlet）。按编码新增或更新名称和上级。",
            template_name="机构模板",
            dry_run=True,
            done="机构已更新",
            run=lambda session, data, name, dry_run, progress: import_org(
                session, actor=actor, data=data, filename=name, dry_run=dry_run
            ),
        )
