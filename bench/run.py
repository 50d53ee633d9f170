"""Benchmarks: `python bench/run.py [--scale small|full] [--only NAME]`.

Prints a table and writes bench/results.json (a list of records with name, value, unit,
baseline, baseline_value, ratio = baseline time / our time, scale and notes).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import BENCH_DIR  # noqa: E402

BENCHMARKS = {
    "import": "bench.bench_import",
    "board": "bench.bench_board",
    "posters": "bench.bench_posters",
    "events": "bench.bench_events",
    "flood": "bench.bench_flood",
    "pages": "bench.pages",  # Chromium through every page of every role
    "load": "bench.load",  # many managers through Streamlit's websocket protocol
    "staff": "bench.bench_staff",
    "results": "bench.bench_results",
    "wecom": "bench.bench_wecom",  # signed WeCom callbacks at 200/s against one app process
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", choices=["small", "full"], default="small")
    parser.add_argument("--only", choices=sorted(BENCHMARKS), action="append")
    args = parser.parse_args()
    results_path = BENCH_DIR / "results.json"
    previous = json.loads(results_path.read_text()) if results_path.exists() else []
    fresh = []
    for name in args.only or BENCHMARKS:
        print(f"running {name} ({args.scale})…", flush=True)
        fresh += importlib.import_module(BENCHMARKS[name]).run(args.scale)
    names = {r.name for r in fresh}
    merged = [r for r in previous if r["name"] not in names] + [r.as_dict() for r in fresh]
    results_path.write_text(
        json.dumps(merged, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    print(f"\n{'name':40} {'ours':>10} {'baseline':>10} {'ratio':>7}  unit")
    for r in fresh:
        print(
            f"{r.name:40} {r.value:>10} {r.baseline_value!s:>10} {r.ratio!s:>7}  {r.unit}   {r.notes}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
