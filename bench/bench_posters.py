"""Channel QR codes and personalised posters.

(a) 2,000 QR PNGs (600 px, error correction H) through `core.channels.qr.qr_png` against the bare
`qrcode` library making the same codes (`QRCode(...).make_image().save()`), one process each.
(b) 2,000 posters that differ in outlet name, staff name and QR URL through
`core.posters.batch.render_many(workers=2)` against the same layout drawn with plain Pillow and
qrcode calls (fixed font sizes, no fitting, no caching, Pillow's own PNG writer) in the same
two-process pool. `--scale small` makes 300 of each.
"""

from __future__ import annotations

import io
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from functools import lru_cache

import qrcode
from PIL import Image, ImageDraw, ImageFont
from qrcode.constants import ERROR_CORRECT_H

from bench.common import Result, timed
from core.channels.qr import qr_png
from core.posters.batch import pool_context, render_many
from core.posters.fonts import SC_FACE, font_path
from core.posters.templates import Gradient, PosterJob, PosterTemplate, get_template, sample_content

TEMPLATE = "rights_day"
QR_SIZE = 600
CITIES = ("长沙市", "株洲市", "湘潭市", "衡阳市", "岳阳市", "常德市", "郴州市")
DISTRICTS = ("岳麓区", "天元区", "雨湖区", "蒸湘区", "岳阳楼区", "武陵区", "北湖区")
STREETS = ("麓谷", "泰山路", "建设路", "解放大道", "金鹗", "朗州路", "人民西路", "五一")


def _urls(count: int) -> list[str]:
    return [f"https://yh.example.cn/c/{index:06d}k7mq2x" for index in range(count)]


def _outlet(index: int) -> str:
    return (
        f"{CITIES[index % 7]}{DISTRICTS[index // 7 % 7]}{STREETS[index // 49 % 8]}"
        f"{'营业所' if index % 3 else '支局'}"
    )


def _bare_qr_png(url: str) -> bytes:
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_H, border=4)
    code.add_data(url)
    code.make(fit=True)
    code.box_size = QR_SIZE // (code.modules_count + 8)  # as close to 600 px as whole modules go
    buffer = io.BytesIO()
    code.make_image().save(buffer)
    return buffer.getvalue()


# --- the baseline poster: the same layout, drawn with bare Pillow and qrcode calls ----------


@lru_cache(maxsize=64)
def _bare_font(size: int, weight: int) -> ImageFont.FreeTypeFont:
    face = ImageFont.truetype(str(font_path()), size, index=SC_FACE)
    face.set_variation_by_axes([weight])
    return face


def _rgba(color: str, opacity: float = 1.0) -> tuple[int, int, int, int]:
    value = color.lstrip("#")
    alpha = int(value[6:8], 16) if len(value) == 8 else 255
    return (*(int(value[i : i + 2], 16) for i in (0, 2, 4)), round(alpha * opacity))


def _first(paint: str | Gradient) -> str:
    return paint.colors[0] if isinstance(paint, Gradient) else paint


def _bare_poster(
    template_id: str, title: str, benefits: tuple[str, ...], outlet: str, staff: str, url: str
) -> bytes:
    t: PosterTemplate = get_template(template_id)  # only coordinates and colours are read
    footer = t.footer()
    image = Image.new("RGB", (t.width, t.height), _rgba(_first(t.background))[:3])
    if isinstance(t.background, Gradient):  # top to bottom, first and last colour
        mask = Image.linear_gradient("L").resize((t.width, t.height))
        end = Image.new("RGB", image.size, _rgba(t.background.colors[-1])[:3])
        image = Image.composite(end, image, mask)
    draw = ImageDraw.Draw(image, "RGBA")
    for shape in (*t.shapes, *footer.shapes):
        box = shape.box
        rect = (box.x, box.y, box.right, box.bottom)
        fill = _rgba(_first(shape.fill), shape.opacity) if shape.fill else None
        outline = _rgba(shape.outline, shape.opacity) if shape.outline else None
        if shape.kind == "ellipse":
            draw.ellipse(rect, fill=fill, outline=outline, width=shape.outline_width)
        elif shape.kind == "polygon":
            draw.polygon(shape.points, fill=fill, outline=outline)
        else:
            draw.rounded_rectangle(
                rect, shape.radius, fill=fill, outline=outline, width=shape.outline_width
            )

    def text(style, value: str) -> None:
        draw.text(
            (style.x, style.y),
            value,
            font=_bare_font(style.max_size, style.weight),
            fill=style.color,
        )

    for label in (*t.labels, *footer.labels):
        text(label, label.text)
    logo = t.logo
    draw.text(
        (logo.x, logo.y), logo.fallback_text, font=_bare_font(40, 700), fill=logo.fallback_color
    )
    text(t.title, title)
    sample = t.sample
    text(t.subtitle, sample.subtitle)
    text(t.date_line, sample.date_line)
    size = t.benefits.max_size
    for i, benefit in enumerate(benefits):
        draw.text(
            (t.benefits.x, t.benefits.y + i * size * 2),
            f"{i + 1}. {benefit}",
            font=_bare_font(size, 500),
            fill=t.benefits.color,
        )
    text(footer.outlet_name, outlet)
    if footer.staff_name is not None:
        text(footer.staff_name, staff)
    qr = footer.qr
    plate = qr.plate_box
    draw.rounded_rectangle((plate.x, plate.y, plate.right, plate.bottom), qr.radius, fill=qr.plate)
    if qr.caption is not None:
        text(qr.caption, qr.caption.text)
    code = qrcode.make(url, error_correction=ERROR_CORRECT_H, border=4, box_size=8)
    image.paste(
        code.convert("RGB").resize((qr.size, qr.size), Image.Resampling.NEAREST), (qr.x, qr.y)
    )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _bare_chunk(jobs: list[tuple[str, str, tuple[str, ...], str, str, str]]) -> list[bytes]:
    return [_bare_poster(*job) for job in jobs]


