"""Posters (海报): templates read from `assets/poster_templates/*.json`, campaign text fitted
into the template's boxes, and the result as an image, PNG or PDF — one at a time, or a
batch of personalised posters rendered in a process pool.

Pure functions: no database, no Streamlit. A batch usually differs only in the outlet name,
the staff name and the QR code, so everything else is drawn once per process (the "static
layer") and each poster only draws its own footer and encodes the rows below its top.
"""

from __future__ import annotations

import io
import json
import math
import multiprocessing
import re
import struct
import sys
import threading
import types
import unicodedata
import warnings
import zlib
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, fields, is_dataclass, replace
from functools import lru_cache
from multiprocessing import forkserver
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageOps

from core.errors import DomainError, FieldProblem, NotFound, ValidationFailed
from core.fonts import BOLD, font
from core.qr import qr_in_box

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "assets" / "poster_templates"
QR_POSITIONS = ("bottom_center", "bottom_right", "bottom_left")
QR_POSITION_LABELS = {
    "bottom_center": "底部居中",
    "bottom_right": "右下角",
    "bottom_left": "左下角",
}
FLOOR_SIZE = 12  # px; below this, text on a phone-sized poster is unreadable anyway
_PREFER_SHRINK = 0.8  # `max_lines` may cost at most 20% of the size
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
MAX_UPLOAD_PIXELS = 20_000_000
PDF_DPI = 150

LIMITS = {
    "title": 30,
    "subtitle": 40,
    "benefit": 40,
    "date_line": 40,
    "outlet_name": 30,
    "staff_name": 20,
}
MAX_BENEFITS = 6
FIELD_LABELS = {
    "title": "标题",
    "subtitle": "副标题",
    "benefits": "权益",
    "date_line": "活动时间",
    "outlet_name": "网点名称",
    "staff_name": "客户经理",
    "qr": "二维码",
    "background": "背景",
    "logo": "标志",
    "qr_position": "二维码位置",
    "text": "文字",
}

_HEX = re.compile(r"^#[0-9A-Fa-f]{6}([0-9A-Fa-f]{2})?$")
_SUPERSAMPLE = 3  # shapes are drawn 3x and scaled down: smooth curves without a vector library


# ---------------------------------------------------------------------------------------------
# Template and content


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    w: int
    h: int

    @property
    def right(self) -> int:
        return self.x + self.w

    @property
    def bottom(self) -> int:
        return self.y + self.h

    def overlaps(self, other: Box) -> bool:
        return (
            self.x < other.right
            and other.x < self.right
            and self.y < other.bottom
            and other.y < self.bottom
        )


@dataclass(frozen=True)
class Gradient:
    """A linear gradient: 2–3 colours spread evenly, `angle` in degrees as in CSS
    (180 = top to bottom, 90 = left to right). Colours may carry alpha (#RRGGBBAA)."""

    colors: tuple[str, ...]
    angle: float = 180.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "colors", tuple(self.colors))


Paint = str | Gradient


@dataclass(frozen=True)
class Backdrop:
    """A rounded plate drawn behind a text box's lines, hugging their width (a pill)."""

    color: str
    radius: int = 0
    pad_x: int = 0
    pad_y: int = 0


@dataclass(frozen=True)
class TextBox:
    x: int
    y: int
    w: int
    h: int
    max_size: int
    min_size: int
    weight: int = 400
    color: str = "#FFFFFF"
    align: str = "left"
    valign: str = "top"
    line_spacing: float = 1.3
    balance: bool = False  # even out line lengths (titles): no single orphaned character
    # Prefer at most this many lines (0: any) while min_size allows; more only if needed.
    max_lines: int = 0
    # Characters after which a two-line break reads naturally, besides punctuation: for
    # outlet names "市区县镇路" gives "衡阳市蒸湘区 / 解放大道营业所".
    break_after: str = ""
    prefix: str = ""  # put before a non-empty value, e.g. "客户经理 "
    backdrop: Backdrop | None = None

    @property
    def box(self) -> Box:
        return Box(self.x, self.y, self.w, self.h)

    @property
    def text_box(self) -> Box:
        """Where the lines may go: inside the backdrop's padding."""
        pad_x, pad_y = (self.backdrop.pad_x, self.backdrop.pad_y) if self.backdrop else (0, 0)
        return Box(self.x + pad_x, self.y + pad_y, self.w - 2 * pad_x, self.h - 2 * pad_y)


@dataclass(frozen=True)
class BenefitsBox(TextBox):
    bullet: str = "number"  # number | dot | check
    bullet_color: str = "#007A3D"
    bullet_text_color: str = "#FFFFFF"
    item_spacing: float = 0.55  # extra space between items, in em


@dataclass(frozen=True)
class Label(TextBox):
    """Fixed text that belongs to the template ("会员专享权益")."""

    text: str = ""


@dataclass(frozen=True)
class Shape:
    """Decoration: `rect` (rounded with `radius`), `ellipse`, or `polygon` (`points`)."""

    kind: str
    x: int = 0
    y: int = 0
    w: int = 0
    h: int = 0
    points: tuple[tuple[int, int], ...] = ()
    fill: Paint | None = None
    opacity: float = 1.0
    radius: int = 0
    outline: str | None = None
    outline_width: int = 0

    @property
    def box(self) -> Box:
        if self.kind == "polygon":
            xs, ys = [p[0] for p in self.points], [p[1] for p in self.points]
            return Box(min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))
        return Box(self.x, self.y, self.w, self.h)


