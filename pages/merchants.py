"""联盟商户: the partner merchants of a city: search, add, edit, bind outlets, import."""

import pandas as pd
import streamlit as st

from core.campaigns.merchants import (
    CATEGORIES,
    IMPORT_COLUMNS,
    MerchantInput,
    import_merchants,
    list_merchants,
    phones_masked,
    save_merchant,
)
from core.platform.errors import DomainError
from core.platform.org import units_in_scope
from core.platform.permissions import Action, allowed
from db.models import OrgLevel
from ui import widgets
from ui.text import md

actor = widgets.require(Action.VIEW_MERCHANTS)
st.title("联盟商户")
can_edit = allowed(actor, Action.MANAGE_MERCHANTS)

with widgets.db() as session:
    city_choices = (
        units_in_scope(session, actor=actor, action=Action.VIEW_MERCHANTS, level=OrgLevel.CITY)
        if actor.city_id is None
        else []
    )
left, right = st.columns([1, 2])
city_id = actor.city_id
if city_choices:
    city_id = widgets.city_filter(left, {c.id: c.name for c in city_choices}, key="merchant_city")
text = right.text_input("搜索", key="merchant_text", placeholder="商户名称、地址或类别")

with widgets.db() as session:
    merchants = list_merchants(
        session, actor=actor, city_id=city_id, text=text, include_inactive=can_edit
    )

if merchants:
    frame = pd.DataFrame(
        [
            {
                "商户": m.name,
                "市": m.city,
                "类别": m.category,
                "地址": m.address,
                "联系人": m.contact_name,
                "电话": m.contact_phone,
                "绑定网点": "、".join(m.outlet_names),
                "状态": "启用" if m.active else "停用",
            }
            for m in merchants
        ]
    )
    st.caption(
        f"共 {len(frame)} 个商户" + ("（联系电话已隐去中间四位）" if phones_masked(actor) else "")
    )
    st.dataframe(
        frame, hide_index=True, key="merchant_table", column_config=widgets.number_columns(frame)
    )
    widgets.table_download(frame, "联盟商户", key="merchant_dl")
else:
    widgets.empty_state("没有符合条件的商户。" + ("可在下方新增或导入。" if can_edit else ""))

if not can_edit:
    st.stop()
if city_id is None:
    st.info("选择一个市州后可新增、编辑或导入商户。")
    st.stop()

with widgets.db() as session:
    outlets = units_in_scope(
        session, actor=actor, action=Action.MANAGE_MERCHANTS, level=OrgLevel.OUTLET, city_id=city_id
    )
outlet_names = {o.id: o.name for o in outlets}
add_tab, edit_tab, import_tab = st.tabs(["新增商户", "编辑商户", "批量导入"])


def merchant_form(key: str, current=None) -> MerchantInput:
    a, b = st.columns(2)
    name = a.text_input(
        "商户名称", value=current.name if current else "", key=f"{key}_name", max_chars=100
    )
    category = b.selectbox(
        "类别",
        CATEGORIES,
        index=CATEGORIES.index(current.category)
        if current and current.category in CATEGORIES
        else 0,
        key=f"{key}_cat",
        placeholder="请选择",
    )
    address = st.text_input(
        "地址", value=current.address if current else "", key=f"{key}_addr", max_chars=200
    )
    c, d = st.columns(2)
    contact = c.text_input(
        "联系人", value=current.contact_name if current else "", key=f"{key}_contact", max_chars=50
    )
    phone = d.text_input(
        "联系电话",
        value="",
        key=f"{key}_phone",
        max_chars=20,
        placeholder="不修改请留空" if current else "",
    )
    outlets = st.multiselect(
        "绑定网点",
        list(outlet_names),
        default=list(current.outlet_ids) if current else [],
        format_func=outlet_names.get,
        key=f"{key}_outlets",
        placeholder="选择网点（可搜索）",
    )
    active = st.toggle("启用", value=current.active if current else True, key=f"{key}_active")
    keep_phone = current is not None and not phone.strip()
    return MerchantInput(
        city_id,
        name,
        category,
        address,
        contact,
        None if keep_phone else phone,
        tuple(outlets),
        active,
    )


with add_tab:
    data = merchant_form("madd")
    if st.button("保存", type="primary", key="merchant_add"):
        try:
            with widgets.db() as session:
                saved = save_merchant(session, actor=actor, data=data)
            st.toast(f"已新增商户「{md(saved.name)}」", icon=":material/check_circle:")
            st.rerun()
        except DomainError as exc:
            widgets.show_error(exc)

with edit_tab:
    mine = [m for m in merchants if m.city_id == city_id]
    if not mine:
        widgets.empty_state("本市还没有商户。")
    else:
        current = st.selectbox(
            "选择商户",
            mine,
            format_func=lambda m: m.name,
            key="merchant_pick",
            placeholder="请选择",
        )
        data = merchant_form(f"medit{current.id}", current)
        if st.button("保存修改", type="primary", key="merchant_edit"):
            try:
                with widgets.db() as session:
                    save_merchant(session, actor=actor, data=data, merchant_id=current.id)
                st.toast("已保存", icon=":material/check_circle:")
                st.rerun()
            except DomainError as exc:
                widgets.show_error(exc)

with import_tab:
    widgets.import_panel(
        key="merchant",
        columns=IMPORT_COLUMNS,
        note="多个网点编码用分号分隔。",
        template_name="联盟商户模板",
        done="商户已导入",
        run=lambda session, data, name, _dry_run, _progress: import_merchants(
            session, actor=actor, data=data, filename=name
        ),
    )
