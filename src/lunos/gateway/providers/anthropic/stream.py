"""Anthropic Messages SSE stream -> OpenAI chat.completion.chunk dicts.

Anthropic streams named events: `message_start` (the message shell, usually with input
usage), then per content block `content_block_start` / `content_block_delta`... /
`content_block_stop`, then `message_delta` (stop reason and cumulative usage, which may
also carry the input and cache counts) and `message_stop`; `ping` may come anywhere, and
`error` replaces the rest when the stream fails. Unknown events and block types are
skipped, as Anthropic's versioning policy allows new ones at any time.

Output: the role first, content / reasoning / tool-call deltas as they arrive (tool calls
numbered from 0 counting only `tool_use` blocks), one `reasoning_details` delta when a
thinking block ends (it carries the signature), the finish chunk, then a usage-only chunk.
With native web search (search.py), a text block carrying citations ends with one
`annotations` delta spanning the block's text, which also reports the queries of the
searches run before it. The role chunk waits for the first real output: until the translator emits something the
engine may still retry, so an `overloaded_error` right after `message_start` stays
retryable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...._sse import ServerSentEvent
from ...errors import GatewayError
from ..common import dumps, upstream_json
from . import search
from .errors import error_from_event
from .response import finish_reason, reasoning_encrypted, reasoning_text, usage_from


@dataclass(slots=True)
class _Block:
    type: str
    tool_index: int = -1
    arguments_seen: bool = False
    start: dict = field(default_factory=dict)  # the content_block of content_block_start
    thinking: list[str] = field(default_factory=list)
    signature: str = ""
    offset: int = 0  # content characters sent before this block (citation spans)
    citations: list = field(default_factory=list)  # web search citations of a text block


def _chunk(delta: dict, finish: str | None = None) -> dict:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


class AnthropicStreamTranslator:
    __slots__ = ("_api_key", "_blocks", "_content", "_details", "_provider", "_queries",
                 "_role_sent", "_stop_reason", "_tools", "_usage", "done", "pause_turns", "paused")

    def __init__(self, provider: str, api_key: str | None = None) -> None:
        self._provider = provider
        self._api_key = api_key
        self._role_sent = False
        self._blocks: dict[int, _Block] = {}
        self._tools = 0
        self._details = 0
        self._content = 0  # characters of content sent so far
        self._queries: list[str] = []  # native web search queries not reported yet
        self._usage: dict[str, Any] = {}
        self._stop_reason: str | None = None
        self.done = False
        # Set by the engine when it continues a `pause_turn` (resume.py): the turn then ends
        # with no finish and no usage chunk, and `paused` says so.
        self.pause_turns = False
        self.paused = False

    def feed(self, event: ServerSentEvent) -> list[dict]:
        if self.done or not event.data:
            return []
        data = upstream_json(event.data, self._provider, "a stream event")
        if not isinstance(data, dict):
            return []
        kind = data.get("type") or event.event
        if kind == "error" or event.event == "error":
            raise error_from_event(data, self._provider, self._api_key)
        handler = _HANDLERS.get(kind)
        out = handler(self, data) if handler else []
        if out and not self._role_sent:
            out = self._role() + out
        return out

    def finish(self) -> list[dict]:
        if self.done:
            return []
        if self._stop_reason is None:
            raise GatewayError(502, f"{self._provider}: the stream ended before the message was complete",
                               code="upstream_incomplete_stream", retryable=True)
        return self._end()

    def usage_so_far(self) -> dict | None:
        """The usage reported before the stream ended early (`message_start`'s), if any."""
        if "input_tokens" in self._usage or "output_tokens" in self._usage:
            return usage_from(self._usage)
        return None

    # ------------------------------------------------------------ events

    def _message_start(self, data: dict) -> list[dict]:
        message = data.get("message")
        if isinstance(message, dict):
            self._take_usage(message.get("usage"))
        return []

    def _block_start(self, data: dict) -> list[dict]:
        block = data.get("content_block")
        if not isinstance(block, dict):
            return []
        state = _Block(str(block.get("type")), start=block, offset=self._content,
                       citations=list(block.get("citations") or ()))
        self._blocks[data.get("index", -1)] = state
        out: list[dict] = []
        if state.type == "text" and block.get("text"):
            self._content += len(block["text"])
            out.append(_chunk({"content": block["text"]}))
        elif state.type == "tool_use":
            state.tool_index = self._tools
            self._tools += 1
            out.append(_chunk({"tool_calls": [{
                "index": state.tool_index, "id": block.get("id"), "type": "function",
                "function": {"name": block.get("name"), "arguments": ""}}]}))
        elif state.type == "thinking":
            state.signature = block.get("signature") or ""
            if block.get("thinking"):
                state.thinking.append(block["thinking"])
                out.append(_chunk({"reasoning_content": block["thinking"]}))
        return out

    def _block_delta(self, data: dict) -> list[dict]:
        state = self._blocks.get(data.get("index", -1))
        delta = data.get("delta")
        if state is None or not isinstance(delta, dict):
            return []
        kind = delta.get("type")
        if kind == "text_delta" and state.type == "text" and delta.get("text"):
            self._content += len(delta["text"])
            return [_chunk({"content": delta["text"]})]
        if kind == "input_json_delta" and state.type == "tool_use" and delta.get("partial_json"):
            state.arguments_seen = True
            return [_chunk({"tool_calls": [{"index": state.tool_index,
                                            "function": {"arguments": delta["partial_json"]}}]})]
        if kind == "thinking_delta" and state.type == "thinking" and delta.get("thinking"):
            state.thinking.append(delta["thinking"])
            return [_chunk({"reasoning_content": delta["thinking"]})]
        if kind == "signature_delta" and state.type == "thinking":
            state.signature += delta.get("signature") or ""
        elif kind == "citations_delta" and state.type == "text":
            state.citations.append(delta.get("citation"))
        elif kind == "input_json_delta" and state.type == "server_tool_use":
            state.thinking.append(delta.get("partial_json") or "")  # the search's input JSON
        return []

    def _block_stop(self, data: dict) -> list[dict]:
        state = self._blocks.pop(data.get("index", -1), None)
        if state is None:
            return []
        if state.type == "thinking":
            entry = reasoning_text({"thinking": "".join(state.thinking), "signature": state.signature},
                                   self._details)
        elif state.type == "redacted_thinking":
            entry = reasoning_encrypted(state.start, self._details)
        elif state.type == "tool_use" and not state.arguments_seen and state.start.get("input"):
            # A whole input on the start block (no deltas) still reaches the client.
            return [_chunk({"tool_calls": [{"index": state.tool_index,
                                            "function": {"arguments": dumps(state.start["input"])}}]})]
        elif state.type == "server_tool_use":  # native web search: see search.py
            query = search.query_from_json(state.start.get("name"), "".join(state.thinking)
                                           or dumps(state.start.get("input") or {}))
            if query:
                self._queries.append(query)
            return []
        elif state.type == "text" and state.citations:
            return self._annotations(state)
        else:
            return []
        self._details += 1
        return [_chunk({"reasoning_details": [entry]})]

    def _message_delta(self, data: dict) -> list[dict]:
        delta = data.get("delta")
        if isinstance(delta, dict) and delta.get("stop_reason"):
            self._stop_reason = delta["stop_reason"]
        self._take_usage(data.get("usage"))
        return []

    def _message_stop(self, data: dict) -> list[dict]:
        return self._end()

    # ------------------------------------------------------------ helpers

    def _annotations(self, state: _Block) -> list[dict]:
        """A cited text block's citations as one `annotations` delta (with the queries of
        the searches run before it)."""
        found = (search.annotation(c, state.offset, self._content) for c in state.citations)
        delta: dict[str, Any] = {"annotations": [a for a in found if a is not None]}
        if not delta["annotations"]:
            return []
        if self._queries:
            delta[search.QUERIES_KEY], self._queries = self._queries, []
        return [_chunk(delta)]

    def _role(self) -> list[dict]:
        if self._role_sent:
            return []
        self._role_sent = True
        return [_chunk({"role": "assistant", "content": ""})]

    def _take_usage(self, usage: Any) -> None:
        """Counts in later events are cumulative: they replace earlier ones."""
        if isinstance(usage, dict):
            self._usage.update({k: v for k, v in usage.items() if v is not None})

    def _end(self) -> list[dict]:
        self.done = True
        if self._stop_reason == "pause_turn" and self.pause_turns:
            self.paused = True
            return []
        out = self._role()
        out.append(_chunk({}, finish_reason(self._stop_reason)))
        if "input_tokens" in self._usage or "output_tokens" in self._usage:
            out.append({"choices": [], "usage": usage_from(self._usage)})
        return out


_HANDLERS = {
    "message_start": AnthropicStreamTranslator._message_start,
    "content_block_start": AnthropicStreamTranslator._block_start,
    "content_block_delta": AnthropicStreamTranslator._block_delta,
    "content_block_stop": AnthropicStreamTranslator._block_stop,
    "message_delta": AnthropicStreamTranslator._message_delta,
    "message_stop": AnthropicStreamTranslator._message_stop,
}
