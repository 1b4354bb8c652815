"""The gateway's OpenAPI 3.1 description, served at GET /openapi.json.

It documents the HTTP API of SPEC §3 for client generators and is what the fuzz tests
drive; the chat request schema mirrors `validation.py` (which stays the authority).
"""

from __future__ import annotations

from functools import lru_cache

from .params import ENDPOINTS

ERROR = {"$ref": "#/components/schemas/Error"}


def _errors(*statuses: int) -> dict:
    return {str(s): {"description": "error", "content": {"application/json": {"schema": ERROR}}}
            for s in statuses}


def _json(schema: dict, description: str = "OK") -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


TEXT_PART = {"type": "object", "required": ["type", "text"],
             "properties": {"type": {"const": "text"}, "text": {"type": "string"}}}
IMAGE_PART = {"type": "object", "required": ["type", "image_url"], "properties": {
    "type": {"const": "image_url"},
    "image_url": {"type": "object", "required": ["url"], "properties": {
        "url": {"type": "string"}, "detail": {"enum": ["auto", "low", "high"]}}}}}
TOOL_CALL = {"type": "object", "required": ["id", "type", "function"], "properties": {
    "id": {"type": "string"}, "type": {"const": "function"},
    "function": {"type": "object", "required": ["name", "arguments"], "properties": {
        "name": {"type": "string"}, "arguments": {"type": "string"}}}}}
MESSAGE = {"type": "object", "required": ["role"], "properties": {
    "role": {"enum": ["system", "developer", "user", "assistant", "tool"]},
    "content": {"anyOf": [{"type": "string"}, {"type": "null"},
                          {"type": "array", "items": {"anyOf": [TEXT_PART, IMAGE_PART]}}]},
    "name": {"type": "string"},
    "tool_calls": {"type": "array", "items": TOOL_CALL},
    "tool_call_id": {"type": "string"}}}
FUNCTION_TOOL = {"type": "object", "required": ["type", "function"], "properties": {
    "type": {"const": "function"},
    "function": {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string"}, "description": {"type": "string"},
        "parameters": {"type": "object"}, "strict": {"type": "boolean"}}}}}
SEARCH_TOOL = {"type": "object", "required": ["type"], "properties": {
    "type": {"const": "web_search"},
    "parameters": {"type": "object", "properties": {
        "max_results": {"type": "integer", "minimum": 1, "maximum": 20},
        "search_context_size": {"enum": ["low", "medium", "high"]},
        "allowed_domains": {"type": "array", "items": {"type": "string"}},
        "excluded_domains": {"type": "array", "items": {"type": "string"}},
        "engine": {"enum": ["auto", "searxng", "tavily", "brave", "exa", "native"]}}}}}
