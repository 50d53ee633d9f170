"""Fitting text into a poster's boxes: Chinese and Latin text wrapped with line-breaking
rules (禁则, numbers kept whole), balanced lines, and the largest font size at which it fits
its box without overflowing or being cut; too long for even the floor size is refused.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from core.platform.errors import FieldProblem, ValidationFailed
from core.posters.fonts import font
from core.posters.templates import FIELD_LABELS, BenefitsBox, Box

FLOOR_SIZE = 12  # px; below this, text on a phone-sized poster is unreadable anyway
_PREFER_SHRINK = 0.8  # `max_lines` may cost at most 20% of the size


@dataclass(frozen=True)
class FittedText:
    size: int
    lines: tuple[str, ...]
    below_min: bool = False  # shrunk under the template's min_size to fit


@dataclass(frozen=True)
class FittedList:
    size: int
    items: tuple[tuple[str, ...], ...]
    below_min: bool = False


# Closing punctuation must not start a line; opening punctuation must not end one (禁则).
_NO_START = frozenset("，。、；：！？）》」』】〕〉’”…—～·％,.;:!?)]}%")
_NO_END = frozenset("（《「『【〔〈‘“([{￥$")


def _is_wide(char: str) -> bool:
    return unicodedata.east_asian_width(char) in ("W", "F")


def _glue(units: list[str]) -> list[str]:
    """Join closing punctuation to the unit before it and opening punctuation to the unit
    after it, so a line break can never separate them."""
    out: list[str] = []
    carry = ""
    for unit in units:
        if unit.isspace():
            if carry:
                out.append(carry)
                carry = ""
            out.append(unit)
            continue
        unit = carry + unit
        carry = ""
        if unit[0] in _NO_START and out and not out[-1].isspace():
            out[-1] += unit
        elif unit[0] in _NO_START and len(out) >= 2 and out[-1].isspace():
            # "支局 · 张三": the dot stays with what it follows, space and all.
            space = out.pop()
            out[-1] += space + unit
        else:
            out.append(unit)
        if out[-1][-1] in _NO_END:
            carry = out.pop()
    if carry:
        out.append(carry)
    return out


def _bind_numbers(tokens: list[str]) -> list[str]:
    """A space between a number and a Chinese character does not break: "满 3 万元" and
    "领 5 元" stay on one line."""
    out: list[str] = []
    for index, token in enumerate(tokens):
        if (
            token.isspace()
            and out
            and index + 1 < len(tokens)
            and not tokens[index + 1].isspace()
            and (
                (out[-1][-1].isdigit() and _is_wide(tokens[index + 1][0]))
                or (_is_wide(out[-1][-1]) and tokens[index + 1][0].isdigit())
            )
        ):
            out[-1] += token
            continue
        if out and out[-1][-1].isspace() and not out[-1].isspace():
            out[-1] += token  # the token after a bound space joins it
            continue
        out.append(token)
    return out


# A number and its unit read as one word ("8日", "30元", "3 万元", "8.8折"), and so do a few
# characters that lead a number ("逢8", "第2"): a line never breaks inside them.
_UNITS = frozenset("元角分万亿千百折%％张次天日号月年个人份件岁星期周时点倍克斤米位名")
_LEADS = frozenset("逢第")


def _has_digit(token: str) -> bool:
    return any(char.isdigit() for char in token)


def _bind_units(tokens: list[str]) -> list[str]:
    out: list[str] = []
    for token in tokens:
        if out and not token.isspace() and not out[-1].isspace():
            before = out[-1].rstrip()
            after_number = before[-1:].isdigit() or (before[-1:] in _UNITS and _has_digit(before))
            if (after_number and token[0] in _UNITS) or (
                token[0].isdigit() and before[-1:] in _LEADS
            ):
                out[-1] += token
                continue
        out.append(token)
    return out


def _tokens(paragraph: str) -> list[str]:
    """Break opportunities: each Chinese character on its own, each run of Latin letters,
    digits and ASCII punctuation as one word, runs of spaces between them."""
    raw: list[str] = []
    for char in paragraph:
        if char.isspace():
            kind = "space"
        elif _is_wide(char) or (not char.isascii() and (char in _NO_START or char in _NO_END)):
            kind = "wide"  # ASCII punctuation stays in its word: 10:00, 2,000, 3.5%
        else:
            kind = "word"
        if raw and kind != "wide" and raw[-1][0] == kind:
            raw[-1] = (kind, raw[-1][1] + char)
        else:
            raw.append((kind, char))
    return _bind_units(_bind_numbers(_glue([text for _, text in raw])))


@lru_cache(maxsize=200_000)
def _advance(text: str, size: int, weight: int) -> float:
    return font(size, weight).getlength(text)


def _wrap(
    paragraph: str, size: int, weight: int, width: float, *, exact: bool = False
) -> list[str] | None:
    """Greedy line filling; None when a single unbreakable unit is wider than the line.

    Widths are summed per token (cached) unless `exact`; the caller re-measures each line
    and falls back to `exact` when kerning between tokens made one too wide.
    """
    lines: list[str] = []
    line, line_w, space = "", 0.0, ""
    face = font(size, weight)

    def measure(candidate: str, base_w: float, added: str) -> float:
        return face.getlength(candidate) if exact else base_w + _advance(added, size, weight)

    def place(unit: str) -> bool:
        nonlocal line, line_w, space
        if line:
            joined = line + space + unit
            joined_w = measure(joined, line_w, space + unit)
            if joined_w <= width:
                line, line_w, space = joined, joined_w, ""
                return True
            lines.append(line)
        space = ""
        unit_w = measure(unit, 0.0, unit)
        if unit_w > width:
            line, line_w = "", 0.0
            return False
        line, line_w = unit, unit_w
        return True

    for token in _tokens(paragraph.strip()):
        if token.isspace():
            space = token if line else ""
            continue
        if place(token):
            continue
        # A word longer than the whole line: break it between characters (still 禁则).
        for unit in _glue(list(token)):
            if not place(unit):
                return None
    lines.append(line)
    return lines


def _wrap_checked(paragraph: str, size: int, weight: int, width: float) -> list[str] | None:
    lines = _wrap(paragraph, size, weight, width)
    face = font(size, weight)
    if lines is not None and any(face.getlength(line) > width for line in lines):
        lines = _wrap(paragraph, size, weight, width, exact=True)
    return lines


def _wrap_balanced(
    paragraph: str, size: int, weight: int, width: float, breaks: str = ""
) -> list[str] | None:
    """The narrowest width that keeps the greedy line count, so lines come out even."""
    lines = _wrap_checked(paragraph, size, weight, width)
    if lines is None or len(lines) < 2:
        return lines
    count = len(lines)
    if count == 2:
        natural = _natural_break(paragraph, size, weight, width, breaks)
        if natural is not None:
            return natural
    lo, hi = int(width / count), int(width)
    best = lines
    while hi - lo > 1:
        mid = (lo + hi) // 2
        trial = _wrap_checked(paragraph, size, weight, mid)
        if trial is not None and len(trial) <= count:
            hi, best = mid, trial
        else:
            lo = mid
    return best


_NATURAL_BREAKS = frozenset("，、；：。！？·,;:!?")


def _natural_break(
    paragraph: str, size: int, weight: int, width: float, breaks: str = ""
) -> list[str] | None:
    """Two lines split after a comma or at a space ("喜迎新春 / 邮福到家") when both fit
    and neither is much shorter than the other; reads better than an even split mid-phrase."""
    face = font(size, weight)
    tokens = _tokens(paragraph.strip())
    best: tuple[float, list[str]] | None = None
    for k in range(1, len(tokens)):
        before, after = tokens[k - 1], tokens[k]
        if before.isspace():
            # A space is a natural break only between Chinese phrases ("喜迎新春 邮福到家").
            if k < 2 or not (_is_wide(tokens[k - 2][-1]) and _is_wide(after[0])):
                continue
        elif (before[-1] not in _NATURAL_BREAKS and before[-1] not in breaks) or after.isspace():
            continue
        first, second = "".join(tokens[:k]).strip(), "".join(tokens[k:]).strip()
        w1, w2 = face.getlength(first), face.getlength(second)
        if max(w1, w2) > width:
            continue
        ratio = min(w1, w2) / max(w1, w2)
        if ratio >= 0.4 and (best is None or ratio > best[0]):
            best = (ratio, [first, second])
    return best[1] if best else None


def line_height(size: int, weight: int = 400) -> int:
    """One line's height from the font's own ascent and descent (never clips a glyph)."""
    ascent, descent = font(size, weight).getmetrics()
    return ascent + descent


def block_height(size: int, weight: int, lines: int, line_spacing: float) -> int:
    if lines <= 0:
        return 0
    return (lines - 1) * round(size * line_spacing) + line_height(size, weight)


def _lines_at(
    text: str,
    w: int,
    h: int,
    size: int,
    weight: int,
    line_spacing: float,
    balance: bool,
    breaks: str = "",
) -> tuple[str, ...] | None:
    lines: list[str] = []
    for paragraph in text.split("\n"):
        if balance:
            wrapped = _wrap_balanced(paragraph, size, weight, w, breaks)
        else:
            wrapped = _wrap_checked(paragraph, size, weight, w)
        if wrapped is None:
            return None
        lines += wrapped
        if block_height(size, weight, len(lines), line_spacing) > h:
            return None
    return tuple(lines)


def _largest(fits: Callable[[int], object | None], low: int, high: int) -> tuple[int, Any] | None:
    """The largest size in low..high that fits (fitting is monotonic in practice)."""
    if high < low:
        return None
    result = fits(high)
    if result is not None:
        return high, result
    found = fits(low)
    if found is None:
        return None
    best = (low, found)
    while high - low > 1:
        mid = (low + high) // 2
        result = fits(mid)
        if result is not None:
            low, best = mid, (mid, result)
        else:
            high = mid
    return best


def _too_long(field_name: str) -> ValidationFailed:
    label = FIELD_LABELS.get(field_name, field_name)
    return ValidationFailed(
        [FieldProblem(field_name, f"{label}太长，缩到最小字号也放不下，请删减文字")],
        summary="海报排不下",
    )


@lru_cache(maxsize=4096)
def _fit_cached(
    text: str,
    w: int,
    h: int,
    max_size: int,
    min_size: int,
    weight: int,
    line_spacing: float,
    balance: bool,
    max_lines: int,
    breaks: str,
    field_name: str,
) -> FittedText:
    def fits(size: int) -> tuple[str, ...] | None:
        return _lines_at(text, w, h, size, weight, line_spacing, balance, breaks)

    def fits_preferred(size: int) -> tuple[str, ...] | None:
        lines = fits(size)
        return lines if lines is not None and len(lines) <= max_lines else None

    size, lines, below_min = _search_size(
        fits, fits_preferred if max_lines > 0 else None, max_size, min_size, field_name
    )
    return FittedText(size, lines, below_min)


def _search_size(
    fits: Callable[[int], Any],
    fits_preferred: Callable[[int], Any] | None,
    max_size: int,
    min_size: int,
    field_name: str,
) -> tuple[int, Any, bool]:
    """The largest size that fits: first within the preferred line count (if any) at no
    more than 20% smaller, then any line count down to `min_size`, then below it to the
    floor (flagged); refused when nothing fits even there."""
    floor = min(FLOOR_SIZE, max_size)  # a template scaled down may ask for less than 12
    min_size = max(floor, min(min_size, max_size))
    found = None
    if fits_preferred is not None:
        found = _largest(fits_preferred, max(min_size, _preferred_floor(max_size)), max_size)
    if found is None:
        found = _largest(fits, min_size, max_size)
    if found is not None:
        return found[0], found[1], False
    found = _largest(fits, floor, min_size - 1)
    if found is not None:
        return found[0], found[1], True
    raise _too_long(field_name)


def _preferred_floor(max_size: int) -> int:
    # Fewer lines are worth a smaller size only up to a point: past it, wrapping reads better.
    return math.ceil(max_size * _PREFER_SHRINK)


def fit_text(
    text: str,
    box: Box,
    *,
    max_size: int,
    min_size: int,
    weight: int = 400,
    line_spacing: float = 1.3,
    balance: bool = False,
    max_lines: int = 0,
    break_after: str = "",
    field: str = "text",
) -> FittedText:
    """The largest font size (≤ max_size) at which `text` fits `box`, and its lines.

    Chinese wraps between any two characters, Latin and numbers between words (a word longer
    than the line is broken), explicit newlines are kept, and closing punctuation never
    starts a line. Below `min_size` it keeps shrinking to 12 px; if even that cannot hold
    the text it raises ValidationFailed naming `field`. Nothing is ever dropped: the lines
    joined are the text without the whitespace at the breaks. `balance` evens out the line
    lengths (preferring, for two lines, a break after punctuation, a space between Chinese
    phrases or a character of `break_after`); `max_lines` prefers a smaller size on fewer
    lines when that costs at most a fifth of the size.
    """
    return _fit_cached(
        text.replace("\r\n", "\n"),
        box.w,
        box.h,
        max_size,
        min_size,
        weight,
        line_spacing,
        balance,
        max_lines,
        break_after,
        field,
    )


def bullet_indent(size: int, bullet: str) -> int:
    return round(size * (0.9 if bullet == "dot" else 1.5))


@lru_cache(maxsize=1024)
def fit_list(items: tuple[str, ...], style: BenefitsBox) -> FittedList:
    """The benefits block: one size for every item, each wrapped beside its bullet
    (`style.max_lines` is per item)."""
    box = style.text_box

    def fits(size: int, max_lines: int = 0) -> tuple[tuple[str, ...], ...] | None:
        width = box.w - bullet_indent(size, style.bullet)
        gap = round(size * style.item_spacing)
        wrapped: list[tuple[str, ...]] = []
        height = -gap
        for item in items:
            lines = _lines_at(
                item,
                width,
                box.h,
                size,
                style.weight,
                style.line_spacing,
                style.balance,
                style.break_after,
            )
            if lines is None or (max_lines and len(lines) > max_lines):
                return None
            height += gap + block_height(size, style.weight, len(lines), style.line_spacing)
            if height > box.h:
                return None
            wrapped.append(lines)
        return tuple(wrapped)

    preferred = (lambda size: fits(size, style.max_lines)) if style.max_lines > 0 else None
    size, items_fitted, below_min = _search_size(
        fits, preferred, style.max_size, style.min_size, "benefits"
    )
    return FittedList(size, items_fitted, below_min)
