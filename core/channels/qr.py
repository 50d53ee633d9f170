"""QR codes for channel codes (渠道活码): a PNG at a chosen size (error correction H, so a logo
can sit in the centre) and a standalone SVG.

The symbol itself comes from the `qrcode` library. Only its choice of mask pattern is redone
here with numpy: the library scores all eight masks in pure Python, which is three quarters of
its time, and a batch of posters makes thousands of codes. The scores are the library's own
rules, so the chosen mask and the modules are identical (a test compares them).
"""

from __future__ import annotations

import io

import numpy as np
import qrcode
import qrcode.image.svg
from PIL import Image, ImageDraw
from qrcode.constants import ERROR_CORRECT_H

from core.platform.errors import FieldProblem, ValidationFailed

MIN_SIZE, MAX_SIZE = 128, 2000
MAX_URL_CHARS = 500
QUIET_ZONE = 4  # modules of white around the symbol, as the standard asks
LOGO_SHARE = 0.22  # the logo's pad, as a share of the width; H tolerates about 30% damage


def check_request(url: str, size_px: int = 600) -> None:
    """Refuse an empty or over-long URL and a size outside 128–2000 px, in Chinese."""
    problems = []
    if not url or not url.strip():
        problems.append(FieldProblem("url", "二维码链接不能为空"))
    elif len(url) > MAX_URL_CHARS:
        problems.append(FieldProblem("url", f"二维码链接最多 {MAX_URL_CHARS} 个字符"))
    if isinstance(size_px, bool) or not isinstance(size_px, int):
        problems.append(FieldProblem("size", "二维码尺寸须为整数像素"))
    elif not MIN_SIZE <= size_px <= MAX_SIZE:
        problems.append(FieldProblem("size", f"二维码尺寸须在 {MIN_SIZE}–{MAX_SIZE} 像素之间"))
    if problems:
        raise ValidationFailed(problems, summary="无法生成二维码")


class _Code(qrcode.QRCode):
    """`qrcode.QRCode` with the mask choice vectorised; everything else is the library's."""

    _free: np.ndarray | None = None

    def map_data(self, data: bytes, mask_pattern: int) -> None:
        if self._free is None:
            # Cells still empty when the data is laid are exactly the ones a mask flips.
            self._free = np.array([[cell is None for cell in row] for row in self.modules])
        super().map_data(data, mask_pattern)

    def make(self, fit: bool = True) -> None:
        if fit or self.version is None:
            self.best_fit(start=self.version)
        if self.mask_pattern is not None:
            self.makeImpl(False, self.mask_pattern)
            return
        best, modules = self._choose_mask()
        # The data laid once (in test mode) serves the final symbol too: flip it to the
        # chosen mask, then write the real format (and version) bits as the library does.
        self.modules = modules.tolist()
        self.setup_type_info(False, best)
        if self.version >= 7:
            self.setup_type_number(False)

    def best_mask_pattern(self) -> int:
        return self._choose_mask()[0]

    def _choose_mask(self) -> tuple[int, np.ndarray]:
        self._free = None
        # Test mode leaves the format bits light, as the library has them when it scores.
        self.makeImpl(True, 0)
        flips = _mask_flips(len(self.modules)) & self._free
        plain = np.array(self.modules, dtype=bool) ^ flips[0]
        candidates = plain[None, :, :] ^ flips
        best = int(np.argmin(_penalties(candidates)))  # the first of equals, like the library
        return best, candidates[best]


