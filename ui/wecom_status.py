"""The 企业微信 section of the admin's 定时任务 page: which mode is on, the last token fetch,
the last callback, and calls to WeCom waiting or failed."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.channels.wecom.service import overview, sync_contact_ways
from core.platform.clock import format_timestamp
from core.platform.errors import DomainError
from core.platform.permissions import Actor
from db.models import OutboxState
from ui import widgets
from ui.text import md


def wecom_section(actor: Actor) -> None:
    st.subheader("企业微信")
    with widgets.db() as session:
        view = overview(session, actor=actor)
    if not view.live:
        st.info(
            "手动模式：未配置 WECOM_CORP_ID、WECOM_SECRET、WECOM_TOKEN、WECOM_AES_KEY。"
            "活码跳转到员工的联系链接，加好友等事件通过「渠道活码 → 导入事件」导入。",
            icon=":material/link_off:",
        )
        return
    st.success(
        f"实时模式：企业 {md(view.corp_id)}，接口 {md(view.api_base)}，回调地址 /wecom/callback",
        icon=":material/sync:",
    )
    st.caption("调用企业微信的后台工作进程：" + md(view.worker))
    token, callback, queue = st.columns(3)
    token.metric(
        "上次获取 access_token",
        "从未获取" if view.token_ok is None else ("成功" if view.token_ok else "失败"),
        format_timestamp(view.token_at) if view.token_at else None,
        delta_color="off",
    )
    callback.metric(
        "上次收到回调",
        format_timestamp(view.last_callback_at) if view.last_callback_at else "从未收到",
        f"本进程拒绝 {view.refused} 次" if view.refused else None,
        delta_color="off",
    )
    expired = view.outbox.get(OutboxState.EXPIRED, 0)
    queue.metric(
        "待发送 / 失败的调用",
        f"{view.outbox.get(OutboxState.PENDING, 0) + view.outbox.get(OutboxState.RUNNING, 0)}"
        f" / {view.outbox.get(OutboxState.FAILED, 0) + expired}",
        f"其中欢迎码过期未发送 {expired} 条" if expired else None,
        delta_color="off",
        delta_arrow="off",
    )
    if view.codes_without_contact_way:
        _sync_codes(actor, view.codes_without_contact_way)
    if view.token_ok is False:
        st.error("获取 access_token 失败：" + md(view.token_detail))
    if view.last_callback:
        st.caption("最近一次回调：" + md(view.last_callback))
    if view.last_refusal:
        st.caption("最近一次拒绝的回调：" + md(view.last_refusal))
    if view.failures:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "调用": f.kind,
                        "时间": format_timestamp(f.at),
                        "尝试次数": f.attempts,
                        "企业微信的答复": f.error,
                    }
                    for f in view.failures
                ]
            ),
            hide_index=True,
            key="wecom_failures",
        )


def _sync_codes(actor: Actor, missing: int) -> None:
    """Codes made before live mode have no contact way yet: one click queues them all."""
    st.warning(
        f"{missing} 个启用中的活码还没有企业微信联系我（多为开启实时模式前创建的活码），"
        "扫码仍跳转到手工填写的联系链接。",
        icon=":material/qr_code:",
    )
    if st.button(f"为这 {missing} 个活码创建联系我", key="wecom_sync_codes"):
        try:
            with widgets.db() as session:
                queued = sync_contact_ways(session, actor=actor)
        except DomainError as exc:
            widgets.show_error(exc)
            return
        st.toast(
            f"已为 {queued} 个活码排队创建联系我，稍后在活码列表查看。", icon=":material/check:"
        )
        st.rerun()
