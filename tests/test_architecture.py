"""The import rules of README "Layout", enforced: import-linter's contracts in pyproject.toml
(core's rooms are layered, db imports nothing from core but the settings, core never imports
Streamlit or ui, and no module cycles)."""

from __future__ import annotations

from pathlib import Path

import pytest
from importlinter.cli import lint_imports

ROOT = Path(__file__).parents[1]


def test_imports_go_one_way(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.syspath_prepend(str(ROOT))
    code = lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True)
    report = capsys.readouterr().out
    assert code == 0, report
    assert "BROKEN" not in report and report.count("KEPT") >= 4
