"""Downloads of channel codes: one QR (PNG at a chosen size, or SVG) or a ZIP of a whole
batch with files named by city, outlet and staff member."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable, Sequence

from core.channels.codes import CodeRead
from core.platform.export import to_csv_bytes

ProgressFn = Callable[[int, int], None]
QR_SIZES = (300, 600, 1000, 1500)
INDEX_HEADER = ("网点", "活码", "渠道", "链接", "文件")


def safe_name(text: str) -> str:
    """A file name that works on Windows and in ZIP tools (Chinese is kept)."""
    return re.sub(r'[\\/:*?"<>|\s]+', "_", text).strip("._") or "未命名"


def code_png(code: CodeRead, *, size_px: int = 600) -> bytes:
    from core.channels.qr import qr_png

    return qr_png(code.url, size_px=size_px)


def code_svg(code: CodeRead) -> bytes:
    from core.channels.qr import qr_svg

    return qr_svg(code.url)


def codes_zip(
    codes: Sequence[CodeRead],
    *,
    folder: str,
    size_px: int = 600,
    svg: bool = False,
    progress: ProgressFn | None = None,
) -> bytes:
    """`folder/<outlet>/<code name>.png` for every code, plus an index CSV of slugs and URLs."""
    from core.channels.qr import qr_png, qr_svg

    buffer = io.BytesIO()
    index: list[list[str]] = []
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for done, code in enumerate(codes, start=1):
            ext = "svg" if svg else "png"
            path = f"{safe_name(folder)}/{safe_name(code.outlet_name)}/{safe_name(code.name)}_{code.slug}.{ext}"
            archive.writestr(path, qr_svg(code.url) if svg else qr_png(code.url, size_px=size_px))
            index.append([code.outlet_name, code.name, code.channel_type.label, code.url, path])
            if progress:
                progress(done, len(codes))
        archive.writestr(f"{safe_name(folder)}/活码清单.csv", to_csv_bytes(INDEX_HEADER, index))
    return buffer.getvalue()
