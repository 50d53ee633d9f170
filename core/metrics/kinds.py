"""What a metric is: flow or stock, money or not, and the builtin six of the outlet daily
report (their wide columns and snapshot fields). The registry (core/metrics/registry.py)
adds the metrics admins define; this module has no dependencies so every metrics module
can use it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from core.platform.formatting import format_metric


class MetricKind(StrEnum):
    FLOW = "flow"  # summed over the period
    STOCK = "stock"  # last known value at the period end


@dataclass(frozen=True)
class MetricSpec:
    key: str
    label: str
    kind: MetricKind
    daily_column: str
    snapshot_field: str
    is_money: bool = False
    # Registry fields (core/metrics/registry.py): a non-builtin metric keeps its values in
    # the long tables and the series snapshots, keyed by `key`.
    builtin: bool = True
    unit: str = ""
    at_outlet: bool = True
    at_staff: bool = False
    sort_order: int = 0
    active: bool = True

    def format(self, value: int, *, compact: bool = True) -> str:
        """The value as users read it, with its unit: "1,234 人", "12.35万元", "56 个"."""
        text = format_metric(value, is_money=self.is_money, compact=compact)
        # money already carries 元/万元 in its format
        return f"{text} {self.unit}" if self.unit and not self.is_money else text


def _six(unit: str, at_staff: bool, order: int) -> dict[str, object]:
    """Registry defaults of the builtin six (the migration seeds the same rows)."""
    return {"unit": unit, "at_staff": at_staff, "sort_order": order}


METRICS: dict[str, MetricSpec] = {
    spec.key: spec
    for spec in (
        MetricSpec(
            "new_friends",
            "新增好友",
            MetricKind.FLOW,
            "new_friends",
            "cum_new_friends",
            **_six("人", True, 10),
        ),
        MetricSpec(
            "total_friends",
            "好友总数",
            MetricKind.STOCK,
            "total_friends",
            "total_friends",
            **_six("人", True, 20),
        ),
        MetricSpec(
            "groups", "客户群数", MetricKind.STOCK, "groups", "groups", **_six("个", False, 30)
        ),
        MetricSpec(
            "group_members",
            "群成员数",
            MetricKind.STOCK,
            "group_members",
            "group_members",
            **_six("人", True, 40),
        ),
        MetricSpec(
            "conversions",
            "转化客户",
            MetricKind.FLOW,
            "conversions",
            "cum_conversions",
            **_six("人", True, 50),
        ),
        MetricSpec(
            "deposits",
            "新增存款",
            MetricKind.FLOW,
            "deposits_fen",
            "cum_deposits_fen",
            is_money=True,
            **_six("元", True, 60),
        ),
    )
}


__all__ = ["METRICS", "MetricKind", "MetricSpec"]
