"""AppTest helpers: a seeded small world and a logged-in app per role."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlmodel import Session
from streamlit.testing.v1 import AppTest

from core.platform import auth
from db.engine import get_engine
from db.models import Role
from tests.factories import PASSWORD, make_tree, make_users

ROOT = Path(__file__).parents[2]
USERNAMES = {
    Role.ADMIN: "admin",
    Role.PROVINCE_REVIEWER: "reviewer",
    Role.CITY_PLANNER: "planner",
    Role.OUTLET_MANAGER: "manager",
    Role.DESIGNER: "designer",
}


@pytest.fixture
def world(sqlite_url: str):
    with Session(get_engine(sqlite_url), expire_on_commit=False) as session:
        tree = make_tree(session)
        users = make_users(session)
    return tree, users


@pytest.fixture
def app_for(world, sqlite_url: str) -> Callable[[Role | None], AppTest]:
    """An AppTest of Home.py, logged in as the role's user (None: anonymous)."""

    def build(role: Role | None) -> AppTest:
        at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=30)
        if role is not None:
            with Session(get_engine(sqlite_url)) as session:
                at.session_state["session_token"] = auth.login(
                    session, USERNAMES[role], PASSWORD
                ).token
        return at

    return build


@pytest.fixture(autouse=True)
def _fresh_caches():
    """st.cache_data is per process: never let one test's numbers leak into the next."""
    import streamlit as st

    st.cache_data.clear()
    yield
    st.cache_data.clear()


@pytest.fixture
def downloads(monkeypatch) -> dict[str, bytes]:
    """The bytes behind every download button a run drew, by file name. AppTest keeps them
    in a media store it drops after the run, so catch them as they are stored."""
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    files: dict[str, bytes] = {}
    real = MemoryMediaFileStorage.load_and_get_id

    def keep(self, path_or_data, mimetype, kind, filename=None):
        if filename and isinstance(path_or_data, bytes):
            files[filename] = path_or_data
        return real(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", keep)

    # Tables are encoded only when the button is clicked (a deferred download): click it.
    from streamlit.runtime.media_file_manager import MediaFileManager

    real_deferred = MediaFileManager.add_deferred

    def click(self, data_callable, mimetype, coordinates, file_name=None, **kwargs):
        if file_name:
            files[file_name] = data_callable()
        return real_deferred(self, data_callable, mimetype, coordinates, file_name, **kwargs)

    monkeypatch.setattr(MediaFileManager, "add_deferred", click)
    return files
