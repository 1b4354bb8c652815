"""The media routes (SPEC §9.4): `POST /v1/images/generations`, `/v1/audio/speech`,
`/v1/audio/transcriptions` and `/v1/completions`.

Each is a thin translator over the engine (`Engine.media`): it checks OpenAI's body (a 400
naming the parameter), takes the Lunos options (body fields or `x-lunos-*` headers),
admits the request under the key's limits, and lets the engine pick the deployment, retry
and fall back; then it reads the answer whole (images, transcriptions, completions) or
relays it as it arrives (speech audio, completion streams). Every request gets one history
row (`endpoint`: images, audio or completions) with usage and cost. A trace keeps the
prompt and parameters, and of any media only its size and SHA-256 (`media_summary`).
"""

from __future__ import annotations

import hashlib
import time

import orjson

from ..._sse import SSEDecoder
from ..asgi import send_bytes, send_json
from ..errors import GatewayError
from ..providers.media import boundary_of, form_parts, media_summary
from ..records import CallRecord
from ..sse import DONE, error_event
from ..usage import TokenCounts, cost_of
from ..validation import (
    LUNOS_FIELDS,
    ChatOptions,
    _bad,
    _kind,
    check_model_field,
    header_options,
    lunos_options,
    parse_json,
)
from .chat import candidate_infos, lunos_headers, overhead_ms, recorded, start_sse

IMAGE_FORMATS = ("url", "b64_json")
IMAGE_SIZES = ("auto", "256x256", "512x512", "1024x1024", "1536x1024", "1024x1536", "1792x1024",
               "1024x1792")
SPEECH_FORMATS = {"mp3": "audio/mpeg", "opus": "audio/ogg", "aac": "audio/aac", "flac": "audio/flac",
                  "wav": "audio/wav", "pcm": "audio/pcm"}
TRANSCRIPT_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
MAX_PROMPT_CHARS = 32000
MAX_SPEECH_CHARS = 4096


# ------------------------------------------------------------------ checks
def _json_body(raw: bytes, request, record: CallRecord) -> dict:
    body = parse_json(raw)
    if not isinstance(body, dict):
        raise GatewayError(400, "The request body must be a JSON object", code="invalid_json")
    header_options(body, request.headers)
    if isinstance(body.get("model"), str):
        record.model = body["model"]
    return body


def _options(body: dict) -> ChatOptions:
    """Check `model` and take the Lunos fields out of `body` into the options."""
    check_model_field(body)
    options = ChatOptions()
    lunos_options(body, options)
    for name in LUNOS_FIELDS:
        body.pop(name, None)
    return options


