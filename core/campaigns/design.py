"""The campaign design document (活动设计): what a city planner fills in, as typed models,
with the rights-day rule, the rules that make a design complete, and a flat view of it
that plan versions are compared on."""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum

from pydantic import BaseModel, Field

from core.platform.errors import FieldProblem
from core.platform.formatting import format_yuan, plain_yuan
from db.models import CampaignKind

WEEKDAY_NAMES = ["周一", "周二", "周三", "周四", "周五", "周六", "周日"]
MAX_CAMPAIGN_DAYS = 366


class RuleKind(StrEnum):
    MONTH_DAYS = "month_days"  # 逢N: fixed days of every month, e.g. 8/18/28
    WEEKDAYS = "weekdays"
    DATES = "dates"

    @property
    def label(self) -> str:
        return {"month_days": "每月固定日（逢N）", "weekdays": "每周固定日", "dates": "指定日期"}[
            self.value
        ]


class RightsDayRule(BaseModel):
    """Which days inside the campaign period are rights days (会员权益日)."""

    kind: RuleKind = RuleKind.MONTH_DAYS
    month_days: list[int] = Field(default_factory=lambda: [8, 18, 28])
    weekdays: list[int] = Field(default_factory=list)  # 0 = Monday
    dates: list[date] = Field(default_factory=list)

    def days_in(self, start: date, end: date) -> list[date]:
        if end < start:
            return []
        if self.kind is RuleKind.DATES:
            return sorted({d for d in self.dates if start <= d <= end})
        days, day = [], start
        while day <= end:
            if (self.kind is RuleKind.MONTH_DAYS and day.day in self.month_days) or (
                self.kind is RuleKind.WEEKDAYS and day.weekday() in self.weekdays
            ):
                days.append(day)
            day += timedelta(days=1)
        return days

    def describe(self) -> str:
        if self.kind is RuleKind.MONTH_DAYS:
            numbers = sorted(set(self.month_days))
            listed = "、".join(map(str, numbers))
            # 逢8 = every day of the month ending in 8: 8, 18, 28
            if numbers and numbers == [
                d for d in range(1, 32) if d % 10 == numbers[0] % 10 and numbers[0] < 10
            ]:
                return f"逢{numbers[0]}（每月 {listed} 日）"
            return f"每月 {listed} 日"
        if self.kind is RuleKind.WEEKDAYS:
            return "每" + "、".join(WEEKDAY_NAMES[d] for d in sorted(self.weekdays))
        return f"指定日期（{len(self.dates)} 天）"


class CouponKind(StrEnum):
    FULL_REDUCTION = "full_reduction"
    INSTANT = "instant"
    DISCOUNT = "discount"
    ONE_CENT = "one_cent"
    SHIPPING = "shipping"

    @property
    def label(self) -> str:
        return COUPON_LABELS[self]


COUPON_LABELS = {
    CouponKind.FULL_REDUCTION: "满减券",
    CouponKind.INSTANT: "立减券",
    CouponKind.DISCOUNT: "折扣券",
    CouponKind.ONE_CENT: "一分购",
    CouponKind.SHIPPING: "寄递券",
}
# What `face_value_fen` means for each kind (the amount one redemption costs).
FACE_VALUE_MEANING = {
    CouponKind.FULL_REDUCTION: "减免金额",
    CouponKind.INSTANT: "立减金额",
    CouponKind.DISCOUNT: "单张最高优惠",
    CouponKind.ONE_CENT: "单件补贴金额",
    CouponKind.SHIPPING: "券面值",
}


