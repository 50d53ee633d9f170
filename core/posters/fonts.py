"""The one CJK font posters are set in: Noto Sans CJK SC (OFL), the variable font the PyPI
package `manimgx-fonts-cjk` ships, so a fresh machine renders Chinese without system fonts."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from PIL import ImageFont

from core.platform.errors import DomainError

# The collection holds JP, KR, SC, TC, HK in that order; face 2 is "Noto Sans CJK SC", whose
# glyph forms (骨, 。 sitting bottom-left) are the mainland ones.
SC_FACE = 2
MIN_WEIGHT, MAX_WEIGHT = 100, 900  # the font's single axis, "Weight"; its default is Thin (100)
REGULAR, BOLD, BLACK = 400, 700, 900


class FontMissing(DomainError):
    """The CJK font file is not installed; posters would otherwise come out as tofu."""


@lru_cache(maxsize=1)
def font_path() -> Path:
    """Where the collection lives; raises FontMissing rather than falling back to a font
    without Chinese."""
    try:
        import manimgx_fonts_cjk
    except ImportError as exc:
        raise FontMissing(
            "缺少中文字体：请安装 requirements.txt 中的 manimgx-fonts-cjk（思源黑体 Noto Sans CJK）"
        ) from exc
    path = Path(manimgx_fonts_cjk.__file__).with_name("NotoSansCJK-VF.otf.ttc")
    if not path.is_file():
        raise FontMissing(f"缺少中文字体文件 {path}，请重新安装 manimgx-fonts-cjk")
    return path


@lru_cache(maxsize=256)
def font(size: int, weight: int = REGULAR) -> ImageFont.FreeTypeFont:
    """Noto Sans CJK SC at `size` px and `weight` (100–900: 400 regular, 700 bold, 900 black).
    Cached and shared: callers must not change the returned font's variation."""
    if not MIN_WEIGHT <= weight <= MAX_WEIGHT:
        raise ValueError(f"weight {weight} outside {MIN_WEIGHT}..{MAX_WEIGHT}")
    # BASIC layout: CJK needs no shaping, and text then measures the same with or without
    # libraqm installed.
    face = ImageFont.truetype(
        str(font_path()), size, index=SC_FACE, layout_engine=ImageFont.Layout.BASIC
    )
    # Without this a variable font renders at its default instance, which here is Thin.
    face.set_variation_by_axes([weight])
    return face
