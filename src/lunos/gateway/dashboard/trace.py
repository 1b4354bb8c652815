"""Turn a traced request and response (SPEC §7) into what the Detail page shows.

Pure functions over the stored JSON. Anything that becomes a URL in the page goes through
`image_src` or `link_href`, which admit only schemes that cannot run script; the templates
escape every text.
"""

from __future__ import annotations

import json
from typing import Any


def image_src(url: Any) -> str | None:
    """A URL fit for `<img src>`: an inline image (data:image/...) or an https URL."""
    if not isinstance(url, str):
        return None
    lowered = url[:16].lower()
    if lowered.startswith("data:image/") or lowered.startswith("https://"):
        return url
    return None


def link_href(url: Any) -> str | None:
    """A URL fit for `<a href>`: http or https only (never javascript:, data:, ...)."""
    if isinstance(url, str) and url[:8].lower().startswith(("http://", "https://")):
        return url
    return None


def pretty_json(value: Any) -> str:
    """Indented JSON; a string that holds JSON (tool arguments) is parsed first."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


def _part(part: Any) -> dict:
    if not isinstance(part, dict):
        return {"kind": "json", "text": pretty_json(part)}
    kind = part.get("type")
    if kind == "text":
        return {"kind": "text", "text": str(part.get("text", ""))}
    if kind in ("image_url", "image"):
        image = part.get("image_url") if kind == "image_url" else _anthropic_image_url(part.get("source"))
        url = image.get("url") if isinstance(image, dict) else image
        src = image_src(url)
        if src is not None:
            label = "inline image" if src.startswith("data:") else src
            return {"kind": "image", "url": src, "text": label}
        href = link_href(url)
        if href is not None:
            return {"kind": "link", "url": href, "text": href}
        return {"kind": "text", "text": str(url)}
    return {"kind": "json", "text": pretty_json(part)}


def _anthropic_image_url(source: Any) -> str | None:
    """A Messages image block's source as a URL (a data URL for base64)."""
    if not isinstance(source, dict):
        return None
    if source.get("type") == "base64":
        return f"data:{source.get('media_type')};base64,{source.get('data')}"
    return source.get("url")


def _tool_call(call: Any) -> dict:
    if not isinstance(call, dict):
        return {"id": "", "name": "", "arguments": pretty_json(call)}
    function = call.get("function") or {}
    return {
        "id": str(call.get("id") or ""),
        "name": str(function.get("name") or call.get("type") or ""),
        "arguments": pretty_json(function.get("arguments", "")),
    }


def message_view(message: Any) -> dict:
    if not isinstance(message, dict):
        return {"role": "?", "name": "", "parts": [_part(message)], "tool_calls": [],
                "tool_call_id": "", "reasoning": ""}
    content = message.get("content")
    if content is None:
        parts = []
    elif isinstance(content, str) and message.get("role") == "tool" and content[:1] in ("{", "["):
        parts = [{"kind": "json", "text": pretty_json(content)}]  # a JSON tool result, indented
    elif isinstance(content, str):
        parts = [{"kind": "text", "text": content}]
    elif isinstance(content, list):
        parts = [_part(p) for p in content]
    else:
        parts = [{"kind": "json", "text": pretty_json(content)}]
    return {
        "role": str(message.get("role", "?")),
        "name": str(message.get("name") or ""),
        "parts": parts,
        "tool_calls": [_tool_call(c) for c in message.get("tool_calls") or []],
        "tool_call_id": str(message.get("tool_call_id") or ""),
        "reasoning": str(message.get("reasoning_content") or ""),
    }


def request_view(request: Any) -> dict | None:
    """Messages and the other parameters of a traced request."""
    if not isinstance(request, dict):
        return None
    params = request.get("params") or {}
    return {
        "messages": [message_view(m) for m in request.get("messages") or []],
        "params": pretty_json(params) if params else "",
    }


