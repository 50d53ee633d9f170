"""The 背景、标志与二维码位置 part of the poster studio's form: a template's default or a
plain, gradient or uploaded background, an optional logo, and where the QR code goes."""

from __future__ import annotations

import streamlit as st

from core.platform.errors import DomainError
from core.posters.templates import QR_POSITION_LABELS, QR_POSITIONS, Gradient
from core.posters.uploads import load_upload_image
from ui import widgets


@st.cache_data(max_entries=8, show_spinner=False)
def checked_upload(data: bytes) -> bytes:
    """The upload if it is a usable image (decoding a 5 MB photo on every rerun is slow)."""
    load_upload_image(data)
    return data


def style_controls() -> tuple[str | Gradient | bytes | None, bytes | None, str | None]:
    """(background, logo, QR position) as chosen; None each: the template's own."""
    with st.expander("背景、标志与二维码位置"):
        kind = st.radio(
            "背景", ["模板默认", "纯色", "渐变", "上传图片"], horizontal=True, key="poster_bg_kind"
        )
        background = None
        if kind == "纯色":
            background = st.color_picker("背景颜色", "#007A3D", key="poster_bg_color")
        elif kind == "渐变":
            c1, c2 = st.columns(2)
            background = Gradient(
                (
                    c1.color_picker("上方", "#00A05A", key="poster_g1"),
                    c2.color_picker("下方", "#005C2E", key="poster_g2"),
                )
            )
        elif kind == "上传图片":
            photo = st.file_uploader(
                "背景图片（PNG/JPEG/WebP，≤5 MB）",
                type=["png", "jpg", "jpeg", "webp"],
                key="poster_bg_file",
            )
            if photo is not None:
                try:
                    background = checked_upload(photo.getvalue())
                except DomainError as exc:
                    widgets.show_error(exc)
        logo_file = st.file_uploader(
            "标志（可选）", type=["png", "jpg", "jpeg", "webp"], key="poster_logo"
        )
        logo = None
        if logo_file is not None:
            try:
                logo = checked_upload(logo_file.getvalue())
            except DomainError as exc:
                widgets.show_error(exc)
        position = st.selectbox(
            "二维码位置",
            [None, *QR_POSITIONS],
            format_func=lambda p: "模板默认" if p is None else QR_POSITION_LABELS[p],
            key="poster_qr_pos",
            placeholder="请选择",
        )
    return background, logo, position
