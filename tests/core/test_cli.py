"""The command line, through its real entry point (`python -m core`)."""

import os
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlmodel import Session, select

from core.cli import main
from core.metrics.rankings import BoardQuery, leaderboard
from core.platform.auth import login
from core.platform.periods import Period
from core.platform.permissions import Actor
from db.models import DailyMetric, User
from tests.factories import make_tree, metrics_csv

ROOT = Path(__file__).parents[2]
HEADER = "日期,网点编码,新增好友,好友总数,客户群数,群成员数,转化客户,新增存款(元)\n"
GOOD = [
    ("2026-11-07", "O111", 5, 100, 2, 60, 1, "1,234.50"),
    ("2026年11月8日", "O112", 3, 80, 1, 40, 0, "-200"),
]


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "core", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def test_import_metrics_gbk_bad_row_then_fixed_then_twice(session: Session, tmp_path: Path) -> None:
    make_tree(session)
    bad = tmp_path / "bad.csv"
    bad.write_bytes(
        metrics_csv(
            [*GOOD, ("2026-11-08", "O113", "abc", 1, 1, 1, 1, 1)], header=HEADER, encoding="gbk"
        )
    )
    result = run_cli("import-metrics", str(bad))
    assert result.returncode == 1
    assert "第 4 行" in result.stderr and "新增好友" in result.stderr
    assert session.exec(select(DailyMetric)).first() is None
    good = tmp_path / "good.csv"
    good.write_bytes(metrics_csv(GOOD, header=HEADER, encoding="gbk"))
    assert run_cli("import-metrics", str(good), "--dry-run").returncode == 0
    assert session.exec(select(DailyMetric)).first() is None
    first = run_cli("import-metrics", str(good))
    assert first.returncode == 0 and "新增 2" in first.stdout
    second = run_cli("import-metrics", str(good))
    assert second.returncode == 0 and "覆盖 2" in second.stdout
    session.rollback()  # end the test's read snapshot to see the other process's writes
    assert len(session.exec(select(DailyMetric)).all()) == 2


def test_create_user_takes_the_password_from_the_environment(session: Session) -> None:
    make_tree(session)
    result = run_cli(
        "create-user",
        "lisi",
        "--role",
        "outlet_manager",
        "--org",
        "O111",
        env={"NEW_USER_PASSWORD": "Abcdefg1"},
    )
    assert result.returncode == 0, result.stderr
    session.rollback()
    assert login(session, "lisi", "Abcdefg1").token
    refused = run_cli(
        "create-user",
        "wangwu",
        "--role",
        "city_planner",
        "--org",
        "O111",
        env={"NEW_USER_PASSWORD": "Abcdefg1"},
    )
    assert refused.returncode == 1 and "市" in refused.stderr
    assert session.exec(select(User).where(User.username == "wangwu")).first() is None


def test_create_user_without_password_and_without_terminal_fails(
    session: Session, monkeypatch
) -> None:
    monkeypatch.delenv("NEW_USER_PASSWORD", raising=False)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)
    assert main(["create-user", "zhao", "--role", "designer"]) == 1


def test_import_org_and_missing_file(session: Session, tmp_path: Path, capsys) -> None:
    path = tmp_path / "org.csv"
    path.write_text("code,name,level,parent_code\nP,省,province,\nC,市,city,P\n", encoding="utf-8")
    assert main(["import-org", str(path)]) == 0
    assert main(["import-org", str(tmp_path / "nope.csv")]) == 1
    assert "文件不存在" in capsys.readouterr().err


def test_usage_errors_exit_2() -> None:
    with pytest.raises(SystemExit) as info:
        main(["create-user", "x", "--role", "king"])
    assert info.value.code == 2


