"""Legacy text completions as `POST /v1/completions` returns them (SPEC §9.4): OpenAI's
`text_completion` object, whole or as stream chunks of the same shape, plus the `provider`
that answered and `usage.cost`."""

from __future__ import annotations

from ._base import BaseModel
from .usage import CompletionUsage

__all__ = ["Completion", "CompletionChoice", "CompletionLogprobs"]


class CompletionLogprobs(BaseModel):
    text_offset: list[int] | None = None
    token_logprobs: list[float | None] | None = None
    tokens: list[str] | None = None
    top_logprobs: list[dict[str, float] | None] | None = None


class CompletionChoice(BaseModel):
    index: int = 0
    text: str = ""  # in a stream chunk, the piece that arrived
    finish_reason: str | None = None
    logprobs: CompletionLogprobs | None = None


class Completion(BaseModel):
    id: str = ""
    object: str = "text_completion"
    created: int = 0
    model: str = ""
    provider: str | None = None  # in a stream, on the first chunk
    system_fingerprint: str | None = None
    choices: list[CompletionChoice] = []
    # in a stream, on a last chunk without choices when `stream_options.include_usage`
    usage: CompletionUsage | None = None
