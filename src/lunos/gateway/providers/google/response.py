"""Gemini `GenerateContentResponse` -> OpenAI chat completion (and the pieces the stream
translator shares).

- Each candidate is a choice (its `index`, 0 when absent). Text parts are joined; parts
  marked `thought: true` are thought summaries and go to `reasoning_content`.
- A `functionCall` part is a tool call: the API's `functionCall.id` when it sends one, else a
  gateway-made id; `arguments` is compact JSON; a `thoughtSignature` on the part goes to
  `extra_content.google.thought_signature` (Google's own OpenAI-compatible convention).
- A signature on a text or thought part is kept in `reasoning_details` as
  `{"type": "reasoning.encrypted", "data", "format": "google-gemini-v1", "index"}`, so a
  client that echoes the message sends it back.
- finishReason: STOP -> stop (tool_calls when the candidate called functions; Gemini says
  STOP for those too), MAX_TOKENS -> length, the safety family (SAFETY, RECITATION,
  BLOCKLIST, PROHIBITED_CONTENT, SPII, IMAGE_SAFETY, IMAGE_PROHIBITED_CONTENT,
  IMAGE_RECITATION) -> content_filter. Anything else (OTHER, LANGUAGE,
  MALFORMED_FUNCTION_CALL, ...) -> stop: the answer ended without an OpenAI equivalent, and
  whatever content it has is returned.
- A prompt blocked before generation (`promptFeedback.blockReason`, no candidates) is one
  choice with empty content and finish_reason content_filter.
- Grounding with Google Search (native web search, search.py): `groundingMetadata` becomes
  the message's `annotations`.
- Usage: prompt = promptTokenCount (it already counts cached tokens) + toolUsePromptTokenCount,
  cached = cachedContentTokenCount, completion = candidatesTokenCount + thoughtsTokenCount,
  reasoning = thoughtsTokenCount.
"""

from __future__ import annotations

from typing import Any

from ...errors import GatewayError
from ..common import dumps, make_usage, new_tool_call_id, upstream_json
from . import search
from .request import GEMINI_SIGNATURE_FORMAT

FILTERED = frozenset({
    "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION",
})


def finish_reason(reason: str | None, called_functions: bool) -> str:
    if reason == "MAX_TOKENS":
        return "length"
    if reason in FILTERED:
        return "content_filter"
    return "tool_calls" if called_functions else "stop"


def usage_of(meta: dict | None) -> dict:
    meta = meta or {}
    thoughts = meta.get("thoughtsTokenCount") or 0
    return make_usage(
        (meta.get("promptTokenCount") or 0) + (meta.get("toolUsePromptTokenCount") or 0),
        (meta.get("candidatesTokenCount") or 0) + thoughts,
        cached=meta.get("cachedContentTokenCount") or 0,
        reasoning=thoughts,
    )


def tool_call(part: dict) -> dict:
    """A `functionCall` part as an OpenAI tool call (whole: Gemini never splits one)."""
    call = part["functionCall"]
    out: dict[str, Any] = {
        "id": call.get("id") or new_tool_call_id(),
        "type": "function",
        "function": {"name": call.get("name", ""), "arguments": dumps(call.get("args") or {})},
    }
    if part.get("thoughtSignature"):
        out["extra_content"] = {"google": {"thought_signature": part["thoughtSignature"]}}
    return out


def signature_detail(signature: str, index: int) -> dict:
    return {"type": "reasoning.encrypted", "data": signature,
            "format": GEMINI_SIGNATURE_FORMAT, "index": index}


def candidates_of(data: dict) -> list[dict]:
    candidates = data.get("candidates")
    return [c for c in candidates if isinstance(c, dict)] if isinstance(candidates, list) else []


def parse_completion(body: bytes, provider: str) -> dict:
    data = upstream_json(body, provider)
    if not isinstance(data, dict):
        raise GatewayError(502, f"{provider} sent a response that is not an object",
                           code="upstream_bad_response")
    candidates = candidates_of(data)
    if candidates:
        choices = [_choice(c) for c in sorted(candidates, key=lambda c: c.get("index") or 0)]
    elif (data.get("promptFeedback") or {}).get("blockReason"):
        choices = [{"index": 0, "message": {"role": "assistant", "content": ""},
                    "finish_reason": "content_filter"}]
    else:
        raise GatewayError(502, f"{provider} sent a response without candidates",
                           code="upstream_bad_response")
    completion = {"choices": choices, "usage": usage_of(data.get("usageMetadata"))}
    queries = [q for c in candidates for q in search.queries(search.metadata(c))]
    if queries:  # native web search (search.py)
        completion[search.QUERIES_KEY] = queries
    return completion


def _choice(candidate: dict) -> dict:
    text: list[str] = []
    thoughts: list[str] = []
    calls: list[dict] = []
    details: list[dict] = []
    for part in (candidate.get("content") or {}).get("parts") or ():
        if "functionCall" in part:
            calls.append(tool_call(part))
            continue
        if part.get("thought"):
            thoughts.append(part.get("text") or "")
        elif "text" in part:
            text.append(part["text"])
        if part.get("thoughtSignature"):
            details.append(signature_detail(part["thoughtSignature"], len(details)))
    content = "".join(text)
    message: dict[str, Any] = {"role": "assistant", "content": content or (None if calls else "")}
    if thoughts:
        message["reasoning_content"] = "".join(thoughts)
    if details:
        message["reasoning_details"] = details
    if calls:
        message["tool_calls"] = calls
    cited = search.completion_annotations(candidate, content)
    if cited:
        message["annotations"] = cited
    return {
        "index": candidate.get("index") or 0,
        "message": message,
        "finish_reason": finish_reason(candidate.get("finishReason"), bool(calls)),
    }
