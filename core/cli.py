"""`python -m core <command>`: the command line for operators and automation.

Every command calls the same core functions as the pages, acting as the system operator
(audited as `cli:<os user>`). Exit code 0 on success, 1 when the input was refused, 2 on
a usage error; the reason goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import sys
from collections.abc import Callable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from core.platform.errors import DomainError
from core.platform.permissions import Actor
from core.platform.read_limits import DEFAULT_LIMITS, ReadLimits
from core.platform.settings import get_settings
from core.platform.tabular import RowProblem, read_file

Handler = Callable[[argparse.Namespace], int]
COMMANDS: dict[str, tuple[Handler, Callable[[argparse.ArgumentParser], None], str]] = {}


def command(
    name: str, help_text: str, configure: Callable[[argparse.ArgumentParser], None] = lambda p: None
):
    def register(fn: Handler) -> Handler:
        COMMANDS[name] = (fn, configure, help_text)
        return fn

    return register


def _operator() -> Actor:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return Actor.system(f"cli:{user}")


def _session():
    from db.engine import session_scope

    return session_scope(get_settings().database_url)


def _read_file(path: str, limits: ReadLimits = DEFAULT_LIMITS) -> bytes:
    """The file to import, refused unread when larger than the import accepts."""
    file = Path(path)
    if not file.is_file():
        raise DomainError(f"文件不存在：{path}")
    return read_file(file, limits)


def _print_problems(problems: Sequence[RowProblem]) -> None:
    for p in sorted(problems, key=lambda p: (p.line, p.column)):
        where = f"第 {p.line} 行" if p.line else "整个文件"
        column = f"「{p.column}」" if p.column else ""
        value = f"（{p.value}）" if p.value else ""
        print(f"  {where}{column}{value}：{p.reason}", file=sys.stderr)


# --- commands --------------------------------------------------------------------------


@command("init-db", "create or upgrade the database schema (Alembic); seeds the demo in demo mode")
def _init_db(args: argparse.Namespace) -> int:
    from core.bootstrap import prepare_database

    prepare_database(get_settings().database_url)
    print("数据库结构已是最新版本。")
    return 0


def _seed_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=2026, help="random seed (same seed, same province)")
    p.add_argument("--days", type=int, default=365, help="days of metrics (default: a year)")
    p.add_argument(
        "--end-date",
        type=date.fromisoformat,
        default=None,
        help="last day of demo metrics (default: yesterday)",
    )


@command(
    "seed-demo", "create the demo province, metrics and accounts (only what is missing)", _seed_args
)
def _seed_demo(args: argparse.Namespace) -> int:
    from core.demo.seed import seed_demo
    from db.migrate import upgrade_to_head

    upgrade_to_head(get_settings().database_url)
    with _session() as session:
        summary = seed_demo(
            session, seed=args.seed, end_date=args.end_date, days=args.days, progress=print
        )
    if summary.skipped:
        print(f"机构数据已存在，未重复生成；补充账户 {summary.accounts} 个。")
    else:
        print(
            f"演示省份已生成：{summary.cities} 个市州，{summary.counties} 个区县，{summary.outlets} 个网点，"
            f"{summary.staff} 名员工，{summary.merchants} 个商户，{summary.metric_rows} 行日报，{summary.accounts} 个账户。"
        )
    return 0


def _create_user_args(p: argparse.ArgumentParser) -> None:
    from db.models import Role

    p.add_argument("username")
    p.add_argument("--role", required=True, choices=[r.value for r in Role])
    p.add_argument(
        "--org", default="", help="org code: a city for city_planner, an outlet for outlet_manager"
    )
    p.add_argument("--name", default=None, help="display name (default: the username)")


@command(
    "create-user",
    "create an account; password from NEW_USER_PASSWORD or asked on a terminal",
    _create_user_args,
)
def _create_user(args: argparse.Namespace) -> int:
    from core.platform.users import UserCreate, create_user
    from db.models import Role

    password = os.environ.get("NEW_USER_PASSWORD")
    if not password:
        if not sys.stdin.isatty():
            print(
                "未提供密码：请设置环境变量 NEW_USER_PASSWORD，或在终端中运行以输入密码。",
                file=sys.stderr,
            )
            return 1
        password = getpass.getpass("新用户密码：")
        if password != getpass.getpass("再输入一次："):
            print("两次输入的密码不一致。", file=sys.stderr)
            return 1
    data = UserCreate(
        args.username, args.name or args.username, Role(args.role), password, args.org
    )
    with _session() as session:
        user = create_user(session, actor=_operator(), data=data)
    print(f"已创建用户 {user.username}（{user.role.label}，{user.org_name}）。")
    return 0


def _import_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="CSV (UTF-8/GBK) or XLSX")
    p.add_argument("--dry-run", action="store_true", help="validate only; write nothing")


def _run_import(
    args: argparse.Namespace, importer: Callable[..., Any], limits: ReadLimits = DEFAULT_LIMITS
) -> int:
    """Every import-* command: read the file within its limits, run the core importer as the
    operator (all or nothing, or a dry run), and report with the exit code."""
    data = _read_file(args.file, limits)
    with _session() as session:
        report = importer(
            session,
            actor=_operator(),
            data=data,
            filename=Path(args.file).name,
            dry_run=args.dry_run,
        )
    return _report(report.ok, report.summary(), report.problems)


@command("import-org", "import the org tree (code, name, level, parent_code)", _import_args)
def _import_org(args: argparse.Namespace) -> int:
    from core.platform.org_import import import_org

    return _run_import(args, import_org)


@command("import-metrics", "import daily outlet metrics (all or nothing per file)", _import_args)
def _import_metrics(args: argparse.Namespace) -> int:
    from core.metrics.importing import import_metrics

    return _run_import(args, import_metrics)


@command(
    "import-coupons",
    "import coupon events (issued/claimed/redeemed/expired; all or nothing, by event id)",
    _import_args,
)
def _import_coupons(args: argparse.Namespace) -> int:
    from core.results.coupons import COUPON_LIMITS, import_coupons

    return _run_import(args, import_coupons, COUPON_LIMITS)


@command(
    "import-targets",
    "import per-outlet targets for a period or a campaign (all or nothing)",
    _import_args,
)
def _import_targets(args: argparse.Namespace) -> int:
    from core.metrics.targets import import_targets

    return _run_import(args, import_targets)


def _retrospective_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--campaign", required=True, type=int, help="campaign id")
    p.add_argument("--format", choices=["json", "table"], default="json")


@command(
    "retrospective",
    "a campaign's results (复盘): spend, coupons, KPIs and uplift; money in fen",
    _retrospective_args,
)
def _retrospective(args: argparse.Namespace) -> int:
    import json

    from core.results.retrospective import as_json, retrospective

    with _session() as session:
        report = retrospective(session, actor=_operator(), campaign_id=args.campaign)
    data = as_json(report)
    if args.format == "json":
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return 0
    print(f"邮政出资（分）\t{data['spend_post_fen']}")
    print(f"商户出资（分）\t{data['spend_merchant_fen']}")
    print(f"领取\t{data['claimed']}")
    print(f"核销\t{data['redeemed']}")
    for metric, kpi in data["kpi"].items():
        print(f"目标/实际 {metric}\t{kpi['target']}\t{kpi['actual']}")
    for metric, u in data["uplift"].items():
        figure = (
            f"{u['per_outlet']}（{u['ci_low']} 至 {u['ci_high']}），合计 {u['total']}"
            if u["per_outlet"] is not None
            else report["uplift_reason"][metric]
        )
        print(f"提升 {metric}\t{figure}\t参与 {len(u['treated'])}\t对照 {len(u['control'])}")
    return 0


def _leaderboard_args(p: argparse.ArgumentParser) -> None:
    # --metric takes any active registry metric of the level; the engine refuses others.
    p.add_argument("--level", choices=["outlet", "staff"], default="outlet")
    p.add_argument("--metric", required=True, help="metric key (see the metric registry)")
    p.add_argument("--start", required=True, type=date.fromisoformat)
    p.add_argument("--end", required=True, type=date.fromisoformat)
    p.add_argument("--city", default=None, help="city code (default: the whole province)")
    p.add_argument("--outlet", default=None, help="outlet code (staff boards only)")
    p.add_argument("--top", type=int, default=100)
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")


@command(
    "leaderboard",
    "rank outlets on one metric over a period (same engine as the page)",
    _leaderboard_args,
)
def _leaderboard(args: argparse.Namespace) -> int:
    import json

    from core.metrics.rankings import BoardQuery, leaderboard
    from core.platform.export import write_csv
    from core.platform.formatting import change_text, format_metric, metric_number
    from core.platform.org import unit_by_code
    from core.platform.periods import custom

    if args.level == "staff":
        return _staff_leaderboard(args)
    if args.outlet:
        raise DomainError("--outlet 只用于员工排行（--level staff）")
    with _session() as session:
        city_id = unit_by_code(session, args.city).id if args.city else None
        query = BoardQuery(
            args.metric, custom(args.start, args.end), city_id=city_id, top=max(1, args.top)
        )
        board = leaderboard(session, actor=_operator(), query=query)
    money = board.metric.is_money

    columns = [
        "rank",
        "outlet_code",
        "outlet_name",
        "value",
        "city",
        "county",
        "previous_rank",
        "change",
    ]
    records = [
        [
            r.rank,
            r.code,
            r.name,
            metric_number(r.value, is_money=money),
            r.city,
            r.county,
            r.previous_rank or "",
            "" if r.change is None else r.change,
        ]
        for r in board.rows
    ]
    if args.format == "csv":
        write_csv(sys.stdout, columns, records)
    elif args.format == "json":
        print(
            json.dumps(
                [{**dict(zip(columns, rec, strict=True)), "value": str(rec[3])} for rec in records],
                ensure_ascii=False,
                indent=2,
            )
        )
    else:
        print(
            f"{board.scope_label} · {board.metric.label} · {board.period.text()} · 共 {board.outlet_count} 个网点"
        )
        for r in board.rows:
            change = "" if r.change is None else change_text(r.change)
            print(
                f"{r.rank:>5}  {r.code:<12} {r.name:<16} {format_metric(r.value, is_money=money):>14}  {change}"
            )
    return 0


def _staff_leaderboard(args: argparse.Namespace) -> int:
    """`leaderboard --level staff`: the staff board engine the page uses."""
    import json

    from core.metrics.staff_rankings import StaffBoardQuery, staff_leaderboard
    from core.platform.export import write_csv
    from core.platform.formatting import change_text, format_metric, metric_number
    from core.platform.org import unit_by_code
    from core.platform.periods import custom

    with _session() as session:
        city_id = unit_by_code(session, args.city).id if args.city else None
        outlet_id = unit_by_code(session, args.outlet).id if args.outlet else None
        query = StaffBoardQuery(
            args.metric,
            custom(args.start, args.end),
            city_id=city_id,
            outlet_id=outlet_id,
            top=max(1, args.top),
        )
        board = staff_leaderboard(session, actor=_operator(), query=query)
    money = board.metric.is_money
    columns = ["rank", "staff_code", "staff_name", "outlet_code", "value"]
    records = [
        [r.rank, r.code, r.name, r.outlet_code, metric_number(r.value, is_money=money)]
        for r in board.rows
    ]
    if args.format == "csv":
        write_csv(sys.stdout, columns, records)
    elif args.format == "json":
        rows = [
            {
                **dict(zip(columns, rec, strict=True)),
                "value": str(rec[4]),
                "outlet_name": r.outlet_name,
                "previous_rank": r.previous_rank,
                "active": r.active,
                "target": None if r.target is None else r.target.value,
                "behind": r.behind,
                "code_friends": r.code_friends,
            }
            for rec, r in zip(records, board.rows, strict=True)
        ]
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        print(
            f"{board.scope_label} · {board.metric.label} · {board.period.text()} · 共 {board.staff_count} 名员工"
        )
        for r in board.rows:
            change = "" if r.change is None else change_text(r.change)
            flag = " 落后" if r.behind else ""
            print(
                f"{r.rank:>5}  {r.code:<16} {r.name:<8} {r.outlet_code:<10} "
                f"{format_metric(r.value, is_money=money):>14}  {change}{flag}"
            )
    return 0


@command(
    "import-staff-metrics",
    "import daily per-staff metrics (staff code, date, outlet, registry metrics; all or nothing)",
    _import_args,
)
def _import_staff_metrics(args: argparse.Namespace) -> int:
    from core.metrics.staff_importing import import_staff_metrics

    return _run_import(args, import_staff_metrics)


@command(
    "import-staff-targets",
    "import per-staff targets (staff code, metric, start, end, target; all or nothing)",
    _import_args,
)
def _import_staff_targets(args: argparse.Namespace) -> int:
    from core.metrics.staff_targets import import_staff_targets

    return _run_import(args, import_staff_targets)


def _progress(label: str) -> Callable[[int, int], None]:
    """A one-line progress bar on a terminal (silent when piped)."""

    def show(done: int, total: int) -> None:
        if not sys.stderr.isatty():
            return
        width = 30
        filled = int(width * done / max(total, 1))
        print(
            f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}",
            end="",
            file=sys.stderr,
            flush=True,
        )
        if done == total:
            print(file=sys.stderr)

    return show


def _batch_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--city", required=True, help="city code")
    p.add_argument("--per", choices=["outlet", "staff"], default="outlet")
    p.add_argument("--campaign", type=int, default=None, help="campaign id the codes belong to")
    p.add_argument("--out", required=True, help="the ZIP file to write")


def _codes_args(p: argparse.ArgumentParser) -> None:
    _batch_args(p)
    p.add_argument("--size", type=int, default=600, help="QR size in pixels")


@command(
    "codes",
    "create (or reuse) a city's channel codes and write their QR PNGs into a ZIP",
    _codes_args,
)
def _codes(args: argparse.Namespace) -> int:
    from core.channels.code_export import codes_zip
    from core.channels.codes import batch_codes
    from core.platform.org import unit_by_code

    with _session() as session:
        city = unit_by_code(session, args.city)
        result = batch_codes(
            session, actor=_operator(), city_id=city.id, per=args.per, campaign_id=args.campaign
        )
    if not result.codes:
        print(f"{city.name}没有在职员工的网点，未生成活码。", file=sys.stderr)
        return 1
    data = codes_zip(
        result.codes, folder=city.name, size_px=args.size, progress=_progress("二维码")
    )
    Path(args.out).write_bytes(data)
    print(
        f"已写入 {args.out}：{len(result.codes)} 个活码（新建 {len(result.created)}，沿用 {len(result.reused)}）。"
    )
    return 0


def _posters_args(p: argparse.ArgumentParser) -> None:
    _batch_args(p)
    p.add_argument(
        "--template", default="rights_day", help="rights_day | ecommerce | festival | merchant"
    )


@command(
    "posters",
    "personalised posters for a city (each with its own channel code) into a ZIP",
    _posters_args,
)
def _posters(args: argparse.Namespace) -> int:
    from core.platform.org import unit_by_code
    from core.posters.studio import batch_posters

    with _session() as session:
        city = unit_by_code(session, args.city)
        data, count = batch_posters(
            session,
            actor=_operator(),
            city_id=city.id,
            per=args.per,
            campaign_id=args.campaign,
            template_id=args.template,
            progress=_progress("海报"),
        )
    Path(args.out).write_bytes(data)
    print(f"已写入 {args.out}：{count} 张专属海报。")
    return 0


def _moment(text: str) -> datetime:
    """2026-11-08T03:00+08:00 (a bare time is taken as Asia/Shanghai)."""
    from core.platform.clock import SHANGHAI

    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=SHANGHAI)


def _scheduler_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--once", action="store_true", help="run every job due now (or at --now) and exit"
    )
    p.add_argument(
        "--now",
        type=_moment,
        default=None,
        help="pretend it is this moment, e.g. 2026-11-08T03:00+08:00",
    )


@command(
    "scheduler",
    "run the scheduled jobs until stopped, or once (--once) for cron and tests",
    _scheduler_args,
)
def _scheduler(args: argparse.Namespace) -> int:
    from core.jobs.scheduler import build_scheduler, run_due

    if args.once:
        outcome = run_due(args.now)
        for job_id, status in outcome.items():
            print(f"{job_id:<24} {status or 'skipped (already run or running elsewhere)'}")
        return 1 if "failed" in outcome.values() else 0
    if args.now:
        print("--now 只能与 --once 一起使用。", file=sys.stderr)
        return 2
    print("定时任务已启动（Ctrl+C 停止）。")
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        build_scheduler(blocking=True).start()
    return 0


def _wecom_worker_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--wake-from-stdin",
        action="store_true",
        help="as the server's child: a byte on stdin wakes it, end of file stops it",
    )


@command(
    "wecom-worker",
    "make the queued calls to WeCom (welcome messages, tags, contact ways) until stopped",
    _wecom_worker_args,
)
def _wecom_worker(args: argparse.Namespace) -> int:
    import signal
    import threading

    from core.channels.wecom.service import run_worker

    if not get_settings().wecom_enabled:
        print(
            "未配置企业微信（WECOM_CORP_ID、WECOM_SECRET、WECOM_TOKEN、WECOM_AES_KEY）。",
            file=sys.stderr,
        )
        return 1
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    if not args.wake_from_stdin:
        print("企业微信调用队列已启动（Ctrl+C 停止）。")
    with contextlib.suppress(KeyboardInterrupt):
        return run_worker(wake_from_stdin=args.wake_from_stdin, stopping=stopping)
    return 0


@command(
    "wecom-sync-codes",
    "queue a WeCom contact way for every enabled code that has none (codes made before live mode)",
)
def _wecom_sync_codes(_args: argparse.Namespace) -> int:
    from core.channels.wecom.service import sync_contact_ways

    with _session() as session:
        queued = sync_contact_ways(session, actor=_operator())
    print(f"已为 {queued} 个活码排队创建企业微信联系我（由 wecom-worker 或应用的后台进程执行）。")
    return 0


def _job_runs_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--since", type=date.fromisoformat, default=None)
    p.add_argument("--format", choices=["table", "json"], default="table")


@command("job-runs", "list job runs: one per (job, scheduled time)", _job_runs_args)
def _job_runs(args: argparse.Namespace) -> int:
    import json

    from core.jobs.scheduler import job_runs
    from core.platform.clock import to_shanghai

    with _session() as session:
        runs = job_runs(session, since=args.since, limit=10_000)

    def local(moment: datetime | None) -> str | None:
        return to_shanghai(moment).isoformat(timespec="seconds") if moment else None

    records = [
        {
            "job": r.job,
            "scheduled_for": local(r.scheduled_for),
            "started_at": local(r.started_at),
            "finished_at": local(r.finished_at),
            "status": r.status,
            "error": r.error.splitlines()[0] if r.error else "",
        }
        for r in runs
    ]
    if args.format == "json":
        print(json.dumps(records, ensure_ascii=False, indent=2))
        return 0
    print(f"{'job':<22} {'scheduled_for':<26} {'status':<8} {'seconds':>8}  error")
    for r, record in zip(runs, records, strict=True):
        seconds = "" if r.seconds is None else f"{r.seconds:.1f}"
        print(
            f"{r.job:<22} {record['scheduled_for']:<26} {r.status:<8} {seconds:>8}  {record['error']}"
        )
    return 0


def _report(ok: bool, summary: str, problems: Sequence[RowProblem]) -> int:
    if ok:
        print(summary)
        return 0
    print(summary, file=sys.stderr)
    _print_problems(problems)
    return 1


# --- entry point ------------------------------------------------------------------------


def _require_current_schema() -> None:
    from db.migrate import is_up_to_date

    if not is_up_to_date(get_settings().database_url):
        raise DomainError("数据库结构不是最新版本（或尚未创建），请先运行：python -m core init-db")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m core", description="邮惠运营工作台 command line"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_fn, configure, help_text) in COMMANDS.items():
        configure(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = COMMANDS[args.command][0]
    try:
        if args.command not in ("init-db", "seed-demo"):
            _require_current_schema()
        return handler(args)
    except DomainError as exc:
        print(exc.message, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("已中断。", file=sys.stderr)
        return 130
