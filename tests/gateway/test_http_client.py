"""The upstream HTTP client against raw servers: timeouts, bodies that end at the close, and
egress proxies (a local CONNECT/forward proxy that records what it saw), on both transports."""

from __future__ import annotations

import asyncio
import base64
import os
import ssl
from urllib.parse import quote

import pytest

from lunos.gateway.http_client import (
    HttpClient,
    Timeouts,
    UpstreamConnectError,
    UpstreamProtocolError,
    UpstreamTimeout,
)
from lunos.gateway.transports import make_transport
from tests.standins.egress_proxy import EgressProxy
from tests.standins.images import make_cert
from tests.standins.raw_http import RawServer, close_delimited


async def paced_server(gaps: list[float]):
    """A server answering every request with chunked body parts, `gaps[i]` seconds before
    part i; returns (server, url)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:  # keep-alive: one request after another
            try:
                await reader.readuntil(b"\r\n\r\n")
                await reader.readexactly(2)  # the body: b"{}"
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()
                return
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n"
                         b"transfer-encoding: chunked\r\n\r\n")
            for i, gap in enumerate(gaps):
                await asyncio.sleep(gap)
                part = f"part{i};".encode()
                writer.write(b"%x\r\n%s\r\n" % (len(part), part))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/v1/chat/completions"


async def read_all(client: HttpClient, url: str) -> bytes:
    response = await client.request("POST", url, [("content-type", "application/json")], b"{}")
    return b"".join([chunk async for chunk in response.aiter_bytes()])


async def test_a_body_slower_in_total_than_the_idle_timeout_is_read_whole():
    """Each gap is under the idle timeout, their sum is well over it: no timeout."""
    server, url = await paced_server([0.0] + [0.15] * 8)
    client = HttpClient(Timeouts(connect=2, first_byte=2, idle=0.4))
    try:
        body = await read_all(client, url)
        assert body == b"".join(f"part{i};".encode() for i in range(9))
        # and the connection, reused, is watched afresh
        assert await read_all(client, url) == body
    finally:
        await client.aclose()
        server.close()


async def test_a_gap_over_the_idle_timeout_fails_the_read():
    server, url = await paced_server([0.0, 0.1, 1.0])
    client = HttpClient(Timeouts(connect=2, first_byte=2, idle=0.3))
    try:
        response = await client.request("POST", url, [], b"{}")
        got = []
        with pytest.raises(UpstreamTimeout) as caught:
            async for chunk in response.aiter_bytes():
                got.append(chunk)
        assert caught.value.phase == "idle"
        assert got == [b"part0;", b"part1;"]
    finally:
        await client.aclose()
        server.close()


# ---------------------------------------------------------------- bodies that end at the close
# HTTP/1.1 lets a response without Content-Length or chunking end when the server closes the
# connection; both transports must read such a body whole, JSON or a paced SSE stream.

@pytest.fixture(params=["fast", "httpx"])
def transport_name(request) -> str:
    return request.param


def client_with(name: str, timeouts: Timeouts | None = None) -> HttpClient:
    # The proxy variables as the settings would read them from this (patched) environment.
    return HttpClient(timeouts or Timeouts(connect=2, first_byte=5, idle=5),
                      make_transport(name, dict(os.environ)))


@pytest.fixture
def raw_servers():
    started: list[RawServer] = []

    def start(answer, tls=None) -> RawServer:
        started.append(RawServer(answer, tls).start())
        return started[-1]

    yield start
    for server in started:
        server.stop()


async def test_a_json_body_that_ends_at_the_close_is_read_whole(transport_name, raw_servers):
    server = raw_servers(lambda *_: close_delimited("application/json", b'{"answer": ', (0.05, b"42}")))
    client = client_with(transport_name)
    try:
        response = await client.request("POST", server.url + "/v1/chat/completions", [], b"{}")
        assert response.status == 200
        assert response.headers["content-type"] == "application/json"
        assert await response.read() == b'{"answer": 42}'
    finally:
        await client.aclose()


async def test_an_sse_stream_that_ends_at_the_close_arrives_piece_by_piece(transport_name, raw_servers):
    events = [b"data: {\"n\": %d}\n\n" % i for i in range(4)] + [b"data: [DONE]\n\n"]
    server = raw_servers(lambda *_: close_delimited("text/event-stream", *((0.05, e) for e in events)))
    client = client_with(transport_name)
    try:
        response = await client.request("POST", server.url + "/v1/chat/completions", [], b"{}")
        got = [chunk async for chunk in response.aiter_bytes()]
        assert b"".join(got) == b"".join(events)
        assert len(got) >= 3  # paced pieces arrive as they are written, not at the close
    finally:
        await client.aclose()


async def test_a_body_that_ends_at_the_close_over_tls_is_read_whole(transport_name, raw_servers,
                                                                      tmp_path, monkeypatch):
    cert, key = make_cert(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    server = raw_servers(lambda *_: close_delimited("application/json", b'{"ok": ', (0.05, b"true}")), tls)
    client = client_with(transport_name)
    try:
        response = await client.request("GET", server.url + "/", [])
        assert await response.read() == b'{"ok": true}'
    finally:
        await client.aclose()


@pytest.mark.parametrize("head", [
    b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n",
    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n20\r\n",
], ids=["content-length", "chunked"])
async def test_a_body_with_a_length_or_chunks_cut_short_by_the_close_is_an_error(
        transport_name, raw_servers, head):
    server = raw_servers(lambda *_: [head, b"partial"])
    client = client_with(transport_name)
    try:
        response = await client.request("GET", server.url + "/", [])
        with pytest.raises(UpstreamProtocolError):
            await response.read()
    finally:
        await client.aclose()


# ---------------------------------------------------------------- egress proxies

JSON_OK = [b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n",
           b'{"ok": true}'[:11]]


@pytest.fixture
def proxy():
    p = EgressProxy(credentials=("egress", "s3cr:et p@ss")).start()
    yield p
    p.stop()


def proxied(monkeypatch, proxy: EgressProxy, **extra: str) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY",
                 "http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    url = proxy.url("egress", quote("s3cr:et p@ss", safe=""))
    monkeypatch.setenv("HTTP_PROXY", url)
    monkeypatch.setenv("https_proxy", url)
    for name, value in extra.items():
        monkeypatch.setenv(name, value)


async def test_plain_http_goes_to_the_proxy_in_absolute_form_with_its_credentials(
        transport_name, raw_servers, proxy, monkeypatch):
    proxied(monkeypatch, proxy)
    server = raw_servers(lambda *_: close_delimited("application/json", b'{"via": "proxy"}'))
    client = client_with(transport_name)
    try:
        response = await client.request("POST", server.url + "/v1/x?y=1", [("authorization", "Bearer k")],
                                        b'{"q": 1}')
        assert await response.read() == b'{"via": "proxy"}'
    finally:
        await client.aclose()
    method, target, headers = proxy.seen[0]
    assert (method, target) == ("POST", server.url + "/v1/x?y=1")
    assert headers["proxy-authorization"] == "Basic " + base64.b64encode(b"egress:s3cr:et p@ss").decode()
    assert headers["authorization"] == "Bearer k"
    assert server.requests == [("POST", "/v1/x?y=1", b'{"q": 1}')]


async def test_https_goes_through_a_connect_tunnel_with_tls_inside(
        transport_name, raw_servers, proxy, monkeypatch, tmp_path):
    proxied(monkeypatch, proxy)
    cert, key = make_cert(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    server = raw_servers(lambda *_: close_delimited("text/event-stream", b"data: 1\n\n", (0.05, b"data: 2\n\n")),
                         tls)
    client = client_with(transport_name)
    try:
        response = await client.request("POST", server.url + "/v1/chat/completions", [], b"{}")
        assert await response.read() == b"data: 1\n\ndata: 2\n\n"
    finally:
        await client.aclose()
    assert proxy.targets() == [f"CONNECT localhost:{server.port}"]
    assert "proxy-authorization" in proxy.seen[0][2]
    assert server.requests == [("POST", "/v1/chat/completions", b"{}")]  # TLS ended at the server


async def test_a_proxy_that_refuses_the_tunnel_is_a_connect_error_without_the_credentials(
        transport_name, raw_servers, proxy, monkeypatch):
    proxied(monkeypatch, proxy)
    monkeypatch.setenv("https_proxy", proxy.url("egress", "wrong-secret"))
    client = client_with(transport_name)
    try:
        with pytest.raises(UpstreamConnectError) as caught:
            await client.request("GET", "https://localhost:9/", [])
    finally:
        await client.aclose()
    assert "407" in str(caught.value)
    assert "wrong-secret" not in str(caught.value) and "egress" not in str(caught.value)


async def test_no_proxy_hosts_are_reached_directly(transport_name, raw_servers, proxy, monkeypatch):
    proxied(monkeypatch, proxy, NO_PROXY="example.com,127.0.0.1")
    server = raw_servers(lambda *_: close_delimited("application/json", b"{}"))
    client = client_with(transport_name)
    try:
        response = await client.request("GET", server.url + "/", [])
        assert await response.read() == b"{}"
    finally:
        await client.aclose()
    assert proxy.seen == []
    assert server.requests == [("GET", "/", b"")]
