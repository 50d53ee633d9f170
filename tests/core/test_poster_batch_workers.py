"""A batch's worker processes never outlive the process that started them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]

BATCH = """
import os, sys
from dataclasses import replace
from core.posters.batch import render_many
from core.posters.templates import PosterJob, get_template, sample_content

base = sample_content(get_template("rights_day"))
jobs = [
    PosterJob("rights_day", replace(base, outlet_name=f"网点{i}", qr_url=f"http://x/c/{i:010d}"))
    for i in range(5000)
]
for index, _png in render_many(jobs, workers=2):
    if index == 20:
        print("rendering", flush=True)
"""


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(parent, []).append(int(entry.name))
    return tree


def _descendants(pid: int) -> set[int]:
    tree, found, todo = _children(), set(), [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_killing_the_app_mid_batch_leaves_no_worker_behind(tmp_path: Path) -> None:
    script = tmp_path / "batch.py"
    script.write_text(BATCH, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    app = subprocess.Popen(
        [sys.executable, str(script)], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    helpers: set[int] = set()
    try:
        assert app.stdout is not None and app.stdout.readline().strip() == "rendering"
        helpers = _descendants(app.pid)
        # the forkserver, the resource tracker and two workers
        assert len(helpers) >= 3
        os.kill(app.pid, signal.SIGKILL)
        app.wait(10)
        deadline = time.monotonic() + 15
        while any(_running(pid) for pid in helpers) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = [pid for pid in helpers if _running(pid)]
        assert not left, f"processes left running after the app was killed: {left}"
    finally:
        for pid in helpers | {app.pid}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        app.wait(10)
