"""What the adapters share for the media routes (SPEC §9.4): `POST /v1/images/generations`,
`/v1/audio/speech`, `/v1/audio/transcriptions` and `/v1/completions`.

A `MediaRequest` is one of those bodies, checked by its route, for one deployment. An
adapter that serves a route defines `media_routes` (the kinds it takes) and
`build_media_request(req) -> UpstreamRequest`; the engine sends it with the usual retries
and fallbacks and hands the open response back to the route, which reads it whole
(images, completions) or relays it as it arrives (speech, completion streams).

OpenAI-compatible providers get the body as the client sent it, only the model renamed
(`passthrough_request`); a multipart body (transcriptions) keeps its bytes, the `model`
field's value replaced in place (`rename_multipart_model`).
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

from ..errors import GatewayError
from .base import UpstreamRequest
from .common import upstream_json

if TYPE_CHECKING:
    from ..catalog import ModelInfo

# The route's kind -> the path under an OpenAI-compatible base URL.
OPENAI_PATHS = {
    "images": "/images/generations",
    "speech": "/audio/speech",
    "transcriptions": "/audio/transcriptions",
    "completions": "/completions",
}


@dataclass(slots=True)
class MediaRequest:
    kind: str  # "images", "speech", "transcriptions", "completions"
    body: dict  # the JSON body without Lunos's fields (a multipart body: its text fields)
    model: str
    provider: str
    upstream_model: str
    model_info: ModelInfo | None = None
    stream: bool = False
    raw: bytes | None = None  # a multipart body as received
    content_type: str | None = None  # of `raw`


def passthrough_request(req: MediaRequest, base_url: str, headers: list[tuple[str, str]]) -> UpstreamRequest:
    url = base_url.rstrip("/") + OPENAI_PATHS[req.kind]
    if req.raw is not None:
        body = rename_multipart_model(req.raw, req.content_type or "", req.upstream_model)
        headers = [*[(k, v) for k, v in headers if k.lower() != "content-type"],
                   ("content-type", req.content_type or "")]
        return UpstreamRequest("POST", url, headers, body)
    return UpstreamRequest("POST", url, headers, orjson.dumps({**req.body, "model": req.upstream_model}))


def parse_openai_images(raw: bytes, provider: str) -> tuple[list[dict], dict | None]:
    """OpenAI's images answer: its `data` items as sent, and its usage (or None)."""
    data = upstream_json(raw, provider)
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        raise GatewayError(502, f"{provider} sent an images answer without images",
                           code="upstream_bad_response")
    usage = data.get("usage")
    return items, usage if isinstance(usage, dict) else None


_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_DISPOSITION = re.compile(rb'content-disposition:[^\r\n]*?\bname="([^"]*)"(?:[^\r\n]*?\bfilename="([^"]*)")?',
                          re.IGNORECASE)


@dataclass(slots=True)
class FormPart:
    name: str
    filename: str | None
    content_type: str | None
    start: int  # the value's offsets in the body
    end: int


def boundary_of(content_type: str) -> bytes | None:
    match = _BOUNDARY.search(content_type)
    return match.group(1).encode("latin-1") if match else None


def form_parts(raw: bytes, boundary: bytes) -> list[FormPart] | None:
    """The parts of a multipart/form-data body, as offsets (the values are not copied);
    None when the body is not well formed."""
    delimiter = b"--" + boundary
    position = raw.find(delimiter)
    if position < 0:
        return None
    parts = []
    while True:
        position += len(delimiter)
        if raw.startswith(b"--", position):
            return parts
        head_end = raw.find(b"\r\n\r\n", position)
        if head_end < 0:
            return None
        head = raw[position:head_end]
        following = raw.find(b"\r\n" + delimiter, head_end + 4)
        if following < 0:
            return None
        match = _DISPOSITION.search(head)
        if match is None:
            return None
        kind = re.search(rb"content-type:\s*([^\r\n]+)", head, re.IGNORECASE)
        parts.append(FormPart(match.group(1).decode("utf-8", "replace"),
                              match.group(2).decode("utf-8", "replace") if match.group(2) is not None else None,
                              kind.group(1).decode("latin-1").strip() if kind else None,
                              head_end + 4, following))
        position = following + 2


def rename_multipart_model(raw: bytes, content_type: str, model: str) -> bytes:
    """The multipart body with the `model` field's value replaced; every other byte as sent."""
    boundary = boundary_of(content_type)
    parts = form_parts(raw, boundary) if boundary else None
    for part in parts or ():
        if part.name == "model" and part.filename is None:
            return b"".join((raw[:part.start], model.encode(), raw[part.end:]))
    return raw


def media_summary(data: bytes | str, content_type: str | None = None) -> dict:
    """What a trace keeps of media bytes: their size and digest, never the bytes."""
    raw = base64.b64decode(data) if isinstance(data, str) else data
    summary = {"bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest()}
    if content_type:
        summary["content_type"] = content_type
    return summary
