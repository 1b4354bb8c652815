"""Stand-ins for the providers' embeddings APIs: OpenAI's `POST /v1/embeddings` and Gemini's
`POST /v1beta/models/{model}:batchEmbedContents`, strict about what those APIs refuse.

Vectors are made from a hash of the text, so the same text always gets the same vector and
different texts different ones. OpenAI's are unit length, shortened to `dimensions` and
normalised again, as OpenAI does; Gemini's full 3072-dimensional vectors are unit length and
its shortened ones (`outputDimensionality`) are not, as Gemini documents.
(Wire shapes from OpenAI's API reference and Gemini's `batchEmbedContents` reference.)
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import struct

from tests.standins.harness import Recorded, Reject, StandInApp, send_json

OPENAI_MODELS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072,
                 "text-embedding-ada-002": 1536}
GEMINI_MODELS = {"gemini-embedding-001": 3072}
GEMINI_ROUTE = re.compile(r"/v1beta/models/([^/:]+):batchEmbedContents")
GEMINI_MAX_BATCH = 100


def raw_vector(text: str, size: int) -> list[float]:
    """A deterministic vector for `text` (not normalised)."""
    out: list[float] = []
    counter = 0
    while len(out) < size:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        out.extend((b - 127.5) / 127.5 for b in digest)
        counter += 1
    return out[:size]


def unit(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector]


def _openai_error(message: str, param: str | None = None, code: str | None = None) -> dict:
    return {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}


class OpenAIEmbeddingsStandIn(StandInApp):
    def __init__(self, api_key: str = "sk-openai-test") -> None:
        super().__init__()
        self.api_key = api_key

    async def handle(self, rec: Recorded, send) -> None:
        if rec.path != "/v1/embeddings" or rec.method != "POST":
            raise Reject(404, _openai_error(f"Unknown request URL: {rec.method} {rec.path}",
                                            code="unknown_url"))
        if rec.headers.get("authorization") != f"Bearer {self.api_key}":
            raise Reject(401, _openai_error("Incorrect API key provided.", code="invalid_api_key"))
        body = rec.json
        if not isinstance(body, dict):
            raise Reject(400, _openai_error("We could not parse the JSON body of your request."))
        unknown = set(body) - {"model", "input", "encoding_format", "dimensions", "user"}
        if unknown:
            raise Reject(400, _openai_error(f"Unrecognized request argument supplied: {sorted(unknown)[0]}"))
        size = OPENAI_MODELS.get(body.get("model"))
        if size is None:
            raise Reject(404, _openai_error(f"The model `{body.get('model')}` does not exist",
                                            code="model_not_found"))
        inputs = body.get("input")
        if isinstance(inputs, str) or (isinstance(inputs, list) and inputs and isinstance(inputs[0], int)):
            inputs = [inputs]
        if not isinstance(inputs, list) or not inputs or any(item in ("", []) for item in inputs):
            raise Reject(400, _openai_error("'$.input' is invalid.", "input"))
        dimensions = body.get("dimensions")
        if dimensions is not None:
            if body["model"] == "text-embedding-ada-002":
                raise Reject(400, _openai_error("This model does not support specifying dimensions.",
                                                "dimensions"))
            if not isinstance(dimensions, int) or not 1 <= dimensions <= size:
                raise Reject(400, _openai_error("Invalid 'dimensions'.", "dimensions"))
            size = dimensions
        encoding = body.get("encoding_format", "float")
        if encoding not in ("float", "base64"):
            raise Reject(400, _openai_error("Invalid 'encoding_format'.", "encoding_format"))
        data = []
        tokens = 0
        for i, item in enumerate(inputs):
            text = item if isinstance(item, str) else " ".join(map(str, item))
            tokens += len(item) if isinstance(item, list) else len(text.split())
            vector = unit(raw_vector(text, OPENAI_MODELS[body["model"]])[:size])
            if encoding == "base64":
                vector = base64.b64encode(struct.pack(f"<{size}f", *vector)).decode()
            data.append({"object": "embedding", "index": i, "embedding": vector})
        await send_json(send, 200, {"object": "list", "data": data, "model": body["model"],
                                    "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})


def _gemini_bad(message: str) -> Reject:
    return Reject(400, {"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}})


class GeminiEmbeddingsStandIn(StandInApp):
    def __init__(self, api_key: str = "gm-test") -> None:
        super().__init__()
        self.api_key = api_key

    async def handle(self, rec: Recorded, send) -> None:
        route = GEMINI_ROUTE.fullmatch(rec.path)
        if rec.method != "POST" or route is None:
            raise Reject(404, {"error": {"code": 404, "message": f"Method not found: {rec.path}",
                                         "status": "NOT_FOUND"}})
        if rec.headers.get("x-goog-api-key") != self.api_key or "key=" in rec.query:
            raise _gemini_bad("API key not valid. Please pass a valid API key.")
        model = route.group(1)
        size = GEMINI_MODELS.get(model)
        if size is None:
            raise Reject(404, {"error": {"code": 404, "message": f"models/{model} is not found",
                                         "status": "NOT_FOUND"}})
        body = rec.json
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            raise _gemini_bad("* BatchEmbedContentsRequest.requests: contents is not specified")
        if len(requests) > GEMINI_MAX_BATCH:
            raise _gemini_bad(f"* BatchEmbedContentsRequest.requests: at most {GEMINI_MAX_BATCH} "
                              "requests can be in one batch")
        embeddings = []
        for i, one in enumerate(requests):
            unknown = set(one) - {"model", "content", "outputDimensionality", "taskType", "title"}
            if unknown:
                raise _gemini_bad(f'Invalid JSON payload received. Unknown name "{sorted(unknown)[0]}" '
                                  f"at 'requests[{i}]': Cannot find field.")
            if one.get("model") != f"models/{model}":
                raise _gemini_bad(f"* BatchEmbedContentsRequest.requests[{i}].model: Model names "
                                  "should match the parent model name.")
            parts = (one.get("content") or {}).get("parts") or []
            text = "".join(part.get("text", "") for part in parts)
            if not text:
                raise _gemini_bad(f"* BatchEmbedContentsRequest.requests[{i}].content: contents is "
                                  "not specified")
            dimensions = one.get("outputDimensionality", size)
            if not isinstance(dimensions, int) or not 1 <= dimensions <= size:
                raise _gemini_bad(f"* requests[{i}].outputDimensionality: must be between 1 and {size}")
            full = unit(raw_vector(text, size))
            embeddings.append({"values": full[:dimensions]})  # shortened: no longer unit length
        await send_json(send, 200, {"embeddings": embeddings})
