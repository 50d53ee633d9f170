"""Scheduled jobs (定时任务): `scheduler` claims and runs a job exactly once across processes
and knows nothing of which jobs exist; `tasks` defines the jobs, which register themselves
with the scheduler when it is imported, and this package imports it so that any use of
`core.jobs` sees every job.

May import: every domain room below it.
"""

from core.jobs import tasks  # noqa: F401  (the jobs register themselves)
