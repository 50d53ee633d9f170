"""活动复盘: one campaign's results — plan against actual, spend against the approved
budget, cost per result, the uplift with its interval, the attribution chain, best and
worst outlets — with the one-page PDF and the XLSX workbook."""

from datetime import datetime

import pandas as pd
import streamlit as st

from core.platform import export
from core.platform.clock import format_timestamp
from core.platform.errors import DomainError
from core.platform.formatting import format_yuan
from core.platform.permissions import Action
from core.results.report import kpi_rows, overview_rows, pdf, uplift_rows, xlsx
from core.results.retrospective import METRIC_LABELS, result_campaigns, retrospective
from ui import widgets

actor = widgets.require(Action.VIEW_RESULTS)
st.title("活动复盘")

with widgets.db() as session:
    campaigns = result_campaigns(session, actor=actor)
if not campaigns:
    widgets.empty_state("还没有已通过审核的活动。活动通过审核并开始后，这里会显示它的支出和效果。")
    st.stop()

ids = [c["id"] for c in campaigns]
by_id = {c["id"]: c for c in campaigns}
wanted = st.query_params.get("campaign", "")
# Without a link to one campaign, open the newest ended (frozen) 复盘: a campaign that just
# started has nothing to show yet.
frozen = [i for i in ids if by_id[i]["frozen"]]
default = frozen[0] if frozen else ids[0]
index = ids.index(int(wanted) if wanted.isdigit() and int(wanted) in by_id else default)
chosen = st.selectbox(
    "活动",
    ids,
    index=index,
    format_func=lambda i: (
        f"{by_id[i]['name']}（{by_id[i]['start']} 至 {by_id[i]['end']}，"
        f"{by_id[i]['state']}{'，已定稿' if by_id[i]['frozen'] else ''}）"
    ),
    key="results_campaign",
    placeholder="请选择",
)
try:
    with widgets.db() as session:
        report = retrospective(session, actor=actor, campaign_id=chosen)
except DomainError as exc:
    widgets.show_error(exc)
    st.stop()

if report["frozen_at"]:
    st.caption(
        f"活动已结束，本复盘已于 {format_timestamp(datetime.fromisoformat(report['frozen_at']))} 定稿。"
    )
else:
    st.caption("活动尚未结束：以下数据按目前已导入的日报和权益券数据实时计算。")

budget = report["budget"]
cards = st.columns(4)
cards[0].metric("邮政实际出资", format_yuan(report["spend_post_fen"]))
cards[1].metric("商户实际出资", format_yuan(report["spend_merchant_fen"]))
cards[2].metric(
    "预算使用率",
    "—" if budget["used_pct"] is None else f"{budget['used_pct']:.1f}%",
    f"批准预算 {format_yuan(budget['approved_post_fen'])}",
    delta_color="off",
    delta_arrow="off",  # the approved budget beside the rate, not a change
)
cards[3].metric("核销 / 领取", f"{report['redeemed']:,} / {report['claimed']:,}")

st.subheader("概况与单位成本")
st.dataframe(
    pd.DataFrame(overview_rows(report), columns=["项目", "内容"]),
    hide_index=True,
    key="res_overview",
)

st.subheader("目标完成")
kpis = pd.DataFrame(kpi_rows(report), columns=["指标", "目标", "实际", "完成率"])
st.dataframe(kpis, hide_index=True, key="res_kpi")
chart = pd.DataFrame(
    {
        "指标": [METRIC_LABELS[m] for m in report["kpi"]],
        "完成率(%)": [
            100 * k["actual"] / k["target"] if k["target"] else 0 for k in report["kpi"].values()
        ],
    }
)
st.bar_chart(chart, x="指标", y="完成率(%)", color="#007A3D", height=220)

st.subheader("提升效果（与同期未参加活动的网点相比）")
for metric in report["uplift"]:
    st.text(report["uplift_sentence"][metric])
st.dataframe(
    pd.DataFrame(
        uplift_rows(report),
        columns=["指标", "每网点提升", "95% 区间", "合计提升", "参与网点", "对照网点"],
    ),
    hide_index=True,
    key="res_uplift",
)
st.caption(
    "算法：每个网点活动期（至最新日报日）指标合计减去活动前同样天数的合计，参与网点平均变化减去"
    "对照网点平均变化；区间为组内重抽样 1,000 次的 95% 百分位区间。对照网点为全省未参加任何同期活动的网点。"
)

st.subheader("转化链路")
chain = pd.DataFrame(
    [
        {
            "环节": s["label"],
            "数量": format_yuan(s["count"]) if s["step"] == "deposits" else f"{s['count']:,}",
            "较上一步流失": "—" if s["drop_pct"] is None else f"{s['drop_pct']:.1f}%",
        }
        for s in report["chain"]
    ]
)
st.dataframe(chain, hide_index=True, key="res_chain")
st.caption(
    "按加密后的客户标识关联：经本活动活码添加的好友中，有多少人领取、核销了本活动的权益券，"
    "又有多少人成为金融客户（活动期及其后宽限期内）。客户换号或未经活码添加时无法关联，仅供参考。"
)

st.subheader("权益券与出资")
lines = pd.DataFrame(
    [
        {
            "权益券": line["name"],
            "邮政出资比例": f"{line['post_share_pct']}%",
            "领取": line["claimed"],
            "核销": line["redeemed"],
            "过期": line["expired"],
            "实际优惠(元)": line["discount_fen"] / 100,
            "邮政出资(元)": line["post_fen"] / 100,
            "商户出资(元)": line["merchant_fen"] / 100,
        }
        for line in report["lines"]
    ]
)
st.dataframe(lines, hide_index=True, key="res_lines")

if report["outlets"]:
    st.subheader("参与网点")
    outlets = pd.DataFrame(report["outlets"])
    best, worst = st.columns(2)
    names = dict(zip(outlets["code"], outlets["name"], strict=True))
    best.markdown("**存款变化最好的网点**")
    best.text("\n".join(f"{names[c]}（{c}）" for c in report["best"]))
    worst.markdown("**存款变化最差的网点**")
    worst.text("\n".join(f"{names[c]}（{c}）" for c in report["worst"]))
    shown = outlets.rename(
        columns={
            "code": "网点编码",
            "name": "网点名称",
            "new_friends": "新增好友",
            "conversions": "转化客户",
            "deposits_fen": "新增存款(分)",
            "d_new_friends": "好友变化",
            "d_conversions": "转化变化",
            "d_deposits_fen": "存款变化(分)",
            "redeemed": "核销券数",
            "deposits_target_fen": "存款目标(分)",
            "deposits_completion_pct": "存款完成率(%)",
        }
    )
    st.dataframe(shown, hide_index=True, key="res_outlets")

st.subheader("下载报告")
left, right = st.columns(2)
stem = f"活动复盘_{report['campaign']['id']}"
right.download_button(
    "下载 XLSX 工作簿",
    xlsx(report),
    file_name=f"{stem}.xlsx",
    mime=export.XLSX_MIME,
    key="res_xlsx",
    on_click="ignore",
    icon=":material/download:",
)
if left.button("生成一页 PDF", key="res_pdf_make", icon=":material/picture_as_pdf:"):
    with st.spinner("正在生成 PDF…"):
        st.session_state["res_pdf_bytes"] = (chosen, pdf(report))
made = st.session_state.get("res_pdf_bytes")
if made and made[0] == chosen:
    left.download_button(
        "下载 PDF",
        made[1],
        file_name=f"{stem}.pdf",
        mime="application/pdf",
        key="res_pdf",
        on_click="ignore",
        icon=":material/download:",
    )
