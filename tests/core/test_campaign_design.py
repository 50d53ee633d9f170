"""The design document: rights-day rules, completeness checks, budget, compliance, diff."""

from datetime import date

import pytest

from core.campaigns.budget import compute
from core.campaigns.compliance import check_texts
from core.campaigns.design import (
    CampaignDesign,
    Coupon,
    CouponKind,
    DesignNames,
    RightsDayRule,
    RuleKind,
    TargetMode,
    flatten,
    submit_problems,
)
from db.models import ComplianceTerm


def design(**changes: object) -> CampaignDesign:
    base = CampaignDesign(
        name="逢8权益日",
        city_id=1,
        start_date=date(2026, 12, 1),
        end_date=date(2026, 12, 31),
        coupons=[
            Coupon(
                name="满减",
                kind=CouponKind.FULL_REDUCTION,
                face_value_fen=2000,
                threshold_fen=10000,
                quantity=1000,
                post_share_pct=60,
                merchant_ids=[7],
            )
        ],
        merchant_ids=[7],
        kpi_new_friends=1,
        kpi_conversions=200,
        kpi_deposits_fen=1_000_000_000,
        expected_redemption_pct=40,
    )
    return base.model_copy(update=changes)


def ids() -> dict[str, set[int]]:
    return {"outlets": {101, 102}, "counties": {11}, "merchants": {7}}


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (
            RightsDayRule(),
            [date(2026, 12, 8), date(2026, 12, 18), date(2026, 12, 28), date(2027, 1, 8)],
        ),
        (
            RightsDayRule(kind=RuleKind.WEEKDAYS, weekdays=[4]),
            [
                date(2026, 12, 4),
                date(2026, 12, 11),
                date(2026, 12, 18),
                date(2026, 12, 25),
                date(2027, 1, 1),
                date(2027, 1, 8),
            ],
        ),
        (
            RightsDayRule(
                kind=RuleKind.DATES,
                dates=[date(2027, 1, 1), date(2026, 11, 30), date(2026, 12, 24)],
            ),
            [date(2026, 12, 24), date(2027, 1, 1)],
        ),
        (RightsDayRule(month_days=[31]), [date(2026, 12, 31)]),
    ],
)
def test_rights_days_inside_the_period(rule: RightsDayRule, expected: list[date]) -> None:
    assert rule.days_in(date(2026, 12, 1), date(2027, 1, 10)) == expected


def test_rule_descriptions() -> None:
    assert RightsDayRule().describe() == "逢8（每月 8、18、28 日）"
    assert RightsDayRule(month_days=[5, 20]).describe() == "每月 5、20 日"
    assert RightsDayRule(kind=RuleKind.WEEKDAYS, weekdays=[5, 4]).describe() == "每周五、周六"


def test_a_complete_design_has_no_problems() -> None:
    assert submit_problems(design(), **ids()) == []


@pytest.mark.parametrize(
    ("changes", "field", "text"),
    [
        ({"name": " "}, "name", "活动名称"),
        ({"end_date": date(2026, 11, 1)}, "period", "结束日期"),
        (
            {
                "rule": RightsDayRule(month_days=[30]),
                "start_date": date(2027, 2, 1),
                "end_date": date(2027, 2, 28),
            },
            "rule",
            "没有任何权益日",
        ),
        ({"coupons": []}, "coupons", "至少设置一种"),
        (
            {
                "coupons": [
                    Coupon(
                        name="满减",
                        kind=CouponKind.FULL_REDUCTION,
                        face_value_fen=2000,
                        threshold_fen=1000,
                        quantity=5,
                    )
                ]
            },
            "coupons",
            "门槛",
        ),
        (
            {
                "coupons": [
                    Coupon(
                        name="折扣",
                        kind=CouponKind.DISCOUNT,
                        face_value_fen=2000,
                        discount_permille=50,
                        quantity=5,
                    )
                ]
            },
            "coupons",
            "折扣",
        ),
        (
            {
                "coupons": [
                    Coupon(
                        name="共担",
                        kind=CouponKind.INSTANT,
                        face_value_fen=100,
                        quantity=5,
                        post_share_pct=50,
                    )
                ]
            },
            "coupons",
            "承兑商户",
        ),
        ({"merchant_ids": [99]}, "merchant_ids", "本市"),
        ({"target_mode": TargetMode.OUTLETS, "target_outlet_ids": [999]}, "targets", "本市"),
        (
            {"kpi_new_friends": 0, "kpi_conversions": 0, "kpi_deposits_fen": 0},
            "kpi",
            "至少填写一项",
        ),
    ],
)
def test_incomplete_designs_say_what_is_missing(changes: dict, field: str, text: str) -> None:
    problems = submit_problems(design(**changes), **ids())
    assert any(p.field == field and text in p.message for p in problems), problems


def test_budget_is_exact() -> None:
    d = design(
        coupons=[
            Coupon(
                name="满减",
                kind=CouponKind.FULL_REDUCTION,
                face_value_fen=2000,
                threshold_fen=10000,
                quantity=1000,
                post_share_pct=60,
                merchant_ids=[7],
            ),
            Coupon(name="寄递", kind=CouponKind.SHIPPING, face_value_fen=333, quantity=3),
        ]
    )
    budget = compute(d, cap_fen=900_000, committed_fen=200_000)
    assert budget.full_fen == 2_000_000 + 999
    assert budget.post_full_fen == 1_200_000 + 999 and budget.merchant_full_fen == 800_000
    assert budget.post_expected_fen == 480_400  # 40% of 1,200,999 = 480,399.6 → rounds half up
    assert budget.per_conversion_fen == 2402  # 480,400 / 200 conversions
    assert budget.per_wan_deposits_fen == 480_400 // 1000  # 1,000 万元 targeted
    assert budget.remaining_fen == 700_000 and not budget.over_expected and budget.over_full
    assert budget.remaining_after_fen == 700_000 - 480_400  # this plan counted too
    assert "若全部核销" in budget.warnings()[0]
    over = compute(d, cap_fen=400_000)
    assert over.over_expected and over.warnings()[0].startswith("超出预算")
    assert "尚未设置" in compute(d).warnings()[0]


def test_compliance_hits_say_where() -> None:
    terms = [
        ComplianceTerm(term="稳赚", severity="prohibited"),
        ComplianceTerm(term="最高收益", severity="risky"),
        ComplianceTerm(term="risk-free", severity="prohibited"),
    ]
    d = design(name="稳赚存款节", notes="理财最高收益 4%，Risk-Free！稳赚")
    hits = check_texts(terms, d.texts())
    found = {(h.term, h.where) for h in hits}
    assert found == {
        ("稳赚", "活动名称"),
        ("稳赚", "方案说明"),
        ("最高收益", "方案说明"),
        ("risk-free", "方案说明"),
    }
    assert hits[0].severity == "prohibited" and hits[-1].severity_label == "慎用"


def test_flatten_shows_fields_in_chinese() -> None:
    flat = flatten(design(), names=DesignNames(merchants={7: "星沙超市"}))
    assert flat["权益日规则"] == "逢8（每月 8、18、28 日）"
    assert flat["权益券 1·类型与面值"] == "满100减20元"
    assert flat["权益券 1·出资比例"] == "邮政 60% / 商户 40%"
    assert flat["参与商户"] == "星沙超市"