def _bare_batch(jobs: list[tuple[str, str, tuple[str, ...], str, str, str]]) -> list[bytes]:
    chunks = [jobs[i : i + 16] for i in range(0, len(jobs), 16)]
    with ProcessPoolExecutor(max_workers=2, mp_context=pool_context()) as pool:
        return [png for chunk in pool.map(_bare_chunk, chunks) for png in chunk]


def run(scale: str) -> list[Result]:
    count = 2_000 if scale == "full" else 300
    urls = _urls(count)

    ours_qr, pngs = timed(lambda: [qr_png(url, size_px=QR_SIZE) for url in urls])
    bare_qr, _ = timed(lambda: [_bare_qr_png(url) for url in urls])
    qr_kb = sum(len(p) for p in pngs) / len(pngs) / 1024

    template = get_template(TEMPLATE)
    base = sample_content(template)
    jobs = [
        PosterJob(
            TEMPLATE,
            replace(base, outlet_name=_outlet(i), staff_name=f"客户经理 员工{i:04d}", qr_url=url),
        )
        for i, url in enumerate(urls)
    ]
    progress: list[int] = []

    def ours() -> list[bytes]:
        return [
            png for _, png in render_many(jobs, workers=2, progress=lambda d, t: progress.append(d))
        ]

    ours_posters, posters = timed(ours)
    assert len(posters) == count and progress[-1] == count
    bare_jobs = [
        (
            TEMPLATE,
            base.title,
            base.benefits,
            job.content.outlet_name,
            job.content.staff_name,
            job.content.qr_url,
        )
        for job in jobs
    ]
    bare_posters, bare_pngs = timed(lambda: _bare_batch(bare_jobs))
    ours_kb = sum(len(p) for p in posters) / count / 1024
    bare_kb = sum(len(p) for p in bare_pngs) / count / 1024
    per_full = ours_posters / count * 2_000
    return [
        Result(
            name=f"qr_png_{count}_codes",
            value=round(ours_qr, 3),
            unit="s",
            baseline="bare qrcode: QRCode(H, border 4).make_image().save(PNG), same URLs, one process",
            baseline_value=round(bare_qr, 3),
            scale=scale,
            notes=(
                f"{count / ours_qr:,.0f} codes/s vs {count / bare_qr:,.0f} codes/s; {QR_SIZE} px, "
                f"{qr_kb:.1f} KB each; same modules as the library (mask search in numpy)"
            ),
        ),
        Result(
            name=f"posters_{count}_render_many_2_workers",
            value=round(ours_posters, 3),
            unit="s",
            baseline=(
                "same layout with plain Pillow + qrcode calls (fixed font sizes, no fitting, "
                "no caching, Pillow's PNG writer) in the same 2-process pool"
            ),
            baseline_value=round(bare_posters, 3),
            scale=scale,
            notes=(
                f"{count / ours_posters:.1f} posters/s vs {count / bare_posters:.1f}; "
                f"{template.width}x{template.height} PNG, {ours_kb:.0f} KB vs {bare_kb:.0f} KB each; "
                f"goals: within 1.3x of the bare time, 2,000 in < 60 s on 2 cores "
                f"(at this rate 2,000 take {per_full:.0f} s)"
            ),
        ),
    ]
