"""Every setting is documented in the README, and the defaults make a fresh machine work."""

from pathlib import Path

from core.settings import DEFAULT_DATABASE_URL, ENVIRONMENT_VARIABLES, get_settings

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
