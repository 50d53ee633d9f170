"""QR downloads: every code in a batch ZIP decodes (with a real decoder) to its own URL."""

import io
import zipfile

import pytest
import zxingcpp
from PIL import Image
from sqlmodel import Session

from core.channels.code_export import codes_zip, safe_name
from core.channels.codes import batch_codes
from core.channels.qr import qr_image, qr_svg
from core.platform.errors import ValidationFailed
from db.models import Role
from tests.factories import make_staff, make_tree, make_users


@pytest.mark.parametrize("size", [128, 600, 1500])
@pytest.mark.parametrize("with_logo", [False, True])
def test_qr_decodes_back_to_its_url_even_with_a_logo(size: int, with_logo: bool) -> None:
    url = "https://yh.example.cn/c/k7mq2x9wpr"
    logo = Image.new("RGB", (300, 300), (0, 122, 61)) if with_logo else None
    image = qr_image(url, size_px=size, logo=logo)
    assert image.size == (size, size)
    assert [r.text for r in zxingcpp.read_barcodes(image)] == [url]


def test_svg_is_a_standalone_svg() -> None:
    assert qr_svg("https://yh.example.cn/c/x").lstrip().startswith(b"<?xml")


@pytest.mark.parametrize("size", [50, 5000])
def test_sizes_outside_the_range_are_refused(size: int) -> None:
    with pytest.raises(ValidationFailed, match="128"):
        qr_image("https://x/c/y", size_px=size)


def test_batch_zip_is_named_by_city_outlet_and_staff_and_every_qr_scans(session: Session) -> None:
    tree = make_tree(session)
    users = make_users(session)
    for name in ("张三", "李四"):
        make_staff(session, "O111", name)
    make_staff(session, "O112", "王五")
    codes = batch_codes(
        session, actor=users[Role.DESIGNER], city_id=tree.cities["C1"].id, per="staff"
    ).codes
    archive = zipfile.ZipFile(io.BytesIO(codes_zip(codes, folder="C1市", size_px=300)))
    pngs = sorted(n for n in archive.namelist() if n.endswith(".png"))
    assert len(pngs) == 3 and all(n.startswith("C1市/O11") for n in pngs)
    assert any("O111支局·张三" in n for n in pngs)
    by_slug = {c.slug: c.url for c in codes}
    for name in pngs:
        slug = name.rsplit("_", 1)[1].removesuffix(".png")
        decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(archive.read(name))))
        assert [d.text for d in decoded] == [by_slug[slug]]
    assert "活码清单.csv" in archive.namelist()[-1]


def test_safe_names() -> None:
    assert safe_name("星沙/支局:柜台 码?") == "星沙_支局_柜台_码"
