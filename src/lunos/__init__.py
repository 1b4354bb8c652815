"""Lunos Python SDK: `from lunos import Lunos` (or `AsyncLunos`).

The SDK needs only httpx and pydantic; the gateway (`lunos.gateway`) is never imported here.
"""

from ._accumulate import accumulate
from ._base_client import VERSION as __version__
from ._binary import AsyncBinaryResponse, BinaryResponse
from ._client import AsyncLunos, Lunos
from ._exceptions import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    IncompleteStreamError,
    InternalServerError,
    LunosError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    StructuredOutputError,
    UnprocessableEntityError,
)
from ._response import RawResponse
from ._response_stream import AsyncResponseStream, ResponseStream
from ._streaming import AsyncStream, Stream
from .types import (
    Annotation,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionMessage,
    Completion,
    CompletionUsage,
    CreateEmbeddingResponse,
    Embedding,
    Image,
    ImagesResponse,
    LogEntry,
    LogList,
    Model,
    ModelList,
    ParsedChatCompletion,
    ParsedResponse,
    Response,
    ResponseDeleted,
    ResponseItemList,
    ResponseStreamEvent,
    ResponseUsage,
    ToolCall,
    Transcription,
)

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "Annotation",
    "AsyncBinaryResponse",
    "AsyncLunos",
    "AsyncResponseStream",
    "AsyncStream",
    "AuthenticationError",
    "BadRequestError",
    "BinaryResponse",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionMessage",
    "Completion",
    "CompletionUsage",
    "ConflictError",
    "CreateEmbeddingResponse",
    "Embedding",
    "Image",
    "ImagesResponse",
    "IncompleteStreamError",
    "InternalServerError",
    "LogEntry",
    "LogList",
    "Lunos",
    "LunosError",
    "Model",
    "ModelList",
    "NotFoundError",
    "ParsedChatCompletion",
    "ParsedResponse",
    "PermissionDeniedError",
    "RateLimitError",
    "RawResponse",
    "Response",
    "ResponseDeleted",
    "ResponseItemList",
    "ResponseStream",
    "ResponseStreamEvent",
    "ResponseUsage",
    "Stream",
    "StructuredOutputError",
    "ToolCall",
    "Transcription",
    "UnprocessableEntityError",
    "__version__",
    "accumulate",
]

# Errors read as `lunos.RateLimitError` in tracebacks, not `lunos._exceptions.RateLimitError`.
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) and issubclass(_obj, Exception):
        _obj.__module__ = __name__
del _name, _obj
