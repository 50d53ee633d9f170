"""User text is shown as text: a campaign name or a review comment holding Markdown (an
image from another host, a link, an HTML tag) reaches Streamlit escaped, never live."""

import re
import string
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import Session, select

from core.campaigns.approvals import Decision, decide_plan, submit_plan
from core.campaigns.plans import save_draft
from core.metrics.importing import import_metrics
from core.platform.clock import shanghai_today
from db.engine import get_engine
from db.models import Campaign, OrgUnit, Role, User
from tests.factories import complete_design, make_stages, metrics_csv
from ui.text import md, plot_text

IMAGE = "![x](http://evil.example/p.png)"
NAME = f"{IMAGE}[链](http://e.cn)<b>日</b>"  # 57 of the 60 characters a name may have
COMMENT = f"请修改 {IMAGE} <b>加粗</b> :red[红字] 见 www.evil.example"
# Unescaped Markdown that would load or link something: an image, a link, an HTML tag, a URL.
LIVE = re.compile(r"!\[|\]\(|(?<!\\)<[a-z]|://|www\.", re.IGNORECASE)


def unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text.replace("\u2060", "").replace("  \n", "\n"))


# --- the escaper -------------------------------------------------------------------------


def test_markdown_is_escaped_to_its_literal_characters() -> None:
    assert md("![x](http://evil.example/p.png)") == (
        "\\!\\[x\\]\\(http\\:\u2060\\/\\/evil\\.example\\/p\\.png\\)"
    )
    assert md("**粗** _斜_ `码` # 标题 <b> :red[x] $x$ &amp;") == (
        "\\*\\*粗\\*\\* \\_斜\\_ \\`码\\` \\# 标题 \\<b\\> \\:red\\[x\\] \\$x\\$ \\&amp\\;"
    )
    assert md("第一行\n第二行\r\n第三行") == "第一行  \n第二行  \n第三行"
    assert md("星沙支局") == "星沙支局" and md(None) == "" and md(12) == "12"


def test_bare_urls_and_addresses_cannot_become_links() -> None:
    # GFM links these after parsing, escapes or not; a word joiner breaks the pattern
    assert (
        "\u2060" in md("https://x.cn") and "\u2060" in md("WWW.x.cn") and "\u2060" in md("a@b.cn")
    )
    assert unescape(md("https://x.cn www.x.cn a@b.cn")) == "https://x.cn www.x.cn a@b.cn"


@given(st.text().filter(lambda t: "\u2060" not in t))
def test_any_text_reads_back_unchanged_and_has_no_live_markdown(text: str) -> None:
    escaped = md(text)
    normalised = text.replace("\r\n", "\n").replace("\r", "\n")
    assert unescape(escaped) == normalised
    # every ASCII punctuation character is preceded by an escaping backslash
    for match in re.finditer("[" + re.escape(string.punctuation) + "]", escaped):
        run = len(escaped[: match.start()]) - len(escaped[: match.start()].rstrip("\\"))
        assert run % 2 == 1 or match.group() == "\\", (text, escaped)
    assert not LIVE.search(escaped)


def test_plotly_text_escapes_tags() -> None:
    assert plot_text('<a href="http://evil.example">x</a> & y') == (
        '&lt;a href="http://evil.example"&gt;x&lt;/a&gt; &amp; y'
    )


# --- pages -------------------------------------------------------------------------------


def _returned_plan(url: str, users) -> int:
    planner = users[Role.CITY_PLANNER]
    with Session(get_engine(url)) as session:
        make_stages(session, ["reviewer"])
        cid = save_draft(session, actor=planner, design=complete_design(session, name=NAME)).id
        submit_plan(session, actor=planner, campaign_id=cid)
        decide_plan(
            session,
            actor=users[Role.PROVINCE_REVIEWER],
            campaign_id=cid,
            decision=Decision.RETURN,
            comment=COMMENT,
            expected_lock=session.get(Campaign, cid).lock_version,
        )
    return cid


