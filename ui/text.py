"""User text shown as text. Streamlit renders Markdown in st.markdown, st.caption, alerts,
toasts, titles and in nearly every label (tabs, expanders, buttons, metrics, help), and
Plotly reads a subset of HTML in titles and tick labels. Names, comments and messages that
users typed go through these helpers wherever they meet such an element, so an image link
in a comment is shown as the characters typed and never loads anything.

st.dataframe, st.text, st.code, select options and text inputs show text as text already:
don't escape there (the backslashes would show).
"""

from __future__ import annotations

import html
import re
import string

# CommonMark lets every ASCII punctuation character be backslash-escaped, and an escaped
# character is always literal: that covers links and images, emphasis, code, headings,
# lists, tables, HTML tags, entities, and Streamlit's own :color[…] and $math$ syntax.
_PUNCTUATION = re.compile("([" + re.escape(string.punctuation) + "])")
_LINE_BREAK = re.compile(r"\r\n?|\n")
# GFM turns bare URLs, www. names and e-mail addresses into links after parsing, escapes or
# not; an invisible word joiner where those patterns need adjacent characters prevents it.
_AUTOLINK = re.compile(r"(?<=:)(?=//)|(?i:(?<=www)(?=\.))|(?<=@)(?=\w)")
_WORD_JOINER = "\u2060"


def md(text: object) -> str:
    """Text for a Markdown element that renders exactly as `text` reads; line breaks stay."""
    plain = _AUTOLINK.sub(_WORD_JOINER, "" if text is None else str(text))
    return _LINE_BREAK.sub("  \n", _PUNCTUATION.sub(r"\\\1", plain))


def plot_text(text: object) -> str:
    """Text for a Plotly title, label or hover text (Plotly reads tags like <a href>)."""
    return html.escape("" if text is None else str(text), quote=False)
