"""Grounding with Google Search, for web search engine "native".

The gateway's web search layer asks for it with the body field `web_search_options`; the
request then carries the tool `{"googleSearch": {}}`. A grounded candidate has
`groundingMetadata`: `webSearchQueries` (the searches run), `groundingChunks`
(`[{"web": {"uri", "title"}}]`) and `groundingSupports`, each a `segment` of the answer
(`startIndex` / `endIndex` in UTF-8 bytes, within the part `partIndex`, and its `text`)
with the indices of the chunks supporting it. Each (segment, chunk) pair becomes a
`url_citation` annotation whose indexes are converted to character offsets in the message
content. In a stream the metadata comes with the last events and its offsets count the
whole text streamed so far.
"""

from __future__ import annotations

from typing import Any

TOOL = {"googleSearch": {}}
QUERIES_KEY = "lunos_search_queries"


def metadata(candidate: dict) -> dict | None:
    meta = candidate.get("groundingMetadata")
    return meta if isinstance(meta, dict) else None


def queries(meta: dict | None) -> list[str]:
    found = (meta or {}).get("webSearchQueries")
    return [q for q in found if isinstance(q, str) and q] if isinstance(found, list) else []


def _part_offsets(candidate: dict) -> dict[int, int]:
    """Byte offset, within the content, of each text part (thoughts are not content)."""
    offsets: dict[int, int] = {}
    size = 0
    for i, part in enumerate((candidate.get("content") or {}).get("parts") or ()):
        offsets[i] = size
        if isinstance(part, dict) and not part.get("thought") and isinstance(part.get("text"), str):
            size += len(part["text"].encode())
    return offsets


def annotations(meta: dict | None, text: str, part_offsets: dict[int, int] | None = None) -> list[dict]:
    """The url_citations of `meta` over `text` (the content the answer shows)."""
    if not meta:
        return []
    chunks = meta.get("groundingChunks") if isinstance(meta.get("groundingChunks"), list) else []
    data = text.encode()
    out: list[dict] = []
    for support in meta.get("groundingSupports") or ():
        segment = support.get("segment") if isinstance(support, dict) else None
        if not isinstance(segment, dict):
            continue
        base = (part_offsets or {}).get(segment.get("partIndex") or 0, 0)
        start = _chars(data, base + _int(segment.get("startIndex")))
        end = _chars(data, base + _int(segment.get("endIndex")))
        for index in support.get("groundingChunkIndices") or ():
            web = chunks[index].get("web") if isinstance(index, int) and 0 <= index < len(chunks) else None
            if not isinstance(web, dict) or not isinstance(web.get("uri"), str):
                continue
            out.append({"type": "url_citation", "url_citation": {
                "url": web["uri"], "title": web.get("title") or web["uri"],
                "content": segment.get("text") or text[start:end],
                "start_index": start, "end_index": end}})
    return out


def completion_annotations(candidate: dict, text: str) -> list[dict]:
    return annotations(metadata(candidate), text, _part_offsets(candidate))


def _int(value: Any) -> int:
    try:
        return max(int(value or 0), 0)
    except (TypeError, ValueError):
        return 0


def _chars(data: bytes, offset: int) -> int:
    """A UTF-8 byte offset as a character offset."""
    return len(data[:offset].decode("utf-8", "ignore"))
