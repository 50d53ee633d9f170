"""Campaign results (活动复盘): coupon events in, spend against the approved budget, KPI
attainment, the uplift against outlets that did not take part, the attribution chain,
and the frozen 复盘 with its PDF and XLSX."""