@dataclass(frozen=True)
class QrBox:
    x: int
    y: int
    size: int
    plate: str = "#FFFFFF"  # the card the code sits on; its padding is also quiet zone
    padding: int = 20
    radius: int = 24
    caption: Label | None = None

    @property
    def plate_box(self) -> Box:
        p = self.padding
        return Box(self.x - p, self.y - p, self.size + 2 * p, self.size + 2 * p)


@dataclass(frozen=True)
class LogoBox:
    x: int
    y: int
    w: int
    h: int
    align: str = "left"
    fallback_text: str = "中国邮政储蓄银行"
    fallback_color: str = "#FFFFFF"
    fallback_weight: int = BOLD

    @property
    def box(self) -> Box:
        return Box(self.x, self.y, self.w, self.h)


@dataclass(frozen=True)
class FooterLayout:
    """Where the code and the personal lines go for one QR position. Without a
    `staff_name` box the staff name joins the outlet line ("麓谷支局 · 张三")."""

    qr: QrBox
    outlet_name: TextBox
    staff_name: TextBox | None = None
    shapes: tuple[Shape, ...] = ()
    labels: tuple[Label, ...] = ()

    @property
    def top(self) -> int:
        """The first row a personalised poster changes."""
        tops = [self.qr.y, self.outlet_name.y]
        if self.staff_name is not None:
            tops.append(self.staff_name.y)
        return min(tops)


@dataclass(frozen=True)
class PosterContent:
    title: str
    subtitle: str
    benefits: tuple[str, ...]
    # Defaults so a campaign's shared text can be built first and personalised with
    # dataclasses.replace(outlet_name=…, qr_url=…) per poster; rendering still requires both.
    date_line: str = ""
    outlet_name: str = ""
    staff_name: str = ""
    qr_url: str | None = None
    qr_png: bytes | None = None  # a ready QR image instead of a URL
    # "#RRGGBB", a Gradient, or the bytes of an uploaded (validated) PNG/JPEG/WebP photo.
    background: str | Gradient | bytes | None = None
    logo: bytes | None = None
    qr_position: str | None = None  # one of QR_POSITIONS; None = the template's

    def __post_init__(self) -> None:
        # Lists are easy to pass by mistake; a tuple keeps the content hashable (cache key).
        object.__setattr__(self, "benefits", tuple(self.benefits))


@dataclass(frozen=True)
class PosterTemplate:
    id: str
    name: str
    width: int
    height: int
    background: Paint
    title: TextBox
    subtitle: TextBox
    benefits: BenefitsBox
    date_line: TextBox
    logo: LogoBox
    qr_position: str
    footers: tuple[tuple[str, FooterLayout], ...]
    shapes: tuple[Shape, ...] = ()
    labels: tuple[Label, ...] = ()
    # Laid over an uploaded photo so the template's text colours stay legible on it.
    photo_overlay: Paint | None = None
    description: str = ""
    sample: PosterContent | None = None

    def footer(self, position: str | None = None) -> FooterLayout:
        wanted = position or self.qr_position
        for key, layout in self.footers:
            if key == wanted:
                return layout
        raise NotFound(f"海报模板「{self.name}」不支持二维码位置：{wanted}")

    def scaled(self, factor: float) -> PosterTemplate:
        """The same design at `factor` times the size (750/1080 gives 750 × 1333), laid out
        again at that size rather than resampled, so text stays crisp."""
        if factor == 1:
            return self
        # Below half size the template's small print would have to go under 12 px.
        if not 0.5 <= factor <= 4:
            raise ValueError(f"scale {factor} outside 0.5..4")
        return _scale(self, factor)


# Every length in a template, in pixels; weights, spacings, opacities and angles stay.
_LENGTHS = frozenset(
    [
        "x",
        "y",
        "w",
        "h",
        "width",
        "height",
        "size",
        "max_size",
        "min_size",
        "radius",
        "padding",
        "pad_x",
        "pad_y",
        "outline_width",
    ]
)


def _scale(value: Any, factor: float) -> Any:
    if isinstance(value, PosterContent):
        return value
    if is_dataclass(value) and not isinstance(value, type):
        changes = {}
        for f in fields(value):
            current = getattr(value, f.name)
            if f.name in _LENGTHS and isinstance(current, int):
                changes[f.name] = round(current * factor)
            elif f.name == "points":
                changes[f.name] = tuple((round(x * factor), round(y * factor)) for x, y in current)
            else:
                changes[f.name] = _scale(current, factor)
        return replace(value, **changes)
    if isinstance(value, tuple):
        return tuple(_scale(item, factor) for item in value)
    return value


@dataclass(frozen=True)
class PosterJob:
    """One poster of a batch by template id (cheaper to send to a worker than the template),
    rendered at `scale` of the template's size; `name` is the caller's (e.g. its ZIP path)."""

    template_id: str
    content: PosterContent
    scale: float = 1.0
    name: str = ""

    def resolve(self) -> tuple[PosterTemplate, PosterContent]:
        return _template_at(self.template_id, self.scale), self.content


@lru_cache(maxsize=32)
def _template_at(template_id: str, scale: float) -> PosterTemplate:
    return get_template(template_id).scaled(scale)


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


# ---------------------------------------------------------------------------------------------
# Loading templates


class TemplateError(ValueError):
    """A template file is malformed (a mistake of whoever edited the JSON)."""


