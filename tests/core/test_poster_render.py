"""Posters: text is fitted into its box with the real font metrics and never overflows or gets
cut, Chinese line-breaking rules hold, every template renders at its size in every QR
position with a code that scans, uploads are checked before they are decoded, and a batch in
the process pool gives the same pixels as one poster at a time."""

import io
import struct
import sys
import threading
import types
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import zxingcpp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from core.platform.errors import ValidationFailed
from core.posters.batch import poster_png, render_many
from core.posters.checks import has_glyph, validate_content
from core.posters.fonts import BLACK, BOLD, REGULAR, font
from core.posters.render import _draw_text, render_poster, to_pdf, to_png
from core.posters.templates import (
    QR_POSITIONS,
    Box,
    Gradient,
    PosterContent,
    PosterJob,
    TextBox,
    get_template,
    load_templates,
    sample_content,
)
from core.posters.text_fit import block_height, fit_text
from core.posters.uploads import load_upload_image

URL = "https://yh.example.cn/c/k7mq2x9wpr"
NO_START = "，。、；：！？）》」』】…"


def content(**changes: object) -> PosterContent:
    base = PosterContent(
        title="11月会员权益日",
        subtitle="星级会员专享 · 邮政与联盟商户联合让利",
        benefits=("每周三 10:00 起领 5 元立减金", "存款满 5 万元送 200 元购物卡"),
        date_line="活动时间：11月25日—11月30日",
        outlet_name="长沙市岳麓区麓谷支局",
        staff_name="客户经理 张三",
        qr_url=URL,
    )
    return replace(base, **changes)


def png_bytes(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def assert_fits(text: str, box: Box, fitted, weight: int, spacing: float) -> None:
    face = font(fitted.size, weight)
    for line in fitted.lines:
        assert face.getlength(line) <= box.w, line
    assert block_height(fitted.size, weight, len(fitted.lines), spacing) <= box.h
    # Nothing cut: the lines are the text minus the whitespace at the breaks.
    squeeze = lambda s: "".join(s.split())  # noqa: E731
    assert squeeze("".join(fitted.lines)) == squeeze(text)
    for line in fitted.lines:
        assert line == line.strip()


# --- fitting text ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "会员权益日",
        "十一月会员权益日暨邮储银行年终感恩回馈大型活动正式开启",
        "VIP会员专享 Double Eleven 购物节，满 99 减 30！最高优惠 88 元（限量）",
        "https://yh.example.cn/c/averyveryverylongslugwithoutanyspaces 扫码领取",
        "第一行\n第二行比较长一些，需要自动换行才能放下\n\n第四行",
    ],
)
@pytest.mark.parametrize("balance", [False, True])
def test_text_fits_its_box_and_nothing_is_cut(text: str, balance: bool) -> None:
    box = Box(0, 0, 520, 260)
    fitted = fit_text(text, box, max_size=96, min_size=30, weight=BOLD, balance=balance)
    assert_fits(text, box, fitted, BOLD, 1.3)


def test_the_largest_size_that_fits_is_used_and_short_text_stays_at_max_size() -> None:
    box = Box(0, 0, 900, 200)
    assert fit_text("会员日", box, max_size=120, min_size=40, weight=BLACK).size == 120
    text = "邮储银行会员权益日活动开始啦"
    fitted = fit_text(text, box, max_size=120, min_size=40, weight=BLACK)
    one_up = fitted.size + 1
    assert 40 <= fitted.size < 120
    assert fit_text(text, box, max_size=one_up, min_size=one_up, weight=BLACK).below_min


def test_explicit_newlines_are_kept() -> None:
    fitted = fit_text("喜迎新春\n邮福到家", Box(0, 0, 1000, 400), max_size=100, min_size=20)
    assert fitted.lines == ("喜迎新春", "邮福到家")


def test_latin_words_are_not_split_but_a_word_longer_than_the_line_is() -> None:
    box = Box(0, 0, 300, 400)
    words = ["hello", "wonderful", "world", "wide", "web"]
    fitted = fit_text(" ".join(words), box, max_size=40, min_size=40)
    assert len(fitted.lines) > 1
    assert [word for line in fitted.lines for word in line.split()] == words
    long_word = "a" * 60
    fitted = fit_text(long_word, box, max_size=40, min_size=40)
    assert len(fitted.lines) > 1 and "".join(fitted.lines) == long_word


