"""The retry loop: what is retried, how often, and how long it waits in between."""

from __future__ import annotations

import email.utils

import httpx
import pytest

import lunos
from lunos._base_client import MAX_RETRY_AFTER, parse_retry_after, retry_delay
from tests.sdk.conftest import Server, collect, make_client, resolve, sse_event, sse_response

COMPLETION = {"id": "c1", "choices": [{"index": 0, "message": {"content": "ok"}}]}
# Backoff with the jitter fixed at 0.5 (the `sleeps` fixture): base * (1 - 0.25 * 0.5).
JITTERED = [0.5 * 0.875, 1.0 * 0.875, 2.0 * 0.875, 4.0 * 0.875, 8.0 * 0.875, 8.0 * 0.875]


def ok() -> httpx.Response:
    return httpx.Response(200, json=COMPLETION)


def fail(status: int, **headers: str) -> httpx.Response:
    body = {"error": {"message": f"status {status}", "type": "x", "param": None, "code": None}}
    return httpx.Response(status, json=body, headers=headers)


async def create(client, **params):
    return await resolve(
        client.chat.completions.create(
            model="openai/gpt-4o", messages=[{"role": "user", "content": "Hi"}], **params
        )
    )


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504])
async def test_retryable_statuses_are_retried(kind, sleeps, status):
    server = Server(fail(status), fail(status), ok())
    result = await create(make_client(kind, server))
    assert result.choices[0].message.content == "ok"
    assert len(server.requests) == 3
    assert sleeps == JITTERED[:2]


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, lunos.BadRequestError),
        (401, lunos.AuthenticationError),
        (403, lunos.PermissionDeniedError),
        (404, lunos.NotFoundError),
        (413, lunos.APIStatusError),
        (422, lunos.UnprocessableEntityError),
    ],
)
async def test_other_client_errors_are_never_retried(kind, sleeps, status, error):
    server = Server(fail(status, **{"retry-after": "1"}), ok())
    with pytest.raises(error):
        await create(make_client(kind, server, max_retries=5))
    assert len(server.requests) == 1
    assert sleeps == []


async def test_gives_up_after_max_retries_with_exponential_backoff(kind, sleeps):
    server = Server(fail(503))
    with pytest.raises(lunos.InternalServerError) as caught:
        await create(make_client(kind, server, max_retries=6))
    assert caught.value.status_code == 503
    assert len(server.requests) == 7
    assert sleeps == JITTERED  # doubles from 0.5s and stays at the 8s cap


async def test_max_retries_zero_sends_once(kind, sleeps):
    server = Server(fail(500), ok())
    with pytest.raises(lunos.InternalServerError):
        await create(make_client(kind, server, max_retries=0))
    assert len(server.requests) == 1 and sleeps == []


async def test_the_same_body_is_sent_on_every_attempt(kind, sleeps):
    server = Server(fail(502), ok())
    await create(make_client(kind, server), temperature=0.3)
    assert server.requests[0].content == server.requests[1].content
    assert server.requests[0].headers["authorization"] == server.requests[1].headers["authorization"]


# --- Retry-After --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after": "0"}, 0.0),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),  # the finer header wins
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),  # a date in the past
        ({"retry-after": "soon"}, JITTERED[0]),  # unreadable: plain backoff
        ({"retry-after": "-4"}, 0.0),
    ],
)
async def test_retry_after_is_honoured(kind, sleeps, headers, wait):
    server = Server(fail(429, **headers), ok())
    await create(make_client(kind, server))
    assert len(server.requests) == 2
    assert sleeps == [pytest.approx(wait)]


async def test_retry_after_beyond_the_cap_is_not_waited_for(kind, sleeps):
    server = Server(fail(429, **{"retry-after": str(int(MAX_RETRY_AFTER) + 1)}), ok())
    with pytest.raises(lunos.RateLimitError) as caught:
        await create(make_client(kind, server))
    assert len(server.requests) == 1 and sleeps == []
    assert caught.value.response.headers["retry-after"] == "61"


async def test_retry_after_at_the_cap_is_waited_for(kind, sleeps):
    server = Server(fail(503, **{"retry-after": str(int(MAX_RETRY_AFTER))}), ok())
    await create(make_client(kind, server))
    assert sleeps == [MAX_RETRY_AFTER]


