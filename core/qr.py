"""QR codes for channel codes: PNG at a chosen size (error correction H, so a logo can sit
in the centre) and SVG."""

from __future__ import annotations

import io

import qrcode
import qrcode.image.svg
from PIL import Image, ImageDraw
from qrcode.constants import ERROR_CORRECT_H

from core.errors import FieldProblem, ValidationFailed

MIN_SIZE, MAX_SIZE = 128, 2000
LOGO_SHARE = 0.22  # of the width; H correction tolerates about 30% damage


def _check(url: str, size_px: int) -> None:
    problems = []
    if not url or len(url) > 500:
        problems.append(FieldProblem("url", "二维码内容须为 1–500 个字符的链接"))
    if not MIN_SIZE <= size_px <= MAX_SIZE:
        problems.append(FieldProblem("size", f"二维码尺寸须在 {MIN_SIZE}–{MAX_SIZE} 像素之间"))
    if problems:
        raise ValidationFailed(problems, summary="无法生成二维码")


def _matrix(url: str) -> qrcode.QRCode:
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_H, border=4, box_size=1)
    code.add_data(url)
    code.make(fit=True)
    return code


def qr_image(url: str, *, size_px: int = 600, logo: Image.Image | None = None) -> Image.Image:
    """An RGB image exactly `size_px` square."""
    _check(url, size_px)
    modules = _matrix(url).get_matrix()
    count = len(modules)
    # Draw on a whole number of pixels per module, then scale once: crisp edges.
    scale = max(1, size_px // count + 1)
    canvas = Image.new("1", (count * scale, count * scale), 1)
    draw = ImageDraw.Draw(canvas)
    for y, row in enumerate(modules):
        for x, dark in enumerate(row):
            if dark:
                draw.rectangle(
                    [x * scale, y * scale, (x + 1) * scale - 1, (y + 1) * scale - 1], fill=0
                )
    image = canvas.convert("RGB").resize((size_px, size_px), Image.Resampling.NEAREST)
    if logo is not None:
        image = _with_logo(image, logo)
    return image


def _with_logo(image: Image.Image, logo: Image.Image) -> Image.Image:
    size = image.width
    box = int(size * LOGO_SHARE)
    pad = max(4, box // 10)
    mark = logo.convert("RGBA")
    mark.thumbnail((box - 2 * pad, box - 2 * pad))
    plate = Image.new("RGBA", (box, box), (0, 0, 0, 0))
    ImageDraw.Draw(plate).rounded_rectangle(
        [0, 0, box - 1, box - 1], radius=box // 6, fill=(255, 255, 255, 255)
    )
    plate.alpha_composite(mark, ((box - mark.width) // 2, (box - mark.height) // 2))
    result = image.convert("RGBA")
    result.alpha_composite(plate, ((size - box) // 2, (size - box) // 2))
    return result.convert("RGB")


def qr_png(url: str, *, size_px: int = 600, logo: Image.Image | None = None) -> bytes:
    buffer = io.BytesIO()
    qr_image(url, size_px=size_px, logo=logo).save(buffer, format="PNG")
    return buffer.getvalue()


def qr_svg(url: str) -> bytes:
    """A standalone SVG (scales to any print size)."""
    _check(url, MIN_SIZE)
    code = qrcode.QRCode(
        error_correction=ERROR_CORRECT_H, border=4, image_factory=qrcode.image.svg.SvgPathImage
    )
    code.add_data(url)
    code.make(fit=True)
    buffer = io.BytesIO()
    code.make_image().save(buffer)
    return buffer.getvalue()
