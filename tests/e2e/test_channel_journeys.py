"""The designer's journey: a city's channel codes, a batch of posters, the ZIP downloads."""

import io
import re
import zipfile

import zxingcpp
from PIL import Image
from playwright.sync_api import Page, expect

from tests.e2e.conftest import login, settle


def choose(page: Page, label: str, option: str) -> None:
    box = page.get_by_role("combobox", name=label)
    box.click()
    box.fill(option)  # the select filters as one types
    page.get_by_role("option", name=option).first.click()
    expect(box).to_have_value(option)
    settle(page)


def open_tab(page: Page, tab: str, shows: str | re.Pattern) -> None:
    """Click a tab until what it holds is visible (a click during a rerun can land on a
    tab bar that is about to be replaced)."""
    target = page.get_by_role("button", name=shows)
    for _ in range(3):
        settle(page)
        page.get_by_role("tab", name=tab).last.click()
        try:
            expect(target).to_be_visible(timeout=5_000)
            return
        except AssertionError:
            continue
    expect(target).to_be_visible()


def test_designer_makes_a_citys_codes_and_posters_and_downloads_them(
    server: str, page: Page
) -> None:
    login(page, server, "designer")
    page.get_by_role("link", name="渠道活码").click()
    expect(page.get_by_role("heading", name="渠道活码")).to_be_visible()
    choose(page, "市州", "株洲市")
    expect(page.get_by_text("还没有活码")).to_be_visible()
    open_tab(page, "批量生成", "批量生成")
    page.get_by_role("button", name="批量生成").click()
    expect(page.get_by_text(re.compile(r"新建 \d+ 个，沿用 0 个"))).to_be_visible()
    open_tab(page, "下载", re.compile("打包全部"))
    page.get_by_role("button", name=re.compile("打包全部")).click()
    # Until the run that packs the ZIP ends, the tab bar can show twice (the stale copy is
    # cleared only when the run finishes), and a click could hit the wrong one.
    expect(page.get_by_role("button", name="下载 ZIP")).to_be_visible(timeout=60_000)
    settle(page)
    with page.expect_download() as codes_download:
        page.get_by_role("button", name="下载 ZIP").click()
    codes_zip = zipfile.ZipFile(codes_download.value.path())
    pngs = [n for n in codes_zip.namelist() if n.endswith(".png")]
    assert len(pngs) > 50 and all(n.startswith("株洲市/") for n in pngs)
    first = zxingcpp.read_barcodes(Image.open(io.BytesIO(codes_zip.read(pngs[0]))))
    assert (first and f"{server}/c/" in first[0].text) or "/c/" in first[0].text

    with page.expect_download() as one_code:  # drawn on click
        page.get_by_role("button", name="下载 SVG").click()
    assert one_code.value.path().read_bytes().startswith(b"<?xml")

    page.get_by_role("link", name="海报工坊").click()
    expect(page.get_by_role("heading", name="海报工坊")).to_be_visible()
    expect(page.get_by_role("img").first).to_be_visible()  # the live preview
    with page.expect_download() as one_poster:  # full size, drawn on click
        page.get_by_role("button", name="下载 PDF").click()
    assert one_poster.value.path().read_bytes().startswith(b"%PDF")
    choose(page, "市州", "株洲市")
    page.get_by_role("button", name="生成并打包").click()
    expect(page.get_by_text(re.compile(r"已生成 \d+ 张专属海报"))).to_be_visible(timeout=120_000)
    settle(page)
    with page.expect_download() as posters_download:
        page.get_by_role("button", name="下载 ZIP").click()
    posters = zipfile.ZipFile(posters_download.value.path())
    names = posters.namelist()
    assert len(names) > 50 and all(n.endswith(".png") for n in names)
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(posters.read(names[0]))))
    assert decoded and "/c/" in decoded[0].text
