"""Replay: a traced request run again on other models (SPEC §12), for
`POST /v1/logs/{id}/replay` and the dashboard's Detail page.

Each run is an ordinary non-streamed chat completion through the one engine, on the
caller's key, limits and budget, with a history row of its own whose `replay_of` names the
original. The original's messages and parameters are taken from its trace (any door's
trace reads back as messages and params, `traces.public_request`), `overrides` laid over
them, Lunos's own fields (fallbacks, the cache) left out, and `observability` on unless
the overrides say otherwise, so the runs can be compared on Detail.
"""

from __future__ import annotations

import asyncio

import orjson

from .admission import admit_chat
from .asgi import new_request_id
from .errors import GatewayError
from .records import CallRecord
from .usage import completion_output

MAX_MODELS = 8
NOT_OVERRIDABLE = ("model", "models", "fallback_model", "stream", "stream_options", "messages")


def replay_request(body) -> tuple[list[str], dict]:
    """The replay body's models and overrides, or a 400 naming the bad one."""
    if not isinstance(body, dict):
        raise GatewayError(400, "The request body must be a JSON object", code="invalid_json")
    models = body.get("models")
    if (not isinstance(models, list) or not 1 <= len(models) <= MAX_MODELS
            or not all(isinstance(m, str) and m.strip() for m in models)):
        raise GatewayError(400, f"'models' must be a list of 1 to {MAX_MODELS} model ids",
                           param="models")
    overrides = body.get("overrides") or {}
    if not isinstance(overrides, dict):
        raise GatewayError(400, "'overrides' must be an object of chat parameters", param="overrides")
    for name in NOT_OVERRIDABLE:
        if name in overrides:
            raise GatewayError(400, f"'overrides' may not set {name!r}", param=f"overrides.{name}")
    return models, overrides


def chat_body(original: dict, model: str, overrides: dict) -> dict:
    """The original request as a chat body for `model`."""
    trace = original.get("request")
    if not isinstance(trace, dict) or not isinstance(trace.get("messages"), list):
        raise GatewayError(400, "Only a traced request (observability: true) can be replayed",
                           param="id", code="log_not_traced")
    return {**trace.get("params", {}), "observability": True, **overrides, "model": model,
            "messages": trace["messages"], "stream": False}


async def run_one(gw, principal, body: dict, record: CallRecord) -> dict:
    """One run: the completion, or its error in the API's shape (the other runs go on)."""
    raw = orjson.dumps(body)
    try:
        body, options, runner, ticket = await admit_chat(gw, raw, orjson.loads(raw), principal, record)
        try:
            completion = await runner.complete(body, options, record)
        finally:
            await gw.limits.settle(ticket, record.tokens, record.cost)
        if record.trace:
            record.response = completion_output(completion)
        record.status = record.status or 200
        return completion
    except GatewayError as exc:
        record.status, record.error = exc.status, exc.message
        return {"id": record.id, "object": "error", "model": body["model"], **exc.to_dict()}
    finally:
        record.finish()
        gw.history.put(record)
        gw.metrics.observe(record)


async def replay(gw, principal, original: dict, models: list[str], overrides: dict,
                 app_id: str | None = None) -> list[dict]:
    """Run `original` (a row as GET /v1/logs/{id} shows it) on each model at once; the
    completions (or errors) in the order of `models`."""
    runs = []
    for model in models:
        body = chat_body(original, model, overrides)
        record = CallRecord(new_request_id("chatcmpl"), principal.key_id,
                            app_id or original["app_id"], model, replay_of=original["id"])
        runs.append(run_one(gw, principal, body, record))
    return list(await asyncio.gather(*runs))