def _rendered(at) -> list[str]:
    """Every Markdown body and label the run produced."""
    kinds = ("markdown", "caption", "subheader", "title", "info", "warning", "error", "success")
    bodies = [e.value for kind in kinds for e in at.get(kind)]
    bodies += [t.label for t in at.tabs] + [e.label for e in at.expander]
    return bodies


def test_planner_sees_the_campaign_name_and_the_comment_as_text(app_for, world, sqlite_url) -> None:
    cid = _returned_plan(sqlite_url, world[1])
    at = app_for(Role.CITY_PLANNER)
    at.query_params["plan"] = str(cid)
    at.run()
    at.switch_page("pages/plans.py").run()
    assert not at.exception
    assert at.subheader[0].value == md(NAME)
    assert any(md(COMMENT) in w.value for w in at.warning)  # the reviewer's comment
    assert not any(LIVE.search(body) for body in _rendered(at))

    at.switch_page("pages/notifications.py").run()
    assert not at.exception
    bodies = [m.value for m in at.markdown]
    assert any(md(COMMENT) in body for body in bodies)  # the notification's body
    assert any(md(f"方案「{NAME}」") in body for body in bodies)  # its title
    assert not any(LIVE.search(body) for body in _rendered(at))

    at.switch_page("pages/campaigns.py").run()
    assert not at.exception
    assert any(md(COMMENT) in w.value for w in at.warning)
    assert not any(LIVE.search(body) for body in _rendered(at))

    at.switch_page("pages/home.py").run()
    assert not any(LIVE.search(body) for body in _rendered(at))  # "…被退回" names the plan


def test_reviewer_sees_the_campaign_name_as_text(app_for, world, sqlite_url) -> None:
    planner = world[1][Role.CITY_PLANNER]
    with Session(get_engine(sqlite_url)) as session:
        make_stages(session, ["reviewer"])
        cid = save_draft(session, actor=planner, design=complete_design(session, name=NAME)).id
        submit_plan(session, actor=planner, campaign_id=cid)
    at = app_for(Role.PROVINCE_REVIEWER).run()
    at.switch_page("pages/approvals.py").run()
    assert not at.exception
    assert at.subheader[0].value.startswith(md(NAME))
    assert not any(LIVE.search(body) for body in _rendered(at))
    at.switch_page("pages/notifications.py").run()
    assert any(md(NAME) in m.value for m in at.markdown)
    assert not any(LIVE.search(body) for body in _rendered(at))


def test_outlet_and_user_names_are_shown_as_text(app_for, world, sqlite_url) -> None:
    evil_outlet, evil_user = f"{IMAGE}支局", "**张三**<img src=x>"
    with Session(get_engine(sqlite_url)) as session:
        session.exec(select(OrgUnit).where(OrgUnit.code == "O111")).one().name = evil_outlet
        session.exec(select(User).where(User.username == "manager")).one().display_name = evil_user
        session.commit()
        day = shanghai_today() - timedelta(days=1)
        data = metrics_csv(
            [(day, code, n, 1, 1, 1, 1, 1) for code, n in (("O111", 1), ("O112", 5))]
        )
        assert import_metrics(session, actor=world[1][Role.ADMIN], data=data, filename="m.csv").ok
    at = app_for(Role.OUTLET_MANAGER).run()
    assert not at.exception
    assert at.title[0].value == f"您好，{md(evil_user)}"
    assert any(md(evil_outlet) in c.value for c in at.caption)  # the scope line
    assert any(md(evil_user) in m.value for m in at.sidebar.markdown)
    assert not any(
        LIVE.search(body) for body in _rendered(at) + [m.value for m in at.sidebar.markdown]
    )
    at.switch_page("pages/leaderboard.py").run()
    assert not at.exception
    assert any(f"**本网点：{md(evil_outlet)}**" == m.value for m in at.markdown)
    assert not any(LIVE.search(body) for body in _rendered(at))
