"""Stand-in for the Gemini API (`POST /v1beta/models/{model}:generateContent` and
`:streamGenerateContent?alt=sse`), strict.

Authentication: the `x-goog-api-key` header. No key -> 403 PERMISSION_DENIED; a wrong key ->
400 INVALID_ARGUMENT with reason API_KEY_INVALID, as the real API answers. A `key=` query
parameter, which the real API accepts, is refused here (400), so a test passing through this
stand-in proves the key never travelled in a URL. Streaming without `alt=sse` (the real API
then streams one JSON array) is refused too.

Rejected as the real API does, in its words where they are known:
- unknown fields at every level checked ("Invalid JSON payload received. Unknown name ...
  Cannot find field."): request, contents, parts, blobs, function calls and responses, tools,
  function declarations, the classic `Schema` of `parameters`/`responseSchema` (so JSON Schema
  keywords it lacks, like additionalProperties, $ref or const, are refused there),
  toolConfig, generationConfig, thinkingConfig; values of the wrong type or enum;
- empty `contents`, roles other than user/model, content without parts, empty text parts,
  a part with no data or two, bad base64;
- function turns out of order: a function call turn not after a user turn, a function
  response turn not right after a function call turn, response count != call count;
- invalid function names, `parameters` together with `parametersJsonSchema`, a JSON Schema
  that does not describe an object, classic object schemas without properties;
- `allowedFunctionNames` outside mode ANY or naming undeclared functions, a function
  calling config without function declarations;
- `responseJsonSchema` without `responseMimeType: application/json` or beside
  `responseSchema`, a `$ref` with non-`$` siblings in it;
- out-of-range temperature/topP/candidateCount (1..8)/maxOutputTokens/stopSequences (<= 5);
- thinking: level and budget together, a level on a model that is not Gemini 3 or 4, MINIMAL
  or MEDIUM on Pro models, XHIGH before Gemini 4, budgets outside the 2.5 model's range
  (Pro cannot turn it off), any thinking config on a model that does not think;
- for gemini-3* models, a step of the current turn whose first function call lacks its
  `thoughtSignature`; and, on any model, a signature this stand-in did not issue for that
  call ("Corrupted thought signature."), except Google's documented placeholders.

`:countTokens` takes `contents` or a whole `generateContentRequest` (with its `model`),
checked as generateContent checks them, and answers `{"totalTokens": N}` with N the
`promptTokenCount` generateContent would report for the same prompt.

Answers come from `fake_model`. For gemini-3* models function-call parts carry a signature
(the first call of a response only, as the real API does: base64 of an HMAC of the call) and
a text answer ends with a signature (on the text part; in a stream, on a last empty text
part next to the finishReason). gemini-2.5*/3* models report `thoughtsTokenCount`.
With the `googleSearch` tool, a user text asking for a search is answered grounded: its last
sentence cites `fake_model.NATIVE_SOURCE` through `groundingMetadata` (UTF-8 byte offsets;
in a stream, with the last event).
`includeThoughts` adds a thought part. A user text containing `[[block]]` gets its prompt
blocked (`promptFeedback.blockReason`, no candidates); `[[unsafe]]` gets a candidate stopped
with finishReason SAFETY.

Structured outputs: `responseMimeType` takes the mime types Gemini knows; Gemini 2.x and
older refuse `application/json` next to function declarations, as the real API does. The
answer to a `responseJsonSchema` follows only the keywords Gemini implements (`const`,
`allOf` and the rest are ignored, as Gemini ignores them), so a schema that relies on them
gets an answer that may not match. The `[[bad-json]]` / `[[off-schema]]` markers and the
instruction a model follows are described in structured.py.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
from urllib.parse import parse_qs

import orjson

from .fake_model import (
    NATIVE_SOURCE,
    Conversation,
    Image,
    Turn,
    count_words,
    native_search,
    respond,
)
from .harness import Recorded, Reject, StandInApp, send_json, send_sse
from .structured import instructed, resolved, shape

PLACEHOLDER_SIGNATURES = frozenset({"skip_thought_signature_validator",
                                    "context_engineering_is_the_way_to_go"})
ROUTE = re.compile(r"/v1beta/models/([^/:]+):(generateContent|streamGenerateContent|countTokens)")
FUNCTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:\-]{0,63}")
SIGNATURE_DOCS = "Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details."

# -- the request messages this stand-in knows (v1beta, camelCase; snake_case also accepted) --
# Field kinds: a scalar name below, M(message), L(repeated kind), E(enum), ("map", kind).

STR, FLOAT, INT, BOOL, BYTES, STRUCT, VALUE = "string", "float", "int", "bool", "bytes", "struct", "value"


def M(name):
    return ("msg", name)


def L(inner):
    return ("list", inner)


def E(name, *values):
    return ("enum", name, values)


SCHEMA_TYPE = E("Type", "TYPE_UNSPECIFIED", "STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY",
                "OBJECT", "NULL")
MESSAGES: dict[str, dict] = {
    "GenerateContentRequest": {
        "model": STR, "contents": L(M("Content")), "systemInstruction": M("Content"),
        "tools": L(M("Tool")), "toolConfig": M("ToolConfig"),
        "safetySettings": L(M("SafetySetting")), "generationConfig": M("GenerationConfig"),
        "cachedContent": STR,
    },
    "CountTokensRequest": {"contents": L(M("Content")), "generateContentRequest": M("GenerateContentRequest")},
    "Content": {"role": STR, "parts": L(M("Part"))},
    "Part": {
        "text": STR, "inlineData": M("Blob"), "functionCall": M("FunctionCall"),
        "functionResponse": M("FunctionResponse"), "fileData": M("FileData"),
        "executableCode": STRUCT, "codeExecutionResult": STRUCT, "thought": BOOL,
        "thoughtSignature": BYTES, "videoMetadata": STRUCT, "partMetadata": STRUCT,
    },
    "Blob": {"mimeType": STR, "data": BYTES},
    "FileData": {"mimeType": STR, "fileUri": STR},
    "FunctionCall": {"id": STR, "name": STR, "args": STRUCT},
    "FunctionResponse": {"id": STR, "name": STR, "response": STRUCT, "willContinue": BOOL,
                         "scheduling": STR},
    "Tool": {"functionDeclarations": L(M("FunctionDeclaration")), "googleSearch": STRUCT,
             "googleSearchRetrieval": STRUCT, "codeExecution": STRUCT, "urlContext": STRUCT},
    "FunctionDeclaration": {
        "name": STR, "description": STR, "parameters": M("Schema"), "parametersJsonSchema": VALUE,
        "response": M("Schema"), "responseJsonSchema": VALUE,
        "behavior": E("Behavior", "UNSPECIFIED", "BLOCKING", "NON_BLOCKING"),
    },
    "Schema": {
        "type": SCHEMA_TYPE, "format": STR, "title": STR, "description": STR, "nullable": BOOL,
        "enum": L(STR), "maxItems": INT, "minItems": INT, "properties": ("map", M("Schema")),
        "required": L(STR), "minProperties": INT, "maxProperties": INT, "minLength": INT,
        "maxLength": INT, "pattern": STR, "example": VALUE, "anyOf": L(M("Schema")),
        "propertyOrdering": L(STR), "default": VALUE, "items": M("Schema"), "minimum": FLOAT,
        "maximum": FLOAT,
    },
    "ToolConfig": {"functionCallingConfig": M("FunctionCallingConfig"), "retrievalConfig": STRUCT},
    "FunctionCallingConfig": {
        "mode": E("FunctionCallingConfig.Mode", "MODE_UNSPECIFIED", "AUTO", "ANY", "NONE",
                  "VALIDATED"),
        "allowedFunctionNames": L(STR),
    },
    "SafetySetting": {"category": STR, "threshold": STR},
    "GenerationConfig": {
        "stopSequences": L(STR), "responseMimeType": STR, "responseSchema": M("Schema"),
        "responseJsonSchema": VALUE, "responseModalities": L(STR), "candidateCount": INT,
        "maxOutputTokens": INT, "temperature": FLOAT, "topP": FLOAT, "topK": INT, "seed": INT,
        "presencePenalty": FLOAT, "frequencyPenalty": FLOAT, "responseLogprobs": BOOL, "logprobs": INT,
        "enableEnhancedCivicAnswers": BOOL, "speechConfig": STRUCT,
        "thinkingConfig": M("ThinkingConfig"), "mediaResolution": STR,
        "imageConfig": M("ImageConfig"),
    },
    "ImageConfig": {"aspectRatio": STR, "imageSize": STR},
    "ThinkingConfig": {
        "includeThoughts": BOOL, "thinkingBudget": INT,
        "thinkingLevel": E("ThinkingConfig.ThinkingLevel", "THINKING_LEVEL_UNSPECIFIED",
                           "MINIMAL", "LOW", "MEDIUM", "HIGH", "XHIGH"),
    },
}
PART_DATA = ("text", "inlineData", "functionCall", "functionResponse", "fileData",
             "executableCode", "codeExecutionResult")
_SCALAR_NAMES = {STR: "TYPE_STRING", FLOAT: "TYPE_FLOAT", INT: "TYPE_INT32", BOOL: "TYPE_BOOL",
                 BYTES: "TYPE_BYTES"}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(w[:1].upper() + w[1:] for w in rest)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def check_fields(value, message: str, path: str, errors: list[str]) -> None:
    """Collect proto-JSON parsing errors of `value` as a `message`, in the API's words."""
    if not isinstance(value, dict):
        errors.append(f"Invalid value at '{path}' (type.googleapis.com/google.ai."
                      f"generativelanguage.v1beta.{message}), {json.dumps(value)}")
        return
    fields = MESSAGES[message]
    for key, item in value.items():
        name = _camel(key)
        if name not in fields:
            where = f" at '{path}'" if path else ""
            errors.append(f"Invalid JSON payload received. Unknown name {json.dumps(key)}{where}: "
                          "Cannot find field.")
            continue
        _check_value(item, fields[name], _join(path, _snake(name)), errors)