def _mask_flips(count: int) -> np.ndarray:
    i, j = np.indices((count, count))
    return np.stack(
        [
            (i + j) % 2 == 0,
            i % 2 == 0,
            j % 3 == 0,
            (i + j) % 3 == 0,
            (i // 2 + j // 3) % 2 == 0,
            (i * j) % 2 + (i * j) % 3 == 0,
            ((i * j) % 2 + (i * j) % 3) % 2 == 0,
            ((i * j) % 3 + (i + j) % 2) % 2 == 0,
        ]
    )


_FINDER_LIKE = (0b10111010000, 0b00001011101)


def _penalties(stack: np.ndarray) -> list[int]:
    """`qrcode.util.lost_point` of each matrix in a (k, n, n) stack: the same four rules,
    the same points."""
    k, count, _ = stack.shape
    m = stack.astype(np.int8)
    # 1. Runs of five or more of one colour, in rows and columns: 3 + (length - 5) each.
    lines = np.concatenate([m, m.transpose(0, 2, 1)], axis=1)
    sep = np.full((k, 2 * count, 1), 2, dtype=np.int8)  # no module is 2: ends every line
    flat = np.concatenate([lines, sep], axis=2).ravel()
    starts = np.concatenate(([0], np.flatnonzero(flat[1:] != flat[:-1]) + 1))
    runs = np.diff(np.concatenate((starts, [flat.size])))
    long_runs = runs >= 5
    owner = starts[long_runs] // (2 * count * (count + 1))
    points = np.bincount(owner, weights=runs[long_runs] - 2, minlength=k)
    # 2. Every 2x2 block of one colour: 3 each.
    corner = stack[:, :-1, :-1]
    same = (
        (corner == stack[:, :-1, 1:]) & (corner == stack[:, 1:, :-1]) & (corner == stack[:, 1:, 1:])
    )
    points += 3 * same.sum(axis=(1, 2))
    # 3. 1:1:3:1:1 finder-like patterns with four light modules on one side: 40 each.
    for grid in (stack, stack.transpose(0, 2, 1)):
        windows = np.zeros((k, count, count - 10), dtype=np.int32)
        for offset in range(11):
            windows |= grid[:, :, offset : count - 10 + offset].astype(np.int32) << (10 - offset)
        hits = (windows == _FINDER_LIKE[0]) | (windows == _FINDER_LIKE[1])
        points += 40 * hits.sum(axis=(1, 2))
    # 4. Balance of dark and light: 10 per 5% away from half (float maths as the library).
    result = []
    for index, dark in enumerate(stack.sum(axis=(1, 2)).tolist()):
        percent = float(dark) / (count**2)
        result.append(int(points[index]) + int(abs(percent * 100 - 50) / 5) * 10)
    return result


def _encode(url: str, *, border: int = QUIET_ZONE, image_factory: type | None = None) -> _Code:
    code = _Code(error_correction=ERROR_CORRECT_H, border=border, image_factory=image_factory)
    code.add_data(url)
    code.make(fit=True)
    return code


def qr_modules(url: str) -> np.ndarray:
    """The symbol as a square boolean matrix (True = dark), quiet zone included."""
    check_request(url)
    return np.array(_encode(url).get_matrix(), dtype=bool)


def _symbol(modules: np.ndarray, size_px: int) -> Image.Image:
    """A 1-bit image exactly `size_px` square. Every module gets the same whole number of
    pixels (crisp when printed); the few pixels left over widen the quiet zone."""
    count = len(modules)
    module_px = size_px // count  # >= 1: even 500 characters need fewer than 128 modules
    small = Image.fromarray(~modules)  # mode "1", white where light
    symbol = small.resize((count * module_px,) * 2, Image.Resampling.NEAREST)
    canvas = Image.new("1", (size_px, size_px), 1)
    offset = (size_px - symbol.width) // 2
    canvas.paste(symbol, (offset, offset))
    return canvas


def qr_image(url: str, *, size_px: int = 600, logo: Image.Image | None = None) -> Image.Image:
    """An RGB image exactly `size_px` square, with `logo` on a white pad in the centre."""
    check_request(url, size_px)
    image = _symbol(qr_modules(url), size_px).convert("RGB")
    if logo is not None:
        image = _with_logo(image, logo)
    return image


def _with_logo(image: Image.Image, logo: Image.Image) -> Image.Image:
    size = image.width
    pad_px = int(size * LOGO_SHARE)
    inset = max(2, pad_px // 10)
    mark = logo.convert("RGBA")
    mark.thumbnail((pad_px - 2 * inset, pad_px - 2 * inset), Image.Resampling.LANCZOS)
    plate = Image.new("RGBA", (pad_px, pad_px), (0, 0, 0, 0))
    ImageDraw.Draw(plate).rounded_rectangle(
        (0, 0, pad_px - 1, pad_px - 1), radius=max(2, pad_px // 6), fill=(255, 255, 255, 255)
    )
    plate.alpha_composite(mark, ((pad_px - mark.width) // 2, (pad_px - mark.height) // 2))
    result = image.convert("RGBA")
    result.alpha_composite(plate, ((size - pad_px) // 2, (size - pad_px) // 2))
    return result.convert("RGB")


def qr_in_box(url: str, size_px: int) -> Image.Image:
    """An RGB code exactly `size_px` square for a layout that sets its own size (a poster at
    half scale may want 100 px): any size with at least 2 pixels per module."""
    modules = qr_modules(url)  # encoded once: it is a good part of a batch poster's time
    count = len(modules)
    if size_px < 2 * count:
        raise ValidationFailed(
            [
                FieldProblem(
                    "size", f"二维码区域只有 {size_px} 像素，这个链接至少需要 {2 * count} 像素"
                )
            ],
            summary="无法生成二维码",
        )
    return _symbol(modules, size_px).convert("RGB")


def qr_png(url: str, *, size_px: int = 600, logo: Image.Image | None = None) -> bytes:
    """PNG bytes of `qr_image`; without a logo it is a 1-bit PNG (small, and quick to write)."""
    check_request(url, size_px)
    if logo is None:
        image = _symbol(qr_modules(url), size_px)
    else:
        image = qr_image(url, size_px=size_px, logo=logo)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def qr_svg(url: str) -> bytes:
    """A standalone SVG document (XML declaration, white background, one path), printable at
    any size."""
    check_request(url)
    code = _encode(url, image_factory=qrcode.image.svg.SvgPathFillImage)
    buffer = io.BytesIO()
    code.make_image().save(buffer)
    return buffer.getvalue()