class Coupon(BaseModel):
    """A right or coupon (权益券); the post pays `post_share_pct` of each redemption."""

    name: str = ""
    kind: CouponKind = CouponKind.FULL_REDUCTION
    face_value_fen: int = 0
    threshold_fen: int = 0  # 满 X (满减 only)
    discount_permille: int = 0  # 折扣 only: 880 = 8.8 折
    quantity: int = 0
    per_member_limit: int = 1
    min_star: int = 1
    post_share_pct: int = 100
    merchant_ids: list[int] = Field(default_factory=list)

    def describe(self) -> str:
        """满30减10元 / 8.8折，最高优惠20元 / 立减券 5元: whole yuan without ".00"."""
        face = plain_yuan(self.face_value_fen)
        if self.kind is CouponKind.FULL_REDUCTION:
            return f"满{plain_yuan(self.threshold_fen)}减{face}元"
        if self.kind is CouponKind.DISCOUNT:
            return f"{self.discount_permille / 100:g}折，最高优惠{face}元"
        return f"{self.kind.label} {face}元"


class StarRights(BaseModel):
    level: int
    rights: list[str] = Field(default_factory=list)


class TargetMode(StrEnum):
    ALL = "all"
    COUNTIES = "counties"
    OUTLETS = "outlets"

    @property
    def label(self) -> str:
        return {"all": "全市所有网点", "counties": "按区县", "outlets": "指定网点"}[self.value]


DEFAULT_STAR_RIGHTS = {
    1: ["生日祝福短信"],
    2: ["寄递券 1 张/月"],
    3: ["加油券 1 张/月", "免费测血压"],
    4: ["消费券礼包", "年度基础体检"],
    5: ["专属客户经理", "年度深度体检", "机场贵宾厅 2 次/年"],
}


class CampaignDesign(BaseModel):
    """Everything a plan contains. Stored as JSON on the campaign and on each plan version."""

    name: str = ""
    kind: CampaignKind = CampaignKind.RIGHTS_DAY
    city_id: int
    start_date: date
    end_date: date
    target_mode: TargetMode = TargetMode.ALL
    target_county_ids: list[int] = Field(default_factory=list)
    target_outlet_ids: list[int] = Field(default_factory=list)
    rule: RightsDayRule = Field(default_factory=RightsDayRule)
    star_rights: list[StarRights] = Field(
        default_factory=lambda: [
            StarRights(level=k, rights=list(v)) for k, v in DEFAULT_STAR_RIGHTS.items()
        ]
    )
    coupons: list[Coupon] = Field(default_factory=list)
    merchant_ids: list[int] = Field(default_factory=list)
    kpi_new_friends: int = 0
    kpi_conversions: int = 0
    kpi_deposits_fen: int = 0
    expected_redemption_pct: int = 30
    notes: str = ""

    def rights_days(self) -> list[date]:
        return self.rule.days_in(self.start_date, self.end_date)

    def texts(self) -> list[tuple[str, str]]:
        """(where, text) of every free text, for the compliance check."""
        found = [("活动名称", self.name), ("方案说明", self.notes)]
        found += [(f"{s.level} 星权益", right) for s in self.star_rights for right in s.rights]
        found += [(f"权益券「{c.name or c.kind.label}」名称", c.name) for c in self.coupons]
        return [(where, text) for where, text in found if text]


def new_design(city_id: int, today: date) -> CampaignDesign:
    """A sensible starting point: next month, 逢8, default star rights, no coupons yet."""
    first = (today.replace(day=1) + timedelta(days=32)).replace(day=1)
    last = first.replace(day=calendar.monthrange(first.year, first.month)[1])
    return CampaignDesign(name="", city_id=city_id, start_date=first, end_date=last)


def draft_problems(design: CampaignDesign) -> list[FieldProblem]:
    """What even a draft needs: a name and a readable period."""
    problems = []
    if not design.name.strip():
        problems.append(FieldProblem("name", "请填写活动名称"))
    elif len(design.name) > 60:
        problems.append(FieldProblem("name", "活动名称最多 60 个字"))
    if design.end_date < design.start_date:
        problems.append(FieldProblem("period", "结束日期不能早于开始日期"))
    if len(design.notes) > 5000:
        problems.append(FieldProblem("notes", "方案说明最多 5000 字"))
    return problems