def _color(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _HEX.match(value):
        raise TemplateError(f"{where}: expected a colour #RRGGBB or #RRGGBBAA, got {value!r}")
    return value.upper()


def _paint(value: Any, where: str) -> Paint:
    if isinstance(value, dict):
        if value.get("type", "linear") != "linear":
            raise TemplateError(f"{where}: only linear gradients are supported")
        colors = value.get("colors")
        if not isinstance(colors, list) or not 2 <= len(colors) <= 3:
            raise TemplateError(f"{where}: a gradient needs 2–3 colours")
        return Gradient(tuple(_color(c, where) for c in colors), float(value.get("angle", 180.0)))
    return _color(value, where)


def _build(cls: type, data: Any, where: str, **nested: Any) -> Any:
    """A frozen dataclass from a JSON object, refusing unknown keys (typos would pass
    silently otherwise)."""
    if not isinstance(data, dict):
        raise TemplateError(f"{where}: expected an object")
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise TemplateError(f"{where}: unknown keys {sorted(unknown)}")
    values = dict(data)
    for key in ("color", "fallback_color", "bullet_color", "bullet_text_color", "plate"):
        if key in values:
            values[key] = _color(values[key], f"{where}.{key}")
    if "backdrop" in values and values["backdrop"] is not None:
        values["backdrop"] = _build(Backdrop, values["backdrop"], f"{where}.backdrop")
        values["backdrop"] = replace(
            values["backdrop"], color=_color(values["backdrop"].color, f"{where}.backdrop")
        )
    if values.get("align", "left") not in ("left", "center", "right"):
        raise TemplateError(f"{where}.align: left, center or right")
    if values.get("valign", "top") not in ("top", "middle", "bottom"):
        raise TemplateError(f"{where}.valign: top, middle or bottom")
    if values.get("bullet", "number") not in ("number", "dot", "check"):
        raise TemplateError(f"{where}.bullet: number, dot or check")
    values.update(nested)
    try:
        return cls(**values)
    except TypeError as exc:
        raise TemplateError(f"{where}: {exc}") from exc


def _shape(data: Any, where: str) -> Shape:
    if not isinstance(data, dict):
        raise TemplateError(f"{where}: expected an object")
    nested: dict[str, Any] = {}
    if "fill" in data and data["fill"] is not None:
        nested["fill"] = _paint(data["fill"], f"{where}.fill")
    if "outline" in data and data["outline"] is not None:
        nested["outline"] = _color(data["outline"], f"{where}.outline")
    if "points" in data:
        nested["points"] = tuple((int(x), int(y)) for x, y in data["points"])
    shape = _build(Shape, data, where, **nested)
    if shape.kind not in ("rect", "ellipse", "polygon"):
        raise TemplateError(f"{where}.kind: rect, ellipse or polygon")
    if shape.kind == "polygon" and len(shape.points) < 3:
        raise TemplateError(f"{where}: a polygon needs 3 points or more")
    return shape


def _labels(items: Any, where: str) -> tuple[Label, ...]:
    return tuple(_build(Label, item, f"{where}[{i}]") for i, item in enumerate(items or ()))


def _footer(data: Any, where: str) -> FooterLayout:
    if not isinstance(data, dict):
        raise TemplateError(f"{where}: expected an object")
    qr_data = dict(data.get("qr") or {})
    caption = qr_data.pop("caption", None)
    qr = _build(
        QrBox,
        qr_data,
        f"{where}.qr",
        caption=_build(Label, caption, f"{where}.qr.caption") if caption else None,
    )
    staff = data.get("staff_name")
    return _build(
        FooterLayout,
        data,
        where,
        qr=qr,
        outlet_name=_build(TextBox, data.get("outlet_name"), f"{where}.outlet_name"),
        staff_name=_build(TextBox, staff, f"{where}.staff_name") if staff else None,
        shapes=tuple(
            _shape(s, f"{where}.shapes[{i}]") for i, s in enumerate(data.get("shapes", ()))
        ),
        labels=_labels(data.get("labels"), f"{where}.labels"),
    )


def parse_template(data: dict[str, Any], where: str = "template") -> PosterTemplate:
    """A template from its JSON object (see assets/poster_templates/README.md)."""
    footers = data.get("footers")
    if not isinstance(footers, dict) or not footers:
        raise TemplateError(f"{where}.footers: one layout per QR position is required")
    for key in footers:
        if key not in QR_POSITIONS:
            raise TemplateError(f"{where}.footers: unknown position {key!r}")
    sample = data.get("sample")
    template = _build(
        PosterTemplate,
        data,
        where,
        background=_paint(data.get("background"), f"{where}.background"),
        photo_overlay=_paint(data["photo_overlay"], f"{where}.photo_overlay")
        if data.get("photo_overlay")
        else None,
        title=_build(TextBox, data.get("title"), f"{where}.title"),
        subtitle=_build(TextBox, data.get("subtitle"), f"{where}.subtitle"),
        benefits=_build(BenefitsBox, data.get("benefits"), f"{where}.benefits"),
        date_line=_build(TextBox, data.get("date_line"), f"{where}.date_line"),
        logo=_build(LogoBox, data.get("logo"), f"{where}.logo"),
        footers=tuple(
            (key, _footer(footers[key], f"{where}.footers.{key}"))
            for key in QR_POSITIONS
            if key in footers
        ),
        shapes=tuple(
            _shape(s, f"{where}.shapes[{i}]") for i, s in enumerate(data.get("shapes", ()))
        ),
        labels=_labels(data.get("labels"), f"{where}.labels"),
        sample=_build(PosterContent, sample, f"{where}.sample", benefits=tuple(sample["benefits"]))
        if sample
        else None,
    )
    template.footer()  # the default position must have a layout
    return template


@lru_cache(maxsize=1)
def _load_all(directory: str) -> dict[str, PosterTemplate]:
    templates: dict[str, PosterTemplate] = {}
    for path in sorted(Path(directory).glob("*.json")):
        template = parse_template(json.loads(path.read_text(encoding="utf-8")), path.name)
        if template.id in templates:
            raise TemplateError(f"{path.name}: template id {template.id!r} used twice")
        templates[template.id] = template
    return templates


def load_templates() -> dict[str, PosterTemplate]:
    """Every template under assets/poster_templates, keyed by id, in file-name order."""
    return dict(_load_all(str(TEMPLATE_DIR)))


def get_template(template_id: str) -> PosterTemplate:
    try:
        return _load_all(str(TEMPLATE_DIR))[template_id]
    except KeyError:
        raise NotFound(f"没有这个海报模板：{template_id}") from None


def sample_content(
    template: PosterTemplate, *, qr_url: str = "https://yh.example.cn/c/demo"
) -> PosterContent:
    """The template's example text (for previews), with a QR code for `qr_url`."""
    sample = template.sample or PosterContent(
        title=template.name,
        subtitle="",
        benefits=("示例权益",),
        date_line="",
        outlet_name="示例网点",
    )
    return replace(sample, qr_url=sample.qr_url or qr_url)


# ---------------------------------------------------------------------------------------------
# Validating content and uploads


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
        return [] if _HEX.match(paint) else [FieldProblem(name, f"{label}颜色须为 #RRGGBB 格式")]
    if isinstance(paint, Gradient):
        if not 2 <= len(paint.colors) <= 3:
            return [FieldProblem(name, f"{label}渐变须有 2–3 种颜色")]
        if not all(isinstance(c, str) and _HEX.match(c) for c in paint.colors):
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


_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
)