def _check_value(value, kind, path: str, errors: list[str]) -> None:
    if value is None:
        return
    if isinstance(kind, tuple) and kind[0] == "list":
        if not isinstance(value, list):
            errors.append(f"Invalid value at '{path}' (repeated field), {json.dumps(value)}")
            return
        for i, item in enumerate(value):
            _check_value(item, kind[1], f"{path}[{i}]", errors)
        return
    if isinstance(kind, tuple) and kind[0] == "map":
        if not isinstance(value, dict):
            errors.append(f"Invalid value at '{path}' (map field), {json.dumps(value)}")
            return
        for i, item in enumerate(value.values()):
            _check_value(item, kind[1], f"{path}[{i}].value", errors)
        return
    if isinstance(kind, tuple) and kind[0] == "msg":
        check_fields(value, kind[1], path, errors)
        return
    if isinstance(kind, tuple) and kind[0] == "enum":
        if not isinstance(value, str) or value.upper() not in kind[2]:
            errors.append(f"Invalid value at '{path}' (type.googleapis.com/google.ai."
                          f"generativelanguage.v1beta.{kind[1]}), {json.dumps(value)}")
        return
    ok = {
        STR: isinstance(value, str),
        FLOAT: isinstance(value, (int, float)) and not isinstance(value, bool),
        INT: (isinstance(value, int) and not isinstance(value, bool))
        or (isinstance(value, str) and value.lstrip("-").isdigit()),
        BOOL: isinstance(value, bool),
        BYTES: isinstance(value, str) and _b64(value) is not None,
        STRUCT: isinstance(value, dict),
        VALUE: True,
    }[kind]
    if not ok:
        name = _SCALAR_NAMES.get(kind, "type.googleapis.com/google.protobuf.Struct")
        detail = (f"Base64 decoding failed for {json.dumps(value)}" if kind == BYTES
                  and isinstance(value, str) else json.dumps(value))
        errors.append(f"Invalid value at '{path}' ({name}), {detail}")


