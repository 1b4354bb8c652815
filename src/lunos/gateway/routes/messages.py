"""POST /v1/messages and /v1/messages/count_tokens: Anthropic's Messages API (SPEC §9.1).

A translator at the edge over the one engine. The body is checked as Anthropic checks it
(doors/messages_in.py) and Lunos's own fields are taken out. Providers that speak the
Messages API (Anthropic) get the body as it was sent, and their answer comes back as they
sent it (providers/anthropic/native.py); the others get it as a chat body and their chat
answer is turned back into a message or into Messages events (doors/messages_out.py).
Fallbacks may mix both kinds. Errors have Anthropic's shape (the app sends them).
"""

from __future__ import annotations

from .. import sse
from ..asgi import send_error, send_json
from ..doors.messages_in import (
    BEST_EFFORT,
    SIGNATURE_PREFIX,
    is_gateway_signature,
    to_chat,
    validate_messages,
)
from ..doors.messages_out import MessagesStream, sse_event, to_message
from ..errors import GatewayError
from ..providers.anthropic.native import FORWARDED_HEADERS, native_output
from ..providers.base import ChatRequest, NativeBody, speaks
from ..providers.common import upstream_json
from ..records import CallRecord
from ..routing import Route, check_credentials
from ..tokens import estimate
from ..usage import completion_output
from ..validation import (
    LUNOS_FIELDS,
    ChatOptions,
    header_options,
    lunos_options,
    parse_json,
    validate_chat,
)
from .chat import UPSTREAM_RETRY_AFTER, candidate_infos, lunos_headers, overhead_ms, start_sse

DOOR = "messages"


def _anthropic_id(model: str) -> str:
    """A bare Anthropic model id (`claude-…`) means `anthropic/claude-…`, so tools made for
    Anthropic work by changing only their base URL."""
    return f"anthropic/{model}" if model.startswith("claude-") and "/" not in model else model


def _read(raw: bytes, request, *, counting: bool = False,
          record: CallRecord | None = None) -> tuple[dict, ChatOptions, NativeBody]:
    body = parse_json(raw)
    if isinstance(body, dict):
        header_options(body, request.headers)
        if record is not None and isinstance(body.get("model"), str):
            record.model = body["model"][:300]  # on the row even if validation refuses it
        if counting:
            body.setdefault("max_tokens", 2**31 - 1)  # count_tokens takes no max_tokens
    validate_messages(body)
    if counting:
        del body["max_tokens"]
    options = ChatOptions()
    lunos_options(body, options)
    for name in LUNOS_FIELDS:
        body.pop(name, None)
    body["model"] = _anthropic_id(body["model"])
    options.models = [_anthropic_id(m) for m in options.models]
    headers = [(name, request.header(name.encode())) for name in FORWARDED_HEADERS
               if request.header(name.encode()) is not None]
    native = body if SIGNATURE_PREFIX.encode() not in raw else _without_gateway_thinking(body)
    return body, options, NativeBody(DOOR, native, headers)


def _without_gateway_thinking(body: dict) -> dict:
    """The body without the thinking blocks this door signed for another provider's
    reasoning (a conversation that moved to Anthropic): Anthropic would refuse them."""
    messages = []
    for message in body["messages"]:
        content = message.get("content")
        if message.get("role") == "assistant" and isinstance(content, list):
            kept = [b for b in content if not (b.get("type") == "thinking"
                                                and is_gateway_signature(b.get("signature")))]
            if len(kept) != len(content):
                message = {**message, "content": kept}
        messages.append(message)
    return {**body, "messages": messages}


def _chat_body(gw, body: dict, options: ChatOptions, record: CallRecord | None) -> dict:
    """The chat body for providers that do not speak Messages (validated as a chat body)."""
    drop = options.drop_params if options.drop_params is not None else gw.settings.drop_params
    chat, dropped = to_chat(body, drop=drop)
    # Agents send `thinking` and `metadata.user_id` whatever the model, and max_tokens that
    # fit Claude: where a model cannot take them they are dropped, not refused.
    options.hinted = BEST_EFFORT
    options.fit_max_tokens = True
    if record is not None and dropped:
        record.dropped_params = dropped
    if chat.get("stream"):
        chat["stream_options"] = {"include_usage": True}
    chat, _ = validate_chat(chat)
    return chat


def _all_native(gw, body: dict, options: ChatOptions) -> bool:
    """Whether every deployment that may answer speaks Messages (then no chat body is built)."""
    for name in (body["model"], *options.models):
        try:
            routes = gw.router.resolve(name)
        except GatewayError:
            continue
        if not all(speaks(route.adapter, DOOR) for route in routes):
            return False
    return True


