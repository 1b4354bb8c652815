"""The model catalog as `GET /v1/models` returns it (SPEC §3)."""

from __future__ import annotations

from collections.abc import Iterator

from ._base import BaseModel

__all__ = ["Model", "ModelList", "ModelPricing"]


class ModelPricing(BaseModel):
    """USD per million tokens; None where unknown."""

    input: float | None = None
    output: float | None = None
    cached_input: float | None = None
    cache_write: float | None = None
    unit: str | None = None


class Model(BaseModel):
    id: str
    object: str = "model"
    provider: str | None = None
    name: str | None = None
    owned_by: str | None = None
    context_length: int | None = None
    max_output_tokens: int | None = None
    pricing: ModelPricing | None = None
    input_modalities: list[str] = []
    output_modalities: list[str] = []
    supported_parameters: list[str] = []


class ModelList(BaseModel):
    object: str = "list"
    data: list[Model] = []

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> Model:
        return self.data[index]

    def __iter__(self) -> Iterator[Model]:  # type: ignore[override]
        """The rows, not pydantic's (field, value) pairs: `for row in page`."""
        return iter(self.data)
