"""Uploaded pictures (背景图与标志): PNG, JPEG or WebP judged by their bytes, bounded in bytes
and pixels before anything is decoded, and decoded once per process."""

from __future__ import annotations

import io
import warnings
from functools import lru_cache

import numpy as np
from PIL import Image, ImageOps

from core.platform.errors import FieldProblem, ValidationFailed

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
MAX_UPLOAD_PIXELS = 20_000_000
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
    image = _eight_bit(ImageOps.exif_transpose(image))  # phone photos are stored sideways
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    return image.convert("RGBA" if has_alpha else "RGB")


def _eight_bit(image: Image.Image) -> Image.Image:
    """16-bit and 32-bit grey images as 8-bit grey. Pillow's own convert() clips them
    instead of scaling (a 16-bit grey photo would come out white)."""
    if image.mode.startswith("I;16"):
        grey = np.asarray(image, dtype=np.uint16) >> 8
    elif image.mode in ("I", "F"):
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if values.max(initial=0) > 255 else 255.0
        grey = np.clip(values * (255.0 / top), 0, 255)
    else:
        return image
    return Image.fromarray(grey.astype(np.uint8), mode="L")


@lru_cache(maxsize=4)
def decoded_upload(data: bytes) -> Image.Image:
    """Uploads are decoded once per process: a batch repeats the same background and logo."""
    return load_upload_image(data)
