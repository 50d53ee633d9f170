"""Drawing posters (海报): a template and its content, checked (`checks`), drawn as an image
and saved as PNG or PDF. Uploaded backgrounds and logos come through `uploads`.

Pure functions: no database, no Streamlit. A batch usually differs only in the outlet name,
the staff name and the QR code, so everything else is drawn once per process (the "static
layer", cached) and each poster draws only its own footer; `batch` uses that.
"""

from __future__ import annotations

import io
import math
from dataclasses import replace
from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageOps

from core.channels.qr import qr_in_box
from core.platform.errors import ValidationFailed
from core.posters.checks import validate_content
from core.posters.fonts import BOLD, font
from core.posters.templates import (
    BenefitsBox,
    Box,
    FooterLayout,
    Gradient,
    LogoBox,
    Paint,
    PosterContent,
    PosterTemplate,
    Shape,
    TextBox,
)
from core.posters.text_fit import (
    FLOOR_SIZE,
    FittedText,
    block_height,
    bullet_indent,
    fit_list,
    fit_text,
)
from core.posters.uploads import decoded_upload

PDF_DPI = 150
_SUPERSAMPLE = 3  # shapes are drawn 3x and scaled down: smooth curves without a vector library


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


FEW_BENEFITS = 3  # up to this many items, the card grows their type and spreads them
_FEW_GROWTH = 1.3


def benefits_style(style: BenefitsBox, count: int) -> BenefitsBox:
    """The template's benefits style, adapted to how many items there are: a card drawn for
    four or five lines is mostly empty with three, so few items get larger type and more
    room between them (still fitted to the box, never overflowing)."""
    if count > FEW_BENEFITS:
        return style
    growth = _FEW_GROWTH if count > 1 else _FEW_GROWTH * 1.15
    return replace(
        style,
        max_size=round(style.max_size * growth),
        min_size=style.min_size,
        item_spacing=style.item_spacing * 1.6,
    )


def _draw_benefits(canvas: Image.Image, style: BenefitsBox, items: tuple[str, ...]) -> None:
    items = tuple(item.strip() for item in items if item.strip())
    if not items:
        return
    style = benefits_style(style, len(items))
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
    mark = decoded_upload(logo).copy()
    mark.thumbnail((style.w, style.h), Image.Resampling.LANCZOS)
    x = round(
        _line_x(TextBox(0, 0, style.w, style.h, 1, 1, align=style.align), style.box, mark.width)
    )
    y = style.y + (style.h - mark.height) // 2
    if mark.mode == "RGBA":
        canvas.paste(mark.convert("RGB"), (x, y), mark.getchannel("A"))
    else:
        canvas.paste(mark, (x, y))


def _background(template: PosterTemplate, override: str | Gradient | bytes | None) -> Image.Image:
    size = (template.width, template.height)
    paint = template.background if override is None else override
    if isinstance(paint, bytes):
        photo = ImageOps.fit(decoded_upload(paint).convert("RGB"), size, Image.Resampling.LANCZOS)
        if template.photo_overlay is not None:
            fill, alpha = _fill_image(template.photo_overlay, *size, 1.0)
            photo.paste(fill, (0, 0), alpha)
        return photo
    if isinstance(paint, Gradient):
        return _gradient(*size, paint).convert("RGB")
    return Image.new("RGB", size, _rgba(paint)[:3])


@lru_cache(maxsize=4)
def static_layer(
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


def static_key(template: PosterTemplate, content: PosterContent) -> tuple[Any, ...]:
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
        code = decoded_upload(content.qr_png)
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


def draw_personal(
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


def check_content(template: PosterTemplate, content: PosterContent) -> None:
    problems = validate_content(template, content)
    if problems:
        raise ValidationFailed(problems, summary="海报内容有误")


def render_poster(template: PosterTemplate, content: PosterContent) -> Image.Image:
    """The poster as an RGB image of the template's size; ValidationFailed if the content is
    refused or some text cannot fit its box even at 12 px."""
    check_content(template, content)
    key = static_key(template, content)
    canvas = static_layer(*key).copy()
    draw_personal(canvas, template.footer(key[-1]), content, 0)
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