def _sniff(data: bytes) -> str | None:
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def load_upload_image(
    data: bytes, *, max_bytes: int = MAX_UPLOAD_BYTES, max_pixels: int = MAX_UPLOAD_PIXELS
) -> Image.Image:
    """An uploaded background or logo as a loaded RGB/RGBA image, or ValidationFailed.

    Only PNG, JPEG and WebP, judged by the bytes (not the file name); the pixel count is
    checked from the header before anything is decoded, so a small file claiming a huge
    image (a decompression bomb) never reaches the decoder.
    """

    def refuse(message: str) -> ValidationFailed:
        return ValidationFailed([FieldProblem("image", message)], summary="图片无法使用")

    if not isinstance(data, bytes | bytearray) or not data:
        raise refuse("图片文件为空")
    if len(data) > max_bytes:
        raise refuse(
            f"图片不能超过 {max_bytes / 1024 / 1024:g} MB（当前 {len(data) / 1024 / 1024:.1f} MB）"
        )
    kind = _sniff(bytes(data[:16]))
    if kind is None:
        raise refuse("只支持 PNG、JPEG 或 WebP 格式的图片")
    too_big = f"图片像素过多，请缩小到 {max_pixels // 1_000_000} 百万像素以内"
    try:
        with warnings.catch_warnings():
            # Pillow only warns between its limit and twice it; make that a refusal too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            probe = Image.open(io.BytesIO(data), formats=[kind])
            width, height = probe.size
            if width <= 0 or height <= 0 or width * height > max_pixels:
                raise refuse(too_big)
            probe.verify()  # checksums and chunk structure, without decoding pixels
            image = Image.open(io.BytesIO(data), formats=[kind])
            image.load()  # a cut-off file raises here (unless LOAD_TRUNCATED_IMAGES is set)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise refuse(too_big) from None
    except ValidationFailed:
        raise
    except Exception:
        # Pillow reports broken files as OSError, SyntaxError, ValueError, struct.error, …
        raise refuse("图片文件已损坏或不完整，请重新导出后上传") from None
    image = ImageOps.exif_transpose(image)  # phone photos are stored sideways
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    return image.convert("RGBA" if has_alpha else "RGB")


# ---------------------------------------------------------------------------------------------
# Fitting text

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
    return _bind_numbers(_glue([text for _, text in raw]))


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

    floor = min(FLOOR_SIZE, max_size)  # a template scaled down may ask for less than 12
    min_size = max(floor, min(min_size, max_size))
    found = None
    if max_lines > 0:
        found = _largest(fits_preferred, max(min_size, _preferred_floor(max_size)), max_size)
    if found is None:
        found = _largest(fits, min_size, max_size)
    if found is not None:
        return FittedText(found[0], found[1])
    found = _largest(fits, floor, min_size - 1)
    if found is not None:
        return FittedText(found[0], found[1], below_min=True)
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

    floor = min(FLOOR_SIZE, style.max_size)
    min_size = max(floor, min(style.min_size, style.max_size))
    found = None
    if style.max_lines > 0:
        low = max(min_size, _preferred_floor(style.max_size))
        found = _largest(lambda size: fits(size, style.max_lines), low, style.max_size)
    if found is None:
        found = _largest(fits, min_size, style.max_size)
    if found is not None:
        return FittedList(found[0], found[1])
    found = _largest(fits, floor, min_size - 1)
    if found is not None:
        return FittedList(found[0], found[1], below_min=True)
    raise _too_long("benefits")


# ---------------------------------------------------------------------------------------------
# Drawing


def _rgba(color: str, opacity: float = 1.0) -> tuple[int, int, int, int]:
    value = color.lstrip("#")
    r, g, b = (int(value[i : i + 2], 16) for i in (0, 2, 4))
    a = int(value[6:8], 16) if len(value) == 8 else 255
    return r, g, b, round(a * opacity)


