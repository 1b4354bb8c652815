"""Embeddings as `POST /v1/embeddings` returns them (SPEC §9.3): OpenAI's shape, plus the
`provider` that answered and `usage.cost`."""

from __future__ import annotations

from collections.abc import Iterator

from ._base import BaseModel

__all__ = ["CreateEmbeddingResponse", "Embedding", "EmbeddingUsage"]


class Embedding(BaseModel):
    index: int = 0
    object: str = "embedding"
    # floats, or with `encoding_format="base64"` the float32 values base64-encoded
    embedding: list[float] | str = []


class EmbeddingUsage(BaseModel):
    prompt_tokens: int = 0
    total_tokens: int = 0
    cost: float | None = None  # USD, from the catalog's prices


class CreateEmbeddingResponse(BaseModel):
    object: str = "list"
    data: list[Embedding] = []
    model: str | None = None
    provider: str | None = None
    usage: EmbeddingUsage | None = None

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> Embedding:
        return self.data[index]

    def __iter__(self) -> Iterator[Embedding]:  # type: ignore[override]
        """The embeddings, not pydantic's (field, value) pairs."""
        return iter(self.data)