@pytest.mark.parametrize("width", range(200, 420, 7))
def test_closing_punctuation_never_starts_a_line(width: int) -> None:
    text = "邮储银行会员日，满五十减十。每周三上午！限量两千份？欢迎（到店）咨询「客户经理」…"
    box = Box(0, 0, width, 2000)
    fitted = fit_text(text, box, max_size=32, min_size=32)
    assert len(fitted.lines) > 1
    for line in fitted.lines[1:]:
        assert line[0] not in NO_START, fitted.lines
    for line in fitted.lines[:-1]:
        assert line[-1] not in "（《「『【“", fitted.lines
    assert_fits(text, box, fitted, REGULAR, 1.3)


@pytest.mark.parametrize("width", range(160, 480, 9))  # the longest word fits
def test_a_number_stays_with_its_unit_and_with_feng(width: int) -> None:
    text = "12月逢8会员权益日 满30减10元 存款满 5 万元，8.8折 第2张"
    box = Box(0, 0, width, 2000)
    fitted = fit_text(text, box, max_size=32, min_size=32)
    assert len(fitted.lines) > 1
    for before, after in zip(fitted.lines, fitted.lines[1:], strict=False):
        assert not (before.endswith(("逢", "第")) and after[0].isdigit()), fitted.lines
        assert not (before[-1].isdigit() and after[0] in "元日月万折张"), fitted.lines
        assert not (before.endswith("万") and after.startswith("元")), fitted.lines
    assert "".join(fitted.lines).replace(" ", "") == text.replace(" ", "")


def test_a_title_breaks_around_feng8_not_inside_it() -> None:
    for width in range(150, 700, 5):
        lines = fit_text(
            "12月逢8会员权益日", Box(0, 0, width, 2000), max_size=64, min_size=64, balance=True
        ).lines
        assert not any(line.endswith("逢") for line in lines), lines


def test_text_shrinks_below_min_size_rather_than_being_cut_and_is_refused_below_12px() -> None:
    text = "邮储银行会员权益日" * 3
    fitted = fit_text(text, Box(0, 0, 200, 60), max_size=40, min_size=30, field="title")
    assert fitted.below_min and 12 <= fitted.size < 30
    with pytest.raises(ValidationFailed, match="标题太长") as caught:
        fit_text(text * 4, Box(0, 0, 100, 30), max_size=40, min_size=30, field="title")
    assert caught.value.problems[0].field == "title"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.text(
        alphabet=st.sampled_from(list("邮政储蓄会员权益日满减送，。！？（）、 abcXYZ019.%-")),
        min_size=1,
        max_size=40,
    ).filter(lambda s: s.strip()),
    width=st.integers(160, 900),
    height=st.integers(40, 400),
)
def test_any_mixed_text_fits_or_is_refused_never_cut(text: str, width: int, height: int) -> None:
    box = Box(0, 0, width, height)
    try:
        fitted = fit_text(text, box, max_size=64, min_size=24, weight=BOLD, balance=True)
    except ValidationFailed:
        return
    assert_fits(text, box, fitted, BOLD, 1.3)


def test_rendered_ink_stays_inside_the_box() -> None:
    style = TextBox(x=100, y=80, w=420, h=230, max_size=90, min_size=20, weight=BLACK)
    for align in ("left", "center", "right"):
        for valign in ("top", "middle", "bottom"):
            canvas = Image.new("RGB", (640, 400), "black")
            text = "会员权益日 Big Sale，Qgjpy！最高 88 元"
            _draw_text(canvas, replace(style, align=align, valign=valign), text, "title")
            left, top, right, bottom = canvas.getbbox()
            assert (left, top) >= (style.x, style.y) and right <= style.x + style.w
            assert bottom <= style.y + style.h


# --- the font ----------------------------------------------------------------------------


def _ink(text: str, weight: int = REGULAR) -> np.ndarray:
    canvas = Image.new("L", (400, 100), 0)
    from PIL import ImageDraw

    ImageDraw.Draw(canvas).text((0, 0), text, font=font(64, weight), fill=255)
    return np.asarray(canvas)


