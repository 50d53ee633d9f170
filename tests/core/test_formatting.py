from core.platform.formatting import (
    change_text,
    format_change,
    format_count,
    format_yuan,
    mask_phone,
)


def test_money_in_yuan_wan_and_yi_exactly() -> None:
    assert format_yuan(123450) == "¥1,234.50"
    assert format_yuan(-5) == "-¥0.05"
    assert format_yuan(9_999_999) == "¥99,999.99"
    assert format_yuan(12_345_678) == "12.35万元"
    assert format_yuan(-12_345_678) == "-12.35万元"
    assert format_yuan(43_712_345_600) == "4.37亿元"
    assert format_yuan(3_000_000_000) == "3,000万元"
    assert format_yuan(12_300_000) == "12.30万元"
    assert format_yuan(100_000_000_00) == "1亿元"
    assert format_yuan(12_345_678, compact=False) == "¥123,456.78"


def test_counts_and_changes() -> None:
    assert format_count(12345) == "12,345"
    assert format_count(320_456, compact=True) == "32.0万"
    assert format_change(110, 100) == "+10.0%"
    assert format_change(90, 100) == "-10.0%"
    assert format_change(5, -10) == "+150.0%"
    assert format_change(0, 0) == "持平" and format_change(3, 0) == "新增"
    assert format_change(8, 8) == "持平"


def test_phone_mask() -> None:
    assert mask_phone("13812345678") == "138****5678"


def test_rank_change_text() -> None:
    assert [change_text(c) for c in (3, -2, 0, None)] == ["↑3", "↓2", "—", "新"]
    assert change_text(None, had_previous=False) == "—"


def test_plain_yuan_drops_the_cents_of_whole_amounts() -> None:
    from core.platform.formatting import plain_yuan

    assert [plain_yuan(f) for f in (3000, 1050, 1001, 100_000, 0, -500)] == [
        "30",
        "10.5",
        "10.01",
        "1,000",
        "0",
        "-5",
    ]


def test_coupon_descriptions_read_like_a_poster() -> None:
    from core.campaigns.design import Coupon, CouponKind

    assert Coupon(threshold_fen=3000, face_value_fen=1000).describe() == "满30减10元"
    discount = Coupon(kind=CouponKind.DISCOUNT, discount_permille=880, face_value_fen=2000)
    assert discount.describe() == "8.8折，最高优惠20元"
    assert Coupon(kind=CouponKind.INSTANT, face_value_fen=550).describe() == "立减券 5.5元"


def test_one_percent_format() -> None:
    from fractions import Fraction

    from core.platform.formatting import format_percent

    assert format_percent(0.128) == "12.8%"
    assert format_percent(Fraction(1, 3)) == "33.3%"
    assert format_percent(1) == "100.0%"
    assert format_percent(None) == "—"


def test_a_panel_of_amounts_uses_one_money_format() -> None:
    from core.platform.formatting import money_formatter

    big = money_formatter(10_900_000, 3_815_000)
    assert [big(10_900_000), big(3_815_000)] == ["10.90万元", "3.82万元"]
    small = money_formatter(3_815_000, 1_000)
    assert [small(3_815_000), small(1_000)] == ["¥38,150.00", "¥10.00"]


def test_metric_values_carry_their_units() -> None:
    from core.metrics.values import METRICS

    assert METRICS["new_friends"].format(10852) == "10,852 人"
    assert METRICS["groups"].format(56) == "56 个"
    assert METRICS["deposits"].format(1_234_500_00) == "123.45万元"


def test_a_round_panel_amount_has_no_cents() -> None:
    from core.platform.formatting import money_formatter

    assert money_formatter(180_000_000)(180_000_000) == "180万元"
    assert money_formatter(180_000_000)(0) == "0万元"
