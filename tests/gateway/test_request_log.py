"""The JSON request line's trace id: read from a W3C `traceparent` only when it is one."""

from __future__ import annotations

import pytest

from lunos.gateway.request_log import trace_id_of

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.mark.parametrize(("header", "expected"), [
    (f"00-{TRACE}-00f067aa0ba902b7-01", TRACE),
    (f" 00-{TRACE}-00f067aa0ba902b7-00 ", TRACE),  # not sampled: still the caller's trace
    (f"00-{TRACE}-00f067aa0ba902b7-01-future-fields", TRACE),
    (None, None),
    ("", None),
    (f"ff-{TRACE}-00f067aa0ba902b7-01", None),  # version ff is invalid
    (f"00-{'0' * 32}-00f067aa0ba902b7-01", None),  # the all-zero trace id is invalid
    (f"00-{TRACE.upper()}-00f067aa0ba902b7-01", None),  # lower-case hex only
    (f"00-{TRACE[:-1]}-00f067aa0ba902b7-01", None),
    ("garbage", None),
])
def test_trace_id_of(header, expected):
    assert trace_id_of(header) == expected