@lru_cache(maxsize=8)
def _gradient(width: int, height: int, gradient: Gradient) -> Image.Image:
    """An RGBA image of the gradient (CSS geometry: the line through the centre at `angle`,
    long enough that the corners get the end colours)."""
    angle = math.radians(gradient.angle)
    dx, dy = math.sin(angle), -math.cos(angle)
    span = abs(width * dx) + abs(height * dy) or 1.0
    xs = (np.arange(width, dtype=np.float32) + 0.5 - width / 2) * dx
    ys = (np.arange(height, dtype=np.float32) + 0.5 - height / 2) * dy
    t = (ys[:, None] + xs[None, :]) / span + 0.5
    stops = np.linspace(0.0, 1.0, len(gradient.colors))
    colors = np.array([_rgba(c) for c in gradient.colors], dtype=np.float32)
    steps = 1024
    ramp = np.linspace(0.0, 1.0, steps)
    lut = np.stack([np.interp(ramp, stops, colors[:, c]) for c in range(4)], axis=1)
    lut = np.round(lut).astype(np.uint8)
    index = np.clip((t * (steps - 1)).round(), 0, steps - 1).astype(np.intp)
    return Image.fromarray(lut[index], "RGBA")


def _fill_image(
    paint: Paint, width: int, height: int, opacity: float
) -> tuple[Image.Image, Image.Image]:
    """(RGB fill, alpha) for a paint over a width x height area."""
    if isinstance(paint, Gradient):
        rgba = _gradient(width, height, paint)
        alpha = rgba.getchannel("A")
        if opacity < 1:
            alpha = alpha.point(lambda v: round(v * opacity))
        return rgba.convert("RGB"), alpha
    r, g, b, a = _rgba(paint, opacity)
    return Image.new("RGB", (width, height), (r, g, b)), Image.new("L", (width, height), a)


def _shape_mask(shape: Shape, box: Box, *, outline: bool) -> Image.Image:
    """An anti-aliased coverage mask of the shape over its box (drawn large, scaled down)."""
    s = _SUPERSAMPLE
    big = Image.new("L", (max(1, box.w * s), max(1, box.h * s)), 0)
    draw = ImageDraw.Draw(big)
    width = shape.outline_width * s
    style: dict[str, Any] = {"outline": 255, "width": width} if outline else {"fill": 255}
    rect = (0, 0, box.w * s - 1, box.h * s - 1)
    if shape.kind == "ellipse":
        draw.ellipse(rect, **style)
    elif shape.kind == "polygon":
        points = [((x - box.x) * s, (y - box.y) * s) for x, y in shape.points]
        if outline:
            draw.line([*points, points[0]], fill=255, width=width, joint="curve")
        else:
            draw.polygon(points, fill=255)
    else:
        draw.rounded_rectangle(rect, radius=shape.radius * s, **style)
    return big.resize((max(1, box.w), max(1, box.h)), Image.Resampling.BOX)


def _draw_shape(canvas: Image.Image, shape: Shape, offset_y: int = 0) -> None:
    box = shape.box
    if box.w <= 0 or box.h <= 0:
        return
    # Shapes may bleed off the canvas (a big circle in a corner): draw, then clip by paste.
    at = (box.x, box.y - offset_y)
    if shape.fill is not None:
        fill, alpha = _fill_image(shape.fill, box.w, box.h, shape.opacity)
        mask = ImageChops.multiply(alpha, _shape_mask(shape, box, outline=False))
        canvas.paste(fill, at, mask)
    if shape.outline and shape.outline_width > 0:
        fill, alpha = _fill_image(shape.outline, box.w, box.h, shape.opacity)
        mask = ImageChops.multiply(alpha, _shape_mask(shape, box, outline=True))
        canvas.paste(fill, at, mask)


def _rounded(canvas: Image.Image, box: Box, color: str, radius: int, offset_y: int = 0) -> None:
    _draw_shape(
        canvas,
        Shape(kind="rect", x=box.x, y=box.y, w=box.w, h=box.h, fill=color, radius=radius),
        offset_y,
    )


def _line_x(style: TextBox, box: Box, width: float) -> float:
    if style.align == "center":
        return box.x + (box.w - width) / 2
    if style.align == "right":
        return box.right - width
    return box.x


