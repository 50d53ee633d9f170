"""Campaign results (复盘): the whole 复盘 of a 500-outlet, 30-day campaign with 200,000
coupon events (spend, KPIs, the uplift with its 1,000-resample bootstrap for three
metrics, the attribution chain, the outlets), against plain SQL GROUP BYs over the raw
daily rows and coupon events that compute only the spend and the per-outlet sums (no
bootstrap). Then a 1,000,000-row coupon CSV through `import_coupons` (stream, validate
every cell, hash every customer, spool, upsert, audit) against a bare csv.reader +
executemany INSERT of the same rows without any validation."""

from __future__ import annotations

import csv
import io
import random
import resource
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session

import bench.national as national
from bench.common import Result, scratch_sqlite, timed
from core.campaigns.design import CampaignDesign, Coupon, CouponKind
from core.platform.clock import SHANGHAI, utcnow
from core.platform.permissions import Actor
from core.results.coupons import import_coupons
from core.results.retrospective import compute
from db.bulk import bulk_insert
from db.engine import get_engine
from db.models import Campaign, Merchant, OrgLevel, OrgUnit, PlanState

END = national.END
START = END - timedelta(days=29)
CITY_OUTLETS = 500


def _campaign(session: Session) -> tuple[int, list[str], int]:
    city = session.execute(
        sa.select(OrgUnit.id).where(OrgUnit.level == OrgLevel.CITY).order_by(OrgUnit.code)
    ).first()[0]
    merchant = Merchant(city_id=city, name="基准超市")
    session.add(merchant)
    session.flush()
    design = CampaignDesign(
        name="基准活动",
        city_id=city,
        start_date=START,
        end_date=END,
        coupons=[
            Coupon(
                name="满100减20",
                kind=CouponKind.FULL_REDUCTION,
                face_value_fen=2000,
                threshold_fen=10000,
                quantity=500_000,
                post_share_pct=60,
                merchant_ids=[merchant.id],
            ),
            Coupon(name="寄递券", kind=CouponKind.SHIPPING, face_value_fen=500, quantity=500_000),
        ],
        merchant_ids=[merchant.id],
        kpi_new_friends=50_000,
        kpi_conversions=5_000,
        kpi_deposits_fen=10**11,
    )
    campaign = Campaign(
        city_id=city,
        name=design.name,
        kind=design.kind,
        start_date=START,
        end_date=END,
        state=PlanState.ENDED,
        version=1,
        design=design.model_dump(mode="json"),
    )
    session.add(campaign)
    session.commit()
    codes = list(
        session.execute(
            sa.select(OrgUnit.code).where(OrgUnit.level == OrgLevel.OUTLET, OrgUnit.city_id == city)
        ).scalars()
    )
    return campaign.id, codes, merchant.id


def _event_rows(cid: int, codes: list[str], merchant: int, count: int, prefix: str):
    """(event_id, campaign, line, outlet code, merchant, customer, kind, face, discount, time)."""
    rng = random.Random(11)
    kinds = ("claimed", "redeemed", "expired", "issued")
    for i in range(count):
        line = 1 + (i & 1)
        face = 2000 if line == 1 else 500
        kind = kinds[i % 4]
        moment = datetime.combine(START, datetime.min.time()) + timedelta(
            seconds=rng.randrange(30 * 86400)
        )
        yield (
            f"{prefix}{i}",
            cid,
            line,
            codes[i % len(codes)],
            merchant if line == 1 else None,
            f"c{rng.randrange(count // 3)}",
            kind,
            face,
            face - (i % 50) if kind == "redeemed" else 0,
            moment,
        )


def _coupon_csv(rows) -> bytes:
    out = io.StringIO()
    out.write(
        "事件编号,活动编号,券序号,网点编码,商户编号,客户ID,事件类型,面值(元),实际优惠(元),时间\n"
    )
    for e, c, line, code, m, cust, kind, face, disc, at in rows:
        out.write(
            f"{e},{c},{line},{code},{'' if m is None else m},{cust},{kind},"
            f"{face / 100:.2f},{disc / 100:.2f},{at:%Y-%m-%d %H:%M:%S}\n"
        )
    return out.getvalue().encode()