def test_init_db_and_seed_demo_on_an_empty_database(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    assert run_cli("init-db", env=env).returncode == 0
    seeded = run_cli("seed-demo", "--end-date", "2026-11-24", "--days", "20", env=env)
    assert seeded.returncode == 0 and "14 个市州" in seeded.stdout


def test_leaderboard_csv_agrees_with_the_engine(session: Session, tmp_path: Path) -> None:
    make_tree(session)
    path = tmp_path / "m.csv"
    rows = [
        (f"2026-11-0{d}", c, d, 1, 1, 1, 1, f"-{d}.5{d}")
        for d in (1, 2)
        for c in ("O111", "O112", "O211")
    ]
    path.write_bytes(metrics_csv(rows))
    assert run_cli("import-metrics", str(path)).returncode == 0
    args = (
        "leaderboard",
        "--metric",
        "deposits",
        "--start",
        "2026-11-01",
        "--end",
        "2026-11-02",
        "--top",
        "4",
    )
    result = run_cli(*args, "--format", "csv")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("rank,outlet_code,outlet_name,value")
    cli = [line.split(",")[:4] for line in lines[1:]]
    session.rollback()
    query = BoardQuery("deposits", Period(date(2026, 11, 1), date(2026, 11, 2)), top=4)
    board = leaderboard(session, actor=Actor.system(), query=query)
    assert cli == [
        [str(r.rank), r.code, r.name, f"{Decimal(r.value) / 100:.2f}"] for r in board.rows
    ]
    # outlets that never reported rank first with 0; the others lost 1.51 + 2.52 yuan each
    assert cli == [
        ["1", "O113", "O113支局", "0.00"],
        ["1", "O121", "O121支局", "0.00"],
        ["1", "O212", "O212支局", "0.00"],
        ["4", "O111", "O111支局", "-4.03"],
    ]
    as_json = run_cli(*args, "--format", "json")
    assert '"value": "-4.03"' in as_json.stdout
    refused = run_cli(
        "leaderboard", "--metric", "deposits", "--start", "2026-11-05", "--end", "2026-11-01"
    )
    assert refused.returncode == 1 and "结束日期不能早于开始日期" in refused.stderr


def test_codes_command_writes_a_zip_and_reuses_codes(session: Session, tmp_path: Path) -> None:
    import zipfile

    from tests.factories import make_staff

    make_tree(session)
    make_staff(session, "O111", "张三")
    out = tmp_path / "codes.zip"
    first = run_cli("codes", "--city", "C1", "--out", str(out))
    assert first.returncode == 0, first.stderr
    assert "新建 1" in first.stdout
    assert any(n.endswith(".png") for n in zipfile.ZipFile(out).namelist())
    again = run_cli("codes", "--city", "C1", "--out", str(out))
    assert "沿用 1" in again.stdout
    assert run_cli("codes", "--city", "NOPE", "--out", str(out)).returncode == 1


@pytest.mark.parametrize("command", ["codes", "posters"])
def test_codes_and_posters_take_only_the_citys_own_usable_campaign(
    session: Session, tmp_path: Path, command: str
) -> None:
    from db.models import ChannelCode
    from tests.factories import make_campaign, make_staff

    make_tree(session)
    make_staff(session, "O111", "张三")
    refused = {
        make_campaign(session, "C2", "株洲稳赚存款节", "approved"): "不是本市（C1市）的活动",
        make_campaign(session, "C1", "存款节", "rejected"): "活动「存款节」已被驳回",
        make_campaign(session, "C1", "权益周", "draft"): "尚未审批通过（当前为「草稿」）",
    }
    approved = make_campaign(session, "C1", "逢8会员权益日", "approved")
    out = tmp_path / f"{command}.zip"
    for campaign, reason in refused.items():
        result = run_cli(command, "--city", "C1", "--campaign", str(campaign), "--out", str(out))
        assert result.returncode == 1 and reason in result.stderr, result.stderr
    assert not out.exists()
    session.rollback()  # see the other processes' writes
    assert session.exec(select(ChannelCode)).first() is None
    result = run_cli(command, "--city", "C1", "--campaign", str(approved), "--out", str(out))
    assert result.returncode == 0, result.stderr
    session.rollback()
    assert [c.campaign_id for c in session.exec(select(ChannelCode))] == [approved]
    if command == "posters":  # without a campaign: the template's own text, never refused
        plain = run_cli(command, "--city", "C1", "--out", str(tmp_path / "plain.zip"))
        assert plain.returncode == 0 and "1 张专属海报" in plain.stdout, plain.stderr
