"""Numbers, money and changes as Chinese users read them (元, 万, 亿). Exact: no floats."""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

_WAN = Decimal(10_000)
_YI = Decimal(100_000_000)


def _group(number: Decimal, places: int) -> str:
    quantum = Decimal(1).scaleb(-places)
    return f"{number.quantize(quantum, rounding=ROUND_HALF_UP):,.{places}f}"


def _round_number(number: Decimal) -> str:
    text = _group(number, 2)
    return text.removesuffix(".00")


def yuan(fen: int) -> Decimal:
    """Integer fen as an exact Decimal amount of yuan."""
    return Decimal(fen) / 100


def format_yuan(fen: int, *, compact: bool = True) -> str:
    """¥1,234.50 below 10 万; 12.35万元 / 1.23亿元 above when `compact`, and a round
    3,000万元 without ".00" (it has to fit a narrow metric card)."""
    amount = yuan(fen)
    magnitude = abs(amount)
    if compact and magnitude >= _YI:
        return f"{_round_number(amount / _YI)}亿元"
    if compact and magnitude >= _WAN * 10:
        return f"{_round_number(amount / _WAN)}万元"
    sign = "-" if amount < 0 else ""
    return f"{sign}¥{_group(magnitude, 2)}"


def money_formatter(*amounts_fen: int) -> Callable[[int], str]:
    """One money format for a panel of related amounts: all in 万元 when the largest is
    10 万 or more ("10.9万元" beside "3.82万元"), else all as ¥1,234.50; never mixed."""
    largest = max((abs(a) for a in amounts_fen), default=0)
    if largest >= 100_000_000 * 100:
        return lambda fen: f"{_round_number(yuan(fen) / _YI)}亿元"
    if largest >= 100_000 * 100:
        return lambda fen: f"{_round_number(yuan(fen) / _WAN)}万元"
    return lambda fen: format_yuan(fen, compact=False)


def plain_yuan(fen: int) -> str:
    """A yuan amount as a number for running text, no ¥ and no ".00": 30, 10.5, 1,000.
    The caller puts 元 after it ("满30减10元")."""
    text = _group(yuan(fen), 2)
    return text.rstrip("0").rstrip(".") if "." in text else text


def format_count(value: int, *, compact: bool = False) -> str:
    if compact and abs(value) >= 100_000_000:
        return f"{_group(Decimal(value) / _YI, 2)}亿"
    if compact and abs(value) >= 100_000:
        return f"{_group(Decimal(value) / _WAN, 1)}万"
    return f"{value:,}"


def format_metric(value: int, *, is_money: bool, compact: bool = True) -> str:
    return format_yuan(value, compact=compact) if is_money else format_count(value, compact=compact)


def metric_number(value: int, *, is_money: bool) -> int | Decimal:
    """A metric as a number for an exported table: exact yuan for money, else the count."""
    return yuan(value).quantize(Decimal("0.01")) if is_money else value


def format_change(current: int, previous: int) -> str:
    """'+12.3%' against the previous value; '新增' when there was nothing before."""
    if current == previous:
        return "持平"
    if previous == 0:
        return "新增"
    change = (Decimal(current) - Decimal(previous)) / abs(Decimal(previous)) * 100
    text = _group(change, 1)
    return f"+{text}%" if change > 0 else f"{text}%"


def format_percent(ratio: float | Decimal | Fraction | None) -> str:
    """One percent format everywhere: 12.8% (one decimal), — when there is no base."""
    if ratio is None:
        return "—"
    return f"{_group(Decimal(str(float(ratio))) * 100, 1)}%"


def mask_phone(phone: str) -> str:
    """138****5678: contact numbers are shown masked to everyone but admins."""
    digits = phone.strip()
    if len(digits) < 7:
        return "*" * len(digits)
    return f"{digits[:3]}****{digits[-4:]}"


def round_half_up(value: Fraction) -> int:
    """Nearest integer, halves away from zero (how people round averages, not banker's)."""
    magnitude = math.floor(abs(value) + Fraction(1, 2))
    return magnitude if value >= 0 else -magnitude


def change_text(change: int | None, *, had_previous: bool = True) -> str:
    """↑3 / ↓2 / — for a rank change; 新 when there was nothing to compare with."""
    if change is None:
        return "新" if had_previous else "—"
    if change > 0:
        return f"↑{change}"
    if change < 0:
        return f"↓{-change}"
    return "—"