def run(scale: str) -> list[Result]:
    national.CITIES = 4  # 2,000 outlets in 4 cities: one city is the 500-outlet campaign
    url = scratch_sqlite("results")
    get_engine(url).dispose()
    path = url.removeprefix("sqlite:///")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)  # national.build migrates it itself
    national.build(url, 2_000, 61, say=lambda *_: None)
    engine = get_engine(url)
    with Session(engine) as session:
        cid, codes, merchant = _campaign(session)
        ids = dict(session.execute(sa.select(OrgUnit.code, OrgUnit.id)).all())
        now = utcnow()
        rows = (
            (e, c, line, ids[code], m, cust, kind, face, disc, at.replace(tzinfo=SHANGHAI), now)
            for e, c, line, code, m, cust, kind, face, disc, at in _event_rows(
                cid, codes, merchant, 200_000, "R"
            )
        )
        bulk_insert(
            session,
            "coupon_event",
            (
                "event_id",
                "campaign_id",
                "coupon_line",
                "outlet_id",
                "merchant_id",
                "customer",
                "kind",
                "face_value_fen",
                "discount_fen",
                "at",
                "imported_at",
            ),
            rows,
        )
        session.commit()
        campaign = session.get(Campaign, cid)
        compute(session, campaign)  # warm the outlet directory cache, as a running app has
        ours, report = timed(lambda: compute(session, campaign), repeat=3)
        assert report["uplift"]["deposits"]["per_outlet"] is not None, report["uplift_reason"]
        baseline, _ = timed(lambda: _plain_sql(session, cid), repeat=3)
    results = [
        Result(
            name="results_retrospective_500_outlets",
            value=round(ours, 3),
            unit="s",
            baseline="plain SQL: spend GROUP BY line + per-outlet sums of 3 flows over 2 windows (no bootstrap, no chain)",
            baseline_value=round(baseline, 3),
            scale=scale,
            notes=f"{len(codes)} treated outlets, 30 days, 200,000 coupon events, 2,000 outlets; "
            "1,000 bootstrap resamples x 3 metrics; goal < 2 s",
        )
    ]
    results += _import(engine, cid, codes, merchant, scale)
    return results


def _plain_sql(session: Session, cid: int) -> None:
    session.execute(
        sa.text(
            "SELECT coupon_line, kind, count(*), sum(discount_fen) FROM coupon_event "
            "WHERE campaign_id = :c GROUP BY coupon_line, kind"
        ),
        {"c": cid},
    ).all()
    for first, last in ((START, END), (START - timedelta(days=30), START - timedelta(days=1))):
        session.execute(
            sa.text(
                "SELECT outlet_id, sum(new_friends), sum(conversions), sum(deposits_fen) "
                "FROM daily_metric WHERE date BETWEEN :a AND :b GROUP BY outlet_id"
            ),
            {"a": first.isoformat(), "b": last.isoformat()},
        ).all()


def _import(engine: sa.Engine, cid: int, codes: list[str], merchant: int, scale: str):
    count = 1_000_000 if scale == "full" else 200_000
    data = _coupon_csv(_event_rows(cid, codes, merchant, count, "I"))

    def ours() -> None:
        with Session(engine) as session:
            report = import_coupons(
                session, actor=Actor.system("bench"), data=data, filename="bench.csv"
            )
            assert report.ok, list(report.problems)[:3]

    ours_time, _ = timed(ours)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def bare() -> None:
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute(
                "CREATE TEMP TABLE IF NOT EXISTS bare (e TEXT PRIMARY KEY, c INT, l INT, o TEXT, "
                "m TEXT, cu TEXT, k TEXT, f TEXT, d TEXT, t TEXT)"
            )
            cursor.execute("DELETE FROM bare")
            reader = csv.reader(io.StringIO(data.decode("utf-8")))
            next(reader)
            cursor.executemany("INSERT OR REPLACE INTO bare VALUES (?,?,?,?,?,?,?,?,?,?)", reader)
            raw.commit()
        finally:
            raw.close()

    bare_time, _ = timed(bare)
    return [
        Result(
            name=f"results_import_coupons_{count // 1000}k_rows",
            value=round(ours_time, 2),
            unit="s",
            baseline="csv.reader + executemany INSERT OR REPLACE, no validation (same SQLite file)",
            baseline_value=round(bare_time, 2),
            scale=scale,
            notes=f"{count:,} rows, {len(data) / 2**20:.0f} MB CSV; peak RSS of the bench process "
            f"{peak / 2**20:.0f} MiB; goal < 30 s for 1M rows",
        )
    ]


if __name__ == "__main__":
    for r in run("full"):
        print(r)
