"""What the adapters share for `POST /v1/embeddings` (SPEC §9.3): the request an adapter
turns into its provider's call, and the vector helpers the answers need.

An adapter that has an embeddings API defines `build_embeddings_request(req)` and
`parse_embeddings_response(req, body) -> (vectors, usage)`: vectors in input order, each a
list of floats or (OpenAI's `encoding_format: base64`, passed through) a base64 string;
usage OpenAI-shaped (`prompt_tokens`), or None when the provider reports none.
"""

from __future__ import annotations

import base64
import math
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..catalog import ModelInfo


@dataclass(slots=True)
class EmbeddingsRequest:
    body: dict  # OpenAI's embeddings body, without Lunos's fields; `input` is always a list
    model: str
    provider: str
    upstream_model: str
    model_info: ModelInfo | None = None


def normalized(vector: list[float]) -> list[float]:
    """The vector scaled to unit length (a zero vector stays as it is)."""
    norm = math.sqrt(math.fsum(x * x for x in vector))
    return [x / norm for x in vector] if norm > 0 else vector


def to_base64(vector: list[float]) -> str:
    """OpenAI's base64 encoding: the float32 values, little-endian, base64-encoded."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def from_base64(text: str) -> list[float]:
    raw = base64.b64decode(text)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))
