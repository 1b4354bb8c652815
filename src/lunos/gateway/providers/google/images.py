"""Gemini's media routes. Image generation for `POST /v1/images/generations`: OpenAI's body becomes a
`generateContent` call with `generationConfig.responseModalities` asking for images, and
the answer's `inlineData` images come back as OpenAI's `b64_json` items.

`size` maps to Gemini's `imageConfig.aspectRatio`; `n` > 1 makes that many candidates
(`candidateCount`). `quality`, `style` and `background` have no Gemini counterpart: the
request is refused (`UNSUPPORTED`). Speech for `POST /v1/audio/speech` on TTS models: the
PCM Gemini answers, wrapped as WAV. Transcription for `POST /v1/audio/transcriptions`: the
uploaded audio as inline data with an instruction to transcribe it, the answer's text as
OpenAI's transcription.
"""

from __future__ import annotations

import base64
import struct
from urllib.parse import quote

import orjson

from ...errors import GatewayError
from ..base import UpstreamRequest
from ..common import upstream_json
from ..media import MediaRequest, boundary_of, form_parts
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
    payload = {"contents": [{"role": "user", "parts": [{"text": body["prompt"]}]}],
               "generationConfig": config}
    url = f"{base}/v1beta/{quote(_model_path(req.upstream_model), safe='/-._')}:generateContent"
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


# ------------------------------------------------------------------ transcription
TRANSCRIBE = ("Transcribe this audio. Answer with the transcript only, word for word, "
              "nothing else.")
AUDIO_TYPES = {".wav": "audio/wav", ".mp3": "audio/mp3", ".flac": "audio/flac", ".ogg": "audio/ogg",
               ".m4a": "audio/aac", ".aac": "audio/aac", ".webm": "audio/webm"}


def transcription_request(req: MediaRequest, base: str, headers: list[tuple[str, str]]) -> UpstreamRequest:
    """`POST /v1/audio/transcriptions` on Gemini: the uploaded file as `inlineData` beside
    an instruction to transcribe it (`language` and `prompt` added as hints)."""
    upload = next((p for p in form_parts(req.raw, boundary_of(req.content_type or "") or b"") or ()
                   if p.name == "file" and p.filename is not None), None)
    if upload is None:  # the route checked the form: not reached
        raise GatewayError(400, "'file' is required", param="file")
    if req.body.get("response_format") in ("srt", "vtt", "verbose_json"):
        raise GatewayError(400, f"model '{req.model}' gives the transcript as json or text only",
                           param="response_format", code="unsupported_parameter")
    mime = upload.content_type if (upload.content_type or "").startswith("audio/") else None
    mime = mime or AUDIO_TYPES.get(upload.filename[upload.filename.rfind("."):].lower(), "audio/wav")
    instruction = TRANSCRIBE
    if req.body.get("language"):
        instruction += f" The audio is in the language {req.body['language']}."
    if req.body.get("prompt"):
        instruction += f" Context: {req.body['prompt']}"
    data = base64.b64encode(memoryview(req.raw)[upload.start:upload.end]).decode()
    payload = {"contents": [{"role": "user", "parts": [{"text": instruction},
                                                       {"inlineData": {"mimeType": mime, "data": data}}]}]}
    if req.body.get("temperature") is not None:
        payload["generationConfig"] = {"temperature": req.body["temperature"]}
    url = f"{base}/v1beta/{quote(_model_path(req.upstream_model), safe='/-._')}:generateContent"
    return UpstreamRequest("POST", url, headers, orjson.dumps(payload))


def transcription_answer(raw: bytes, provider: str, response_format: str | None) -> tuple[bytes, str, dict]:
    """Gemini's answer as OpenAI's transcription (JSON `{"text"}`, or the text itself for
    `text`), with usage in chat's names."""
    data = upstream_json(raw, provider)
    candidates = (data.get("candidates") or []) if isinstance(data, dict) else []
    parts = ((candidates[0].get("content") or {}).get("parts") or []) if candidates else []
    text = "".join(p.get("text", "") for p in parts if isinstance(p, dict) and not p.get("thought")).strip()
    usage = usage_of(data.get("usageMetadata") if isinstance(data, dict) else None)
    if response_format == "text":
        return text.encode(), "text/plain; charset=utf-8", usage
    answer = {"text": text, "usage": {"type": "tokens", "input_tokens": usage["prompt_tokens"],
                                      "output_tokens": usage["completion_tokens"],
                                      "total_tokens": usage["total_tokens"]}}
    return orjson.dumps(answer), "application/json", usage