def _b64(value: str) -> bytes | None:
    """Bytes as proto JSON takes them: base64, standard or URL-safe, padding optional."""
    value = value.replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def _normalize(value, message: str):
    """`value` with snake_case field names of `message` (and below) turned camelCase."""
    if not isinstance(value, dict) or message not in MESSAGES:
        return value
    fields = MESSAGES[message]
    out = {}
    for key, item in value.items():
        name = _camel(key)
        kind = fields.get(name)
        out[name] = _normalize_kind(item, kind)
    return out


def _normalize_kind(value, kind):
    if isinstance(kind, tuple) and kind[0] == "msg":
        return _normalize(value, kind[1])
    if isinstance(kind, tuple) and kind[0] in ("list", "map") and isinstance(kind[1], tuple):
        if kind[0] == "list" and isinstance(value, list):
            return [_normalize_kind(v, kind[1]) for v in value]
        if kind[0] == "map" and isinstance(value, dict):
            return {k: _normalize_kind(v, kind[1]) for k, v in value.items()}
    return value


def _error(code: int, message: str, status: str, details: list | None = None) -> dict:
    error = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return {"error": error}


def _bad(message: str) -> Reject:
    return Reject(400, _error(400, message, "INVALID_ARGUMENT"))


# -- the stand-in ---------------------------------------------------------------------------