def test_the_cjk_font_really_has_chinese_glyphs() -> None:
    tofu = _ink("\U0010ffff" * 4)  # never in a font: drawn as .notdef boxes
    rendered = _ink("邮政储蓄")
    assert rendered.any() and not np.array_equal(rendered, tofu)
    glyphs = [_ink(ch) for ch in "邮政储蓄"]
    assert all(not np.array_equal(g, _ink("\U0010ffff")) for g in glyphs)
    assert len({g.tobytes() for g in glyphs}) == 4
    assert has_glyph("邮") and has_glyph("，") and not has_glyph("😀")


def test_weights_are_real_variation_instances() -> None:
    ink = [int(_ink("会员权益", weight).sum()) for weight in (REGULAR, BOLD, BLACK)]
    assert ink[0] < ink[1] < ink[2]


# --- content validation ------------------------------------------------------------------


def test_content_limits_are_explained_in_chinese() -> None:
    template = get_template("rights_day")
    problems = validate_content(
        template,
        content(
            title="长" * 31,
            benefits=("权益",) * 7,
            outlet_name="",
            staff_name="张三😀",
            qr_url=None,
            qr_position="top",
        ),
    )
    messages = " ".join(p.message for p in problems)
    assert "标题最多 30 个字" in messages
    assert "权益最多 6 条" in messages
    assert "请填写网点名称" in messages
    assert "无法显示的字符：😀" in messages
    assert "缺少二维码" in messages
    assert "二维码位置" in messages
    assert validate_content(template, content()) == []


def test_render_refuses_invalid_content() -> None:
    with pytest.raises(ValidationFailed, match="请至少填写 1 条权益"):
        render_poster(get_template("festival"), content(benefits=()))


# --- templates and rendering -------------------------------------------------------------


def test_the_four_templates_load_with_chinese_names() -> None:
    templates = load_templates()
    assert {"rights_day", "ecommerce", "festival", "merchant"} <= set(templates)
    assert templates["rights_day"].name == "会员权益日"
    assert templates["merchant"].name == "商户联盟"
    with pytest.raises(Exception, match="没有这个海报模板"):
        get_template("nope")


@pytest.mark.parametrize("template_id", ["rights_day", "ecommerce", "festival", "merchant"])
def test_layout_boxes_never_overlap_and_keep_clear_of_the_edges(template_id: str) -> None:
    template = get_template(template_id)
    for position, footer in template.footers:
        boxes = {
            "title": template.title.box,
            "subtitle": template.subtitle.box,
            "date_line": template.date_line.box,
            "benefits": template.benefits.box,
            "logo": template.logo.box,
            "outlet_name": footer.outlet_name.box,
            "qr": footer.qr.plate_box,
        }
        if footer.staff_name is not None:
            boxes["staff_name"] = footer.staff_name.box
        if footer.qr.caption is not None:
            boxes["caption"] = footer.qr.caption.box
        for i, label in enumerate((*template.labels, *footer.labels)):
            boxes[f"label {i}"] = label.box
        names = sorted(boxes)
        for a, name in enumerate(names):
            box = boxes[name]
            assert box.x >= 40 and box.y >= 40, (position, name)
            assert box.right <= template.width - 40 and box.bottom <= template.height - 40
            for other in names[a + 1 :]:
                assert not box.overlaps(boxes[other]), (template_id, position, name, other)


@pytest.mark.parametrize("template_id", ["rights_day", "ecommerce", "festival", "merchant"])
def test_every_template_renders_at_its_size_in_every_position_and_the_code_scans(
    template_id: str,
) -> None:
    template = get_template(template_id)
    sample = sample_content(template, qr_url=URL)
    for position in QR_POSITIONS:
        image = render_poster(template, replace(sample, qr_position=position))
        assert image.size == (template.width, template.height) and image.mode == "RGB"
        assert [r.text for r in zxingcpp.read_barcodes(image)] == [URL]


