"""The upstream HTTP client's timeouts, against a raw server that paces its body."""

from __future__ import annotations

import asyncio

import pytest

from lunos.gateway.http_client import HttpClient, Timeouts, UpstreamTimeout


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
