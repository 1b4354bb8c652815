"""POST /v1/embeddings: OpenAI's embeddings API over every provider that has one (SPEC §9.3).

OpenAI-compatible providers get the body as it was sent (the model renamed), Gemini gets
`batchEmbedContents`, and `local/all-minilm-l6-v2` runs in this process (local_model.py),
in a worker thread so the event loop keeps serving other requests while it computes.
Whoever answers, the client gets OpenAI's list of embeddings, as floats or base64
(`encoding_format`), with usage and cost from the catalog's prices.
"""

from __future__ import annotations

import base64

from .. import local_model
from ..asgi import send_json
from ..errors import GatewayError
from ..providers.embeddings import from_base64, to_base64
from ..records import CallRecord
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
from .chat import candidate_infos, lunos_headers, overhead_ms, recorded

MAX_INPUTS = 2048  # OpenAI's limit per request
ENCODINGS = ("float", "base64")


def validate_embeddings(body) -> tuple[dict, ChatOptions]:
    """Check an embeddings body; return it with `input` as a list and without Lunos's
    fields, and the Lunos options (fallback models, observability)."""
    if not isinstance(body, dict):
        raise GatewayError(400, "The request body must be a JSON object", code="invalid_json")
    check_model_field(body)
    body["input"] = _inputs(body.get("input"))
    encoding = body.get("encoding_format")
    if encoding is not None and encoding not in ENCODINGS:
        raise _bad(f"'encoding_format' must be 'float' or 'base64', got {str(encoding)[:40]!r}",
                   "encoding_format")
    dimensions = body.get("dimensions")
    if dimensions is not None and (isinstance(dimensions, bool) or not isinstance(dimensions, int)
                                   or dimensions < 1):
        raise _bad(f"'dimensions' must be a positive integer, got {dimensions!r}"[:120], "dimensions")
    if body.get("user") is not None and not isinstance(body["user"], str):
        raise _bad(f"'user' must be a string, got {_kind(body['user'])}", "user", "invalid_type")
    options = ChatOptions()
    lunos_options(body, options)
    for name in LUNOS_FIELDS:
        body.pop(name, None)
    return body, options


def _inputs(value) -> list:
    """`input` as a list of strings or of token arrays (lists of integers)."""
    if value is None:
        raise _bad("'input' is required", "input", "missing_required_parameter")
    if isinstance(value, str):
        value = [value]
    elif isinstance(value, list) and value and all(isinstance(t, int) and not isinstance(t, bool)
                                                   for t in value):
        value = [value]  # one token array
    if not isinstance(value, list):
        raise _bad(f"'input' must be a string or an array of strings, got {_kind(value)}",
                   "input", "invalid_type")
    if not value:
        raise _bad("'input' must not be empty", "input")
    if len(value) > MAX_INPUTS:
        raise _bad(f"'input' holds {len(value)} items; at most {MAX_INPUTS} per request", "input")
    for i, item in enumerate(value):
        if isinstance(item, str):
            if not item:
                raise _bad(f"'input[{i}]' is an empty string: there is nothing to embed", f"input[{i}]")
        elif isinstance(item, list) and all(isinstance(t, int) and not isinstance(t, bool) for t in item):
            if not item:
                raise _bad(f"'input[{i}]' is an empty token array", f"input[{i}]")
        else:
            raise _bad(f"'input[{i}]' must be a string or an array of token ids, got {_kind(item)}",
                       f"input[{i}]", "invalid_type")
    return value


def _reservation(inputs: list) -> dict:
    """A body `limits` can bound (one token per byte of text, or per token id given)."""
    return {"messages": [{"content": item if isinstance(item, str) else " " * len(item)}
                         for item in inputs], "max_tokens": 1}


async def _embeddings(gw, request, raw: bytes, send, principal, record: CallRecord) -> None:
    body = parse_json(raw)
    if isinstance(body, dict):
        header_options(body, request.headers)
        if isinstance(body.get("model"), str):
            record.model = body["model"]
    body, options = validate_embeddings(body)
    if options.observability:
        record.trace = True
        record.request = raw
    principal.check_model(body["model"], options.models, gw.router.full_id)
    local = body["model"] == local_model.MODEL_ID
    infos = [gw.catalog.get(local_model.MODEL_ID)] if local else candidate_infos(gw, body, options)
    ticket = await gw.limits.admit(principal, _reservation(body["input"]), infos)
    try:
        if local:
            vectors = await _run_local(gw, body, record)
        else:
            vectors, _ = await gw.engine.embed(body, options, record)
    finally:
        await gw.limits.settle(ticket, record.tokens, record.cost)
    as_base64 = body.get("encoding_format") == "base64"
    data = [{"object": "embedding", "index": i, "embedding": _encoded(vector, as_base64)}
            for i, vector in enumerate(vectors)]
    prompt = record.tokens.prompt
    usage = {"prompt_tokens": prompt, "total_tokens": prompt}
    if record.cost is not None:
        usage["cost"] = record.cost
    if record.trace:
        record.response = {"content": f"{len(data)} embeddings", "finish_reason": None}
    record.responded = True
    await send_json(send, 200, {"object": "list", "data": data, "model": record.model,
                                "provider": record.provider, "usage": usage},
                    lunos_headers(record, overhead_ms(record)))


def _encoded(vector, as_base64: bool):
    if hasattr(vector, "tobytes"):  # the local model's float32 array
        return base64.b64encode(vector.astype("<f4").tobytes()).decode() if as_base64 else vector.tolist()
    if isinstance(vector, str):
        return vector if as_base64 else from_base64(vector)
    return to_base64(vector) if as_base64 else vector


async def _run_local(gw, body: dict, record: CallRecord) -> list:
    if not all(isinstance(item, str) for item in body["input"]):
        raise _bad(f"{local_model.MODEL_ID} takes text only: 'input' must be a string or an "
                   "array of strings, not token arrays", "input", "invalid_type")
    dimensions = body.get("dimensions")
    if dimensions is not None and dimensions != local_model.DIMENSIONS:
        raise _bad(f"{local_model.MODEL_ID} gives {local_model.DIMENSIONS}-dimensional vectors "
                   f"only; 'dimensions' cannot be {dimensions}", "dimensions")
    try:
        vectors, tokens = await local_model.embed_off_loop(gw.settings.local_model_dir, body["input"])
    except local_model.ModelMissing as exc:
        raise GatewayError(503, str(exc), param="model", code="local_model_missing") from None
    record.provider, record.status = "local", 200
    record.tokens.add(TokenCounts(prompt=tokens))
    record.cost = cost_of(record.tokens, gw.catalog.get(local_model.MODEL_ID))
    return vectors


create_embeddings = recorded("embeddings", _embeddings)