CHAT_REQUEST = {
    "type": "object",
    "required": ["model", "messages"],
    "properties": {
        "model": {"type": "string", "examples": ["openai/gpt-4o", "anthropic/claude-sonnet-4-5"]},
        "messages": {"type": "array", "items": MESSAGE, "minItems": 1},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
        "top_p": {"type": "number", "minimum": 0, "maximum": 1},
        "max_tokens": {"type": "integer", "minimum": 1},
        "max_completion_tokens": {"type": "integer", "minimum": 1},
        "stop": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "maxItems": 4}]},
        "frequency_penalty": {"type": "number", "minimum": -2, "maximum": 2},
        "presence_penalty": {"type": "number", "minimum": -2, "maximum": 2},
        "seed": {"type": "integer"},
        "n": {"type": "integer", "minimum": 1, "maximum": 128},
        "user": {"type": "string"},
        "tools": {"type": "array", "items": {"anyOf": [FUNCTION_TOOL, SEARCH_TOOL]}},
        "tool_choice": {"anyOf": [{"enum": ["none", "auto", "required"]}, {
            "type": "object", "required": ["type", "function"], "properties": {
                "type": {"const": "function"},
                "function": {"type": "object", "required": ["name"],
                             "properties": {"name": {"type": "string"}}}}}]},
        "parallel_tool_calls": {"type": "boolean"},
        "response_format": {"type": "object", "required": ["type"], "properties": {
            "type": {"enum": ["text", "json_object", "json_schema"]},
            "json_schema": {"type": "object", "properties": {
                "name": {"type": "string"}, "schema": {"type": "object"}, "strict": {"type": "boolean"}}}}},
        "stream": {"type": "boolean"},
        "stream_options": {"type": "object", "properties": {"include_usage": {"type": "boolean"}}},
        "reasoning_effort": {"enum": ["none", "minimal", "low", "medium", "high", "xhigh"]},
        "observability": {"type": "boolean", "description": "Lunos: keep the full trace"},
        "models": {"type": "array", "items": {"type": "string"}, "maxItems": 10,
                   "description": "Lunos: fallback models, in order"},
        "fallback_model": {"type": "string", "description": "Lunos: one fallback model"},
        "drop_params": {"type": "boolean", "description": "Lunos: drop unsupported parameters"},
        "cache": {"description": "Lunos: the response cache (docs/cache.md)", "anyOf": [
            {"type": "boolean"},
            {"type": "object", "additionalProperties": False, "properties": {
                "ttl": {"type": "number", "minimum": 1}, "semantic": {"type": "number", "minimum": 0,
                                                                     "maximum": 1}}}]},
    },
}


# The Messages door (SPEC §9.1): Anthropic's body, enough of it for client generators and fuzzing.
BLOCK = {"type": "object", "required": ["type"], "properties": {
    "type": {"enum": ["text", "image", "tool_use", "tool_result", "thinking", "document"]},
    "text": {"type": "string"}, "id": {"type": "string"}, "name": {"type": "string"},
    "input": {"type": "object"}, "tool_use_id": {"type": "string"},
    "content": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}]},
    "thinking": {"type": "string"}, "signature": {"type": "string"},
    "source": {"type": "object", "properties": {
        "type": {"enum": ["base64", "url"]}, "media_type": {"type": "string"},
        "data": {"type": "string"}, "url": {"type": "string"}}},
    "cache_control": {"type": "object"}}}
MESSAGES_REQUEST = {
    "type": "object",
    "required": ["model", "max_tokens", "messages"],
    "properties": {
        "model": {"type": "string", "minLength": 1, "examples": ["anthropic/claude-sonnet-4-5"]},
        "max_tokens": {"type": "integer", "minimum": 1},
        "messages": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["role", "content"], "properties": {
                "role": {"enum": ["user", "assistant"]},
                "content": {"anyOf": [{"type": "string"}, {"type": "array", "items": BLOCK}]}}}},
        "system": {"anyOf": [{"type": "string"}, {"type": "array", "items": BLOCK}]},
        "stop_sequences": {"type": "array", "items": {"type": "string"}},
        "temperature": {"type": "number", "minimum": 0, "maximum": 1},
        "top_p": {"type": "number", "minimum": 0, "maximum": 1},
        "top_k": {"type": "integer", "minimum": 0},
        "stream": {"type": "boolean"},
        "metadata": {"type": "object", "properties": {"user_id": {"type": "string"}}},
        "tools": {"type": "array", "items": {"type": "object", "properties": {
            "name": {"type": "string"}, "description": {"type": "string"},
            "input_schema": {"type": "object"}, "type": {"type": "string"}}}},
        "tool_choice": {"type": "object", "required": ["type"], "properties": {
            "type": {"enum": ["auto", "any", "tool", "none"]}, "name": {"type": "string"},
            "disable_parallel_tool_use": {"type": "boolean"}}},
        "thinking": {"type": "object", "required": ["type"], "properties": {
            "type": {"enum": ["enabled", "disabled", "adaptive"]},
            "budget_tokens": {"type": "integer", "minimum": 1024}}},
        **{k: v for k, v in CHAT_REQUEST["properties"].items()
           if k in ("observability", "models", "fallback_model", "drop_params", "cache")},
    },
}
ANTHROPIC_ERROR = {"type": "object", "required": ["type", "error"], "properties": {
    "type": {"const": "error"}, "error": {"type": "object", "required": ["type", "message"], "properties": {
        "type": {"type": "string"}, "message": {"type": "string"}}}}}