def submit_problems(
    design: CampaignDesign, *, outlets: set[int], counties: set[int], merchants: set[int]
) -> list[FieldProblem]:
    """Everything a plan must satisfy before it goes to review. `outlets`, `counties` and
    `merchants` are the ids that belong to the plan's city."""
    problems = draft_problems(design)
    if (design.end_date - design.start_date).days + 1 > MAX_CAMPAIGN_DAYS:
        problems.append(FieldProblem("period", "活动期最长一年"))
    problems += _rule_problems(design)
    problems += _target_problems(design, outlets, counties)
    for index, coupon in enumerate(design.coupons, start=1):
        problems += _coupon_problems(index, coupon, set(design.merchant_ids))
    if not design.coupons:
        problems.append(FieldProblem("coupons", "请至少设置一种权益券"))
    unknown = set(design.merchant_ids) - merchants
    if unknown:
        problems.append(FieldProblem("merchant_ids", "参与商户须是本市的联盟商户"))
    for stars in design.star_rights:
        if not 1 <= stars.level <= 5:
            problems.append(FieldProblem("star_rights", "会员星级为 1–5 星"))
    if min(design.kpi_new_friends, design.kpi_conversions, design.kpi_deposits_fen) < 0:
        problems.append(FieldProblem("kpi", "目标不能为负数"))
    if design.kpi_new_friends == design.kpi_conversions == design.kpi_deposits_fen == 0:
        problems.append(FieldProblem("kpi", "请至少填写一项目标（新增好友、转化客户或新增存款）"))
    if not 0 < design.expected_redemption_pct <= 100:
        problems.append(FieldProblem("expected_redemption_pct", "预计核销率须在 1%–100% 之间"))
    return problems


def _rule_problems(design: CampaignDesign) -> list[FieldProblem]:
    rule = design.rule
    if rule.kind is RuleKind.MONTH_DAYS and (
        not rule.month_days or any(not 1 <= d <= 31 for d in rule.month_days)
    ):
        return [FieldProblem("rule", "每月固定日须在 1–31 之间，至少一天")]
    if rule.kind is RuleKind.WEEKDAYS and (
        not rule.weekdays or any(not 0 <= d <= 6 for d in rule.weekdays)
    ):
        return [FieldProblem("rule", "请至少选择一个星期几")]
    if rule.kind is RuleKind.DATES and not rule.dates:
        return [FieldProblem("rule", "请至少指定一个权益日")]
    if design.kind is CampaignKind.RIGHTS_DAY and not design.rights_days():
        return [FieldProblem("rule", "活动期内没有任何权益日，请调整规则或活动期")]
    return []


def _target_problems(
    design: CampaignDesign, outlets: set[int], counties: set[int]
) -> list[FieldProblem]:
    if design.target_mode is TargetMode.COUNTIES:
        if not design.target_county_ids:
            return [FieldProblem("targets", "请选择参与的区县")]
        if not set(design.target_county_ids) <= counties:
            return [FieldProblem("targets", "参与区县须属于本市")]
    if design.target_mode is TargetMode.OUTLETS:
        if not design.target_outlet_ids:
            return [FieldProblem("targets", "请选择参与的网点")]
        if not set(design.target_outlet_ids) <= outlets:
            return [FieldProblem("targets", "参与网点须属于本市")]
    return []