class GeminiStandIn(StandInApp):
    def __init__(self, api_key: str = "gm-test") -> None:
        super().__init__()
        self.api_key = api_key
        self._secret = secrets.token_bytes(16)

    # signatures: kind byte + HMAC, base64; calls are bound to their name and arguments
    def sign_call(self, name: str, args: dict) -> str:
        payload = b"C" + name.encode() + b"\0" + orjson.dumps(args, option=orjson.OPT_SORT_KEYS)
        return base64.b64encode(b"C" + hmac.new(self._secret, payload, hashlib.sha256).digest()).decode()

    def sign_text(self, text: str) -> str:
        payload = b"T" + text.encode()
        return base64.b64encode(b"T" + hmac.new(self._secret, payload, hashlib.sha256).digest()).decode()

    def _valid_signature(self, part: dict) -> bool:
        signature = part["thoughtSignature"]
        if signature in PLACEHOLDER_SIGNATURES:
            return True
        if "functionCall" in part:
            call = part["functionCall"]
            return hmac.compare_digest(signature, self.sign_call(call.get("name", ""), call.get("args") or {}))
        raw = _b64(signature)
        return raw is not None and raw[:1] == b"T" and len(raw) == 33

    async def handle(self, rec: Recorded, send) -> None:
        route = ROUTE.fullmatch(rec.path)
        if rec.method != "POST" or route is None:
            raise Reject(404, _error(404, f"Method not found: {rec.method} {rec.path}", "NOT_FOUND"))
        model, method = route.groups()
        query = parse_qs(rec.query)
        if "key" in query:
            raise _bad("This stand-in refuses API keys in the URL (key=...): send the "
                       "x-goog-api-key header.")
        self._authenticate(rec)
        stream = method == "streamGenerateContent"
        if stream and query.get("alt") != ["sse"]:
            raise _bad("This stand-in streams only as server-sent events: add alt=sse.")
        if not model.startswith("gemini-"):
            raise Reject(404, _error(404, f"models/{model} is not found for API version v1beta, "
                                          f"or is not supported for {method}. Call ListModels to "
                                          "see the list of available models and their supported "
                                          "methods.", "NOT_FOUND"))
        body = rec.json
        if not isinstance(body, dict):
            raise _bad("Invalid JSON payload received. Expected an object.")
        if method == "countTokens":
            await send_json(send, 200, self._count(model, body))
            return
        body = self._checked(model, body)
        conv, options = self.conversation(body)
        if stream:
            await send_sse(send, self._events(model, conv, options))
        else:
            await send_json(send, 200, self._response(model, conv, options))

    def _checked(self, model: str, body: dict) -> dict:
        """`body` as a GenerateContentRequest, checked as the API checks it, camelCased."""
        errors: list[str] = []
        check_fields(body, "GenerateContentRequest", "", errors)
        if errors:
            raise _bad("\n".join(errors))
        body = _normalize(body, "GenerateContentRequest")
        self._validate(model, body)
        return body

    def _count(self, model: str, body: dict) -> dict:
        """countTokens: `contents` alone, or a whole `generateContentRequest` (never both);
        the count is the promptTokenCount generateContent would report for it."""
        errors: list[str] = []
        check_fields(body, "CountTokensRequest", "", errors)
        if errors:
            raise _bad("\n".join(errors))
        body = _normalize(body, "CountTokensRequest")
        request = body.get("generateContentRequest")
        if request is not None and body.get("contents"):
            raise _bad("* CountTokensRequest: contents and generate_content_request are mutually "
                       "exclusive; set only one.\n")
        if request is not None:
            named = request.get("model")
            if not isinstance(named, str) or not named.startswith("models/"):
                raise _bad("* CountTokensRequest.generate_content_request.model: unexpected model "
                           f"name format: {json.dumps(named)}\n")
            request = {k: v for k, v in request.items() if k != "model"}
        else:
            request = {"contents": body.get("contents") or []}
        conv, _ = self.conversation(self._checked(model, request))
        total = respond(conv).prompt_tokens
        return {"totalTokens": total, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": total}]}

    def _authenticate(self, rec: Recorded) -> None:
        key = rec.headers.get("x-goog-api-key")
        if not key:
            raise Reject(403, _error(403, "Method doesn't allow unregistered callers (callers "
                                          "without established identity). Please use API Key or "
                                          "other form of API consumer identity to call this API.",
                                     "PERMISSION_DENIED"))
        if key != self.api_key:
            raise Reject(400, _error(400, "API key not valid. Please pass a valid API key.",
                                     "INVALID_ARGUMENT", [{
                                         "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                         "reason": "API_KEY_INVALID", "domain": "googleapis.com",
                                         "metadata": {"service": "generativelanguage.googleapis.com"},
                                     }]))

    # -- semantic checks --------------------------------------------------------------------

    def _validate(self, model: str, body: dict) -> None:
        contents = body.get("contents") or []
        if not contents:
            raise _bad("* GenerateContentRequest.contents: contents is not specified\n")
        for i, content in enumerate(contents):
            if content.get("role", "user") not in ("user", "model"):
                raise _bad("Please use a valid role: user, model.")
            parts = content.get("parts") or []
            if not parts:
                raise _bad(f"* GenerateContentRequest.contents[{i}].parts: contents.parts must "
                           "not be empty.\n")
            for j, part in enumerate(parts):
                self._check_part(part, f"contents[{i}].parts[{j}]")
        for part in (body.get("systemInstruction") or {}).get("parts") or []:
            self._check_part(part, "system_instruction.parts[0]")
        self._check_function_turns(contents)
        declared = self._check_tools(body)
        self._check_tool_config(body, declared)
        self._check_generation(model, body.get("generationConfig") or {})
        self._check_signatures(model, contents)
        self._check_response_format(model, body)

    @staticmethod
    def _check_response_format(model: str, body: dict) -> None:
        mime = (body.get("generationConfig") or {}).get("responseMimeType")
        if mime is None:
            return
        if mime not in RESPONSE_MIME_TYPES:
            raise _bad("* GenerateContentRequest.generation_config.response_mime_type: allowed mimetypes "
                       "are `text/plain`, `application/json`, `application/xml`, `application/yaml` "
                       "and `text/x.enum`.\n")
        declared = any(tool.get("functionDeclarations") for tool in body.get("tools") or [])
        if mime == "application/json" and declared and model.startswith(("gemini-1", "gemini-2")):
            raise _bad("Function calling with a response mime type: 'application/json' is unsupported")

    def _check_part(self, part: dict, path: str) -> None:
        data = [k for k in PART_DATA if k in part]
        if not data:
            raise _bad(f"* GenerateContentRequest.{path}.data: required oneof field 'data' must "
                       "have one initialized field\n")
        if len(data) > 1:
            raise _bad(f"Invalid value at '{path}.data' (oneof), oneof field 'data' is already "
                       f"set. Cannot set '{data[1]}'")
        if part.get("text") == "" and not part.get("thoughtSignature"):
            raise _bad("Unable to submit request because it has an empty text parameter. Add a "
                       "value to the parameter and try again.")
        blob = part.get("inlineData")
        if blob is not None and not blob.get("mimeType"):
            raise _bad(f"* GenerateContentRequest.{path}.inline_data.mime_type: mime_type must "
                       "be specified\n")

    @staticmethod
    def _check_function_turns(contents: list[dict]) -> None:
        def calls(c):
            return sum("functionCall" in p for p in c.get("parts") or [])

        def responses(c):
            return sum("functionResponse" in p for p in c.get("parts") or [])

        for i, content in enumerate(contents):
            role = content.get("role", "user")
            if role == "model" and calls(content):
                if i == 0 or contents[i - 1].get("role", "user") != "user":
                    raise _bad("Please ensure that function call turn comes immediately after a "
                               "user turn or after a function response turn.")
                following = contents[i + 1] if i + 1 < len(contents) else None
                if following is None or responses(following) != calls(content):
                    raise _bad("Please ensure that the number of function response parts is equal "
                               "to the number of function call parts of the function call turn.")
            if role == "user" and responses(content):
                previous = contents[i - 1] if i else None
                if previous is None or previous.get("role") != "model" or not calls(previous):
                    raise _bad("Please ensure that function response turn comes immediately after "
                               "a function call turn.")

    def _check_tools(self, body: dict) -> set[str]:
        declared: set[str] = set()
        for t, tool in enumerate(body.get("tools") or []):
            for d, decl in enumerate(tool.get("functionDeclarations") or []):
                path = f"tools[{t}].function_declarations[{d}]"
                name = decl.get("name") or ""
                if not FUNCTION_NAME.fullmatch(name):
                    raise _bad(f"* GenerateContentRequest.{path}.name: Invalid function name. Must "
                               "start with a letter or an underscore. Must be alphameric (a-z, "
                               "A-Z, 0-9), underscores (_), dots (.), colons (:), or dashes (-), "
                               "with a maximum length of 64.\n")
                declared.add(name)
                if "parameters" in decl and "parametersJsonSchema" in decl:
                    raise _bad(f"* GenerateContentRequest.{path}: parameters and "
                               "parameters_json_schema are mutually exclusive.\n")
                if "parametersJsonSchema" in decl:
                    schema = decl["parametersJsonSchema"]
                    if not isinstance(schema, dict) or schema.get("type") != "object":
                        raise _bad(f"* GenerateContentRequest.{path}.parameters_json_schema: the "
                                   "schema must describe an object (\"type\": \"object\").\n")
                if "parameters" in decl:
                    _check_classic(decl["parameters"], f"{path}.parameters")
        return declared

    @staticmethod
    def _check_tool_config(body: dict, declared: set[str]) -> None:
        config = (body.get("toolConfig") or {}).get("functionCallingConfig")
        if config is None:
            return
        if not declared:
            raise _bad("Function calling config is set without function_declarations.")
        names = config.get("allowedFunctionNames")
        path = "tool_config.function_calling_config.allowed_function_names"
        if names and (config.get("mode") or "").upper() not in ("ANY", "VALIDATED"):
            raise _bad(f"* GenerateContentRequest.{path}: allowed_function_names can only be set "
                       "when mode is ANY or VALIDATED.\n")
        for i, name in enumerate(names or []):
            if name not in declared:
                raise _bad(f"* GenerateContentRequest.{path}[{i}]: function '{name}' is not "
                           "declared in tools.\n")

    @staticmethod
    def _check_generation(model: str, config: dict) -> None:
        path = "* GenerateContentRequest.generation_config"
        temperature = config.get("temperature")
        if temperature is not None and not 0 <= temperature <= 2:
            raise _bad(f"{path}.temperature: must be in the range [0.0, 2.0]\n")
        top_p = config.get("topP")
        if top_p is not None and not 0 <= top_p <= 1:
            raise _bad(f"{path}.top_p: must be in the range [0.0, 1.0]\n")
        count = config.get("candidateCount")
        if count is not None and not 1 <= int(count) <= 8:
            raise _bad(f"{path}.candidate_count: must be in the range [1, 8]\n")
        max_tokens = config.get("maxOutputTokens")
        if max_tokens is not None and int(max_tokens) < 1:
            raise _bad(f"{path}.max_output_tokens: must be positive\n")
        if len(config.get("stopSequences") or []) > 5:
            raise _bad(f"{path}.stop_sequences: at most 5 stop sequences are allowed\n")
        if "responseJsonSchema" in config:
            if "responseSchema" in config:
                raise _bad(f"{path}: response_schema and response_json_schema cannot both be "
                           "set.\n")
            if config.get("responseMimeType") != "application/json":
                raise _bad(f"{path}.response_mime_type: must be application/json when "
                           "response_json_schema is set.\n")
            _check_refs(config["responseJsonSchema"], "generation_config.response_json_schema")
        if "responseSchema" in config:
            _check_classic(config["responseSchema"], "generation_config.response_schema")
        thinking = config.get("thinkingConfig")
        if thinking is not None:
            _check_thinking(model, thinking)

    def _check_signatures(self, model: str, contents: list[dict]) -> None:
        for content in contents:
            for part in content.get("parts") or []:
                if part.get("thoughtSignature") and not self._valid_signature(part):
                    raise _bad("Corrupted thought signature.")
        if not model.startswith("gemini-3"):
            return
        start = 0
        for i, content in enumerate(contents):
            if content.get("role", "user") == "user" and any(
                    "functionResponse" not in p for p in content["parts"]):
                start = i + 1
        for i in range(start, len(contents)):
            parts = contents[i]["parts"]
            first = next((j for j, p in enumerate(parts) if "functionCall" in p), None)
            if first is not None and not parts[first].get("thoughtSignature"):
                name = parts[first]["functionCall"].get("name")
                raise _bad("Function call is missing a thought_signature in functionCall parts. "
                           "This is required for tools to work correctly, and missing "
                           "thought_signature may lead to degraded model performance. Additional "
                           f"data, function call `default_api:{name}` , position {i + 1}. "
                           + SIGNATURE_DOCS)

    # -- answering --------------------------------------------------------------------------

    def conversation(self, body: dict) -> tuple[Conversation, dict]:
        conv = Conversation()
        conv.system = "\n".join(p.get("text", "") for p in
                                (body.get("systemInstruction") or {}).get("parts") or [])
        for content in body["contents"]:
            parts = content["parts"]
            text = "".join(p.get("text", "") for p in parts if not p.get("thought"))
            if content.get("role", "user") == "model":
                calls = [(p["functionCall"]["name"], p["functionCall"].get("args") or {})
                         for p in parts if "functionCall" in p]
                conv.turns.append(Turn("assistant", text=text, tool_calls=calls))
                continue
            images = [Image(p["inlineData"]["mimeType"], len(_b64(p["inlineData"]["data"]) or b""))
                      for p in parts if "inlineData" in p]
            results = [(p["functionResponse"]["name"], _result_text(p["functionResponse"]))
                       for p in parts if "functionResponse" in p]
            conv.turns.append(Turn("user", text=text, images=images, tool_results=results))
        for tool in body.get("tools") or []:
            for decl in tool.get("functionDeclarations") or []:
                params = resolved(decl.get("parametersJsonSchema")) or _lower_types(decl.get("parameters"))
                conv.tools.append({"name": decl["name"], "parameters": params})
        calling = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
        mode = (calling.get("mode") or "AUTO").upper()
        names = calling.get("allowedFunctionNames") or []
        if mode == "NONE":
            conv.tool_choice = "none"
        elif mode in ("ANY", "VALIDATED"):
            conv.tool_choice = names[0] if len(names) == 1 else "required"
        config = body.get("generationConfig") or {}
        if config.get("maxOutputTokens") is not None:
            conv.max_tokens = int(config["maxOutputTokens"])
        conv.stop = list(config.get("stopSequences") or [])
        conv.json_mode = config.get("responseMimeType") == "application/json"
        if config.get("responseJsonSchema") is not None:
            conv.response_schema = resolved(gemini_view(config["responseJsonSchema"]))
        elif config.get("responseSchema") is not None:
            conv.response_schema = _lower_types(config["responseSchema"])
        elif not conv.json_mode:
            schema, conv.json_mode = instructed(conv.system)
            conv.response_schema = resolved(schema) if schema is not None else None
        last_user = next((t.text for t in reversed(conv.turns) if t.role == "user"), "")
        options = {
            "n": int(config.get("candidateCount") or 1),
            "thinking": config.get("thinkingConfig") or {},
            "block": "[[block]]" in last_user,
            "unsafe": "[[unsafe]]" in last_user,
            "google_search": any("googleSearch" in t for t in body.get("tools") or ()),
        }
        return conv, options

    def _grounded(self, model: str, native: tuple, prompt_tokens: int) -> list[dict]:
        """A grounded answer: [the whole response, then its two stream events]."""
        query, text, (start, end) = native
        url, title, _ = NATIVE_SOURCE
        segment = {"endIndex": len(text[:end].encode()), "text": text[start:end]}
        if start:  # proto3 JSON leaves out zero values
            segment["startIndex"] = len(text[:start].encode())
        meta = {"webSearchQueries": [query],
                "searchEntryPoint": {"renderedContent": "<div>Google Search suggestions</div>"},
                "groundingChunks": [{"web": {"uri": url, "title": title}}],
                "groundingSupports": [{"segment": segment, "groundingChunkIndices": [0],
                                       "confidenceScores": [0.9]}]}
        usage = self._usage(prompt_tokens, count_words(text), 0)
        whole = {"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": "STOP",
                 "index": 0, "groundingMetadata": meta}
        first = {"content": {"parts": [{"text": text[:start]}], "role": "model"}, "index": 0}
        last = {**whole, "content": {"parts": [{"text": text[start:]}], "role": "model"}}
        return [self._envelope(model, {"candidates": [c], "usageMetadata": usage}) for c in (whole, first, last)]

    def _thoughts(self, model: str, thinking: dict) -> int:
        if not model.startswith(("gemini-2.5", "gemini-3")):
            return 0
        if "thinkingBudget" in thinking:
            budget = int(thinking["thinkingBudget"])
            return 16 if budget < 0 else min(budget, 16)
        level = (thinking.get("thinkingLevel") or "HIGH").upper()
        return {"MINIMAL": 2, "LOW": 4, "MEDIUM": 8}.get(level, 16)

    def _parts(self, model: str, answer, thinking: dict) -> list[dict]:
        """The whole answer as parts (a stream sends the same, split)."""
        parts: list[dict] = []
        if thinking.get("includeThoughts"):
            parts.append({"text": "Thinking about the request.", "thought": True})
        gemini3 = model.startswith("gemini-3")
        for k, (name, args) in enumerate(answer.tool_calls):
            part = {"functionCall": {"name": name, "args": args}}
            if gemini3 and k == 0:
                part["thoughtSignature"] = self.sign_call(name, args)
            parts.append(part)
        if not answer.tool_calls:
            part = {"text": answer.text}
            if gemini3:
                part["thoughtSignature"] = self.sign_text(answer.text)
            parts.append(part)
        return parts

    @staticmethod
    def _finish(answer) -> str:
        return "MAX_TOKENS" if answer.finish == "length" else "STOP"

    def _usage(self, prompt: int, candidates: int, thoughts: int) -> dict:
        usage = {"promptTokenCount": prompt, "candidatesTokenCount": candidates,
                 "totalTokenCount": prompt + candidates + thoughts,
                 "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}]}
        if thoughts:
            usage["thoughtsTokenCount"] = thoughts
        return usage

    def _envelope(self, model: str, payload: dict) -> dict:
        return {**payload, "modelVersion": model, "responseId": f"standin{len(self.requests)}"}

    def _response(self, model: str, conv: Conversation, options: dict) -> dict:
        answer = respond(conv)
        shape(answer, conv)
        n = options["n"]
        native = native_search(conv) if options["google_search"] else None
        if native:
            return self._grounded(model, native, answer.prompt_tokens)[0]
        if options["block"]:
            return self._envelope(model, {
                "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": _ratings()},
                "usageMetadata": {"promptTokenCount": answer.prompt_tokens,
                                  "totalTokenCount": answer.prompt_tokens}})
        thoughts = self._thoughts(model, options["thinking"]) * n
        if options["unsafe"]:
            candidates = [{"finishReason": "SAFETY", "index": i, "safetyRatings": _ratings()}
                          for i in range(n)]
            return self._envelope(model, {"candidates": candidates,
                                          "usageMetadata": self._usage(answer.prompt_tokens, 0, thoughts)})
        candidates = [{"content": {"parts": self._parts(model, answer, options["thinking"]),
                                   "role": "model"},
                       "finishReason": self._finish(answer), "index": i} for i in range(n)]
        usage = self._usage(answer.prompt_tokens, answer.completion_tokens * n, thoughts)
        return self._envelope(model, {"candidates": candidates, "usageMetadata": usage})

    def _events(self, model: str, conv: Conversation, options: dict) -> list[bytes]:
        answer = respond(conv)
        shape(answer, conv)
        n = options["n"]
        native = native_search(conv) if options["google_search"] else None
        if native:
            return [b"data: " + orjson.dumps(e) + b"\r\n\r\n" for e in self._grounded(model, native, answer.prompt_tokens)[1:]]
        thoughts = self._thoughts(model, options["thinking"]) * n

        def event(candidate: dict | None, emitted: int, **extra) -> bytes:
            payload = dict(extra)
            if candidate is not None:
                payload["candidates"] = [{**candidate, "index": i} for i in range(n)]
            payload["usageMetadata"] = self._usage(answer.prompt_tokens, emitted * n, thoughts)
            return b"data: " + orjson.dumps(self._envelope(model, payload)) + b"\r\n\r\n"

        if options["block"]:
            return [b"data: " + orjson.dumps(self._envelope(model, {
                "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": _ratings()},
                "usageMetadata": {"promptTokenCount": answer.prompt_tokens,
                                  "totalTokenCount": answer.prompt_tokens}})) + b"\r\n\r\n"]
        if options["unsafe"]:
            return [event({"finishReason": "SAFETY", "safetyRatings": _ratings()}, 0)]
        parts = self._parts(model, answer, options["thinking"])
        events = []
        if parts[0].get("thought"):
            events.append(event({"content": {"parts": [parts.pop(0)], "role": "model"}}, 0))
        finish = self._finish(answer)
        if answer.tool_calls:
            events.append(event({"content": {"parts": parts, "role": "model"}},
                                answer.completion_tokens))
            events.append(event({"content": {"parts": [{"text": ""}], "role": "model"},
                                 "finishReason": finish}, answer.completion_tokens))
            return events
        words = answer.words()
        pieces = ["".join(words[k:k + 3]) for k in range(0, len(words), 3)] or [""]
        signature = parts[-1].get("thoughtSignature")
        emitted = 0
        for k, piece in enumerate(pieces):
            emitted = min(answer.completion_tokens, emitted + len(piece.split()))
            last = k == len(pieces) - 1
            candidate = {"content": {"parts": [{"text": piece}], "role": "model"}}
            if last and signature is None:
                candidate["finishReason"] = finish
                emitted = answer.completion_tokens
            events.append(event(candidate, emitted))
        if signature is not None:
            events.append(event({"content": {"parts": [{"text": "", "thoughtSignature": signature}],
                                             "role": "model"}, "finishReason": finish},
                                answer.completion_tokens))
        return events