def _anthropic_errors(*statuses: int) -> dict:
    return {str(s): _json(ANTHROPIC_ERROR, "error") for s in statuses}


def _messages_paths(key: list) -> dict:
    headers = [{"name": n, "in": "header", "required": False, "schema": {"type": "string"}}
               for n in ("anthropic-version", "anthropic-beta", "X-App-ID")]
    body = {"required": True, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/MessagesRequest"}}}}
    return {
        "/v1/messages": {"post": {
            "operationId": "createMessage", "security": key, "parameters": headers,
            "requestBody": body,
            "responses": {"200": {"description": "message, or text/event-stream of Messages events"},
                          **_anthropic_errors(400, 401, 403, 404, 413, 429, 502, 503, 504, 529)}}},
        "/v1/messages/count_tokens": {"post": {
            "operationId": "countMessageTokens", "security": key, "parameters": headers,
            "requestBody": body,
            "responses": {"200": _json({"type": "object", "required": ["input_tokens"],
                                        "properties": {"input_tokens": {"type": "integer"}}}),
                          **_anthropic_errors(400, 401, 403, 404, 502)}}},
    }


def _stored_responses_paths(key: list) -> dict:
    """The stored Responses-API responses (SPEC §9.2)."""
    response_id = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
    include = {"name": "include", "in": "query", "required": False,
               "schema": {"type": "array", "items": {"type": "string"}}}
    create = {"type": "object", "required": ["model"], "properties": {
        "model": {"type": "string", "minLength": 1}, "instructions": {"type": "string"},
        "input": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}]},
        "tools": {"type": "array", "items": {"type": "object"}},
        "max_output_tokens": {"type": "integer", "minimum": 16},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
        "top_p": {"type": "number", "minimum": 0, "maximum": 1},
        "store": {"type": "boolean"}, "stream": {"type": "boolean"},
        "previous_response_id": {"type": "string"}, "text": {"type": "object"},
        "reasoning": {"type": "object"}, "metadata": {"type": "object"}}}
    return {
        "/v1/responses": {"post": {
            "operationId": "createResponse", "security": key,
            "requestBody": {"required": True, "content": {"application/json": {"schema": create}}},
            "responses": {"200": {"description": "response, or text/event-stream of typed events"},
                          **_errors(400, 401, 403, 404, 413, 429, 502, 503, 504)}}},
        "/v1/responses/{id}": {
            "get": {"operationId": "getResponse", "security": key, "parameters": [
                        response_id, include,
                        {"name": "stream", "in": "query", "required": False,
                         "schema": {"type": "boolean", "const": False}}],
                    "responses": {"200": _json({"type": "object"}), **_errors(400, 401, 404, 503)}},
            "delete": {"operationId": "deleteResponse", "security": key, "parameters": [response_id],
                       "responses": {"200": _json({"type": "object", "properties": {
                           "id": {"type": "string"}, "object": {"const": "response.deleted"},
                           "deleted": {"type": "boolean"}}}), **_errors(401, 404, 503)}},
        },
        "/v1/responses/{id}/input_items": {"get": {
            "operationId": "listResponseInputItems", "security": key, "parameters": [
                response_id, include,
                {"name": "limit", "in": "query", "required": False,
                 "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
                {"name": "order", "in": "query", "required": False,
                 "schema": {"enum": ["asc", "desc"]}},
                {"name": "after", "in": "query", "required": False, "schema": {"type": "string"}}],
            "responses": {"200": _json({"type": "object", "required": ["object", "data", "has_more"],
                                        "properties": {
                                            "object": {"const": "list"},
                                            "data": {"type": "array", "items": {"type": "object"}},
                                            "first_id": {"type": ["string", "null"]},
                                            "last_id": {"type": ["string", "null"]},
                                            "has_more": {"type": "boolean"}}}),
                          **_errors(400, 401, 404, 503)}}},
    }


LUNOS_FIELDS = {k: v for k, v in CHAT_REQUEST["properties"].items()
                if k in ("observability", "models", "fallback_model")}


def _post(operation: str, key: list, schema: dict, ok: str | dict,
          content_type: str = "application/json") -> dict:
    """A POST operation of the OpenAI-shaped routes: its body, its answer, the usual errors."""
    return {"post": {
        "operationId": operation, "security": key,
        "requestBody": {"required": True, "content": {content_type: {"schema": schema}}},
        "responses": {"200": _json(ok) if isinstance(ok, dict) else {"description": ok},
                      **_errors(400, 401, 403, 404, 413, 429, 502, 503, 504)}}}


def _more_paths(key: list) -> dict:
    """Embeddings, the media routes (docs/modalities.md) and replay (SPEC §12)."""
    text = {"type": "string", "minLength": 1}
    return {
        "/v1/embeddings": _post("createEmbedding", key, {
            "type": "object", "required": ["model", "input"], "properties": {
                "model": text,
                "input": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"anyOf": [
                    {"type": "string"}, {"type": "array", "items": {"type": "integer"}}]}}]},
                "encoding_format": {"enum": ["float", "base64"]},
                "dimensions": {"type": "integer", "minimum": 1}, "user": {"type": "string"},
                **LUNOS_FIELDS}}, {"type": "object"}),
        "/v1/completions": _post("createCompletion", key, {
            "type": "object", "required": ["model", "prompt"], "properties": {
                "model": text,
                "prompt": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
                "max_tokens": {"type": "integer", "minimum": 0}, "n": {"type": "integer", "minimum": 1},
                "temperature": {"type": "number", "minimum": 0, "maximum": 2},
                "top_p": {"type": "number", "minimum": 0, "maximum": 1}, "stream": {"type": "boolean"},
                **LUNOS_FIELDS}}, "text_completion, or text/event-stream"),
        "/v1/images/generations": _post("createImage", key, {
            "type": "object", "required": ["model", "prompt"], "properties": {
                "model": text, "prompt": text, "n": {"type": "integer", "minimum": 1, "maximum": 10},
                "size": {"type": "string"}, "response_format": {"enum": ["url", "b64_json"]},
                "quality": {"type": "string"}, "style": {"type": "string"},
                "background": {"type": "string"}, "output_format": {"type": "string"},
                "user": {"type": "string"}, **LUNOS_FIELDS}}, {"type": "object"}),
        "/v1/audio/speech": _post("createSpeech", key, {
            "type": "object", "required": ["model", "input", "voice"], "properties": {
                "model": text, "input": text, "voice": text, "instructions": {"type": "string"},
                "response_format": {"enum": ["mp3", "opus", "aac", "flac", "wav", "pcm"]},
                "speed": {"type": "number", "minimum": 0.25, "maximum": 4}, **LUNOS_FIELDS}},
            "the audio, as it arrives"),
        "/v1/audio/transcriptions": _post("createTranscription", key, {
            "type": "object", "required": ["model", "file"], "properties": {
                "model": text, "file": {"type": "string", "format": "binary"},
                "language": {"type": "string"}, "prompt": {"type": "string"},
                "response_format": {"enum": ["json", "text", "srt", "verbose_json", "vtt"]},
                "temperature": {"type": "number", "minimum": 0, "maximum": 1},
                "stream": {"type": "boolean"}}},
            "the transcript (JSON, text, or text/event-stream of transcript events)",
            "multipart/form-data"),
        "/v1/logs/{id}/replay": {"post": {
            "operationId": "replayLog", "security": key,
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["models"], "properties": {
                    "models": {"type": "array", "items": text, "minItems": 1},
                    "overrides": {"type": "object"}}}}}},
            "responses": {"200": _json({"type": "object"}), **_errors(400, 401, 404, 503)}}},
    }