def _text(body: dict, name: str, most: int, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise _bad(f"'{name}' is required", name, "missing_required_parameter")
        return None
    if not isinstance(value, str):
        raise _bad(f"'{name}' must be a string, got {_kind(value)}", name, "invalid_type")
    if required and not value.strip():
        raise _bad(f"'{name}' must not be empty", name)
    if len(value) > most:
        raise _bad(f"'{name}' is {len(value)} characters long; at most {most}", name)
    return value


def _choice(body: dict, name: str, choices) -> None:
    value = body.get(name)
    if value is not None and value not in choices:
        raise _bad(f"'{name}' must be one of {', '.join(choices)}, got {str(value)[:40]!r}", name)


def _number(body: dict, name: str, low: float, high: float, integer: bool = False) -> None:
    value = body.get(name)
    if value is None:
        return
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:
        what = "an integer" if integer else "a number"
        raise _bad(f"'{name}' must be {what} from {low:g} to {high:g}, got {str(value)[:40]}", name)


async def _admitted(gw, principal, body: dict, options: ChatOptions, prompt: str, output: int):
    principal.check_model(body["model"], options.models, gw.router.full_id)
    reservation = {"messages": [{"content": prompt}], "max_tokens": output}
    return await gw.limits.admit(principal, reservation, candidate_infos(gw, body, options))


def _settle_cost(gw, record: CallRecord, usage: dict | None, route, images: int = 0,
                 seconds: float | None = None) -> dict:
    """Add the answer's usage to the row and price it: tokens at the catalog's token prices,
    plus images at its per-image price, plus audio minutes at its per-minute price."""
    tokens = TokenCounts.of(usage)
    record.tokens.add(tokens)
    info = route.model_info
    cost = cost_of(record.tokens, info)
    if cost is not None and images and info.image_price is not None:
        cost += images * info.image_price
    if cost is not None and seconds and info.minute_price is not None:
        cost += seconds / 60 * info.minute_price
    record.cost = None if cost is None else round(cost, 10)
    out = {"prompt_tokens": tokens.prompt, "completion_tokens": tokens.completion,
           "total_tokens": tokens.prompt + tokens.completion}
    if record.cost is not None:
        out["cost"] = record.cost
    return out


def _openai_usage(usage) -> dict | None:
    """The images and audio APIs' usage (`input_tokens`, `output_tokens`) in chat's names."""
    if not isinstance(usage, dict):
        return None
    if "prompt_tokens" in usage:
        return usage
    return {"prompt_tokens": usage.get("input_tokens") or 0,
            "completion_tokens": usage.get("output_tokens") or 0}


# ------------------------------------------------------------------ images
def validate_images(body: dict) -> ChatOptions:
    options = _options(body)
    _text(body, "prompt", MAX_PROMPT_CHARS)
    _number(body, "n", 1, 10, integer=True)
    _choice(body, "response_format", IMAGE_FORMATS)
    _choice(body, "size", IMAGE_SIZES)
    for name in ("quality", "style", "background", "output_format", "user", "moderation"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise _bad(f"'{name}' must be a string, got {_kind(body[name])}", name, "invalid_type")
    return options


async def _images(gw, request, raw: bytes, send, principal, record: CallRecord) -> None:
    body = _json_body(raw, request, record)
    options = validate_images(body)
    if options.observability:
        record.trace, record.request = True, raw  # a prompt and parameters: no media in it
    ticket = await _admitted(gw, principal, body, options, body["prompt"], 4096 * (body.get("n") or 1))
    try:
        route, req, response = await gw.engine.media("images", body, options, record)
        answer = await gw.engine.read_body(route, response, record.attempts[-1])
        items, usage = route.adapter.parse_images_response(req, answer)
        usage = _settle_cost(gw, record, _openai_usage(usage), route, images=len(items))
    finally:
        await gw.limits.settle(ticket, record.tokens, record.cost)
    as_url = body.get("response_format") == "url"
    data = []
    for item in items:
        mime = item.pop("mime_type", None) or "image/png"
        if as_url and "b64_json" in item:  # a provider that answers with bytes only
            item["url"] = f"data:{mime};base64,{item.pop('b64_json')}"
        data.append(item)
    if record.trace:
        record.response = {"content": f"{len(data)} image(s)", "finish_reason": None,
                           "media": [media_summary(i["b64_json"]) if "b64_json" in i else {"url": i.get("url")}
                                     if not str(i.get("url", "")).startswith("data:") else
                                     media_summary(i["url"].partition(",")[2]) for i in data]}
    record.responded = True
    await send_json(send, 200, {"created": int(record.created_at), "data": data, "model": record.model,
                                "provider": record.provider, "usage": usage},
                    lunos_headers(record, overhead_ms(record)))


# ------------------------------------------------------------------ speech
def validate_speech(body: dict) -> ChatOptions:
    options = _options(body)
    _text(body, "input", MAX_SPEECH_CHARS)
    _text(body, "voice", 200)
    _text(body, "instructions", MAX_SPEECH_CHARS, required=False)
    _choice(body, "response_format", tuple(SPEECH_FORMATS))
    _choice(body, "stream_format", ("audio", "sse"))
    _number(body, "speed", 0.25, 4.0)
    return options


async def _speech(gw, request, raw: bytes, send, principal, record: CallRecord) -> None:
    body = _json_body(raw, request, record)
    options = validate_speech(body)
    if options.observability:
        record.trace, record.request = True, raw
    ticket = await _admitted(gw, principal, body, options, body["input"], 1)
    digest, size = hashlib.sha256(), 0
    try:
        route, req, response = await gw.engine.media("speech", body, options, record, stream=True)
        if hasattr(route.adapter, "speech_answer"):  # a provider that answers audio in JSON
            audio, kind, usage = route.adapter.speech_answer(req, await gw.engine.read_body(route, response, record.attempts[-1]))
            _settle_cost(gw, record, usage, route)
            pieces = _one(audio)
        else:
            # Priced per input character (as OpenAI prices tts-1): counted as prompt tokens.
            _settle_cost(gw, record, {"prompt_tokens": len(body["input"])}, route)
            kind = response.headers.get("content-type") or SPEECH_FORMATS[body.get("response_format") or "mp3"]
            pieces = response.aiter_bytes()
        headers = [(b"content-type", kind.encode("latin-1"))] + [
            (k.encode(), v.encode()) for k, v in lunos_headers(record, overhead_ms(record))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        started = time.perf_counter()
        try:
            async for piece in pieces:
                if record.ttft_ms is None:
                    record.ttft_ms = round((time.perf_counter() - record.started) * 1000, 3)
                digest.update(piece)
                size += len(piece)
                await send({"type": "http.response.body", "body": piece, "more_body": True})
        except Exception as exc:  # the audio broke off: the client sees a short body
            record.status, record.error = 502, f"{route.provider}: the audio stream broke off ({exc.__class__.__name__})"
        finally:
            record.attempts[-1].latency_ms += round((time.perf_counter() - started) * 1000, 3)
        record.responded = True
        await send({"type": "http.response.body", "body": b""})
    finally:
        await gw.limits.settle(ticket, record.tokens, record.cost)
    record.stream = True
    if record.trace:
        record.response = {"content": "audio", "finish_reason": None,
                           "media": [{"bytes": size, "sha256": digest.hexdigest(), "content_type": kind}]}


async def _one(audio: bytes):
    yield audio


# ------------------------------------------------------------------ transcriptions
def read_form(raw: bytes, content_type: str) -> tuple[dict, object]:
    """The text fields of a transcription form, and its `file` part (offsets, not a copy)."""
    boundary = boundary_of(content_type) if content_type.lower().startswith("multipart/form-data") else None
    if boundary is None:
        raise GatewayError(400, "The request body must be multipart/form-data with a 'file' and a "
                           "'model' field", code="invalid_value")
    parts = form_parts(raw, boundary)
    if parts is None:
        raise GatewayError(400, "The multipart body is not well formed", code="invalid_value")
    fields: dict = {}
    upload = None
    for part in parts:
        if part.name == "file" and part.filename is not None:
            upload = part
        elif part.filename is None:
            fields[part.name] = raw[part.start:part.end].decode("utf-8", "replace")
    if upload is None:
        raise _bad("'file' is required: an audio file", "file", "missing_required_parameter")
    if upload.end == upload.start:
        raise _bad("'file' is empty", "file")
    return fields, upload


async def _transcriptions(gw, request, raw: bytes, send, principal, record: CallRecord) -> None:
    content_type = (request.headers.get(b"content-type") or b"").decode("latin-1")
    fields, upload = read_form(raw, content_type)
    for name in ("observability", "drop_params", "cache"):  # form fields are text
        if fields.get(name) in ("true", "false"):
            fields[name] = fields[name] == "true"
    if isinstance(fields.get("models"), str):
        fields["models"] = [m.strip() for m in fields["models"].split(",") if m.strip()]
    header_options(fields, request.headers)
    record.model = fields.get("model") or ""
    options = _options(fields)
    _choice(fields, "response_format", TRANSCRIPT_FORMATS)
    if fields.get("temperature") is not None:
        try:
            fields["temperature"] = float(fields["temperature"])
        except ValueError:
            raise _bad("'temperature' must be a number", "temperature") from None
        _number(fields, "temperature", 0, 1)
    stream = fields.get("stream") in ("true", "True", "1")
    record.stream = stream
    if options.observability:
        record.trace = True
        audio = memoryview(raw)[upload.start:upload.end]
        record.request = {**fields, "file": {"filename": upload.filename,
                                             **media_summary(audio, upload.content_type)}}
    ticket = await _admitted(gw, principal, fields, options, fields.get("prompt") or "", 4096)
    try:
        route, req, response = await gw.engine.media("transcriptions", fields, options, record,
                                                     stream=stream, raw=(raw, content_type))
        if stream and not hasattr(route.adapter, "transcription_answer"):
            await _relay_transcript(gw, route, response, send, record)
            return
        answer = await gw.engine.read_body(route, response, record.attempts[-1])
        kind = response.headers.get("content-type") or "application/json"
        if hasattr(route.adapter, "transcription_answer"):  # a provider with its own shape
            answer, kind, _ = route.adapter.transcription_answer(req, answer)
        usage, seconds, text, found = None, None, None, {}
        if kind.startswith("application/json"):
            data = orjson.loads(answer) if answer else {}
            if isinstance(data, dict):
                text = data.get("text")
                found = data.get("usage") or {}
                usage = _openai_usage(found) if found.get("type", "tokens") == "tokens" else None
                seconds = found.get("seconds") if found.get("type") == "duration" else data.get("duration")
        else:
            text = answer.decode("utf-8", "replace")
        _settle_cost(gw, record, usage, route, seconds=seconds if isinstance(seconds, (int, float)) else None)
    finally:
        await gw.limits.settle(ticket, record.tokens, record.cost)
    if record.trace:
        record.response = {"content": text or "", "finish_reason": None}
    record.responded = True
    if stream:  # a provider that answers whole (Gemini): its transcript as OpenAI's two events
        done = {"type": "transcript.text.done", "text": text or ""}
        if found:
            done["usage"] = found
        events = [{"type": "transcript.text.delta", "delta": text or ""}, done]
        await start_sse(send, record)
        await send({"type": "http.response.body", "body": b"".join(b"data: " + orjson.dumps(e) + b"\n\n"
                                                                   for e in events)})
        return
    await send_bytes(send, 200, answer, kind.encode("latin-1"), lunos_headers(record, overhead_ms(record)))


def _broken_off(exc: Exception, route, record: CallRecord) -> bytes:
    """A relayed stream's failure after it started: the row says why, and the client gets
    an error event in OpenAI's shape (the provider's error, or a 502 naming it)."""
    error = exc if isinstance(exc, GatewayError) else GatewayError(
        502, f"{route.provider}: the stream broke off ({exc.__class__.__name__})", code="upstream_error")
    record.status, record.error = error.status, error.message
    return error_event(error)


async def _relay_transcript(gw, route, response, send, record: CallRecord) -> None:
    """OpenAI's transcript events as they arrive (`transcript.text.delta`s, then
    `transcript.text.done` with the usage), relayed as sent; an error event in OpenAI's
    shape if the stream breaks or the provider sends one."""
    await start_sse(send, record)
    decoder, text, usage = SSEDecoder(), [], None
    ended = b""
    try:
        async for piece in response.aiter_bytes():
            for event in decoder.feed(piece):
                data = orjson.loads(event.data) if event.data and event.data != "[DONE]" else None
                if not isinstance(data, dict):
                    continue
                if data.get("type") == "error" or ("error" in data and "type" not in data):
                    raise GatewayError(502, f"{route.provider}: {data.get('error') or data}", code="upstream_error")
                if data.get("type") == "transcript.text.delta":
                    if not text:
                        record.ttft_ms = round((time.perf_counter() - record.started) * 1000, 3)
                    text.append(data.get("delta") or "")
                elif data.get("type") == "transcript.text.done" and isinstance(data.get("usage"), dict):
                    usage = data["usage"]
            await send({"type": "http.response.body", "body": piece, "more_body": True})
    except Exception as exc:
        ended = _broken_off(exc, route, record)
    found = usage or {}
    _settle_cost(gw, record, _openai_usage(found) if found.get("type", "tokens") == "tokens" else None, route)
    if record.trace:
        record.response = {"content": "".join(text), "finish_reason": None}
    record.responded = True
    await send({"type": "http.response.body", "body": ended})


# ------------------------------------------------------------------ completions
def validate_completions(body: dict) -> ChatOptions:
    options = _options(body)
    prompt = body.get("prompt")
    if prompt is None:
        raise _bad("'prompt' is required", "prompt", "missing_required_parameter")
    texts = prompt if isinstance(prompt, list) else [prompt]
    if not texts or not all(isinstance(t, str) or (isinstance(t, int) and not isinstance(t, bool))
                            or (isinstance(t, list) and all(isinstance(i, int) for i in t)) for t in texts):
        raise _bad("'prompt' must be a string, an array of strings, or token arrays", "prompt", "invalid_type")
    if body.get("stream") is not None and not isinstance(body["stream"], bool):
        raise _bad("'stream' must be a boolean", "stream", "invalid_type")
    _number(body, "max_tokens", 0, 1 << 20, integer=True)
    _number(body, "n", 1, 128, integer=True)
    _number(body, "temperature", 0, 2)
    _number(body, "top_p", 0, 1)
    return options


def _prompt_text(prompt) -> str:
    if isinstance(prompt, str):
        return prompt
    return " ".join(item if isinstance(item, str) else " " * (len(item) if isinstance(item, list) else 1)
                    for item in prompt)


async def _completions(gw, request, raw: bytes, send, principal, record: CallRecord) -> None:
    body = _json_body(raw, request, record)
    options = validate_completions(body)
    if options.observability:
        record.trace, record.request = True, raw
    stream = bool(body.get("stream"))
    record.stream = stream
    ticket = await _admitted(gw, principal, body, options, _prompt_text(body["prompt"]),
                             (body.get("max_tokens") or 4096) * (body.get("n") or 1))
    try:
        route, _, response = await gw.engine.media("completions", body, options, record, stream=stream)
        if stream:
            shown = bool((body.get("stream_options") or {}).get("include_usage"))
            await _relay_completions(gw, route, response, send, record, shown)
            return
        answer = orjson.loads(await gw.engine.read_body(route, response, record.attempts[-1]) or b"{}")
        if not isinstance(answer, dict):
            raise GatewayError(502, f"{route.provider} sent a completion that is not an object",
                               code="upstream_bad_response")
        usage = answer.get("usage")
        priced = _settle_cost(gw, record, usage if isinstance(usage, dict) else None, route)
        if isinstance(usage, dict) and "cost" in priced:
            usage["cost"] = priced["cost"]
    finally:
        await gw.limits.settle(ticket, record.tokens, record.cost)
    answer.update(model=route.model, provider=route.provider)
    if record.trace:
        record.response = {"content": "".join(c.get("text") or "" for c in answer.get("choices") or []),
                           "finish_reason": ((answer.get("choices") or [{}])[0]).get("finish_reason")}
    record.responded = True
    await send_json(send, 200, answer, lunos_headers(record, overhead_ms(record)))


async def _relay_completions(gw, route, response, send, record: CallRecord, show_usage: bool) -> None:
    """The provider's SSE events as they arrive, each with the Lunos model id (and the
    provider on the first); `[DONE]` at the end, or an error event if the stream breaks.
    The usage chunk, priced, reaches only a client that asked for it (`show_usage`)."""
    await start_sse(send, record)
    decoder, text, first, usage, finish = SSEDecoder(), [], True, None, None
    ended = b""
    try:
        async for piece in response.aiter_bytes():
            out = []
            for event in decoder.feed(piece):
                if not event.data or event.data == "[DONE]":
                    continue
                chunk = orjson.loads(event.data)
                if not isinstance(chunk, dict):
                    continue
                if "error" in chunk and "choices" not in chunk:
                    raise GatewayError(502, f"{route.provider}: {chunk['error']}", code="upstream_error")
                chunk["model"] = route.model
                if first:
                    chunk["provider"], first = route.provider, False
                    record.ttft_ms = round((time.perf_counter() - record.started) * 1000, 3)
                for choice in chunk.get("choices") or ():
                    text.append(choice.get("text") or "")
                    finish = choice.get("finish_reason") or finish
                if isinstance(chunk.get("usage"), dict):
                    usage = chunk["usage"]
                    cost = cost_of(TokenCounts.of(usage), route.model_info)
                    if cost is not None:  # as on the JSON answer and chat's usage chunk
                        usage["cost"] = round(cost, 10)
                    if not show_usage:
                        if not chunk.get("choices"):
                            continue  # the usage-only chunk
                        chunk.pop("usage")
                out.append(b"data: " + orjson.dumps(chunk) + b"\n\n")
            if out:
                await send({"type": "http.response.body", "body": b"".join(out), "more_body": True})
        ended = DONE
    except Exception as exc:
        ended = _broken_off(exc, route, record)
    _settle_cost(gw, record, usage, route)
    if record.trace:
        record.response = {"content": "".join(text), "finish_reason": finish}
    record.responded = True
    await send({"type": "http.response.body", "body": ended})


create_images = recorded("images", _images)
create_speech = recorded("audio", _speech)
create_transcription = recorded("audio", _transcriptions)
create_completion = recorded("completions", _completions)
