"""Entry page: who is here, and the pages their role may use (st.navigation)."""

import streamlit as st

from core.platform.notifications import unread_count
from ui import nav, page_data, widgets

st.set_page_config(page_title="邮惠运营工作台", page_icon="📮", layout="wide")
widgets.apply_global_style()

actor = widgets.current_actor()
if actor is None and widgets.session_token() and st.query_params.get("login") is None:
    st.query_params["login"] = "expired"
page = st.navigation(
    nav.navigation_for(actor), position="sidebar" if actor else "hidden", expanded=True
)
if actor is not None:
    with widgets.db() as session:
        widgets.sidebar_user(
            actor,
            page_data.sidebar_scope(actor),
            unread_count(session, actor=actor),
        )
    nav.phone_support()
with widgets.running_as(actor):
    page.run()