@lru_cache(maxsize=1)
def document() -> dict:
    key = [{"bearer": []}]
    log_params = [
        {"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
        for n in ("model", "app_id", "status", "since", "until", "cursor", "key_id")
    ] + [{"name": "limit", "in": "query", "required": False,
          "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
         {"name": "endpoint", "in": "query", "required": False,
          "schema": {"type": "string", "enum": list(ENDPOINTS)}}]
    return {
        "openapi": "3.1.0",
        "info": {"title": "Lunos gateway", "version": "1",
                 "description": "OpenAI Chat Completions, Responses, embeddings, images, audio and Anthropic Messages to every provider (see SPEC.md)."},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                    "type": "object", "required": ["message", "type"],
                    "properties": {"message": {"type": "string"}, "type": {"type": "string"},
                                   "param": {"type": ["string", "null"]},
                                   "code": {"type": ["string", "null"]}}}}},
                "ChatRequest": CHAT_REQUEST,
                "MessagesRequest": MESSAGES_REQUEST,
            },
        },
        "paths": {
            "/v1/chat/completions": {"post": {
                "operationId": "createChatCompletion", "security": key,
                "parameters": [{"name": "X-App-ID", "in": "header", "required": False,
                                "schema": {"type": "string"}}],
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/ChatRequest"}}}},
                "responses": {"200": {"description": "chat.completion, or text/event-stream"},
                              **_errors(400, 401, 403, 404, 413, 429, 502, 503, 504)}}},
            "/v1/models": {"get": {"operationId": "listModels", "responses": {
                "200": _json({"type": "object"})}}},
            "/v1/models/{id}": {"get": {
                "operationId": "getModel",
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": _json({"type": "object"}), **_errors(404)}}},
            "/v1/logs": {"get": {"operationId": "listLogs", "security": key, "parameters": log_params,
                                 "responses": {"200": _json({"type": "object"}), **_errors(400, 401, 503)}}},
            "/v1/logs/{id}": {"get": {
                "operationId": "getLog", "security": key,
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": _json({"type": "object"}), **_errors(401, 404, 503)}}},
            "/v1/usage": {"get": {
                "operationId": "getUsage", "security": key,
                "parameters": [{"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
                               for n in ("since", "until", "group_by", "model", "app_id", "key_id")],
                "responses": {"200": _json({"type": "object"}), **_errors(400, 401, 503)}}},
            "/admin/keys": {
                "post": {"operationId": "createKey", "security": key,
                         "requestBody": {"required": True, "content": {"application/json": {"schema": {
                             "type": "object", "required": ["name"], "properties": {
                                 "name": {"type": "string"}, "budget_usd": {"type": "number", "minimum": 0},
                                 "rpm": {"type": "integer", "minimum": 0},
                                 "tpm": {"type": "integer", "minimum": 0},
                                 "allowed_models": {"type": "array", "items": {"type": "string"}},
                                 "expires_at": {"type": "string"}}}}}},
                         "responses": {"201": _json({"type": "object"}), **_errors(400, 401, 403, 503)}},
                "get": {"operationId": "listKeys", "security": key,
                        "responses": {"200": _json({"type": "object"}), **_errors(401, 403, 503)}},
            },
            "/admin/keys/{id}": {"delete": {
                "operationId": "revokeKey", "security": key,
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": _json({"type": "object"}), **_errors(401, 403, 404, 503)}}},
            "/admin/cache": {"delete": {
                "operationId": "clearCache", "security": key,
                "responses": {"200": _json({"type": "object"}), **_errors(401, 403, 503)}}},
            "/healthz": {"get": {"operationId": "health", "responses": {"200": _json({"type": "object"})}}},
            "/readyz": {"get": {"operationId": "ready", "responses": {"200": _json({"type": "object"}),
                                                                      **_errors(503)}}},
            "/metrics": {"get": {"operationId": "metrics", "responses": {"200": {"description": "Prometheus"}}}},
            **_messages_paths(key),
            **_stored_responses_paths(key),
            **_more_paths(key),
        },
    }