def test_backgrounds_logo_and_ready_qr_are_used() -> None:
    template = get_template("rights_day")
    red = render_poster(template, content(background="#C00000"))
    assert red.getpixel((5, 5)) == (192, 0, 0)
    fade = render_poster(template, content(background=Gradient(("#000000", "#FFFFFF"), 180)))
    assert sum(fade.getpixel((5, 5))) < 30 and sum(fade.getpixel((5, 1914))) > 700
    photo = png_bytes(Image.new("RGB", (1600, 1000), (250, 200, 0)))
    with_photo = render_poster(template, content(background=photo))
    assert with_photo.getpixel((5, 5))[0] > with_photo.getpixel((5, 5))[2]  # yellow, darkened
    logo = png_bytes(Image.new("RGB", (200, 100), (255, 0, 255)))
    with_logo = render_poster(template, content(logo=logo))
    box = template.logo
    assert (255, 0, 255) in {
        c
        for _, c in with_logo.crop((box.x, box.y, box.x + box.w, box.y + box.h)).getcolors(1 << 16)
    }
    from core.channels.qr import qr_png

    ready = render_poster(template, content(qr_url=None, qr_png=qr_png(URL, size_px=600)))
    assert [r.text for r in zxingcpp.read_barcodes(ready)] == [URL]


def test_a_scaled_template_is_laid_out_again_at_that_size() -> None:
    image = render_poster(get_template("ecommerce").scaled(750 / 1080), content())
    assert image.size == (750, 1333)
    assert [r.text for r in zxingcpp.read_barcodes(image)] == [URL]
    for template_id in load_templates():  # half size: the small print still fits
        half = render_poster(get_template(template_id).scaled(0.5), content())
        assert half.size == (540, 960)
        assert [r.text for r in zxingcpp.read_barcodes(half)] == [URL]


def test_png_and_pdf_output() -> None:
    template = get_template("merchant")
    image = render_poster(template, content())
    png = to_png(image)
    assert png.startswith(b"\x89PNG") and Image.open(io.BytesIO(png)).size == image.size
    pdf = to_pdf(image)
    assert pdf.startswith(b"%PDF") and pdf.count(b"/Type /Page\n") + pdf.count(b"/Type /Page ") >= 1


def test_batch_png_has_the_same_pixels_and_a_valid_zlib_stream() -> None:
    """poster_png compresses the shared rows once and each poster's own rows on their own;
    the stream must still be one valid zlib stream (checksum included)."""
    template = get_template("festival")
    for outlet in ("雨湖区建设路支局", "岳塘区营业所"):
        c = content(outlet_name=outlet, qr_url=f"{URL}{len(outlet)}")
        data = poster_png(template, c)
        decoded = Image.open(io.BytesIO(data))
        decoded.load()
        assert decoded.tobytes() == render_poster(template, c).tobytes()
        idat, offset = b"", 8
        while offset < len(data):
            (length,) = struct.unpack(">I", data[offset : offset + 4])
            kind = data[offset + 4 : offset + 8]
            if kind == b"IDAT":
                idat += data[offset + 8 : offset + 8 + length]
            offset += 12 + length
        assert len(zlib.decompress(idat)) == 1920 * (1080 * 3 + 1)


# --- uploads -----------------------------------------------------------------------------


def test_png_jpeg_and_webp_uploads_are_accepted() -> None:
    picture = Image.new("RGB", (64, 48), (0, 122, 61))
    for fmt in ("PNG", "JPEG", "WEBP"):
        loaded = load_upload_image(png_bytes(picture, fmt))
        assert loaded.size == (64, 48) and loaded.mode == "RGB"
    transparent = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    assert load_upload_image(png_bytes(transparent)).mode == "RGBA"


def refused(data: bytes, **limits: int) -> str:
    with pytest.raises(ValidationFailed) as caught:
        load_upload_image(data, **limits)
    return caught.value.message


def test_a_text_file_named_png_is_refused() -> None:
    assert "只支持 PNG、JPEG 或 WebP" in refused("这不是图片".encode())
    assert "只支持" in refused(png_bytes(Image.new("RGB", (8, 8)), "GIF"))


