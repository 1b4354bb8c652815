"""Gemini image generation for `POST /v1/images/generations`: OpenAI's body becomes a
`generateContent` call with `generationConfig.responseModalities` asking for images, and
the answer's `inlineData` images come back as OpenAI's `b64_json` items.

`size` maps to Gemini's `imageConfig.aspectRatio`; `n` > 1 makes that many candidates
(`candidateCount`). `quality`, `style` and `background` have no Gemini counterpart: the
route has refused them before (`UNSUPPORTED`).
"""

from __future__ import annotations

from urllib.parse import quote

import orjson

from ...errors import GatewayError
from ..base import UpstreamRequest
from ..common import upstream_json
from ..media import MediaRequest
from .response import usage_of

ASPECT_RATIOS = {"1024x1024": "1:1", "256x256": "1:1", "512x512": "1:1", "1536x1024": "3:2",
                 "1024x1536": "2:3", "1792x1024": "16:9", "1024x1792": "9:16", "auto": None}
UNSUPPORTED = ("quality", "style", "background", "moderation", "output_compression", "partial_images")


def image_request(req: MediaRequest, base: str, headers: list[tuple[str, str]]) -> UpstreamRequest:
    body = req.body
    for name in UNSUPPORTED:
        if body.get(name) is not None:
            raise GatewayError(400, f"'{name}' is not supported by model '{req.model}'", param=name,
                               code="unsupported_parameter")
    size = body.get("size")
    if size is not None and size not in ASPECT_RATIOS:
        raise GatewayError(400, f"model '{req.model}' takes 'size' as one of "
                           f"{', '.join(ASPECT_RATIOS)}", param="size")
    info = req.model_info
    modalities = ["TEXT", "IMAGE"] if info is not None and "text" in info.output_modalities else ["IMAGE"]
    config: dict = {"responseModalities": modalities}
    if ASPECT_RATIOS.get(size):
        config["imageConfig"] = {"aspectRatio": ASPECT_RATIOS[size]}
    if (body.get("n") or 1) > 1:
        config["candidateCount"] = body["n"]
    model = req.upstream_model
    if not model.startswith(("models/", "tunedModels/")):
        model = "models/" + model
    payload = {"contents": [{"role": "user", "parts": [{"text": body["prompt"]}]}],
               "generationConfig": config}
    url = f"{base}/v1beta/{quote(model, safe='/-._')}:generateContent"
    return UpstreamRequest("POST", url, headers, orjson.dumps(payload))


def parse_images(raw: bytes, provider: str) -> tuple[list[dict], dict]:
    """OpenAI's `data` items (`b64_json`, and `revised_prompt` from any text) and usage."""
    data = upstream_json(raw, provider)
    items = []
    for candidate in (data.get("candidates") or []) if isinstance(data, dict) else []:
        parts = (candidate.get("content") or {}).get("parts") or []
        text = "".join(p.get("text", "") for p in parts if isinstance(p, dict) and not p.get("thought"))
        for part in parts:
            blob = part.get("inlineData") if isinstance(part, dict) else None
            if isinstance(blob, dict) and str(blob.get("mimeType", "")).startswith("image/") \
                    and not part.get("thought"):
                item = {"b64_json": blob.get("data", ""), "mime_type": blob["mimeType"]}
                if text:
                    item["revised_prompt"] = text
                items.append(item)
    if not items:
        reason = ((data.get("promptFeedback") or {}).get("blockReason") if isinstance(data, dict) else None)
        raise GatewayError(502, f"{provider} answered without an image"
                           + (f" (blocked: {reason})" if reason else ""), code="upstream_bad_response")
    return items, usage_of(data.get("usageMetadata"))
