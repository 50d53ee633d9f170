"""数据导入: upload daily outlet metrics (and, for admins, the org tree)."""

import streamlit as st

from core.metrics.importing import IMPORT_COLUMNS, import_metrics
from core.metrics.registry import Level
from core.metrics.registry_columns import extra_columns, registry_extras
from core.metrics.staff_importing import KEY_COLUMNS as STAFF_KEY_COLUMNS
from core.metrics.staff_importing import import_staff_metrics
from core.metrics.staff_targets import COLUMNS as TARGET_COLUMNS
from core.metrics.staff_targets import import_staff_targets
from core.platform.org_import import COLUMNS as ORG_COLUMNS
from core.platform.org_import import import_org
from core.platform.permissions import Action, allowed
from ui import widgets

actor = widgets.require(Action.IMPORT_METRICS)
st.title("数据导入")

tab_names = ["网点日报", "员工日报", "员工目标"] + (
    ["机构树"] if allowed(actor, Action.IMPORT_ORG) else []
)
tabs = st.tabs(tab_names)
with widgets.db() as session:
    outlet_extras = extra_columns(registry_extras(session, Level.OUTLET))
    staff_metrics = extra_columns(registry_extras(session, Level.STAFF))

with tabs[0]:
    widgets.import_panel(
        key="metrics",
        columns=[*IMPORT_COLUMNS, *outlet_extras],
        note="日期可写作 2026-11-08、2026/11/08 或 2026年11月8日；金额可带千分位。"
        "同一日期和网点重复导入会覆盖旧值。",
        template_name="网点日报模板",
        dry_run=True,
        run=lambda session, data, name, dry_run, progress: import_metrics(
            session, actor=actor, data=data, filename=name, dry_run=dry_run, progress=progress
        ),
    )

with tabs[1]:
    widgets.import_panel(
        key="staff_metrics",
        columns=[*STAFF_KEY_COLUMNS, *staff_metrics],
        note="员工编码即企业微信账号；网点编码可留空（取员工当前所在网点）；指标列按指标库，"
        "可只填其中几列，空格表示当天没有该项数据。同一日期和员工重复导入会覆盖旧值。",
        template_name="员工日报模板",
        dry_run=True,
        run=lambda session, data, name, dry_run, progress: import_staff_metrics(
            session, actor=actor, data=data, filename=name, dry_run=dry_run
        ),
    )

with tabs[2]:
    widgets.import_panel(
        key="staff_targets",
        columns=TARGET_COLUMNS,
        note="指标填编码或中文名称；金额类目标按元填写。同一员工、指标和开始日期重复导入会覆盖旧值。",
        template_name="员工目标模板",
        dry_run=True,
        run=lambda session, data, name, dry_run, progress: import_staff_targets(
            session, actor=actor, data=data, filename=name, dry_run=dry_run
        ),
    )

if len(tabs) > 3:
    with tabs[3]:
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