def test_parse_retry_after_http_date():
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after(httpx.Headers({"retry-after": date}), now=now) == pytest.approx(30)
    assert parse_retry_after(httpx.Headers({"retry-after": date}), now=now + 40) == 0.0
    assert parse_retry_after(httpx.Headers({}), now=now) is None
    assert parse_retry_after(httpx.Headers({"retry-after": "nonsense"})) is None
    assert parse_retry_after(httpx.Headers({"retry-after-ms": "x", "retry-after": "2"})) == 2.0
    assert parse_retry_after(httpx.Headers({"retry-after": "inf"})) is None


def test_retry_delay_jitter_stays_within_a_quarter_below_the_backoff():
    for attempt, base in enumerate([0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]):
        for _ in range(50):
            assert base * 0.75 <= retry_delay(attempt) <= base
    assert retry_delay(10_000) <= 8.0  # no overflow on absurd attempt numbers


# --- x-should-retry -----------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
async def test_should_retry_false_disables_retries(kind, sleeps, status):
    server = Server(fail(status, **{"x-should-retry": "false"}), ok())
    with pytest.raises(lunos.APIStatusError) as caught:
        await create(make_client(kind, server))
    assert caught.value.status_code == status
    assert len(server.requests) == 1 and sleeps == []


async def test_should_retry_true_does_not_make_a_400_retryable(kind, sleeps):
    server = Server(fail(400, **{"x-should-retry": "true"}), ok())
    with pytest.raises(lunos.BadRequestError):
        await create(make_client(kind, server))
    assert len(server.requests) == 1


# --- connection errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectError("refused"),
        httpx.ReadError("reset"),
        httpx.RemoteProtocolError("server disconnected"),
        httpx.ConnectTimeout("slow"),
        httpx.ReadTimeout("slow"),
    ],
)
async def test_connection_errors_and_timeouts_are_retried(kind, sleeps, exc):
    server = Server(exc, ok())
    result = await create(make_client(kind, server))
    assert result.id == "c1"
    assert len(server.requests) == 2 and sleeps == JITTERED[:1]


async def test_connection_error_after_retries(kind, sleeps):
    server = Server(httpx.ConnectError("refused"))
    with pytest.raises(lunos.APIConnectionError) as caught:
        await create(make_client(kind, server, max_retries=3))
    assert not isinstance(caught.value, lunos.APITimeoutError)
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert caught.value.request.url.path == "/v1/chat/completions"
    assert len(server.requests) == 4 and sleeps == JITTERED[:3]


async def test_timeout_after_retries(kind, sleeps):
    server = Server(httpx.ReadTimeout("slow"))
    with pytest.raises(lunos.APITimeoutError):
        await create(make_client(kind, server, max_retries=1))
    assert len(server.requests) == 2


async def test_unsupported_protocol_is_not_retried(kind, sleeps):
    server = Server(httpx.UnsupportedProtocol("Request URL has an unsupported protocol"), ok())
    with pytest.raises(lunos.APIConnectionError):
        await create(make_client(kind, server))
    assert len(server.requests) == 1 and sleeps == []


# --- streams ------------------------------------------------------------------------------

CHUNK = {"id": "c1", "choices": [{"index": 0, "delta": {"content": "hi"}}]}


async def test_a_stream_is_retried_before_it_starts(kind, sleeps):
    server = Server(fail(503), sse_response([sse_event(CHUNK), b"data: [DONE]\n\n"]))
    stream = await create(make_client(kind, server), stream=True)
    chunks = await collect(stream)
    assert [c.choices[0].delta.content for c in chunks] == ["hi"]
    assert len(server.requests) == 2 and sleeps == JITTERED[:1]
    assert server.last.headers["accept"] == "text/event-stream"


async def test_a_stream_that_started_is_never_retried(kind, sleeps):
    error = {"error": {"message": "upstream died", "type": "upstream_error", "code": None}}
    server = Server(sse_response([sse_event(CHUNK), sse_event(error)]), ok())
    stream = await create(make_client(kind, server), stream=True)
    with pytest.raises(lunos.InternalServerError, match="upstream died"):
        await collect(stream)
    assert len(server.requests) == 1 and sleeps == []


async def test_a_stream_whose_connection_breaks_is_not_retried(kind, sleeps):
    class Broken(httpx.SyncByteStream, httpx.AsyncByteStream):
        def __iter__(self):
            yield sse_event(CHUNK)
            raise httpx.RemoteProtocolError("peer closed connection")

        async def __aiter__(self):
            yield sse_event(CHUNK)
            raise httpx.RemoteProtocolError("peer closed connection")

    server = Server(httpx.Response(200, stream=Broken()), ok())
    stream = await create(make_client(kind, server), stream=True)
    with pytest.raises(lunos.APIConnectionError):
        await collect(stream)
    assert len(server.requests) == 1 and sleeps == []
