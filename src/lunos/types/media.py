"""What the media routes return (SPEC §9.4): images and transcriptions in OpenAI's shapes,
plus the `provider` that answered and `usage.cost`."""

from __future__ import annotations

import base64

from ._base import BaseModel

__all__ = ["Image", "ImagesResponse", "MediaUsage", "Transcription"]


class Image(BaseModel):
    b64_json: str | None = None  # the image, base64-encoded
    url: str | None = None  # where to fetch it (a data URL where the provider gives bytes only)
    revised_prompt: str | None = None

    def bytes(self) -> bytes:
        """The image itself, from `b64_json` or a data URL."""
        if self.b64_json is not None:
            return base64.b64decode(self.b64_json)
        if self.url and self.url.startswith("data:"):
            return base64.b64decode(self.url.partition(",")[2])
        raise ValueError("this image is a URL to fetch, not inline data; ask for response_format='b64_json'")


class MediaUsage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost: float | None = None  # USD, from the catalog's prices


class ImagesResponse(BaseModel):
    created: int = 0
    data: list[Image] = []
    model: str | None = None
    provider: str | None = None
    usage: MediaUsage | None = None


class Transcription(BaseModel):
    text: str = ""
