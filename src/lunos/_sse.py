"""Incremental Server-Sent Events decoder, shared by the SDK and the gateway.

Pure and sans-IO: feed it bytes as they arrive (lines may be split across reads, and
a read may hold many events) and it returns the events that became complete. It follows
the WHATWG rules that matter for LLM APIs: `\\n`, `\\r\\n` and `\\r` line endings,
comment lines starting with `:`, multi-line `data`, `event`/`id`/`retry` fields, a
single optional space after the colon, and an event dispatched on a blank line.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class ServerSentEvent:
    data: str = ""
    event: str | None = None
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    __slots__ = ("_data", "_event", "_id", "_partial", "_pending_cr", "_retry", "_started")

    def __init__(self) -> None:
        # The unfinished last line, as the reads that hold it: joined once, when its end
        # arrives, so a long line fed in small reads costs linear time, not quadratic.
        self._partial: list[bytes] = []
        self._data: list[str] = []
        self._event: str | None = None
        self._id: str | None = None
        self._retry: int | None = None
        self._pending_cr = False
        self._started = False

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Consume bytes; return the events completed by them."""
        if not chunk:
            return []
        if not self._started:
            self._started = True
            if chunk.startswith(b"\xef\xbb\xbf"):  # a byte-order mark opens the stream
                chunk = chunk[3:]
        if (not self._partial and not self._data and self._event is None and not self._pending_cr
                and chunk.endswith(b"\n\n") and b"\r" not in chunk):
            fast = _data_only(chunk, self._id)
            if fast is not None:
                return fast
        if self._pending_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]  # the \n of a \r\n split across two reads
        self._pending_cr = False
        # Only the new bytes are scanned: the unfinished line held so far has no line end.
        if b"\r" in chunk:
            self._pending_cr = chunk.endswith(b"\r")
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = chunk.split(b"\n")
        last = lines.pop()
        if not lines:  # no line end yet
            if last:
                self._partial.append(last)
            return []
        if self._partial:
            self._partial.append(lines[0])
            lines[0] = b"".join(self._partial)
            self._partial = [last] if last else []
        elif last:
            self._partial = [last]
        events: list[ServerSentEvent] = []
        for raw in lines:
            event = self._line(raw.decode("utf-8", errors="replace"))
            if event is not None:
                events.append(event)
        return events

    def flush(self) -> list[ServerSentEvent]:
        """End of stream: dispatch what an unterminated last event holds."""
        events = self.feed(b"\n\n") if self._partial or self._data or self._event else []
        self._partial = []
        return events

    def _line(self, line: str) -> ServerSentEvent | None:
        if not line:
            if not self._data:  # no data field: nothing to dispatch (WHATWG)
                self._event, self._retry = None, None
                return None
            event = ServerSentEvent("\n".join(self._data), self._event, self._id, self._retry)
            self._data, self._event, self._retry = [], None, None
            return event
        if line[0] == ":":
            return None
        field, sep, value = line.partition(":")
        if sep and value[:1] == " ":
            value = value[1:]
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        elif field == "id" and "\0" not in value:
            self._id = value
        elif field == "retry" and value.isdigit():
            self._retry = int(value)
        return None


def _data_only(chunk: bytes, last_id: str | None) -> list[ServerSentEvent] | None:
    """Fast path for whole events that are one `data:` line each (what OpenAI-compatible
    APIs send), or an `event:` line and one `data:` line (Anthropic's and OpenAI Responses'
    events); None when the chunk needs the general parser."""
    events = []
    for block in chunk[:-2].split(b"\n\n"):
        name = None
        if block.startswith(b"event: "):
            head, _, block = block.partition(b"\n")
            name = head[7:].decode("utf-8", errors="replace")
        if not block.startswith(b"data: ") or b"\n" in block:
            return None
        events.append(ServerSentEvent(block[6:].decode("utf-8", errors="replace"), name, last_id))
    return events