def _model_path(model: str) -> str:
    return model if model.startswith(("models/", "tunedModels/")) else "models/" + model


# ------------------------------------------------------------------ speech
SPEECH_RATE = 24000  # Gemini's TTS answers 16-bit mono PCM at 24 kHz


GEMINI_VOICES = (
    "Zephyr", "Puck", "Charon", "Kore", "Fenrir", "Leda", "Orus", "Aoede", "Callirrhoe", "Autonoe",
    "Enceladus", "Iapetus", "Umbriel", "Algieba", "Despina", "Erinome", "Algenib", "Rasalgethi",
    "Laomedeia", "Achernar", "Alnilam", "Schedar", "Gacrux", "Pulcherrima", "Achird",
    "Zubenelgenubi", "Vindemiatrix", "Sadachbia", "Sadaltager", "Sulafat",
)
# OpenAI's voice names, so code written for OpenAI's TTS works on Gemini's unchanged.
OPENAI_VOICES = {
    "alloy": "Kore", "ash": "Puck", "ballad": "Enceladus", "coral": "Aoede", "echo": "Charon",
    "fable": "Fenrir", "nova": "Leda", "onyx": "Orus", "sage": "Sulafat", "shimmer": "Zephyr",
    "verse": "Iapetus", "marin": "Despina", "cedar": "Algieba",
}
_VOICES = {**{v.lower(): v for v in GEMINI_VOICES}, **OPENAI_VOICES}


def gemini_voice(voice: str) -> str:
    """A Gemini voice name for `voice`: Gemini's own in any case, or one of OpenAI's names
    (docs/modalities.md has the table); any other name goes to Gemini as given."""
    return _VOICES.get(voice.strip().lower(), voice)


def speech_request(req: MediaRequest, base: str, headers: list[tuple[str, str]]) -> UpstreamRequest:
    """`POST /v1/audio/speech` on Gemini's TTS models: `generateContent` asked for AUDIO,
    `voice` as a prebuilt Gemini voice (`Kore`, `Puck`, …, or an OpenAI voice name mapped to
    one), `instructions` before the text."""
    body = req.body
    kind = body.get("response_format") or "mp3"
    if kind not in ("wav", "pcm"):
        raise GatewayError(400, f"model '{req.model}' gives speech as wav or pcm only, not {kind}",
                           param="response_format", code="unsupported_parameter")
    if body.get("speed") not in (None, 1, 1.0):
        raise GatewayError(400, f"'speed' is not supported by model '{req.model}'", param="speed",
                           code="unsupported_parameter")
    text = body["input"] if not body.get("instructions") else f"{body['instructions']}: {body['input']}"
    payload = {"contents": [{"role": "user", "parts": [{"text": text}]}],
               "generationConfig": {"responseModalities": ["AUDIO"], "speechConfig": {
                   "voiceConfig": {"prebuiltVoiceConfig": {"voiceName": gemini_voice(body["voice"])}}}}}
    url = f"{base}/v1beta/{quote(_model_path(req.upstream_model), safe='/-._')}:generateContent"
    return UpstreamRequest("POST", url, headers, orjson.dumps(payload))


def speech_answer(raw: bytes, provider: str, response_format: str | None) -> tuple[bytes, str, dict]:
    """The PCM Gemini sent, as a WAV file (or raw for `pcm`), and the usage."""
    data = upstream_json(raw, provider)
    candidates = (data.get("candidates") or []) if isinstance(data, dict) else []
    parts = ((candidates[0].get("content") or {}).get("parts") or []) if candidates else []
    blob = next((p["inlineData"] for p in parts if isinstance(p, dict) and isinstance(p.get("inlineData"), dict)
                 and str(p["inlineData"].get("mimeType", "")).startswith("audio/")), None)
    if blob is None:
        raise GatewayError(502, f"{provider} answered without audio", code="upstream_bad_response")
    pcm = base64.b64decode(blob.get("data", ""))
    usage = usage_of(data.get("usageMetadata"))
    if response_format == "pcm":
        return pcm, "audio/pcm", usage
    rate = SPEECH_RATE
    for field in str(blob["mimeType"]).split(";"):
        if field.strip().startswith("rate="):
            rate = int(field.strip()[5:]) if field.strip()[5:].isdigit() else rate
    header = (b"RIFF" + struct.pack("<I", 36 + len(pcm)) + b"WAVEfmt "
              + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16) + b"data" + struct.pack("<I", len(pcm)))
    return header + pcm, "audio/wav", usage
