"""The shared SSE decoder: framing rules, and bytes split at every position."""

from __future__ import annotations

import sys

import pytest

from lunos._sse import ServerSentEvent, SSEDecoder

STREAM = (
    b": a comment\n"
    b"event: message_start\n"
    b"data: {\"a\": 1}\n"
    b"\n"
    b"data: line one\n"
    b"data: line two\n"
    b"id: 7\n"
    b"retry: 1500\n"
    b"\n"
    b"data:no-space\r\n\r\n"
    b"data: [DONE]\n\n"
)
EXPECTED = [
    ServerSentEvent('{"a": 1}', "message_start"),
    ServerSentEvent("line one\nline two", None, "7", 1500),
    ServerSentEvent("no-space", None, "7"),
    ServerSentEvent("[DONE]", None, "7"),
]


def test_decodes_whole_stream():
    assert SSEDecoder().feed(STREAM) == EXPECTED


@pytest.mark.parametrize("cut", range(1, len(STREAM)))
def test_any_split_gives_the_same_events(cut):
    decoder = SSEDecoder()
    events = decoder.feed(STREAM[:cut]) + decoder.feed(STREAM[cut:])
    assert events == EXPECTED


def test_byte_by_byte():
    decoder = SSEDecoder()
    events = []
    for i in range(len(STREAM)):
        events += decoder.feed(STREAM[i : i + 1])
    assert events == EXPECTED


def test_crlf_split_between_reads_is_one_line_end():
    decoder = SSEDecoder()
    events = decoder.feed(b"data: a\r") + decoder.feed(b"\n\r") + decoder.feed(b"\ndata: b\n\n")
    assert [e.data for e in events] == ["a", "b"]


def test_bare_cr_line_endings():
    assert [e.data for e in SSEDecoder().feed(b"data: x\r\rdata: y\r\r")] == ["x", "y"]


def test_unterminated_last_event_comes_out_on_flush():
    decoder = SSEDecoder()
    assert decoder.feed(b"data: tail") == []
    assert decoder.flush() == [ServerSentEvent("tail")]
    assert decoder.flush() == []


def test_comments_and_unknown_fields_are_ignored():
    events = SSEDecoder().feed(b":keepalive\n\nfoo: bar\ndata: x\n\n")
    assert events == [ServerSentEvent("x")]


def test_utf8_split_inside_a_character():
    data = "data: héllo\n\n".encode()
    cut = data.index(b"\xc3") + 1
    decoder = SSEDecoder()
    assert decoder.feed(data[:cut]) + decoder.feed(data[cut:]) == [ServerSentEvent("héllo")]


def test_empty_read_keeps_a_split_crlf():
    decoder = SSEDecoder()
    events = decoder.feed(b"data: a\r") + decoder.feed(b"") + decoder.feed(b"\ndata: b\n\n")
    assert [e.data for e in events] == ["a\nb"]  # \r\n is one line end, even split by b""


def test_byte_order_mark_is_skipped():
    assert SSEDecoder().feed(b"\xef\xbb\xbfdata: x\n\n") == [ServerSentEvent("x")]


def test_event_without_data_is_not_dispatched():
    assert SSEDecoder().feed(b"event: ping\n\ndata: y\n\n") == [ServerSentEvent("y")]


def _bytes_scanned(feed, pieces) -> tuple[int, list[ServerSentEvent]]:
    """Feed `pieces`; count the bytes that bytes/str methods (split, replace, decode...) were
    called on: a deterministic measure of the decoder's work, free of the clock."""
    scanned = 0

    def hook(frame, event, arg):
        nonlocal scanned
        if event == "c_call" and isinstance(getattr(arg, "__self__", None), bytes | str):
            scanned += len(arg.__self__)

    events: list[ServerSentEvent] = []
    sys.setprofile(hook)
    try:
        for piece in pieces:
            events += feed(piece)
    finally:
        sys.setprofile(None)
    return scanned, events


def test_a_long_line_in_small_reads_costs_linear_work():
    line = b"data: " + b"x" * (4 << 20) + b"\n\n"  # 4 MiB in 4096 reads of 1 KiB
    pieces = [line[i : i + 1024] for i in range(0, len(line), 1024)]
    scanned, events = _bytes_scanned(SSEDecoder().feed, pieces)
    assert events == [ServerSentEvent("x" * (4 << 20))]
    # Rescanning what is held at each read (the old way) touched ~2000x the line.
    times_the_line = scanned / len(line)
    assert times_the_line < 4


def test_a_long_crlf_event_in_small_reads():
    stream = b"event: big\r\n" + b"data: " + b"y" * 100_000 + b"\r\ndata: z\r\n\r\n"
    decoder = SSEDecoder()
    events = []
    for i in range(0, len(stream), 7):
        events += decoder.feed(stream[i : i + 7])
    assert events == [ServerSentEvent("y" * 100_000 + "\nz", "big")]


NAMED = [  # whole events as Anthropic and the Responses API send them, with odd ones between
    b'event: content_block_delta\ndata: {"i": 1}\n\n',
    b'data: {"plain": true}\n\n',
    b'event: ping\ndata: {}\n\nevent: message_stop\ndata: {"type": "message_stop"}\n\n',
    b'event:no-space\ndata: x\n\n',  # not the fast path's shape: the general parser
    b'event: two-lines\ndata: a\ndata: b\n\n',
    b'id: 9\nevent: with-id\ndata: y\n\n',
    b'event: named\ndata: after the id\n\n',
]


def test_whole_named_events_decode_as_byte_by_byte():
    """A read of whole `event:` + `data:` events (the fast path) gives what the general
    parser gives, event names and the last id included."""
    fast = SSEDecoder()
    whole = [event for chunk in NAMED for event in fast.feed(chunk)]
    slow = SSEDecoder()
    joined = b"".join(NAMED)
    single = [event for i in range(len(joined)) for event in slow.feed(joined[i:i + 1])]
    assert whole == single
    assert [(e.event, e.data, e.id) for e in whole] == [
        ("content_block_delta", '{"i": 1}', None), (None, '{"plain": true}', None),
        ("ping", "{}", None), ("message_stop", '{"type": "message_stop"}', None),
        ("no-space", "x", None), ("two-lines", "a\nb", None), ("with-id", "y", "9"),
        ("named", "after the id", "9")]