def _citation(annotation: Any) -> dict:
    if not isinstance(annotation, dict):
        return {"href": None, "title": "", "text": pretty_json(annotation)}
    body = annotation.get("url_citation")
    if not isinstance(body, dict):
        body = annotation
    url = body.get("url")
    return {
        "href": link_href(url),
        "url": str(url or ""),
        "title": str(body.get("title") or url or ""),
        "text": str(body.get("content") or ""),
    }


def response_view(response: Any) -> dict | None:
    """The output of a traced response: text, reasoning, tool calls and citations."""
    if not isinstance(response, dict):
        return None
    return {
        "content": str(response.get("content") or ""),
        "reasoning": str(response.get("reasoning") or ""),
        "finish_reason": str(response.get("finish_reason") or ""),
        "tool_calls": [_tool_call(c) for c in response.get("tool_calls") or []],
        "citations": _citations(response.get("annotations") or []),
        # images or audio the answer held: their size and digest (traces keep no media bytes)
        "media": [_media(m) for m in response.get("media") or [] if isinstance(m, dict)],
    }


def _media(item: dict) -> str:
    if "sha256" in item:
        kind = f"{item['content_type']}, " if item.get("content_type") else ""
        return f"{kind}{item.get('bytes')} bytes, sha256 {item['sha256']}"
    return str(item.get("url") or "")


def _citations(annotations: list) -> list[dict]:
    """Each source once (a provider may cite one URL at every sentence it supports)."""
    seen, out = set(), []
    for annotation in annotations:
        citation = _citation(annotation)
        key = citation.get("url") or citation["text"]
        if key not in seen:
            seen.add(key)
            out.append(citation)
    return out


def timeline(row: dict) -> list[dict]:
    """The request's upstream attempts as a waterfall: each with its offset and duration
    (SPEC §12 `started_ms`, `latency_ms`), the wait before it (backoff) and what it was:
    the first try, a retry of a failed one, a fallback to another model, or a further turn
    after a success (a tool loop: web search; the gap before it is the searching). Bars
    are in thousandths of the request's
    latency, for an SVG viewBox 1000 wide."""
    total = row.get("latency_ms") or 0
    attempts = [a for a in row.get("attempts") or [] if isinstance(a, dict)]
    total = max([total] + [(a.get("started_ms") or 0) + (a.get("latency_ms") or 0) for a in attempts]) or 1
    out = []
    for i, a in enumerate(attempts):
        start, took = a.get("started_ms") or 0.0, a.get("latency_ms") or 0.0
        if i == 0:
            kind, gap = "first try", start
        else:
            before = attempts[i - 1]
            gap = start - (before.get("started_ms") or 0) - (before.get("latency_ms") or 0)
            kind = ("turn" if before.get("error") is None and (before.get("status") or 0) < 400
                    else "fallback" if a.get("model") != before.get("model") else "retry")
        out.append({**a, "kind": kind, "wait_ms": max(gap, 0.0),
                    "wait": "tools and searches" if kind == "turn" else "waited",
                    "x": round(start / total * 1000, 1),
                    "width": max(round(took / total * 1000, 1), 2.0),
                    "failed": bool(a.get("error")) or (a.get("status") or 0) >= 400})
    return out


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content
                        if isinstance(p, dict) and p.get("type") in ("text", "input_text"))
    return ""


def preview(row: dict, length: int = 90) -> dict:
    """One line each of a row's prompt (its last user message), output and error, for the
    Logs list."""
    def cut(text: str) -> str:
        text = " ".join(text.split())
        return text if len(text) <= length else text[:length - 1] + "…"

    prompt = ""
    request = row.get("request")
    if isinstance(request, dict):
        for message in reversed(request.get("messages") or []):
            if isinstance(message, dict) and message.get("role") == "user":
                prompt = _text_of(message.get("content"))
                break
    response = row.get("response")
    output = str(response.get("content") or "") if isinstance(response, dict) else ""
    return {"prompt": cut(prompt), "output": cut(output), "error": cut(row.get("error") or "")}
