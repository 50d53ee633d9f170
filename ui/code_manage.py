"""The 管理活码 and 离职继承 tabs of the 渠道活码 page: picking a code (dead ones first) and
the four ways out of a dead code, and handing a leaver's customers to a colleague (with
WeCom's side of it in live mode). Each change is one core call."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.channels.code_edits import (
    code_input,
    edit_code,
    extend_code,
    restaff_code,
    set_code_enabled,
)
from core.channels.codes import CodeChoices, CodeRead
from core.channels.staff import hand_over
from core.channels.wecom.service import handover_feedback
from core.platform.clock import format_timestamp
from core.platform.errors import DomainError
from core.platform.permissions import Actor
from ui import widgets
from ui.code_form import code_form, staff_pool
from ui.text import md


def manage_pane(actor: Actor, codes: list[CodeRead], choices: CodeChoices) -> None:
    """管理活码: one code at a time, those that can no longer receive customers first."""
    if not codes:
        st.caption("还没有可管理的活码。")
        return
    ordered = sorted(codes, key=lambda c: (not c.problem, c.outlet_name, c.name))
    by_id = {c.id: c for c in ordered}
    picked = st.selectbox(
        "活码",
        list(by_id),
        format_func=lambda i: (
            f"{'⚠ ' if by_id[i].problem else ''}{by_id[i].outlet_name} · {by_id[i].name}"
            + (f"（{by_id[i].problem}）" if by_id[i].problem else "")
        ),
        key="manage_code",
        placeholder="请选择",
    )
    _manage_code(actor, by_id[picked], choices)


def _done(message: str) -> None:
    widgets.flash(message)
    st.rerun()


def _manage_code(actor: Actor, code: CodeRead, choices: CodeChoices) -> None:
    """管理活码: the four ways out of a dead code, each one core call."""
    what = st.segmented_control(
        "操作",
        ["修改设置", "延长有效期", "更换接待员工", "启用/停用"],
        default="修改设置",
        key="manage_what",
    )
    try:
        if what == "修改设置":
            with widgets.db() as session:
                initial = code_input(session, actor=actor, code_id=code.id)
            data, slot_problems = code_form(choices, initial=initial, key=f"edit_{code.id}")
            if st.button("保存修改", type="primary", key="manage_save"):
                if slot_problems:
                    st.error("接待时段有误：" + md("；".join(slot_problems)))
                    return
                with widgets.db() as session:
                    edit_code(session, actor=actor, code_id=code.id, data=data)
                _done(f"已保存活码「{code.name}」的修改")
        elif what == "延长有效期":
            until = st.date_input(
                "新的有效期至（不填为长期有效）",
                value=code.active_until,
                key=f"manage_until_{code.id}",
            )
            if st.button("保存有效期", type="primary", key="manage_extend"):
                with widgets.db() as session:
                    extend_code(session, actor=actor, code_id=code.id, active_until=until)
                _done(f"活码「{code.name}」有效期已改为{until or '长期有效'}")
        elif what == "更换接待员工":
            with widgets.db() as session:
                initial = code_input(session, actor=actor, code_id=code.id)
            st.caption("当前：" + md("、".join(code.staff_names) or "无"))
            staff, fallback = staff_pool(
                choices,
                code.outlet_id,
                key=f"manage_{code.id}",
                initial=(initial.staff_ids, initial.fallback_staff_ids),
            )
            if st.button("保存接待员工", type="primary", key="manage_restaff"):
                with widgets.db() as session:
                    restaff_code(
                        session,
                        actor=actor,
                        code_id=code.id,
                        staff_ids=staff,
                        fallback_staff_ids=fallback,
                    )
                _done(f"活码「{code.name}」的接待员工已更换")
        elif what == "启用/停用":
            if code.enabled:
                st.caption("停用后，扫码的客户会看到「二维码已失效」，统计数据保留。")
                if st.button("停用该活码", key="manage_disable", icon=":material/block:"):
                    with widgets.db() as session:
                        set_code_enabled(session, actor=actor, code_id=code.id, enabled=False)
                    _done(f"活码「{code.name}」已停用")
            elif st.button("重新启用", type="primary", key="manage_enable"):
                with widgets.db() as session:
                    set_code_enabled(session, actor=actor, code_id=code.id, enabled=True)
                _done(f"活码「{code.name}」已重新启用")
    except DomainError as exc:
        widgets.show_error(exc)


def handover_pane(actor: Actor, choices: CodeChoices, *, live_wecom: bool) -> None:
    """离职继承: a leaver's customers and code places go to a colleague at the same outlet."""
    outlet_names = dict(choices.outlets)
    st.caption("员工离职后，把他的客户和活码接待名额交给同网点的同事。")
    outlet_for = st.selectbox(
        "网点",
        list(outlet_names),
        format_func=outlet_names.get,
        key="hand_outlet",
        placeholder="请选择",
    )
    people = dict(choices.staff.get(outlet_for, []))
    if len(people) < 2:
        st.info("该网点在职员工不足两人。")
    else:
        leaver = st.selectbox(
            "离职员工", list(people), format_func=people.get, key="hand_from", placeholder="请选择"
        )
        heir = st.selectbox(
            "由谁继承",
            [p for p in people if p != leaver],
            format_func=people.get,
            key="hand_to",
            placeholder="请选择",
        )
        if st.button("确认离职继承", key="hand_go"):
            try:
                with widgets.db() as session:
                    moved = hand_over(session, actor=actor, from_staff_id=leaver, to_staff_id=heir)
                st.success(
                    f"已完成：{moved} 位客户由 {md(people[heir])} 继承。"
                    + ("企业微信中的继承已提交，结果见下表。" if live_wecom else "")
                )
            except DomainError as exc:
                widgets.show_error(exc)
    if live_wecom:
        with widgets.db() as session:
            notes = handover_feedback(session, actor=actor)
        st.caption("企业微信中的离职继承（继承请求的结果与客户拒绝等失败通知）")
        if notes:
            st.dataframe(
                pd.DataFrame(
                    [
                        {
                            "时间": format_timestamp(n.at),
                            "类型": n.what,
                            "员工": n.staff,
                            "结果": n.detail,
                        }
                        for n in notes
                    ]
                ),
                hide_index=True,
                key="handover_notes",
            )
        else:
            st.caption("暂无记录。")
