"""Domain services of 邮惠运营工作台: plain Python, no Streamlit.

The rooms, lowest first; a room imports only from rooms below it (checked by import-linter,
see `[tool.importlinter]` in pyproject.toml and tests/test_architecture.py):

- `platform/`   settings, clock, errors, formats, file reading and export, auth, users,
                permissions and scope, audit, the org tree, notifications
- `campaigns/`  campaign design, plans, the review workflow, budgets, compliance, merchants
- `channels/`   channel codes (活码), staff assignment, events and scans, funnel, QR codes
- `metrics/`    daily metrics import, snapshots, boards and rankings, dashboard, data quality
- `posters/`    poster templates, text fitting, rendering, batches, the poster studio
- `jobs/`       the scheduler (claim and run) and the scheduled jobs
- `demo/`       the demo province seed
- `bootstrap.py`, `cli.py`  start-up and the command line, on top of everything

`channels` and `metrics` are siblings: neither imports the other. Pages and the CLI call
these functions with the acting user; each function that changes data checks permission
and scope, validates, writes in one transaction and audits.
"""
