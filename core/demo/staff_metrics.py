"""Demo registry metrics: the four conversion figures the province reports (快捷支付绑卡,
手机银行开户, Ⅱ类户/邮惠万家, 价值存款) at outlet and staff level, and daily staff metrics
(new friends, conversions and the four) for the last weeks, so the staff boards and the
conversion breakdown have something to show. Values are long rows plus their series
snapshots, written in bulk (the snapshots are computed with numpy, not by replay)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import sqlalchemy as sa
from sqlmodel import Session

from core.metrics import series
from core.platform.clock import utcnow
from db.bulk import bulk_insert
from db.models import MetricDef, Staff, StaffStint

# key, Chinese name, unit, money, order
CONVERSION_METRICS = (
    ("quick_pay_binding", "快捷支付绑卡", "户", False, 70),
    ("mobile_banking", "手机银行开户", "户", False, 71),
    ("type2_accounts", "Ⅱ类户/邮惠万家", "户", False, 72),
    ("value_deposits", "价值存款", "元", True, 73),
)
OUTLET_DAYS = 31  # outlet-level conversion figures
STAFF_DAYS = 14  # daily staff metrics
STAFF_FLOWS = ("new_friends", "conversions")


def seed_registry_metrics(
    session: Session, rng: np.random.Generator, outlet_ids: list[int], end_date: date
) -> int:
    """Register the four conversion metrics and write their demo values; returns rows."""
    now = utcnow()
    for key, name, unit, money, order in CONVERSION_METRICS:
        session.add(
            MetricDef(
                key=key,
                name=name,
                unit=unit,
                kind="flow",
                is_money=money,
                at_outlet=True,
                at_staff=True,
                sort_order=order,
                updated_at=now,
            )
        )
    session.flush()
    rows = _outlet_values(session, rng, outlet_ids, end_date)
    return rows + _staff_values(session, rng, end_date)


def _daily(rng: np.random.Generator, scale: np.ndarray, days: int, key: str) -> np.ndarray:
    """(slots × days) believable daily counts (fen for value deposits)."""
    rate = {"quick_pay_binding": 0.5, "mobile_banking": 0.35, "type2_accounts": 0.25}
    if key == "value_deposits":
        return (rng.poisson(scale[:, None] * 0.15, (len(scale), days)) * 1_000_000).astype(
            np.int64
        ) + rng.integers(0, 100, (len(scale), days)) * 100
    if key == "new_friends":
        return rng.poisson(scale[:, None] * 1.2, (len(scale), days))
    if key == "conversions":
        return rng.poisson(scale[:, None] * 0.25, (len(scale), days))
    return rng.poisson(scale[:, None] * rate[key], (len(scale), days))


def _write(
    session: Session,
    level: str,
    key: str,
    slots: np.ndarray,
    values: np.ndarray,
    dates: list[date],
    table: str,
    columns: tuple[str, ...],
    extra: list[tuple] | None = None,
) -> int:
    """Long rows (every slot, every day) and dense snapshots of one metric."""
    days = values.shape[1]
    # Only days with something to report get a row (a day without one counts 0 for a flow).
    cols, rows_i = np.nonzero(values.T)  # date-major, the primary key's order
    picked = values[rows_i, cols].tolist()
    keys = slots[rows_i].tolist() if extra is None else [extra[i] for i in rows_i.tolist()]
    rows = (
        (key, dates[j], *(k if isinstance(k, tuple) else (k,)), v)
        for j, k, v in zip(cols.tolist(), keys, picked, strict=True)
    )
    count = bulk_insert(session, table, columns, rows)
    size = int(slots.max()) + 1
    cum = np.zeros((days, size), dtype=np.int64)
    cum[:, slots] = np.cumsum(values, axis=1).T
    ordinals = np.array([d.toordinal() for d in dates], dtype=np.int32)
    last = np.zeros((days, size), dtype=np.int32)
    last[:, slots] = np.maximum.accumulate(np.where(values != 0, ordinals[None, :], 0), axis=1).T
    series.write_dense(session, level, key, dates, cum, last)
    return count


def _outlet_values(
    session: Session, rng: np.random.Generator, outlet_ids: list[int], end_date: date
) -> int:
    dates = [end_date - timedelta(days=OUTLET_DAYS - 1 - i) for i in range(OUTLET_DAYS)]
    slots = np.asarray(outlet_ids, dtype=np.int64)
    scale = rng.lognormal(0.0, 0.5, len(slots)) * 3
    return sum(
        _write(
            session,
            "outlet",
            key,
            slots,
            _daily(rng, scale, OUTLET_DAYS, key),
            dates,
            "outlet_metric_value",
            ("metric_key", "date", "outlet_id", "value"),
        )
        for key, *_ in CONVERSION_METRICS
    )


def _staff_values(session: Session, rng: np.random.Generator, end_date: date) -> int:
    staff = session.execute(
        sa.select(Staff.id, Staff.outlet_id).where(Staff.active).order_by(Staff.id)
    ).all()
    if not staff:
        return 0
    bulk_insert(session, "staff_stint", ("staff_id", "outlet_id"), staff)
    stints = session.execute(
        sa.select(StaffStint.id, StaffStint.staff_id).order_by(StaffStint.staff_id)
    ).all()
    slots = np.array([s for s, _ in stints], dtype=np.int64)
    extra = [(staff_id, stint) for stint, staff_id in stints]
    dates = [end_date - timedelta(days=STAFF_DAYS - 1 - i) for i in range(STAFF_DAYS)]
    scale = rng.lognormal(0.0, 0.6, len(slots))
    return sum(
        _write(
            session,
            "staff",
            key,
            slots,
            _daily(rng, scale, STAFF_DAYS, key),
            dates,
            "staff_metric_value",
            ("metric_key", "date", "staff_id", "stint_id", "value"),
            extra,
        )
        for key in (*STAFF_FLOWS, *(k for k, *_ in CONVERSION_METRICS))
    )