RESPONSE_MIME_TYPES = ("text/plain", "application/json", "application/xml", "application/yaml",
                       "text/x.enum")
# The JSON Schema keywords Gemini's responseJsonSchema implements; it ignores the others.
GEMINI_KEYWORDS = frozenset({"$id", "$defs", "$ref", "$anchor", "type", "format", "title",
                             "description", "enum", "items", "prefixItems", "minItems", "maxItems",
                             "minimum", "maximum", "anyOf", "oneOf", "properties",
                             "additionalProperties", "required", "propertyOrdering"})


def gemini_view(schema):
    """The schema as Gemini's model sees it: unimplemented keywords (and non-string, non-number
    enum values) left out."""
    if isinstance(schema, list):
        return [gemini_view(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key not in GEMINI_KEYWORDS:
            continue
        if key in ("properties", "$defs"):
            out[key] = {name: gemini_view(sub) for name, sub in value.items()}
        elif key == "enum":
            if all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value):
                out[key] = value
        else:
            out[key] = gemini_view(value)
    return out


def _ratings() -> list[dict]:
    return [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}]


def _result_text(response: dict) -> str:
    value = response.get("response") or {}
    if set(value) in ({"result"}, {"output"}):
        value = next(iter(value.values()))
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _lower_types(schema):
    """A classic Schema with JSON Schema type names, for the fake model."""
    if isinstance(schema, list):
        return [_lower_types(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key == "type" and isinstance(value, str):
            out[key] = value.lower()
        elif key == "properties" and isinstance(value, dict):
            out[key] = {k: _lower_types(v) for k, v in value.items()}
        elif key in ("items", "anyOf"):
            out[key] = _lower_types(value)
        else:
            out[key] = value
    return out


def _check_classic(schema: dict, path: str) -> None:
    """What the classic Schema message needs beyond known fields: a type (unless anyOf),
    and properties for an object."""
    if not isinstance(schema, dict):
        return
    kind = (schema.get("type") or "").upper()
    if not kind and "anyOf" not in schema:
        raise _bad(f"* GenerateContentRequest.{path}.type: must be specified\n")
    if kind == "OBJECT" and not schema.get("properties"):
        raise _bad(f"* GenerateContentRequest.{path}.properties: should be non-empty for OBJECT "
                   "type\n")
    for i, (_, sub) in enumerate((schema.get("properties") or {}).items()):
        _check_classic(sub, f"{path}.properties[{i}].value")
    if isinstance(schema.get("items"), dict):
        _check_classic(schema["items"], f"{path}.items")
    for i, sub in enumerate(schema.get("anyOf") or []):
        _check_classic(sub, f"{path}.any_of[{i}]")


def _check_refs(schema, path: str) -> None:
    """Gemini's JSON Schema rule: beside `$ref`, only keywords starting with `$`."""
    if isinstance(schema, list):
        for i, item in enumerate(schema):
            _check_refs(item, f"{path}[{i}]")
        return
    if not isinstance(schema, dict):
        return
    if "$ref" in schema:
        extra = sorted(k for k in schema if not k.startswith("$"))
        if extra:
            raise _bad(f"* GenerateContentRequest.{path}: if $ref is set, no other properties "
                       f"except those starting with $ may be set (found '{extra[0]}').\n")
    for key, value in schema.items():
        _check_refs(value, f"{path}.{key}")


def _check_thinking(model: str, thinking: dict) -> None:
    level = thinking.get("thinkingLevel")
    budget = thinking.get("thinkingBudget")
    if level is not None and budget is not None:
        raise _bad("You cannot set both thinking_level and the legacy thinking_budget parameter.")
    if not model.startswith(("gemini-2.5", "gemini-3", "gemini-4")):
        raise _bad(f"Thinking is not enabled for models/{model}")
    pro = "pro" in model
    if level is not None:
        if not model.startswith(("gemini-3", "gemini-4")):
            raise _bad("Thinking level is not supported for this model.")
        if pro and level.upper() in ("MINIMAL", "MEDIUM"):
            raise _bad(f"Thinking level {level.upper()} is not supported for this model.")
        if level.upper() == "XHIGH" and not model.startswith("gemini-4"):
            raise _bad(f"Thinking level {level.upper()} is not supported for this model.")
    if budget is not None and model.startswith("gemini-2.5"):
        budget = int(budget)
        low, high = (128, 32768) if pro else (0, 24576)
        if pro and budget == 0:
            raise _bad("Budget 0 is invalid. This model only works in thinking mode.")
        if budget != -1 and not low <= budget <= high:
            raise _bad(f"The thinking budget {budget} is invalid. Please choose a value between "
                       f"{low} and {high}.")
