"""数据导入: upload daily outlet and staff metrics, targets, coupon events and (for admins)
the org tree: one tab per kind the user may import, each through the one import panel."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import streamlit as st

from core.metrics.importing import IMPORT_COLUMNS, import_metrics
from core.metrics.registry import Level
from core.metrics.registry_columns import extra_columns, registry_extras
from core.metrics.staff_importing import KEY_COLUMNS as STAFF_KEY_COLUMNS
from core.metrics.staff_importing import import_staff_metrics
from core.metrics.staff_targets import COLUMNS as STAFF_TARGET_COLUMNS
from core.metrics.staff_targets import import_staff_targets
from core.metrics.targets import IMPORT_COLUMNS as TARGET_COLUMNS
from core.metrics.targets import import_targets
from core.platform.org_import import COLUMNS as ORG_COLUMNS
from core.platform.org_import import import_org
from core.platform.permissions import Action, allowed
from core.results.coupons import GRACE_DAYS, import_coupons
from core.results.coupons import IMPORT_COLUMNS as COUPON_COLUMNS
from ui import widgets

actor = widgets.require(Action.IMPORT_METRICS)
st.title("数据导入")
with widgets.db() as session:
    outlet_extras = extra_columns(registry_extras(session, Level.OUTLET))
    staff_metrics = extra_columns(registry_extras(session, Level.STAFF))


@dataclass(frozen=True)
class ImportKind:
    """One tab: who may use it, the columns, the note beside them and the core import."""

    tab: str
    key: str
    action: Action
    columns: list
    note: str
    template_name: str
    run: Callable[..., Any]
    done: str = "导入完成"


# daily reports first, then targets, then campaign data and (admins) the org tree
KINDS = [
    ImportKind(
        "网点日报",
        "metrics",
        Action.IMPORT_METRICS,
        [*IMPORT_COLUMNS, *outlet_extras],
        "日期可写作 2026-11-08、2026/11/08 或 2026年11月8日；金额可带千分位。"
        "同一日期和网点重复导入会覆盖旧值。",
        "网点日报模板",
        lambda session, data, name, dry_run, progress: import_metrics(
            session, actor=actor, data=data, filename=name, dry_run=dry_run, progress=progress
        ),
    ),
    ImportKind(
        "员工日报",
        "staff_metrics",
        Action.IMPORT_METRICS,
        [*STAFF_KEY_COLUMNS, *staff_metrics],
        "员工编码即企业微信账号；网点编码可留空（取员工当前所在网点）；指标列按指标库，"
        "可只填其中几列，空格表示当天没有该项数据。同一日期和员工重复导入会覆盖旧值。",
        "员工日报模板",
        lambda session, data, name, dry_run, _progress: import_staff_metrics(
            session, actor=actor, data=data, filename=name, dry_run=dry_run
        ),
    ),
    ImportKind(
        "网点目标",
        "targets",
        Action.IMPORT_TARGETS,
        TARGET_COLUMNS,
        "每行一个网点一项指标（新增好友、转化客户或新增存款，存款单位为元）。"
        "填写活动编号表示该活动期的目标，否则填写开始日期和结束日期。"
        "同一期间、网点和指标重复导入会覆盖旧值；排行榜按这些目标计算完成率。",
        "网点目标模板",
        lambda session, data, name, dry_run, _progress: import_targets(
            session, actor=actor, data=data, filename=name, dry_run=dry_run
        ),
        done="网点目标已导入",
    ),
    ImportKind(
        "员工目标",
        "staff_targets",
        Action.IMPORT_METRICS,
        STAFF_TARGET_COLUMNS,
        "指标填编码或中文名称；金额类目标按元填写。同一员工、指标和开始日期重复导入会覆盖旧值。",
        "员工目标模板",
        lambda session, data, name, dry_run, _progress: import_staff_targets(
            session, actor=actor, data=data, filename=name, dry_run=dry_run
        ),
    ),
    ImportKind(
        "权益券事件",
        "coupons",
        Action.IMPORT_COUPONS,
        COUPON_COLUMNS,
        f"事件类型为 发放/领取/核销/过期；时间须在活动期内或结束后 {GRACE_DAYS} 天内；"
        "券序号是方案中第几张权益券。同一事件编号重复导入会覆盖旧值；客户ID 加密后存储。",
        "权益券事件模板",
        lambda session, data, name, dry_run, progress: import_coupons(
            session, actor=actor, data=data, filename=name, dry_run=dry_run, progress=progress
        ),
        done="权益券事件已导入",
    ),
    ImportKind(
        "机构树",
        "org",
        Action.IMPORT_ORG,
        ORG_COLUMNS,
        "层级为 省/市/区县/网点（或 province/city/county/outlet）。按编码新增或更新名称和上级。",
        "机构模板",
        lambda session, data, name, dry_run, _progress: import_org(
            session, actor=actor, data=data, filename=name, dry_run=dry_run
        ),
        done="机构已更新",
    ),
]

kinds = [kind for kind in KINDS if allowed(actor, kind.action)]
for kind, tab in zip(kinds, st.tabs([k.tab for k in kinds]), strict=True):
    with tab:
        widgets.import_panel(
            key=kind.key,
            columns=kind.columns,
            note=kind.note,
            template_name=kind.template_name,
            dry_run=True,
            done=kind.done,
            run=kind.run,
        )
