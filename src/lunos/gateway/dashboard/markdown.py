"""A small Markdown subset as HTML, safe by construction: the text is HTML-escaped first, and
only tags made here are added (paragraphs, headings, lists, code blocks, inline code, bold,
italics, and links whose URL passes `trace.link_href`). No raw HTML from the text survives,
so a model's output can never put markup, script or styles in the page.
"""

from __future__ import annotations

import re

from markupsafe import Markup, escape

from .trace import link_href

_FENCE = re.compile(r"^```")
_HEADING = re.compile(r"^(#{1,4})\s+(.*)$")
_BULLET = re.compile(r"^\s*[-*+]\s+(.*)$")
_NUMBERED = re.compile(r"^\s*\d+[.)]\s+(.*)$")
_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_ITALIC = re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")


def _inline(text: str) -> str:
    """One escaped line with inline code, bold, italics and http(s) links."""
    parts = re.split(r"(`[^`]+`)", text)
    out = []
    for part in parts:
        if _CODE.fullmatch(part):
            out.append(f"<code>{escape(part[1:-1])}</code>")
            continue
        html = str(escape(part))
        html = _BOLD.sub(r"<strong>\1</strong>", html)
        html = _ITALIC.sub(r"<em>\1</em>", html)
        html = _LINK.sub(_link, html)
        out.append(html)
    return "".join(out)


def _link(match: re.Match) -> str:
    label, url = match.group(1), match.group(2)
    # `url` is already escaped; unescape the one entity a URL commonly holds to check it
    href = link_href(url.replace("&amp;", "&"))
    if href is None:
        return match.group(0)
    return f'<a href="{escape(href)}" rel="noopener noreferrer" target="_blank">{label}</a>'


def render(text: str) -> Markup:
    """`text` as safe HTML."""
    out: list[str] = []
    lines = text.replace("\r\n", "\n").split("\n")
    i = 0
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            out.append("<p>" + "<br>".join(_inline(p) for p in paragraph) + "</p>")
            paragraph.clear()

    while i < len(lines):
        line = lines[i]
        if _FENCE.match(line):
            flush()
            block = []
            i += 1
            while i < len(lines) and not _FENCE.match(lines[i]):
                block.append(lines[i])
                i += 1
            out.append(f'<pre class="code">{escape(chr(10).join(block))}</pre>')
        elif heading := _HEADING.match(line):
            flush()
            level = len(heading.group(1)) + 2  # h3..h6 inside a card
            out.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        elif _BULLET.match(line) or _NUMBERED.match(line):
            flush()
            kind = "ul" if _BULLET.match(line) else "ol"
            pattern = _BULLET if kind == "ul" else _NUMBERED
            items = []
            while i < len(lines) and (m := pattern.match(lines[i])):
                items.append(f"<li>{_inline(m.group(1))}</li>")
                i += 1
            out.append(f"<{kind}>{''.join(items)}</{kind}>")
            continue
        elif not line.strip():
            flush()
        else:
            paragraph.append(line)
        i += 1
    flush()
    return Markup("".join(out))
