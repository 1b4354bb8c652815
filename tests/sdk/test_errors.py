"""Error answers become typed errors carrying what the server said."""

from __future__ import annotations

import httpx
import pytest

import lunos
from tests.sdk.conftest import Server, collect, make_client, resolve, sse_event, sse_response


async def create(client, **params):
    return await resolve(
        client.chat.completions.create(
            model="openai/gpt-4o", messages=[{"role": "user", "content": "Hi"}], **params
        )
    )


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, lunos.BadRequestError),
        (401, lunos.AuthenticationError),
        (403, lunos.PermissionDeniedError),
        (404, lunos.NotFoundError),
        (409, lunos.ConflictError),
        (422, lunos.UnprocessableEntityError),
        (429, lunos.RateLimitError),
        (500, lunos.InternalServerError),
        (502, lunos.InternalServerError),
        (503, lunos.InternalServerError),
        (504, lunos.InternalServerError),
        (529, lunos.InternalServerError),
        (408, lunos.APIStatusError),
        (413, lunos.APIStatusError),
    ],
)
async def test_status_maps_to_error_with_body_and_request_id(kind, status, error):
    body = {
        "error": {
            "message": "temperature must be at most 1",
            "type": "invalid_request_error",
            "param": "temperature",
            "code": "invalid_value",
        }
    }
    server = Server(httpx.Response(status, json=body, headers={"x-request-id": "req_123"}))
    with pytest.raises(error) as caught:
        await create(make_client(kind, server, max_retries=0))
    exc = caught.value
    assert type(exc) is error
    assert exc.status_code == status
    assert exc.body == body
    assert exc.message == "temperature must be at most 1"
    assert (exc.type, exc.param, exc.code) == ("invalid_request_error", "temperature", "invalid_value")
    assert exc.request_id == "req_123"
    assert exc.response.status_code == status
    assert exc.request.url.path == "/v1/chat/completions"
    text = str(exc)
    assert str(status) in text and "temperature must be at most 1" in text
    assert "param: temperature" in text and "req_123" in text


async def test_error_body_that_is_not_json(kind):
    server = Server(httpx.Response(502, text="<html>Bad gateway</html>"))
    with pytest.raises(lunos.InternalServerError) as caught:
        await create(make_client(kind, server, max_retries=0))
    exc = caught.value
    assert exc.body == "<html>Bad gateway</html>"
    assert exc.message == "<html>Bad gateway</html>"
    assert exc.type is None and exc.param is None and exc.request_id is None


async def test_empty_error_body_uses_the_reason_phrase(kind):
    server = Server(httpx.Response(404))
    with pytest.raises(lunos.NotFoundError) as caught:
        await create(make_client(kind, server))
    assert caught.value.body is None
    assert caught.value.message == "Not Found"


async def test_error_body_with_an_unusual_shape(kind):
    server = Server(httpx.Response(400, json={"detail": "nope"}))
    with pytest.raises(lunos.BadRequestError) as caught:
        await create(make_client(kind, server))
    assert caught.value.body == {"detail": "nope"}
    assert caught.value.param is None


async def test_error_of_a_streaming_request_reads_the_body(kind):
    body = {"error": {"message": "bad key", "type": "authentication_error"}}
    server = Server(httpx.Response(401, json=body))
    with pytest.raises(lunos.AuthenticationError) as caught:
        await create(make_client(kind, server), stream=True)
    assert caught.value.body == body and caught.value.message == "bad key"


async def test_a_success_that_is_not_json(kind):
    server = Server(httpx.Response(200, text="hello"))
    with pytest.raises(lunos.APIResponseValidationError, match="not JSON"):
        await create(make_client(kind, server))


async def test_a_success_of_the_wrong_shape(kind):
    server = Server(httpx.Response(200, json={"choices": "many"}))
    with pytest.raises(lunos.APIResponseValidationError, match="ChatCompletion") as caught:
        await create(make_client(kind, server))
    assert caught.value.body == {"choices": "many"}


@pytest.mark.parametrize(
    ("error", "cls", "status"),
    [
        ({"message": "m", "type": "invalid_request_error", "param": "tools"}, lunos.BadRequestError, 400),
        ({"message": "m", "type": "rate_limit_error"}, lunos.RateLimitError, 429),
        ({"message": "m", "type": "upstream_error"}, lunos.InternalServerError, 502),
        ({"message": "m", "type": "timeout_error"}, lunos.InternalServerError, 504),
        ({"message": "m", "type": "whatever", "status": 403}, lunos.PermissionDeniedError, 403),
        ({"message": "m", "type": "x", "code": "404"}, lunos.NotFoundError, 404),
    ],
)
async def test_stream_error_event_maps_by_status_or_type(kind, error, cls, status):
    server = Server(sse_response([sse_event({"error": error})], **{"x-request-id": "req_9"}))
    stream = await create(make_client(kind, server), stream=True)
    with pytest.raises(cls) as caught:
        await collect(stream)
    assert type(caught.value) is cls
    assert caught.value.status_code == status
    assert caught.value.body == {"error": error}
    assert caught.value.message == "m"
    assert caught.value.request_id == "req_9"
    assert caught.value.param == error.get("param")


async def test_stream_error_event_of_unknown_kind_is_an_api_error(kind):
    server = Server(sse_response([sse_event({"error": {"message": "odd"}})]))
    stream = await create(make_client(kind, server), stream=True)
    with pytest.raises(lunos.APIError, match="odd") as caught:
        await collect(stream)
    assert not isinstance(caught.value, lunos.APIStatusError)
    assert caught.value.body == {"error": {"message": "odd"}}
