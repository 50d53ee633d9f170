"""Checking a poster's content before drawing (内容校验): every text within its limits and
drawable in the font, every colour, gradient and picture usable."""

from __future__ import annotations

import math
from dataclasses import replace
from functools import lru_cache
from typing import Any

from core.platform.errors import FieldProblem
from core.posters.fonts import font
from core.posters.templates import (
    FIELD_LABELS,
    HEX_COLOR,
    LIMITS,
    MAX_BENEFITS,
    QR_POSITIONS,
    Gradient,
    PosterContent,
    PosterTemplate,
)
from core.posters.uploads import MAX_UPLOAD_BYTES


@lru_cache(maxsize=1)
def _notdef_mask() -> bytes:
    # A noncharacter is never in a font: what FreeType draws for it is the .notdef box.
    return bytes(font(32).getmask("\U0010ffff"))


@lru_cache(maxsize=8192)
def has_glyph(char: str) -> bool:
    """Whether the poster font draws `char` (otherwise it would print as a box, 豆腐块)."""
    if char.isspace():
        return True
    mask = font(32).getmask(char)
    return bytes(mask) != _notdef_mask() or mask.size == (0, 0)


def _text_problems(name: str, text: str, limit: int, *, required: bool) -> list[FieldProblem]:
    label = FIELD_LABELS.get(name, name)
    clean = text.strip() if isinstance(text, str) else ""
    if not isinstance(text, str):
        return [FieldProblem(name, f"{label}须为文字")]
    if required and not clean:
        return [FieldProblem(name, f"请填写{label}")]
    problems = []
    length = len(clean.replace("\n", ""))
    if length > limit:
        problems.append(FieldProblem(name, f"{label}最多 {limit} 个字（现有 {length} 个）"))
    missing = sorted({ch for ch in clean if not has_glyph(ch)})
    if missing:
        shown = "".join(missing[:5])
        problems.append(FieldProblem(name, f"{label}含有海报字体无法显示的字符：{shown}"))
    return problems


def _paint_problems(name: str, paint: Any) -> list[FieldProblem]:
    label = FIELD_LABELS[name]
    if isinstance(paint, str):
        return (
            [] if HEX_COLOR.match(paint) else [FieldProblem(name, f"{label}颜色须为 #RRGGBB 格式")]
        )
    if isinstance(paint, Gradient):
        if not 2 <= len(paint.colors) <= 3:
            return [FieldProblem(name, f"{label}渐变须有 2–3 种颜色")]
        if not all(isinstance(c, str) and HEX_COLOR.match(c) for c in paint.colors):
            return [FieldProblem(name, f"{label}渐变颜色须为 #RRGGBB 格式")]
        if not math.isfinite(paint.angle):
            return [FieldProblem(name, f"{label}渐变角度无效")]
        return []
    if isinstance(paint, bytes):
        if not paint:
            return [FieldProblem(name, f"{label}图片为空")]
        if len(paint) > MAX_UPLOAD_BYTES:
            return [
                FieldProblem(name, f"{label}图片不能超过 {MAX_UPLOAD_BYTES // 1024 // 1024} MB")
            ]
        return []
    return [FieldProblem(name, f"{label}须为颜色、渐变或图片")]


def validate_content(template: PosterTemplate, content: PosterContent) -> list[FieldProblem]:
    """Everything wrong with `content` for `template`, each with a Chinese message; empty
    when it can be rendered (text that cannot fit its box is only found by rendering)."""
    problems = [
        *_text_problems("title", content.title, LIMITS["title"], required=True),
        *_text_problems("subtitle", content.subtitle, LIMITS["subtitle"], required=False),
        *_text_problems("date_line", content.date_line, LIMITS["date_line"], required=False),
        *_text_problems("outlet_name", content.outlet_name, LIMITS["outlet_name"], required=True),
        *_text_problems("staff_name", content.staff_name, LIMITS["staff_name"], required=False),
    ]
    benefits = [b for b in content.benefits if isinstance(b, str) and b.strip()]
    if not benefits:
        problems.append(FieldProblem("benefits", "请至少填写 1 条权益"))
    elif len(content.benefits) > MAX_BENEFITS:
        problems.append(FieldProblem("benefits", f"权益最多 {MAX_BENEFITS} 条"))
    for number, benefit in enumerate(content.benefits, start=1):
        for problem in _text_problems("benefits", benefit, LIMITS["benefit"], required=True):
            problems.append(replace(problem, message=f"第 {number} 条{problem.message}"))
    if content.qr_png is None and not (content.qr_url and content.qr_url.strip()):
        problems.append(FieldProblem("qr", "缺少二维码：请提供活码链接或二维码图片"))
    if content.qr_url is not None and len(content.qr_url) > 500:
        problems.append(FieldProblem("qr", "二维码链接最多 500 个字符"))
    if content.qr_png is not None and not content.qr_png:
        problems.append(FieldProblem("qr", "二维码图片为空"))
    if content.background is not None:
        problems += _paint_problems("background", content.background)
    if content.logo is not None:
        problems += _paint_problems("logo", content.logo)
    if content.qr_position is not None:
        if content.qr_position not in QR_POSITIONS:
            problems.append(FieldProblem("qr_position", "二维码位置只能是底部居中、左下角或右下角"))
        elif content.qr_position not in dict(template.footers):
            problems.append(
                FieldProblem("qr_position", f"模板「{template.name}」不支持这个二维码位置")
            )
    return problems