def _coupon_problems(index: int, coupon: Coupon, merchants: set[int]) -> list[FieldProblem]:
    where = f"第 {index} 张权益券「{coupon.name or coupon.kind.label}」"
    problems = []
    if not coupon.name.strip():
        problems.append(FieldProblem("coupons", f"{where}：请填写名称"))
    if coupon.face_value_fen <= 0:
        problems.append(
            FieldProblem("coupons", f"{where}：{FACE_VALUE_MEANING[coupon.kind]}须大于 0")
        )
    if coupon.kind is CouponKind.FULL_REDUCTION and coupon.threshold_fen <= coupon.face_value_fen:
        problems.append(FieldProblem("coupons", f"{where}：满减门槛须高于减免金额"))
    if coupon.kind is CouponKind.DISCOUNT and not 100 <= coupon.discount_permille <= 990:
        problems.append(FieldProblem("coupons", f"{where}：折扣须在 1 折到 9.9 折之间"))
    if coupon.quantity <= 0:
        problems.append(FieldProblem("coupons", f"{where}：发放数量须大于 0"))
    if coupon.per_member_limit <= 0:
        problems.append(FieldProblem("coupons", f"{where}：每人限领须至少 1 张"))
    if not 1 <= coupon.min_star <= 5:
        problems.append(FieldProblem("coupons", f"{where}：最低星级为 1–5 星"))
    if not 0 <= coupon.post_share_pct <= 100:
        problems.append(FieldProblem("coupons", f"{where}：邮政出资比例须在 0–100% 之间"))
    if coupon.post_share_pct < 100 and not coupon.merchant_ids:
        problems.append(FieldProblem("coupons", f"{where}：商户共同出资时须指定承兑商户"))
    if not set(coupon.merchant_ids) <= merchants:
        problems.append(FieldProblem("coupons", f"{where}：承兑商户须在参与商户之中"))
    return problems


# --- comparing versions ------------------------------------------------------------------


@dataclass(frozen=True)
class DesignNames:
    """Names of the org units and merchants a design refers to, kept apart by kind: the two
    tables number their rows independently, so one id can be an outlet and a merchant."""

    units: dict[int, str] = field(default_factory=dict)
    merchants: dict[int, str] = field(default_factory=dict)

    def unit_list(self, ids: Iterable[int]) -> str:
        return "、".join(self.units.get(i, str(i)) for i in ids)

    def merchant_list(self, ids: Iterable[int]) -> str:
        return "、".join(self.merchants.get(i, str(i)) for i in ids)


def flatten(design: CampaignDesign, *, names: DesignNames | None = None) -> dict[str, str]:
    """Field label → displayed value, the unit versions are compared in."""
    names = names or DesignNames()

    flat = {
        "活动名称": design.name,
        "活动类型": design.kind.label,
        "活动期": f"{design.start_date} 至 {design.end_date}",
        "参与范围": design.target_mode.label,
        "参与区县": names.unit_list(design.target_county_ids) or "—",
        "参与网点": names.unit_list(design.target_outlet_ids) or "—",
        "权益日规则": design.rule.describe(),
        "权益日": "、".join(d.strftime("%m-%d") for d in design.rights_days()) or "—",
        "参与商户": names.merchant_list(design.merchant_ids) or "—",
        "目标·新增好友": str(design.kpi_new_friends),
        "目标·转化客户": str(design.kpi_conversions),
        "目标·新增存款": format_yuan(design.kpi_deposits_fen),
        "预计核销率": f"{design.expected_redemption_pct}%",
        "方案说明": design.notes,
    }
    for stars in design.star_rights:
        flat[f"{stars.level} 星权益"] = "、".join(stars.rights) or "—"
    for index, c in enumerate(design.coupons, start=1):
        prefix = f"权益券 {index}"
        flat[f"{prefix}·名称"] = c.name
        flat[f"{prefix}·类型与面值"] = c.describe()
        flat[f"{prefix}·数量/限领"] = f"{c.quantity} 张，每人限 {c.per_member_limit} 张"
        flat[f"{prefix}·最低星级"] = f"{c.min_star} 星"
        flat[f"{prefix}·出资比例"] = f"邮政 {c.post_share_pct}% / 商户 {100 - c.post_share_pct}%"
        flat[f"{prefix}·承兑商户"] = names.merchant_list(c.merchant_ids) or "—"
    return flat


def month_grids(
    days: list[date], start: date, end: date
) -> list[tuple[int, int, list[list[date | None]]]]:
    """(year, month, weeks) for each month of the period: the calendar preview's grid."""
    grids, cursor = [], start.replace(day=1)
    while cursor <= end:
        weeks = calendar.Calendar(firstweekday=0).monthdatescalendar(cursor.year, cursor.month)
        grid = [[d if d.month == cursor.month else None for d in week] for week in weeks]
        grids.append((cursor.year, cursor.month, grid))
        cursor = (cursor + timedelta(days=32)).replace(day=1)
    return grids