def _draw_fitted(
    canvas: Image.Image, style: TextBox, fitted: FittedText, offset_y: int = 0
) -> None:
    if not fitted.lines:
        return
    box = style.text_box
    face = font(fitted.size, style.weight)
    pitch = round(fitted.size * style.line_spacing)
    height = block_height(fitted.size, style.weight, len(fitted.lines), style.line_spacing)
    slack = box.h - height
    top = box.y + {"top": 0, "middle": slack // 2, "bottom": slack}[style.valign] - offset_y
    widths = [face.getlength(line) for line in fitted.lines]
    if style.backdrop is not None:
        widest = max(widths)
        left = _line_x(style, box, widest)
        backdrop = style.backdrop
        plate = Box(
            math.floor(left) - backdrop.pad_x,
            top - backdrop.pad_y + offset_y,
            math.ceil(widest) + 2 * backdrop.pad_x,
            height + 2 * backdrop.pad_y,
        )
        _rounded(canvas, plate, backdrop.color, backdrop.radius, offset_y)
    draw = ImageDraw.Draw(canvas)
    fill = _rgba(style.color)
    for i, (line, width) in enumerate(zip(fitted.lines, widths, strict=True)):
        x = _line_x(style, box, width)
        draw.text((x, top + i * pitch), line, font=face, fill=fill, anchor="la")


def _draw_text(
    canvas: Image.Image, style: TextBox, text: str, field_name: str, offset_y: int = 0
) -> None:
    text = text.strip()
    if not text:
        return
    text = style.prefix + text
    box = style.text_box
    fitted = fit_text(
        text,
        box,
        max_size=style.max_size,
        min_size=style.min_size,
        weight=style.weight,
        line_spacing=style.line_spacing,
        balance=style.balance,
        max_lines=style.max_lines,
        break_after=style.break_after,
        field=field_name,
    )
    _draw_fitted(canvas, style, fitted, offset_y)


def _draw_check(draw: ImageDraw.ImageDraw, cx: float, cy: float, r: float, color: tuple) -> None:
    points = [
        (cx - r * 0.45, cy + r * 0.02),
        (cx - r * 0.1, cy + r * 0.35),
        (cx + r * 0.48, cy - r * 0.32),
    ]
    draw.line(points, fill=color, width=max(2, round(r * 0.26)), joint="curve")


def _draw_benefits(canvas: Image.Image, style: BenefitsBox, items: tuple[str, ...]) -> None:
    items = tuple(item.strip() for item in items if item.strip())
    if not items:
        return
    fitted = fit_list(items, style)
    size = fitted.size
    box = style.text_box
    face = font(size, style.weight)
    ascent, _ = face.getmetrics()
    pitch = round(size * style.line_spacing)
    gap = round(size * style.item_spacing)
    indent = bullet_indent(size, style.bullet)
    heights = [
        block_height(size, style.weight, len(lines), style.line_spacing) for lines in fitted.items
    ]
    total = sum(heights) + gap * (len(heights) - 1)
    slack = box.h - total
    y = box.y + {"top": 0, "middle": slack // 2, "bottom": slack}[style.valign]
    draw = ImageDraw.Draw(canvas)
    fill = _rgba(style.color)
    for number, (lines, height) in enumerate(zip(fitted.items, heights, strict=True), start=1):
        # Centre the bullet on the first line's ideographs: 0.38 em above the baseline.
        cy = y + ascent - 0.38 * size
        if style.bullet == "dot":
            r = size * 0.16
            dot = Box(round(box.x + size * 0.2), round(cy - r), round(2 * r), round(2 * r))
            _draw_shape(
                canvas,
                Shape(kind="ellipse", x=dot.x, y=dot.y, w=dot.w, h=dot.h, fill=style.bullet_color),
            )
        else:
            r = size * 0.5
            badge = Box(round(box.x), round(cy - r), round(2 * r), round(2 * r))
            _draw_shape(
                canvas,
                Shape(
                    kind="ellipse",
                    x=badge.x,
                    y=badge.y,
                    w=badge.w,
                    h=badge.h,
                    fill=style.bullet_color,
                ),
            )
            cx = badge.x + badge.w / 2
            mark = _rgba(style.bullet_text_color)
            if style.bullet == "check":
                _draw_check(draw, cx, badge.y + badge.h / 2, r, mark)
            else:
                digit = font(max(FLOOR_SIZE, round(size * 0.62)), BOLD)
                draw.text(
                    (cx, badge.y + badge.h / 2), str(number), font=digit, fill=mark, anchor="mm"
                )
        for i, line in enumerate(lines):
            draw.text((box.x + indent, y + i * pitch), line, font=face, fill=fill, anchor="la")
        y += height + gap


def _draw_logo(canvas: Image.Image, style: LogoBox, logo: bytes | None) -> None:
    if logo is None:
        wordmark = TextBox(
            x=style.x,
            y=style.y,
            w=style.w,
            h=style.h,
            max_size=style.h,
            min_size=FLOOR_SIZE,
            weight=style.fallback_weight,
            color=style.fallback_color,
            align=style.align,
            valign="middle",
            line_spacing=1.1,
        )
        _draw_text(canvas, wordmark, style.fallback_text, "logo")
        return
    mark = _decoded_upload(logo).copy()
    mark.thumbnail((style.w, style.h), Image.Resampling.LANCZOS)
    x = round(
        _line_x(TextBox(0, 0, style.w, style.h, 1, 1, align=style.align), style.box, mark.width)
    )
    y = style.y + (style.h - mark.height) // 2
    if mark.mode == "RGBA":
        canvas.paste(mark.convert("RGB"), (x, y), mark.getchannel("A"))
    else:
        canvas.paste(mark, (x, y))


@lru_cache(maxsize=4)
def _decoded_upload(data: bytes) -> Image.Image:
    """Uploads are decoded once per process: a batch repeats the same background and logo."""
    return load_upload_image(data)


def _background(template: PosterTemplate, override: str | Gradient | bytes | None) -> Image.Image:
    size = (template.width, template.height)
    paint = template.background if override is None else override
    if isinstance(paint, bytes):
        photo = ImageOps.fit(_decoded_upload(paint).convert("RGB"), size, Image.Resampling.LANCZOS)
        if template.photo_overlay is not None:
            fill, alpha = _fill_image(template.photo_overlay, *size, 1.0)
            photo.paste(fill, (0, 0), alpha)
        return photo
    if isinstance(paint, Gradient):
        return _gradient(*size, paint).convert("RGB")
    return Image.new("RGB", size, _rgba(paint)[:3])


@lru_cache(maxsize=4)
def _static_layer(
    template: PosterTemplate,
    title: str,
    subtitle: str,
    benefits: tuple[str, ...],
    date_line: str,
    background: str | Gradient | bytes | None,
    logo: bytes | None,
    position: str,
) -> Image.Image:
    """Everything but the outlet, the staff name and the code: shared by a whole batch."""
    footer = template.footer(position)
    canvas = _background(template, background)
    for shape in (*template.shapes, *footer.shapes):
        _draw_shape(canvas, shape)
    for label in (*template.labels, *footer.labels):
        _draw_text(canvas, label, label.text, "text")
    _draw_logo(canvas, template.logo, logo)
    _draw_text(canvas, template.title, title, "title")
    _draw_text(canvas, template.subtitle, subtitle, "subtitle")
    _draw_benefits(canvas, template.benefits, benefits)
    _draw_text(canvas, template.date_line, date_line, "date_line")
    _rounded(canvas, footer.qr.plate_box, footer.qr.plate, footer.qr.radius)
    if footer.qr.caption is not None:
        _draw_text(canvas, footer.qr.caption, footer.qr.caption.text, "text")
    return canvas


def _static_key(template: PosterTemplate, content: PosterContent) -> tuple[Any, ...]:
    """What the static layer depends on: a batch shares it, the personal fields are not in it."""
    position = content.qr_position or template.qr_position
    return (
        template,
        content.title,
        content.subtitle,
        content.benefits,
        content.date_line,
        content.background,
        content.logo,
        position,
    )


def _qr_tile(content: PosterContent, size: int) -> Image.Image:
    if content.qr_png is not None:
        code = _decoded_upload(content.qr_png)
        if code.mode == "RGBA":  # a transparent background must read as white, not black
            white = Image.new("RGB", code.size, (255, 255, 255))
            white.paste(code, (0, 0), code.getchannel("A"))
            code = white
        if code.size == (size, size):
            return code
        # Enlarging keeps modules sharp with NEAREST; shrinking averages them (BOX).
        method = Image.Resampling.NEAREST if code.width <= size else Image.Resampling.BOX
        return code.resize((size, size), method)
    assert content.qr_url is not None  # validate_content guarantees one of the two
    return qr_in_box(content.qr_url, size)


def _draw_personal(
    canvas: Image.Image, footer: FooterLayout, content: PosterContent, offset_y: int
) -> None:
    """The outlet, the staff name and the code, onto `canvas` whose row 0 is `offset_y`."""
    outlet, staff = content.outlet_name.strip(), content.staff_name.strip()
    if footer.staff_name is None and staff:
        outlet = f"{outlet} · {staff}"
    _draw_text(canvas, footer.outlet_name, outlet, "outlet_name", offset_y)
    if footer.staff_name is not None and staff:
        _draw_text(canvas, footer.staff_name, staff, "staff_name", offset_y)
    qr = footer.qr
    canvas.paste(_qr_tile(content, qr.size), (qr.x, qr.y - offset_y))


def _checked(template: PosterTemplate, content: PosterContent) -> None:
    problems = validate_content(template, content)
    if problems:
        raise ValidationFailed(problems, summary="海报内容有误")


def render_poster(template: PosterTemplate, content: PosterContent) -> Image.Image:
    """The poster as an RGB image of the template's size; ValidationFailed if the content is
    refused or some text cannot fit its box even at 12 px."""
    _checked(template, content)
    key = _static_key(template, content)
    canvas = _static_layer(*key).copy()
    _draw_personal(canvas, template.footer(key[-1]), content, 0)
    return canvas


def to_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def to_pdf(image: Image.Image, *, dpi: int = PDF_DPI) -> bytes:
    """One page, the poster at `dpi` (1080×1920 at 150 dpi is 18.3 × 32.5 cm)."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PDF", resolution=dpi)
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------
# PNG for batches. The rows above a poster's personal part are the same for the whole batch,
# so they are compressed once, hard (level 9), and every poster only compresses its own rows,
# quickly (level 3). Deflate allows that: the shared part ends on a byte boundary with a
# non-final block (Z_SYNC_FLUSH), the poster's part follows as more blocks of the same stream
# (it may refer back into the shared rows, which the decoder still has), and the stream's
# Adler-32 is carried on from the shared rows' checksum.

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_ZLIB_HEADER = b"\x78\xda"  # deflate, 32 KiB window, "maximum compression"
_WINDOW = 32 * 1024


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _filtered(image: Image.Image) -> bytes:
    """Rows with PNG filter 1 (Sub): each byte minus the one a pixel to its left. A row
    depends on nothing above it, so any run of rows can be compressed on its own."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)
    height, width, _ = pixels.shape
    rows = pixels.reshape(height, width * 3)
    out = np.empty((height, width * 3 + 1), dtype=np.uint8)
    out[:, 0] = 1
    out[:, 1:4] = rows[:, :3]
    np.subtract(rows[:, 3:], rows[:, :-3], out=out[:, 4:])
    return out.tobytes()


@dataclass(frozen=True)
class _PngPrefix:
    head: bytes  # signature, IHDR and the shared rows' IDAT
    checksum: int  # Adler-32 of the shared rows, filtered
    history: bytes  # their last 32 KiB, which the poster's rows may refer back to

    def finish(self, rest: Image.Image) -> bytes:
        data = _filtered(rest)
        if self.history:
            compressor = zlib.compressobj(3, zlib.DEFLATED, -15, zdict=self.history)
        else:
            compressor = zlib.compressobj(3, zlib.DEFLATED, -15)
        body = compressor.compress(data) + compressor.flush()
        trailer = struct.pack(">I", zlib.adler32(data, self.checksum))
        return self.head + _chunk(b"IDAT", body + trailer) + _chunk(b"IEND", b"")


@lru_cache(maxsize=4)
def _png_prefix(key: tuple[Any, ...], top: int) -> _PngPrefix:
    layer = _static_layer(*key)
    width, height = layer.size
    head = _PNG_SIGNATURE + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    shared = _filtered(layer.crop((0, 0, width, top))) if top > 0 else b""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = compressor.compress(shared) + compressor.flush(zlib.Z_SYNC_FLUSH)
    head += _chunk(b"IDAT", _ZLIB_HEADER + body)
    return _PngPrefix(head, zlib.adler32(shared), shared[-_WINDOW:])


def poster_png(template: PosterTemplate, content: PosterContent) -> bytes:
    """`to_png(render_poster(...))`, the same pixels, much faster within a batch: only the
    footer rows are drawn and compressed per poster."""
    _checked(template, content)
    key = _static_key(template, content)
    layer, footer = _static_layer(*key), template.footer(key[-1])
    top = max(0, min(footer.top, layer.height))
    rest = layer.crop((0, top, layer.width, layer.height))
    _draw_personal(rest, footer, content, top)
    return _png_prefix(key, top).finish(rest)


# ---------------------------------------------------------------------------------------------
# Batches in a process pool

Job = tuple[PosterTemplate, PosterContent] | PosterJob
ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class _Failure:
    """A refusal inside a worker. ValidationFailed does not survive pickling (its args are
    the message, not the problems), so it travels as plain data and is raised again."""

    problems: tuple[FieldProblem, ...]
    summary: str


def _render_chunk(jobs: list[Job]) -> list[bytes | _Failure]:
    results: list[bytes | _Failure] = []
    for job in jobs:
        try:
            template, content = job.resolve() if isinstance(job, PosterJob) else job
            results.append(poster_png(template, content))
        except ValidationFailed as exc:
            results.append(_Failure(tuple(exc.problems), exc.summary))
        except DomainError as exc:
            results.append(_Failure((FieldProblem("poster", exc.message),), "海报无法生成"))
    return results


def _pool_context() -> multiprocessing.context.BaseContext:
    """forkserver: workers fork from a small single-threaded server instead of from the
    caller, which under Streamlit has several threads (fork there could copy a lock, or a
    font half-way through drawing, that another session's thread holds). The server imports
    this module once, so a worker starts in about 15 ms; spawn takes ~0.5 s per worker."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


_MAIN_SWAP = threading.Lock()


@contextmanager
def _main_hidden() -> Iterator[None]:
    """Hide the caller's __main__ while workers are started.

    spawn and forkserver make each new worker re-run the parent's main script unless it is
    guarded by `if __name__ == "__main__"`. Under Streamlit, __main__ is a stand-in module
    whose __file__ is app.py, which is not guarded: every worker would start the whole app.
    A bare module has neither __file__ nor __spec__, so the workers import nothing of it
    (the jobs and the worker function live in core, which they import by name).
    """
    with _MAIN_SWAP:
        main = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            if main is not None:
                sys.modules["__main__"] = main


def _raise_failure(index: int, failure: _Failure) -> NoReturn:
    problems = [replace(p, message=f"第 {index + 1} 张海报：{p.message}") for p in failure.problems]
    raise ValidationFailed(problems, summary=failure.summary)


def render_many(
    jobs: Sequence[Job],
    *,
    workers: int = 2,
    progress: ProgressFn | None = None,
) -> Iterator[tuple[int, bytes]]:
    """PNG bytes of every poster, as `(index into jobs, png)` IN INPUT ORDER, rendered by
    `workers` processes; `progress(done, total)` after each one. A job is a
    `(template, content)` pair or a `PosterJob` (template id and scale).

    Every job is validated before any work starts (ValidationFailed lists the posters at
    fault). Only a few chunks are in flight at a time, so a slow consumer (writing a ZIP)
    never has thousands of finished PNGs waiting in memory. With one worker, a single job
    or inside a daemon process (which may not have children) it renders in this process.
    """
    total = len(jobs)
    problems: list[FieldProblem] = []
    for index, job in enumerate(jobs):
        template, content = job.resolve() if isinstance(job, PosterJob) else job
        for problem in validate_content(template, content):
            problems.append(replace(problem, message=f"第 {index + 1} 张海报：{problem.message}"))
    if problems:
        raise ValidationFailed(problems, summary="海报内容有误")
    if total == 0:
        return
    done = 0
    if workers <= 1 or total == 1 or multiprocessing.current_process().daemon:
        for index, job in enumerate(jobs):
            result = _render_chunk([job])[0]
            if isinstance(result, _Failure):
                _raise_failure(index, result)
            done += 1
            yield index, result
            if progress:
                progress(done, total)
        return
    # Chunks amortise the pickling round trip; small enough that progress stays lively.
    chunk = max(1, min(16, total // (workers * 8)))
    starts = iter(range(0, total, chunk))
    pending: deque[tuple[int, Future[list[bytes | _Failure]]]] = deque()
    context = _pool_context()
    forkserver.ensure_running()  # outside _main_hidden: the first start takes ~0.3 s
    executor = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    try:

        def submit() -> None:
            start = next(starts, None)
            if start is not None:
                job_slice = list(jobs[start : start + chunk])
                pending.append((start, executor.submit(_render_chunk, job_slice)))

        # Workers are started by the first submits (one each, up to `workers`).
        with _main_hidden():
            for _ in range(workers * 3):
                submit()
        while pending:
            start, future = pending.popleft()
            results = future.result()
            submit()
            for offset, result in enumerate(results):
                if isinstance(result, _Failure):
                    _raise_failure(start + offset, result)
                done += 1
                yield start + offset, result
                if progress:
                    progress(done, total)
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


__all__ = [
    "FIELD_LABELS",
    "QR_POSITIONS",
    "BenefitsBox",
    "Box",
    "FittedList",
    "FittedText",
    "FooterLayout",
    "Gradient",
    "Label",
    "LogoBox",
    "PosterContent",
    "PosterJob",
    "PosterTemplate",
    "QrBox",
    "Shape",
    "TemplateError",
    "TextBox",
    "block_height",
    "fit_list",
    "fit_text",
    "get_template",
    "has_glyph",
    "line_height",
    "load_templates",
    "load_upload_image",
    "parse_template",
    "poster_png",
    "render_many",
    "render_poster",
    "sample_content",
    "to_pdf",
    "to_png",
]
