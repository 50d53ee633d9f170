"""The server: `streamlit run app.py`.

Serves Home.py (the multipage app) plus plain HTTP routes (login/logout, health, and later
channel-code scans), and prepares the database once per server process at start-up.
"""

from __future__ import annotations

import logging
import uuid
from contextlib import asynccontextmanager

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from core.bootstrap import ensure_database
from core.channels.wecom import service as wecom
from core.jobs.scheduler import build_scheduler
from core.platform.settings import WorkerMode, get_settings
from ui.routes import routes

log = logging.getLogger("rights_day_studio")

# Home.py builds the navigation with st.navigation. Streamlit only learns that on the first
# run in a process; until then the pages/ folder beside Home.py puts it in the old
# folder-based mode, where an unknown path brings its English "Page not found" dialog
# before Home.py can answer with the Chinese page (ui/nav.py). Say so from the start.
PagesManager.uses_pages_directory = False


@asynccontextmanager
async def lifespan(_app: st.App):
    ensure_database(say=lambda msg: log.warning(msg))
    scheduler = None
    if get_settings().scheduler_enabled:
        # Once per server process (not per session or rerun); exactly-once across several
        # processes comes from the job_run claim in the database (core/jobs/scheduler.py).
        # The outbox sweep only where no worker of ours drains it (WECOM_WORKER=none): a
        # sweep in the server would make its calls to WeCom beside the callback route.
        scheduler = build_scheduler(wecom_sweep=get_settings().wecom_worker is WorkerMode.NONE)
        scheduler.start()
    # Live WeCom mode only: the outbox worker that makes the calls to WeCom.
    wecom.start()
    yield {}
    wecom.stop()
    if scheduler is not None:
        scheduler.shutdown(wait=False)


def on_script_error(exc: Exception) -> bool:
    """Users never see a traceback: log it with an id they can quote to the admin."""
    error_id = uuid.uuid4().hex[:8]
    log.error("page error %s", error_id, exc_info=exc)
    st.error(f"页面出错了，请稍后重试。如果问题持续，请把错误编号 {error_id} 告诉系统管理员。")
    return True


app = st.App("Home.py", lifespan=lifespan, routes=routes, on_script_error=on_script_error)
