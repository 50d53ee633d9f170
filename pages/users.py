"""用户管理: accounts, roles and their org; unlock, enable/disable, reset passwords (admins)."""

import pandas as pd
import streamlit as st

from core.platform.clock import format_timestamp
from core.platform.errors import DomainError
from core.platform.permissions import Action, Role
from core.platform.users import (
    UserCreate,
    create_user,
    list_users,
    reset_password,
    set_active,
    unlock_user,
)
from ui import widgets
from ui.text import md

actor = widgets.require(Action.MANAGE_USERS)
st.title("用户管理")

with widgets.db() as session:
    users = list_users(session, actor=actor)

frame = pd.DataFrame(
    [
        {
            "用户名": u.username,
            "姓名": u.display_name,
            "角色": u.role.label,
            "所属机构": f"{u.org_name}（{u.org_code}）" if u.org_code else u.org_name,
            "状态": "已停用" if not u.active else ("已锁定" if u.locked else "正常"),
            "最近登录": format_timestamp(u.last_login_at),
        }
        for u in users
    ]
)
st.dataframe(frame, hide_index=True, key="users_table", column_config=widgets.number_columns(frame))

manage, create = st.tabs(["管理账户", "新建用户"])
with manage:
    if not users:
        widgets.empty_state("还没有用户。")
    else:
        by_name = {u.username: u for u in users}
        chosen = by_name[
            st.selectbox("选择用户", list(by_name), key="users_pick", placeholder="请选择")
        ]
        a, b, c = st.columns(3)
        try:
            if a.button("解锁", key="users_unlock", disabled=not chosen.locked):
                with widgets.db() as session:
                    unlock_user(session, actor=actor, user_id=chosen.id)
                st.toast(f"已解锁 {md(chosen.username)}")
                st.rerun()
            label = "停用" if chosen.active else "启用"
            if b.button(label, key="users_toggle"):
                with widgets.db() as session:
                    set_active(session, actor=actor, user_id=chosen.id, active=not chosen.active)
                st.toast(f"已{label} {md(chosen.username)}")
                st.rerun()
            with c.popover("重置密码"):
                new_password = st.text_input("新密码", type="password", key="users_new_password")
                if st.button("确认重置", key="users_reset"):
                    with widgets.db() as session:
                        reset_password(
                            session, actor=actor, user_id=chosen.id, new_password=new_password
                        )
                    st.success(f"已重置 {md(chosen.username)} 的密码，其已登录的会话均已退出。")
        except DomainError as exc:
            widgets.show_error(exc)

with create, st.form("users_create", clear_on_submit=False):
    left, right = st.columns(2)
    username = left.text_input("用户名", key="new_username", placeholder="字母、数字，3–32 位")
    display_name = right.text_input("姓名", key="new_display_name")
    role = left.selectbox(
        "角色", list(Role), format_func=lambda r: r.label, key="new_role", placeholder="请选择"
    )
    org_code = right.text_input(
        "所属机构编码", key="new_org", help="市分策划填市编码，网点负责人填网点编码，其他角色可留空"
    )
    password = left.text_input(
        "初始密码", type="password", key="new_password", help="至少 8 位，含字母和数字"
    )
    if st.form_submit_button("创建", type="primary"):
        try:
            with widgets.db() as session:
                created = create_user(
                    session,
                    actor=actor,
                    data=UserCreate(username, display_name, role, password, org_code),
                )
            st.toast(
                f"已创建用户 {md(created.username)}（{created.role.label}，{md(created.org_name)}）",
                icon=":material/check_circle:",
            )
            st.rerun()
        except DomainError as exc:
            widgets.show_error(exc)
