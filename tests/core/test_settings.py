"""Every setting is documented in the README, and the defaults make a fresh machine work."""

from datetime import date
from pathlib import Path

import pytest

from core.cli import main
from core.platform.settings import (
    DEFAULT_DATABASE_URL,
    ENVIRONMENT_VARIABLES,
    SettingsError,
    get_settings,
)

README = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")


def test_every_environment_variable_is_in_the_readme() -> None:
    missing = [name for name in ENVIRONMENT_VARIABLES if f"`{name}`" not in README]
    assert missing == []


def test_demo_mode_follows_the_embedded_default(monkeypatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("DEMO_MODE", raising=False)
    get_settings.cache_clear()
    assert get_settings().database_url == DEFAULT_DATABASE_URL and get_settings().demo_mode
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://x@localhost/prod")
    get_settings.cache_clear()
    assert not get_settings().demo_mode
    monkeypatch.setenv("DEMO_MODE", "1")
    get_settings.cache_clear()
    assert get_settings().demo_mode
    get_settings.cache_clear()


@pytest.mark.parametrize("value", ["2015/01/01", "20150101", "2015-W01-1", "2015-02-30", "soon"])
def test_a_malformed_earliest_date_stops_the_start_with_the_reason(monkeypatch, value) -> None:
    monkeypatch.setenv("METRICS_EARLIEST", value)
    get_settings.cache_clear()
    with pytest.raises(SettingsError, match=f"METRICS_EARLIEST.*「{value}」"):
        get_settings()
    monkeypatch.delenv("METRICS_EARLIEST")
    get_settings.cache_clear()
    assert get_settings().metrics_earliest == date(2015, 1, 1)
    monkeypatch.setenv("METRICS_EARLIEST", "2020-06-01")
    get_settings.cache_clear()
    assert get_settings().metrics_earliest == date(2020, 6, 1)
    get_settings.cache_clear()


def test_the_command_line_refuses_a_malformed_earliest_date(monkeypatch, capsys) -> None:
    monkeypatch.setenv("METRICS_EARLIEST", "soon")
    get_settings.cache_clear()
    assert main(["job-runs"]) == 1
    assert "METRICS_EARLIEST" in capsys.readouterr().err
    get_settings.cache_clear()
