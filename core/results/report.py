"""The 复盘 as files: an XLSX workbook (overview, coupon lines, KPIs, uplift, chain,
outlets; through the shared encoder) and a one-page A4 PDF set in the bundled Noto Sans
CJK font (fpdf2). Both read the plain dict of `retrospective.compute`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.platform.clock import format_timestamp
from core.platform.export import to_xlsx_workbook
from core.platform.formatting import format_yuan
from core.results.retrospective import METRIC_LABELS

FLOW_UNITS = {"new_friends": "人", "conversions": "户", "deposits": "元"}


def _yuan(fen: int | float | None) -> str:
    return "—" if fen is None else format_yuan(round(fen))


def _figure(metric: str, value: float | None) -> str:
    if value is None:
        return "—"
    if metric == "deposits":
        return _yuan(value)
    return f"{value:,.2f}"


def overview_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    """(item, value) lines of the overview, in the order the page and the PDF show them."""
    c, b, cost = report["campaign"], report["budget"], report["cost"]
    window = report["window"]
    rows = [
        ("活动", f"{c['name']}（编号 {c['id']}，{c['city']}）"),
        ("活动期", f"{c['start']} 至 {c['end']}（{c['state']}）"),
        (
            "统计区间",
            f"{window['start']} 至 {window['end']}（{window['days']} 天），对比前 {window['days']} 天"
            if window
            else "活动期内还没有日报数据",
        ),
        ("邮政实际出资", _yuan(report["spend_post_fen"])),
        ("商户实际出资", _yuan(report["spend_merchant_fen"])),
        ("批准预算（邮政，全部核销）", _yuan(b["approved_post_fen"])),
        ("预算使用率", "—" if b["used_pct"] is None else f"{b['used_pct']:.1f}%"),
        ("本市年度预算", _yuan(b["cap_fen"]) if b["cap_fen"] is not None else "未设置"),
        ("本市当年实际邮政出资", _yuan(b["city_spent_fen"])),
        (
            "领取 / 核销 / 过期",
            f"{report['claimed']:,} / {report['redeemed']:,} / {report['expired']:,}",
        ),
        ("每新增好友成本", _yuan(cost["per_new_friend_fen"])),
        ("每转化客户成本", _yuan(cost["per_conversion_fen"])),
        ("每万元新增存款成本", _yuan(cost["per_wan_deposits_fen"])),
    ]
    if report.get("frozen_at"):
        rows.append(("定稿时间", format_timestamp(datetime.fromisoformat(report["frozen_at"]))))
    return rows


def kpi_rows(report: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    rows = []
    for metric, kpi in report["kpi"].items():
        target, actual = kpi["target"], kpi["actual"]
        show = _yuan if metric == "deposits" else (lambda v: f"{v:,}")
        rate = f"{100 * actual / target:.1f}%" if target else "—"
        rows.append((METRIC_LABELS[metric], show(target), show(actual), rate))
    return rows


def uplift_rows(report: dict[str, Any]) -> list[tuple[str, ...]]:
    rows = []
    for metric, u in report["uplift"].items():
        rows.append(
            (
                METRIC_LABELS[metric],
                _figure(metric, u["per_outlet"]),
                f"{_figure(metric, u['ci_low'])} 至 {_figure(metric, u['ci_high'])}"
                if u["per_outlet"] is not None
                else report["uplift_reason"][metric],
                _figure(metric, u["total"]),
                str(len(u["treated"])),
                str(len(u["control"])),
            )
        )
    return rows


def xlsx(report: dict[str, Any]) -> bytes:
    """The workbook: one sheet per part of the 复盘."""
    money_lines = [
        (
            line["line"],
            line["name"],
            line["post_share_pct"],
            line["issued"],
            line["claimed"],
            line["redeemed"],
            line["expired"],
            line["discount_fen"] / 100,
            line["post_fen"] / 100,
            line["merchant_fen"] / 100,
        )
        for line in report["lines"]
    ]
    outlets = [
        (
            o["code"],
            o["name"],
            o["new_friends"],
            o["conversions"],
            o["deposits_fen"] / 100,
            o["d_new_friends"],
            o["d_conversions"],
            o["d_deposits_fen"] / 100,
            o["redeemed"],
            None if o["deposits_target_fen"] is None else o["deposits_target_fen"] / 100,
            o["deposits_completion_pct"],
        )
        for o in report["outlets"]
    ]
    uplift_detail = [
        (METRIC_LABELS[m], group, code)
        for m, u in report["uplift"].items()
        for group, codes in (("参与", u["treated"]), ("对照", u["control"]))
        for code in codes
    ]
    return to_xlsx_workbook(
        [
            ("概况", ["项目", "内容"], overview_rows(report)),
            (
                "权益券",
                [
                    "券序号",
                    "名称",
                    "邮政出资比例(%)",
                    "发放",
                    "领取",
                    "核销",
                    "过期",
                    "实际优惠(元)",
                    "邮政出资(元)",
                    "商户出资(元)",
                ],
                money_lines,
            ),
            ("目标完成", ["指标", "目标", "实际", "完成率"], kpi_rows(report)),
            (
                "提升效果",
                ["指标", "每网点提升", "95% 区间", "合计提升", "参与网点数", "对照网点数"],
                uplift_rows(report),
            ),
            ("参与与对照网点", ["指标", "组别", "网点编码"], uplift_detail),
            (
                "转化链路",
                ["环节", "数量", "较上一步流失(%)"],
                [(s["label"], s["count"], s["drop_pct"]) for s in report["chain"]],
            ),
            (
                "网点明细",
                [
                    "网点编码",
                    "网点名称",
                    "新增好友",
                    "转化客户",
                    "新增存款(元)",
                    "好友变化",
                    "转化变化",
                    "存款变化(元)",
                    "核销券数",
                    "存款目标(元)",
                    "存款完成率(%)",
                ],
                outlets,
            ),
        ]
    )


def pdf(report: dict[str, Any]) -> bytes:
    """One A4 page: overview, KPIs, uplift with its sentence, the chain, best and worst."""
    from fpdf import FPDF
    from fpdf.enums import TextMode

    from core.posters.fonts import SC_FACE, font_path

    doc = FPDF(format="A4")
    doc.set_auto_page_break(auto=False)
    doc.set_margins(14, 12, 14)
    doc.add_page()
    # The bundled font is variable and its default instance is Thin; making an instance
    # with fontTools takes minutes for this 32 MB collection, so strokes are thickened
    # instead (text render mode fill + stroke), which keeps the text selectable.
    doc.add_font("noto", "", str(font_path()), collection_font_number=SC_FACE)
    doc.text_mode = TextMode.FILL_STROKE
    c = report["campaign"]
    _weight(doc, bold=True)
    doc.set_font("noto", "", 16)
    doc.set_text_color(0, 122, 61)
    doc.set_draw_color(0, 122, 61)
    doc.cell(0, 9, f"活动复盘 · {c['name']}", new_x="LMARGIN", new_y="NEXT")
    doc.set_text_color(0, 0, 0)
    doc.set_draw_color(0, 0, 0)
    _section(doc, "概况")
    _table(doc, [("项目", "内容"), *overview_rows(report)], [60, 122], size=8.5)
    _section(doc, "目标完成（参与网点，统计区间内）")
    _table(doc, [("指标", "目标", "实际", "完成率"), *kpi_rows(report)], [40, 48, 48, 46])
    _section(doc, "与未参加活动网点相比的提升（差异中的差异，95% 区间）")
    rows = [("指标", "每网点提升", "95% 区间 / 说明", "合计", "参与", "对照"), *uplift_rows(report)]
    _table(doc, rows, [24, 30, 66, 30, 16, 16], size=8)
    _weight(doc, bold=False)
    doc.set_font("noto", "", 8)
    for metric in report["uplift"]:
        doc.multi_cell(0, 4.2, report["uplift_sentence"][metric], new_x="LMARGIN", new_y="NEXT")
    _section(doc, "转化链路（按加密客户标识关联，活动期及其后宽限期）")
    chain = [("环节", "数量", "较上一步流失")] + [
        (
            s["label"],
            _yuan(s["count"]) if s["step"] == "deposits" else f"{s['count']:,}",
            "—" if s["drop_pct"] is None else f"{s['drop_pct']:.1f}%",
        )
        for s in report["chain"]
    ]
    _table(doc, chain, [110, 40, 32], size=8)
    names = {o["code"]: o["name"] for o in report["outlets"]}
    _section(doc, "存款变化最好与最差的网点")
    _weight(doc, bold=False)
    doc.set_font("noto", "", 8)
    for title, codes in (("最好", report["best"]), ("最差", report["worst"])):
        listed = "、".join(f"{names.get(code, code)}（{code}）" for code in codes) or "—"
        doc.multi_cell(0, 4.2, f"{title}：{listed}", new_x="LMARGIN", new_y="NEXT")
    return bytes(doc.output())


def _weight(doc: Any, bold: bool) -> None:
    doc.set_line_width(0.28 if bold else 0.12)


def _section(doc: Any, title: str) -> None:
    doc.ln(2)
    _weight(doc, bold=True)
    doc.set_font("noto", "", 11)
    doc.cell(0, 7, title, new_x="LMARGIN", new_y="NEXT")


def _table(doc: Any, rows: list[tuple], widths: list[float], size: float = 9) -> None:
    for index, row in enumerate(rows):
        _weight(doc, bold=index == 0)
        doc.set_font("noto", "", size)
        for width, value in zip(widths, row, strict=True):
            text = str(value)
            # a cell never wraps: long text is cut to what fits (the XLSX has it whole)
            while doc.get_string_width(text) > width - 2 and len(text) > 1:
                text = text[:-2] + "…"
            doc.cell(width, 5, text, border=1)
        doc.ln(5)


def history_rows(reports: list[dict[str, Any]]) -> list[dict[str, str]]:
    """One line per earlier 复盘, as the reviewer sees them beside a new plan."""
    rows = []
    for r in reports:
        c, kpi, up = r["campaign"], r["kpi"], r["uplift"]["deposits"]
        used = r["budget"]["used_pct"]
        rows.append(
            {
                "活动": f"{c['name']}（编号 {c['id']}）",
                "活动期": f"{c['start']} 至 {c['end']}",
                "邮政出资": _yuan(r["spend_post_fen"]),
                "预算使用率": "—" if used is None else f"{used:.1f}%",
                "好友目标完成": _rate(kpi["new_friends"]),
                "存款目标完成": _rate(kpi["deposits"]),
                "每万元存款成本": _yuan(r["cost"]["per_wan_deposits_fen"]),
                "存款提升/网点（95% 区间）": (
                    f"{_yuan(up['per_outlet'])}（{_yuan(up['ci_low'])} 至 {_yuan(up['ci_high'])}）"
                    if up["per_outlet"] is not None
                    else "无估计"
                ),
            }
        )
    return rows


def _rate(kpi: dict[str, int]) -> str:
    return f"{100 * kpi['actual'] / kpi['target']:.0f}%" if kpi["target"] else "—"
