"""The answer's `message.annotations`: one `url_citation` per place the answer cites a source.

The model was asked to cite results by number (`[1]`, or `[1, 3]` for several), so a marker
whose number is one of this request's sources is a citation of it, and its annotation spans
the marker itself: `start_index` / `end_index` are the character offsets (Unicode code points,
end exclusive) of `[1]` in `message.content`. An answer that writes a source's URL out is
cited there too (the span is the URL). Bracketed numbers that are not sources (`a[0]`,
`[2024]`) are left alone. `content` is the text of the result the model was given.
"""

from __future__ import annotations

import re

from .base import Result
from .sources import Sources

_MARKER = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")
# Characters that would continue a URL: a source URL followed by one is a longer URL.
_URL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~/?#[]@!$&'*+=%:")


def entry(result: Result, start: int, end: int) -> dict:
    return {"type": "url_citation", "url_citation": {
        "url": result.url, "title": result.title, "content": result.snippet,
        "start_index": start, "end_index": end}}


def annotations(text: str | None, sources: Sources) -> list[dict]:
    if not text or not sources.items:
        return []
    found: dict[tuple[int, int, str], dict] = {}
    for match in _MARKER.finditer(text):
        for number in match.group(1).split(","):
            source = sources.get(int(number))
            if source is not None:
                found.setdefault((match.start(), match.end(), source.url),
                                 entry(source, match.start(), match.end()))
    for source in sources.items:
        start = text.find(source.url)
        while start >= 0:
            end = start + len(source.url)
            if end == len(text) or text[end] not in _URL_CHARS or text[end] in ".,;:!?)]":
                found.setdefault((start, end, source.url), entry(source, start, end))
            start = text.find(source.url, end)
    return [found[key] for key in sorted(found)]
