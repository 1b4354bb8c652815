"""Typed results of the Lunos API (pydantic models; unknown fields are kept)."""

from .chat import (
    Annotation,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionMessage,
    Choice,
    ChoiceDelta,
    ChoiceDeltaToolCall,
    ChoiceDeltaToolCallFunction,
    ChunkChoice,
    Function,
    ParsedChatCompletion,
    ParsedChatCompletionMessage,
    ParsedChoice,
    ToolCall,
    URLCitation,
)
from .embeddings import CreateEmbeddingResponse, Embedding, EmbeddingUsage
from .log import LogEntry, LogList, LogUsage
from .model import Model, ModelList, ModelPricing
from .usage import CompletionTokensDetails, CompletionUsage, PromptTokensDetails

__all__ = [
    "Annotation",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionMessage",
    "Choice",
    "ChoiceDelta",
    "ChoiceDeltaToolCall",
    "ChoiceDeltaToolCallFunction",
    "ChunkChoice",
    "CompletionTokensDetails",
    "CompletionUsage",
    "CreateEmbeddingResponse",
    "Embedding",
    "EmbeddingUsage",
    "Function",
    "LogEntry",
    "LogList",
    "LogUsage",
    "Model",
    "ModelList",
    "ModelPricing",
    "ParsedChatCompletion",
    "ParsedChatCompletionMessage",
    "ParsedChoice",
    "PromptTokensDetails",
    "ToolCall",
    "URLCitation",
]
