"""POST /v1/responses: OpenAI's Responses API in front of every provider (SPEC §9.2).

A translator at the edge over the one engine, like the Messages door. The body is checked
(doors/responses_in.py); Lunos's own fields are taken out. Lunos keeps conversations
itself: `previous_response_id` is looked up in the store (per key) and the earlier turns'
input and output items go first, so a conversation can move between providers.

Providers with OpenAI's Responses API (OpenAI, and presets with `responses_api`) get the
body as sent, with the whole conversation as `input` and nothing stored upstream
(providers/openai_responses.py); their answer comes back as they sent it, under Lunos's
response id. When the requested model's provider has no Responses API, the conversation
goes through the chat translators and the same layers as chat (structured outputs, web
search). With `store` (the default) the response and its input items are saved before the
client can see the end of the answer, so the next turn finds them.
"""

from __future__ import annotations

import orjson

from ..asgi import send_bytes
from ..doors.responses_in import (
    BEST_EFFORT,
    input_items,
    is_gateway_reasoning,
    to_chat,
    validate_responses,
)
from ..doors.responses_out import ResponsesStream, sse_event, to_response
from ..errors import GatewayError
from ..providers.base import NativeBody, speaks
from ..records import CallRecord
from ..store import StoredResponse
from ..tools import runner_for
from ..usage import completion_output
from ..validation import (
    LUNOS_FIELDS,
    ChatOptions,
    header_options,
    lunos_options,
    parse_json,
    validate_chat,
)
from .chat import candidate_infos, lunos_headers, overhead_ms, start_sse

DOOR = "responses"
ENCRYPTED_REASONING = "reasoning.encrypted_content"


class _Turn:
    """One request through the door: what was asked, and what the answer becomes."""

    def __init__(self, gw, body: dict, options: ChatOptions, record: CallRecord, principal) -> None:
        self.gw = gw
        self.body = body
        self.options = options
        self.record = record
        self.principal = principal
        self.store = body.get("store") is not False
        self.items = input_items(body)
        self.saved = False

    async def conversation(self) -> list[dict]:
        """The earlier turns' input and output items (from the store), then this input."""
        previous = self.body.get("previous_response_id")
        if previous is None:
            return self.items
        chain = await self.gw.store.response_chain(previous, self.principal.key_id)
        if not chain:
            raise GatewayError(400, f"Previous response with id '{previous}' not found.",
                               param="previous_response_id", code="previous_response_not_found")
        earlier: list[dict] = []
        for turn in chain:
            earlier += turn.input_items
            earlier += turn.response.get("output") or []
        return earlier + self.items

    async def save(self, response: dict, serialized: bytes | None = None) -> None:
        """Keep the response for `previous_response_id` and `GET /v1/responses/{id}`
        (`serialized`: its JSON, when already made for the client)."""
        if not self.store or self.saved:
            return
        self.saved = True
        await self.gw.store.save_response(StoredResponse(
            id=self.record.id, key_id=self.principal.key_id, created_at=self.record.created_at,
            model=response.get("model") or self.record.model,
            previous_response_id=self.body.get("previous_response_id"),
            input_items=self.items, response=response if serialized is None else serialized))


def _native_body(body: dict, conversation: list[dict]) -> dict:
    """What a provider with the Responses API gets: the client's body with the whole
    conversation as `input`, nothing stored upstream, and reasoning returned encrypted so
    Lunos can hand it back on the next turn. Items keep no ids (the upstream stored none of
    them), but reasoning items, which OpenAI matches by id with their encrypted content;
    reasoning another provider made is left out (OpenAI could not read it)."""
    out = {k: v for k, v in body.items() if k != "previous_response_id"}
    sent = []
    for item in conversation:
        if item.get("type") == "reasoning":
            if is_gateway_reasoning(item):
                continue
            sent.append(item)
        else:
            sent.append({k: v for k, v in item.items() if k != "id"})
    out["input"] = sent
    out["store"] = False
    include = list(body.get("include") or ())
    if ENCRYPTED_REASONING not in include:
        include.append(ENCRYPTED_REASONING)
    out["include"] = include
    return out


def _native_first(gw, model: str) -> bool:
    """Whether the requested model's deployments all have the Responses API."""
    try:
        routes = gw.router.resolve(model)
    except GatewayError:
        return False
    return all(speaks(route.adapter, DOOR) for route in routes)


def _chat_body(gw, body: dict, conversation: list[dict], options: ChatOptions, record: CallRecord) -> dict:
    drop = options.drop_params if options.drop_params is not None else gw.settings.drop_params
    chat, dropped = to_chat(body, conversation, drop=drop)
    if dropped:
        record.dropped_params = dropped
    if chat.get("stream"):
        chat["stream_options"] = {"include_usage": True}
    chat, chat_options = validate_chat(chat)
    options.web_search = chat_options.web_search
    options.hinted = BEST_EFFORT  # derived from hints agents always send (reasoning, user)
    options.fit_max_tokens = True
    return chat