async def create_message(gw, request, raw: bytes, send, principal, record: CallRecord) -> None:
    record.endpoint = DOOR
    try:
        body, options, native = _read(raw, request, record=record)
        record.model = body["model"]
        record.stream = bool(body.get("stream"))
        if options.observability:
            record.trace = True
            record.request = raw
        principal.check_model(body["model"], options.models, gw.router.full_id)
        # The cache keys and replays chat completions: a cached request takes the translated
        # path even where the provider speaks Messages (docs/cache.md).
        runner = gw.cache.wrap(gw.engine, options, principal, body["model"])
        if runner is not gw.engine:
            native = None
        chat = {"model": body["model"]} if native is not None and _all_native(gw, body, options) else \
            _chat_body(gw, body, options, record)
        ticket = await gw.limits.admit(principal, body, candidate_infos(gw, body, options), gw.engine)
        try:
            if record.stream:
                await _stream(runner, chat, options, record, native, send)
            else:
                answer = await runner.complete(chat, options, record, native)
                if record.extra.get("passthrough"):
                    message = answer
                    if record.trace:
                        record.response = native_output(answer)
                else:
                    message = to_message(answer, record.model, record.id)
                    if record.trace:
                        record.response = completion_output(answer)
                record.responded = True
                await send_json(send, 200, message, lunos_headers(record, overhead_ms(record)))
        finally:
            await gw.limits.settle(ticket, record.tokens, record.cost)
    except GatewayError as exc:
        record.status, record.error = exc.status, exc.message
        headers = lunos_headers(record)
        if record.attempts:
            headers.append(("x-should-retry", "false"))
        if exc.status == 429 and "retry-after" not in exc.headers:
            headers.append(("retry-after", UPSTREAM_RETRY_AFTER))  # the upstream gave none
        record.responded = True
        await send_error(send, exc, headers, anthropic=True)
    finally:
        if record.latency_ms is None:
            record.finish()


async def _stream(runner, chat: dict, options, record: CallRecord, native: NativeBody | None, send) -> None:
    batches = runner.stream(chat, options, record, native)
    first = await batches.__anext__()  # errors until here are a JSON error response
    events = None if record.extra.get("passthrough") else MessagesStream(record.model, record.id)

    def encode(batch: list) -> bytes:
        if events is None:  # the provider's own events, framed already
            return b"".join(batch)
        return b"".join(sse_event(name, data) for chunk in batch for name, data in events.feed(chunk))
    await start_sse(send, record)
    last = b""
    try:
        await send({"type": "http.response.body", "body": encode(first), "more_body": True})
        async for batch in batches:
            block = encode(batch)
            if block:
                await send({"type": "http.response.body", "body": block, "more_body": True})
        if events is not None:
            last = b"".join(sse_event(name, data) for name, data in events.finish())
    except GatewayError as exc:
        record.status, record.error = exc.status, exc.message
        last = sse.anthropic_error_event(exc)
    except Exception:
        sse.log.exception("a Messages stream failed after it started")
        error = GatewayError(500, "The gateway failed while sending the stream", code="internal_error")
        record.status, record.error = error.status, error.message
        last = sse.anthropic_error_event(error)
    finally:
        await batches.aclose()
    record.responded = True
    await send({"type": "http.response.body", "body": last})


# ---------------------------------------------------------------------- count_tokens

async def count_tokens(gw, request, send, principal) -> None:
    """`{"input_tokens": N}`: the provider's own count where it has one (Anthropic, Gemini),
    else an estimate from a real tokenizer (tokens.py), marked `x-lunos-estimate: true`."""
    raw = await request.body(gw.settings.max_body_bytes)
    body, options, native = _read(raw, request, counting=True)
    principal.check_model(body["model"], [], gw.router.full_id)
    route: Route = gw.router.resolve(body["model"])[0]
    check_credentials(route)
    adapter = route.adapter
    req = ChatRequest(body, route.model, route.provider, route.upstream_model, route.model_info,
                      native=native)
    if not speaks(adapter, DOOR):
        req.body = _chat_body(gw, {**body, "max_tokens": 1}, options, None)
    if not hasattr(adapter, "count_tokens_request"):
        await send_json(send, 200, {"input_tokens": estimate(req.body)}, [("x-lunos-estimate", "true")])
        return
    raw_count = await gw.engine.send_once(route, adapter.count_tokens_request(req))
    data = upstream_json(raw_count, route.provider)
    count = data.get("input_tokens", data.get("totalTokens")) if isinstance(data, dict) else None
    if not isinstance(count, int):
        raise GatewayError(502, f"{route.provider} sent a token count without a number",
                           code="upstream_bad_response")
    await send_json(send, 200, {"input_tokens": count})