def test_a_truncated_png_is_refused() -> None:
    noisy = Image.fromarray(np.random.default_rng(1).integers(0, 255, (200, 200, 3), np.uint8))
    data = png_bytes(noisy)
    assert "损坏或不完整" in refused(data[: len(data) // 2])
    jpeg = png_bytes(noisy, "JPEG")
    assert "损坏或不完整" in refused(jpeg[: len(jpeg) // 2])


def _png_header_claiming(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("side", [30_000, 10_000, 5_000])
def test_a_decompression_bomb_is_refused_from_its_header(side: int) -> None:
    # 900, 100 and 25 megapixels: past Pillow's error limit, past its warning limit, and
    # past ours only. None is ever decoded (the file is a few hundred bytes).
    assert "像素过多" in refused(_png_header_claiming(side, side))


def test_a_file_over_the_size_limit_is_refused() -> None:
    assert "不能超过 5 MB" in refused(b"\x89PNG\r\n\x1a\n" + b"\x00" * (5 * 1024 * 1024))
    assert "不能超过 1 MB" in refused(
        png_bytes(Image.new("RGB", (8, 8))) * 200_000, max_bytes=1024 * 1024
    )


# --- batches -----------------------------------------------------------------------------


def test_render_many_renders_every_poster_in_order_with_progress() -> None:
    template = get_template("rights_day").scaled(0.5)
    jobs = [(template, content(outlet_name=f"第{i}支局", qr_url=f"{URL}/{i}")) for i in range(9)]
    jobs.append(PosterJob("merchant", content(outlet_name="第9支局", qr_url=f"{URL}/9"), 0.5))
    seen: list[tuple[int, int]] = []
    results = list(render_many(jobs, workers=2, progress=lambda d, t: seen.append((d, t))))
    assert [index for index, _ in results] == list(range(10))
    assert seen[-1] == (10, 10) and [d for d, _ in seen] == list(range(1, 11))
    for index in (0, 9):
        template_used, job_content = jobs[index].resolve() if index == 9 else jobs[index]
        image = Image.open(io.BytesIO(results[index][1]))
        image.load()
        assert image.tobytes() == render_poster(template_used, job_content).tobytes()


def test_render_many_reports_which_poster_failed() -> None:
    template = get_template("rights_day").scaled(0.5)
    jobs = [(template, content(outlet_name=f"第{i}支局")) for i in range(3)]
    with pytest.raises(ValidationFailed, match="第 2 张海报：请填写网点名称"):
        list(render_many([*jobs[:1], (template, content(outlet_name=" ")), *jobs[1:]]))
    broken = (template, content(qr_url=None, qr_png=b"\x89PNG\r\n\x1a\nbroken"))
    with pytest.raises(ValidationFailed, match="第 3 张海报") as caught:
        list(render_many([*jobs[:2], broken], workers=2))
    assert "损坏" in caught.value.message


def test_render_many_works_under_an_unguarded_main_like_streamlits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Streamlit runs scripts with a stand-in __main__ whose __file__ is app.py, which has no
    `if __name__ == "__main__"` guard; workers must not re-run it (it would start the app)."""
    script = tmp_path / "app.py"
    script.write_text("raise SystemExit('the main script ran in a worker')\n")
    stand_in = types.ModuleType("__main__")
    stand_in.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", stand_in)
    template = get_template("festival").scaled(0.5)
    jobs = [(template, content(outlet_name=f"第{i}支局")) for i in range(4)]
    results: list[tuple[int, bytes]] = []
    worker = threading.Thread(target=lambda: results.extend(render_many(jobs, workers=2)))
    worker.start()  # from a thread other than the main one, as Streamlit's script runner does
    worker.join(timeout=60)
    assert [index for index, _ in results] == [0, 1, 2, 3]
    assert sys.modules["__main__"] is stand_in


def test_a_16_bit_grey_photo_keeps_its_tones() -> None:
    # Pillow opens 16-bit grey PNGs as "I;16"; converting that straight to RGB clips every
    # value above 255 to white.
    ramp = np.linspace(0, 65535, 64 * 256).reshape(64, 256).astype(np.uint16)
    loaded = load_upload_image(png_bytes(Image.fromarray(ramp)))
    assert loaded.mode == "RGB"
    grey = np.asarray(loaded)[:, :, 0].astype(int)
    expected = (ramp >> 8).astype(int)
    assert np.abs(grey - expected).max() <= 1
    assert 120 <= grey.mean() <= 135  # a ramp, not a white sheet


def test_few_benefits_get_larger_type_and_still_fit_the_card() -> None:
    from core.posters.render import benefits_style
    from core.posters.text_fit import fit_list

    template = get_template("rights_day")
    few = ("满30减10元", "寄递券 5元", "一分购 20元")
    base = fit_list(few, template.benefits)
    adapted = fit_list(few, benefits_style(template.benefits, len(few)))
    assert adapted.size > base.size and not adapted.below_min
    four = (*few, "新开户客户送 10 元话费")
    assert benefits_style(template.benefits, len(four)) == template.benefits