async def create_response(gw, request, raw: bytes, send, principal, record: CallRecord) -> None:
    record.endpoint = DOOR
    try:
        body = parse_json(raw)
        if isinstance(body, dict):
            header_options(body, request.headers)
            if isinstance(body.get("model"), str):  # on the row even if validation refuses it
                record.model = body["model"][:300]
        validate_responses(body)
        options = ChatOptions()
        lunos_options(body, options)
        for name in LUNOS_FIELDS:
            body.pop(name, None)
        record.model = body["model"]
        record.stream = bool(body.get("stream"))
        if options.observability:
            record.trace = True
            record.request = raw
        principal.check_model(body["model"], options.models, gw.router.full_id)
        turn = _Turn(gw, body, options, record, principal)
        conversation = await turn.conversation()
        native = None
        cached = gw.cache.asked(options, principal, body["model"])
        if not cached and _native_first(gw, body["model"]):  # the cache replays chat completions
            echo = {"store": turn.store, "previous_response_id": body.get("previous_response_id")}
            native = NativeBody(DOOR, _native_body(body, conversation), state={"id": record.id, "echo": echo})
            chat = _chat_body(gw, body, conversation, options, record) \
                if options.models and not all(_native_first(gw, m) for m in options.models) \
                else {"model": body["model"]}
            runner = gw.engine
        else:
            chat = _chat_body(gw, body, conversation, options, record)
            runner = gw.cache.wrap(runner_for(gw, chat, options), options, principal, body["model"])
        ticket = await gw.limits.admit(principal, chat if native is None else {**chat, "messages": []},
                                       candidate_infos(gw, body, options), runner)
        try:
            if record.stream:
                await _stream(turn, runner, chat, native, send)
            else:
                await _complete(turn, runner, chat, native, send)
        finally:
            await gw.limits.settle(ticket, record.tokens, record.cost)
    except GatewayError as exc:
        record.status, record.error = exc.status, exc.message
        raise
    finally:
        if record.latency_ms is None:
            record.finish()


async def _complete(turn: _Turn, runner, chat: dict, native: NativeBody | None, send) -> None:
    record = turn.record
    args = (chat, turn.options, record, native) if native is not None else (chat, turn.options, record)
    answer = await runner.complete(*args)
    if record.extra.get("passthrough"):
        response = answer
    else:
        response = to_response(answer, response_id=record.id, model=record.model,
                               created_at=int(record.created_at), request=turn.body)
        if record.trace:
            record.response = completion_output(answer)
    if record.trace and record.response is None:
        record.response = {"output": response.get("output")}
    payload = orjson.dumps(response)
    await turn.save(response, payload)
    record.responded = True
    await send_bytes(send, 200, payload, headers=lunos_headers(record, overhead_ms(record)))


async def _stream(turn: _Turn, runner, chat: dict, native: NativeBody | None, send) -> None:
    record = turn.record
    args = (chat, turn.options, record, native) if native is not None else (chat, turn.options, record)
    batches = runner.stream(*args)
    first = await batches.__anext__()  # errors until here are a JSON error response
    events = None if record.extra.get("passthrough") else ResponsesStream(
        record.id, record.model, int(record.created_at), turn.body)

    async def encode(batch: list) -> bytes:
        if events is None:  # the provider's own events, framed already
            if native.state.get("response") is not None:
                await turn.save(native.state["response"])
            return b"".join(batch)
        out = b"".join([events.feed(chunk) for chunk in batch])
        if events.completed:
            await turn.save(events.response)
        return out

    await start_sse(send, record)
    last = b""
    try:
        await send({"type": "http.response.body", "body": await encode(first), "more_body": True})
        async for batch in batches:
            block = await encode(batch)
            if block:
                await send({"type": "http.response.body", "body": block, "more_body": True})
        if events is not None:
            last = events.finish()
            if events.completed:
                await turn.save(events.response)
    except GatewayError as exc:
        record.status, record.error = exc.status, exc.message
        last = _failure(exc, events, native, record)
    finally:
        await batches.aclose()
    record.responded = True
    await send({"type": "http.response.body", "body": last})


def _failure(error: GatewayError, events: ResponsesStream | None, native: NativeBody | None,
             record: CallRecord) -> bytes:
    """`response.failed` after a stream started: from the translator, or for a passed-through
    stream numbered after the provider's last event."""
    if events is not None:
        return events.fail(error)
    sequence = native.state.get("sequence", -1) + 1
    response = {"id": record.id, "object": "response", "created_at": int(record.created_at),
                "status": "failed", "model": record.model, "output": [],
                "error": {"code": error.code or "server_error", "message": error.message}}
    return sse_event("response.failed", {"type": "response.failed", "sequence_number": sequence,
                                         "response": response})
