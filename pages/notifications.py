"""消息通知: the user's in-app messages (plan decisions, plans waiting, reminders)."""

import streamlit as st

from core.platform.clock import format_timestamp
from core.platform.notifications import mark_read, my_notifications
from core.platform.permissions import Action
from ui import nav, widgets
from ui.text import md

actor = widgets.require(Action.VIEW_NOTIFICATIONS)
st.title("消息通知")

only_unread = st.toggle("只看未读", key="notes_unread")
with widgets.db() as session:
    notes = my_notifications(session, actor=actor, unread_only=only_unread)

if not notes:
    widgets.empty_state(
        "没有新消息。方案被审核、轮到您审核、权益日提醒等都会出现在这里。",
        icon=":material/notifications_none:",
    )
    st.stop()

unread = [n.id for n in notes if not n.read]
if unread and st.button(
    f"全部标为已读（{len(unread)}）", key="notes_read_all", icon=":material/done_all:"
):
    with widgets.db() as session:
        mark_read(session, actor=actor)
    st.rerun()

for note in notes:
    with st.container(border=True):
        head, when = st.columns([4, 1])
        head.markdown(("" if note.read else ":red-badge[未读] ") + f"**{md(note.title)}**")
        when.caption(format_timestamp(note.created_at))
        if note.body:
            st.markdown(md(note.body))
        nav.link_to(actor, note.page, query_params=note.params)
if unread:
    with widgets.db() as session:
        mark_read(session, actor=actor, ids=unread)  # seen now; the badges above showed them as new
