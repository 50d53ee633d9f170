"""Poster templates (海报模板) as data: the layout boxes, fonts and colours read from
`assets/poster_templates/*.json`, and the content a designer fills in (title, benefits,
date line, outlet and staff names, QR code). No drawing here: see `core.posters.render`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, fields, is_dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from core.platform.errors import NotFound
from core.posters.fonts import BOLD

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "assets" / "poster_templates"
QR_POSITIONS = ("bottom_center", "bottom_right", "bottom_left")
QR_POSITION_LABELS = {
    "bottom_center": "底部居中",
    "bottom_right": "右下角",
    "bottom_left": "左下角",
}

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

HEX_COLOR = re.compile(r"^#[0-9A-Fa-f]{6}([0-9A-Fa-f]{2})?$")


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


# ---------------------------------------------------------------------------------------------
# Loading templates


class TemplateError(ValueError):
    """A template file is malformed (a mistake of whoever edited the JSON)."""


def _color(value: Any, where: str) -> str:
    if not isinstance(value, str) or not HEX_COLOR.match(value):
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
