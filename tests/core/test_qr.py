"""QR codes: every image decodes (with a real decoder, zxing-cpp) back to its URL, at the
smallest size and with a logo in the centre; the symbol is exactly what the `qrcode` library
would make; bad requests are refused in Chinese."""

import io
import random
import string
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import qrcode
import zxingcpp
from PIL import Image
from qrcode import util
from qrcode.constants import ERROR_CORRECT_H

from core.channels.qr import _penalties, qr_image, qr_modules, qr_png, qr_svg
from core.platform.errors import ValidationFailed

URL = "https://yh.example.cn/c/k7mq2x9wpr"


def decoded(image: Image.Image) -> list[str]:
    return [result.text for result in zxingcpp.read_barcodes(image)]


def logo() -> Image.Image:
    mark = Image.new("RGBA", (300, 200), (0, 122, 61, 255))
    mark.paste((255, 255, 255, 255), (40, 40, 260, 160))
    return mark


@pytest.mark.parametrize("size", [128, 300, 600, 2000])
@pytest.mark.parametrize("with_logo", [False, True])
def test_image_is_exactly_the_size_asked_and_scans_back_to_its_url(
    size: int, with_logo: bool
) -> None:
    image = qr_image(URL, size_px=size, logo=logo() if with_logo else None)
    assert image.size == (size, size) and image.mode == "RGB"
    assert decoded(image) == [URL]


def test_a_long_url_still_scans_at_128_px_and_with_a_logo() -> None:
    url = "https://yh.example.cn/c/" + "k7mq2x9wpr" * 47  # 494 characters
    assert decoded(qr_image(url, size_px=128)) == [url]
    assert decoded(qr_image(url, size_px=600, logo=logo())) == [url]


def test_png_bytes_decode_to_the_url() -> None:
    for kwargs in ({}, {"logo": logo()}):
        image = Image.open(io.BytesIO(qr_png(URL, size_px=300, **kwargs)))
        assert image.format == "PNG" and image.size == (300, 300)
        assert decoded(image) == [URL]


def test_quiet_zone_is_at_least_four_modules_and_modules_are_square_and_crisp() -> None:
    modules = qr_modules(URL)
    count = len(modules)
    assert not modules[:4].any() and not modules[-4:].any()
    assert not modules[:, :4].any() and not modules[:, -4:].any()
    image = np.asarray(qr_image(URL, size_px=600).convert("L"))
    assert set(np.unique(image)) <= {0, 255}  # no blurred edges
    module_px = 600 // count
    dark_rows = np.flatnonzero((image == 0).any(axis=1))
    assert dark_rows[0] >= 4 * module_px and 600 - 1 - dark_rows[-1] >= 4 * module_px


def test_logo_stays_within_22_percent_of_the_width() -> None:
    plain = np.asarray(qr_image(URL, size_px=600))
    marked = np.asarray(qr_image(URL, size_px=600, logo=logo()))
    changed = np.argwhere((plain != marked).any(axis=2))
    height, width = changed.max(axis=0) - changed.min(axis=0) + 1
    assert width <= 0.22 * 600 and height <= 0.22 * 600
    centre = changed.mean(axis=0)
    assert abs(centre[0] - 300) < 3 and abs(centre[1] - 300) < 3


def test_symbol_is_identical_to_the_qrcode_librarys_own_choice() -> None:
    """Only the mask search is vectorised; the chosen mask (hence every module) must match."""
    rng = random.Random(7)
    for _ in range(15):
        tail = "".join(rng.choices(string.ascii_letters + string.digits, k=rng.randint(1, 200)))
        url = f"https://yh.example.cn/c/{tail}"
        reference = qrcode.QRCode(error_correction=ERROR_CORRECT_H, border=4)
        reference.add_data(url)
        reference.make(fit=True)
        assert np.array_equal(qr_modules(url), np.array(reference.get_matrix()))


def test_penalty_scores_equal_the_librarys_lost_point() -> None:
    rng = np.random.default_rng(3)
    for count in (21, 33, 57):
        stack = rng.random((8, count, count)) < rng.random()
        assert _penalties(stack) == [util.lost_point(m.tolist()) for m in stack]


def test_svg_is_a_standalone_svg_document() -> None:
    data = qr_svg(URL)
    assert data.lstrip().startswith(b"<?xml")
    root = ET.fromstring(data)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("viewBox") and root.find("{http://www.w3.org/2000/svg}path") is not None


@pytest.mark.parametrize("size", [0, 127, 2001, 5000])
def test_sizes_outside_128_to_2000_are_refused(size: int) -> None:
    with pytest.raises(ValidationFailed, match="128–2000") as caught:
        qr_image(URL, size_px=size)
    assert caught.value.problems[0].field == "size"


@pytest.mark.parametrize("url", ["", "   ", "https://x/" + "a" * 491])
def test_empty_or_over_long_urls_are_refused(url: str) -> None:
    for make in (lambda: qr_png(url), lambda: qr_svg(url)):
        with pytest.raises(ValidationFailed) as caught:
            make()
        assert caught.value.problems[0].field == "url"
        assert "二维码链接" in caught.value.message
