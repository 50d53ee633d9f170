"""定时任务 and 数据质量 pages."""

from datetime import timedelta

from sqlmodel import Session, select

from core.metrics.importing import import_metrics
from core.platform.clock import shanghai_today
from db.engine import get_engine
from db.models import JobRun, Role
from tests.factories import metrics_csv


def test_admin_runs_a_job_now_and_sees_it_recorded(app_for, sqlite_url) -> None:
    at = app_for(Role.ADMIN).run()
    at.switch_page("pages/jobs.py").run()
    assert not at.exception
    assert "从未运行" in list(at.dataframe[0].value["上次计划时间"])
    at.selectbox(key="jobs_pick").set_value("rank_snapshot")
    at.button(key="jobs_run").click().run()
    assert any("成功" in s.value for s in at.success)
    with Session(get_engine(sqlite_url)) as session:
        assert session.exec(select(JobRun.job, JobRun.status)).all() == [("rank_snapshot", "ok")]


def test_data_quality_page_before_and_after_the_check(app_for, world, sqlite_url) -> None:
    at = app_for(Role.CITY_PLANNER).run()
    at.switch_page("pages/data_quality.py").run()
    assert any("还没有运行过" in i.value for i in at.info)
    yesterday = shanghai_today() - timedelta(days=1)
    rows = [
        (yesterday - timedelta(days=2), c, 1, 1, 1, 1, 1, "1") for c in ("O111", "O112", "O211")
    ]
    rows += [(yesterday, "O111", 1, 1, 1, 1, 1, "1")]
    with Session(get_engine(sqlite_url)) as session:
        assert import_metrics(
            session, actor=world[1][Role.ADMIN], data=metrics_csv(rows), filename="m.csv"
        ).ok
    admin = app_for(Role.ADMIN).run()
    admin.switch_page("pages/jobs.py").run()
    admin.selectbox(key="jobs_pick").set_value("data_quality")
    admin.button(key="jobs_run").click().run()
    at.run()
    missing = at.dataframe[0].value
    assert list(missing["网点编码"]) == ["O112"]  # O211 is silent too, but in another city


def test_deposit_outliers_read_in_yuan(app_for, world, sqlite_url) -> None:
    yesterday = shanghai_today() - timedelta(days=1)
    rows = [
        (yesterday - timedelta(days=d), "O111", 5 + d % 3, 100, 1, 1, 1, str(100 + d % 5))
        for d in range(1, 30)
    ]
    rows.append((yesterday, "O111", 6, 100, 1, 1, 1, "98765.40"))
    with Session(get_engine(sqlite_url)) as session:
        assert import_metrics(
            session, actor=world[1][Role.ADMIN], data=metrics_csv(rows), filename="m.csv"
        ).ok
    admin = app_for(Role.ADMIN).run()
    admin.switch_page("pages/jobs.py").run()
    admin.selectbox(key="jobs_pick").set_value("data_quality")
    admin.button(key="jobs_run").click().run()
    admin.switch_page("pages/data_quality.py").run()
    outliers = next(d.value for d in admin.dataframe if "当日值" in d.value.columns)
    deposit = outliers[outliers["指标"] == "新增存款"]
    assert list(deposit["当日值"]) == ["98,765.40 元"]
    assert "新增存款(分)" not in set(outliers["指标"])
