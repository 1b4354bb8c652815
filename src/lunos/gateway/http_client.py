"""The gateway's upstream HTTP: `HttpClient.request` over a one-method `Transport` seam.

Every upstream call (providers, image and page fetches, search backends) goes through
`HttpClient.request`, which hands an `UpstreamRequest` to its transport's `send` and gets
an `UpstreamResponse` back. Tests can pass any object with that method (an in-process mock);
`transports.py` has an httpx-backed one. The default, `FastTransport`, is below.

The gateway makes one upstream call per request, so the default transport is on the hot
path. General clients (httpx, aiohttp) spend more CPU per request than the rest of the
gateway together; this one writes a request in one `write` and parses with httptools' C
parser, keeping keep-alive connections per origin.

Bodies stream: `response.aiter_bytes()` yields chunks as they arrive, with back-pressure
(reading pauses when the consumer lags). A body without length or chunking ends when the
server closes the connection (HTTP/1.1 allows it). Timeouts: connect, first byte (headers),
idle between body chunks; the caller enforces the total. A reused connection that the
server closed while idle is retried once on a fresh one, only when no byte of the response
came. Egress proxies come from the environment (`proxies.py`): plain http is sent to the
proxy in absolute form, https goes through a CONNECT tunnel with TLS inside it.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import httptools

from .proxies import Proxies, Proxy

_HIGH_WATER = 1 << 20  # pause reading above 1 MiB of unread body


class UpstreamConnectError(Exception):
    """Could not open a connection (refused, DNS, TLS, a proxy that refused the tunnel)."""


class UpstreamTimeout(Exception):
    def __init__(self, phase: str) -> None:
        super().__init__(f"upstream {phase} timeout")
        self.phase = phase  # "connect" | "first_byte" | "idle"


class UpstreamProtocolError(Exception):
    """The connection broke or the peer spoke broken HTTP."""


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float = 10.0
    first_byte: float = 120.0
    idle: float = 120.0


@dataclass(frozen=True, slots=True)
class Origin:
    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, url: str) -> tuple[Origin, str]:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        port = parts.port or (443 if scheme == "https" else 80)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        return cls(scheme, parts.hostname, port), target

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


@dataclass(slots=True)
class UpstreamRequest:
    """What a transport sends. `connect_to` opens the socket to that (ip, port) while the
    URL's host still names the server (Host header, TLS SNI, certificate check); through a
    proxy it is ignored (the proxy connects). `pooled=False`: the connection is not reused."""

    method: str
    url: str
    headers: Iterable[tuple[str, str]]
    body: bytes
    timeouts: Timeouts
    connect_to: tuple[str, int] | None = None
    pooled: bool = True


class UpstreamResponse:
    """Status, lower-cased headers and a body read once, as it arrives.

    Built directly it serves a body given in memory (`chunks`): what a mock transport
    returns. Transports subclass it and override `aiter_bytes` and `release`.
    """

    __slots__ = ("_chunks", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str] | None = None,
                 chunks: Iterable[bytes] = ()) -> None:
        self.status = status
        self.headers = headers or {}
        self._chunks = chunks

    async def aiter_bytes(self, idle: float | None = None) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk

    async def read(self, limit: int | None = None) -> bytes:
        parts: list[bytes] = []
        size = 0
        async for chunk in self.aiter_bytes():
            parts.append(chunk)
            size += len(chunk)
            if limit is not None and size > limit:
                self.release()
                raise UpstreamProtocolError(f"response body over {limit} bytes")
        return b"".join(parts)

    def release(self) -> None:
        """Done with the body (read whole or not): free the connection."""


class Transport(Protocol):
    """The seam: send one request, return once the response head is in."""

    async def send(self, request: UpstreamRequest) -> UpstreamResponse: ...


class HttpClient:
    """The entry point every upstream call uses; `transport` defaults to `FastTransport`."""

    def __init__(self, timeouts: Timeouts | None = None, transport: Transport | None = None) -> None:
        self.timeouts = timeouts or Timeouts()
        self.transport = transport if transport is not None else FastTransport()

    async def request(
        self,
        method: str,
        url: str,
        headers: Iterable[tuple[str, str]],
        body: bytes = b"",
        *,
        connect_to: tuple[str, int] | None = None,
        timeouts: Timeouts | None = None,
        pooled: bool = True,
    ) -> UpstreamResponse:
        """Send a request and wait for the response head; the body is read from the result.

        `connect_to`: see `UpstreamRequest` (the guarded fetch resolves once and connects to
        the address it checked).
        """
        return await self.transport.send(UpstreamRequest(
            method, url, headers, body, timeouts or self.timeouts, connect_to, pooled))

    async def aclose(self) -> None:
        close = getattr(self.transport, "aclose", None)
        if close is not None:
            await close()


def _expire(waiter: asyncio.Future, phase: str) -> None:
    """Timer callback: fail a pending wait with a timeout (cheaper than asyncio.wait_for)."""
    if not waiter.done():
        waiter.set_exception(UpstreamTimeout(phase))


def _parse_url(url: str) -> tuple[Origin, str]:
    return Origin.of(url)  # not cached: fetch and search URLs come from users


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection; serves one request at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.reused = False
        self._watchdog: asyncio.TimerHandle | None = None
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_done: asyncio.Future = self.loop.create_future()
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.complete = False
        self.keep_alive = True
        self.error: BaseException | None = None
        self.got_bytes = False
        self._waiter: asyncio.Future | None = None
        self._wait_since = 0.0
        self._paused = False
        self._stop_watchdog()

    # asyncio.Protocol
    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:  # pragma: no cover - never asked for
            self._fail(UpstreamProtocolError("unexpected protocol upgrade"))
        except httptools.HttpParserError as exc:
            self._fail(UpstreamProtocolError(f"invalid HTTP response: {exc}"))

    def connection_lost(self, exc) -> None:
        self.closed = True
        if self.complete:
            return
        if exc is None and self._ends_at_close():
            self.complete = True  # the close is the end of this body
            self._wake()
        else:
            self._fail(UpstreamProtocolError("connection closed before the response ended"))

    def _ends_at_close(self) -> bool:
        """A response whose body has neither a length nor chunking ends when the server
        closes the connection (RFC 9112 §6.3); httptools cannot be told of the close."""
        if not self.headers_done.done() or self.error is not None:
            return False
        return not any(name in (b"content-length", b"transfer-encoding") for name, _ in self.headers)

    def pause_writing(self) -> None:  # pragma: no cover - request bodies are small
        pass

    def resume_writing(self) -> None:  # pragma: no cover
        pass

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()
        if not self.headers_done.done():
            self.headers_done.set_result(None)

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > _HIGH_WATER and not self._paused and self.transport:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        self.complete = True
        self._wake()

    # helpers
    def _fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        if not self.headers_done.done():
            self.headers_done.set_exception(exc)
            self.headers_done.exception()  # mark retrieved
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # The idle timeout: one watchdog timer per response rather than a timer made and
    # cancelled for every body chunk (a stream has hundreds). It fires at the earliest
    # moment a wait could have expired, and re-arms for the wait in progress.
    def _check_idle(self, idle: float) -> None:
        self._watchdog = None
        waiter = self._waiter
        if waiter is None or waiter.done():
            return  # between waits: the next wait arms it again
        waited = self.loop.time() - self._wait_since
        if waited >= idle:
            waiter.set_exception(UpstreamTimeout("idle"))
        else:
            self._watchdog = self.loop.call_later(idle - waited, self._check_idle, idle)

    def _stop_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    async def next_chunk(self, idle: float) -> bytes | None:
        """The next body chunk, or None at the end of the body."""
        while True:
            if self.chunks:
                chunk = self.chunks.popleft()
                self.buffered -= len(chunk)
                if self._paused and self.buffered < _HIGH_WATER // 2 and self.transport:
                    self._paused = False
                    self.transport.resume_reading()
                return chunk
            if self.complete:
                self._stop_watchdog()
                return None
            if self.error is not None:
                self._stop_watchdog()
                raise self.error
            waiter = self._waiter = self.loop.create_future()
            self._wait_since = self.loop.time()
            if self._watchdog is None:
                self._watchdog = self.loop.call_later(idle, self._check_idle, idle)
            try:
                await waiter
            finally:
                self._waiter = None

    def reusable(self) -> bool:
        return self.complete and self.keep_alive and not self.closed and self.error is None

    def close(self) -> None:
        self.closed = True
        self.chunks.clear()  # unread body: the parser cycle keeps a closed connection until GC
        self._stop_watchdog()
        if self.transport is not None:
            self.transport.close()


class _PooledResponse(UpstreamResponse):
    __slots__ = ("_conn", "_idle", "_key", "_released", "_transport")

    def __init__(self, transport: FastTransport, key, conn: _Connection, idle: float) -> None:
        self._transport = transport
        self._key = key  # the pool this connection goes back to; None: close it after
        self._conn = conn
        self._idle = idle
        self._released = False
        self.status = conn.status
        self.headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in conn.headers}

    async def aiter_bytes(self, idle: float | None = None) -> AsyncIterator[bytes]:
        idle = idle if idle is not None else self._idle
        try:
            while True:
                chunk = await self._conn.next_chunk(idle)
                if chunk is None:
                    return
                yield chunk
        finally:
            self.release()

    def release(self) -> None:
        """Give the connection back to the pool when the body was read whole, else close it."""
        if self._released:
            return
        self._released = True
        self._transport._release(self._key, self._conn)


class _Tunnel(asyncio.Protocol):
    """Reads a proxy's answer to CONNECT (its head only), before TLS starts on the socket."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.reply: asyncio.Future = loop.create_future()
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.reply.done() and (b"\r\n\r\n" in self.buffer or len(self.buffer) > 65536):
            self.reply.set_result(self.buffer.split(b"\r\n", 1)[0])

    def connection_lost(self, exc) -> None:
        if not self.reply.done():
            self.reply.set_result(b"")


class FastTransport:
    """The default transport: pooled HTTP/1.1 on asyncio protocols and httptools."""

    def __init__(self, max_idle_per_origin: int = 256, proxies: Proxies | None = None) -> None:
        self._idle: dict[object, list[_Connection]] = {}
        self._max_idle = max_idle_per_origin
        self._ssl: ssl.SSLContext | None = None
        self.proxies = proxies if proxies else None  # None: every call goes direct

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()  # honours SSL_CERT_FILE / SSL_CERT_DIR
        return self._ssl

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        origin, target = _parse_url(request.url)
        proxies = self.proxies
        proxy = proxies.select(origin.scheme, origin.host, origin.port) if proxies is not None else None
        connect_to = request.connect_to if proxy is None else None
        pooled = request.pooled and connect_to is None
        key = (origin if proxy is None else (origin, proxy)) if pooled else None
        timeouts = request.timeouts
        method = request.method
        head = [f"{method} {target} HTTP/1.1\r\nhost: {origin.host_header}\r\n"]
        if proxy is not None and origin.scheme == "http":  # absolute form, to the proxy itself
            head[0] = f"{method} http://{origin.host_header}{target} HTTP/1.1\r\nhost: {origin.host_header}\r\n"
            if proxy.authorization:
                head.append(f"proxy-authorization: {proxy.authorization}\r\n")
        for name, value in request.headers:
            if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
                raise ValueError("header contains a line break")
            head.append(f"{name}: {value}\r\n")
        body = request.body
        if body or method in ("POST", "PUT", "PATCH"):
            head.append(f"content-length: {len(body)}\r\n")
        head.append("\r\n")
        payload = "".join(head).encode("latin-1") + body
        for attempt in range(2):
            conn = self._take_idle(key) if key is not None else None
            if conn is None:
                conn = await self._connect(origin, connect_to, proxy, timeouts.connect)
            if key is None:
                conn.keep_alive = False
            conn.transport.write(payload)
            timer = conn.loop.call_later(timeouts.first_byte, _expire, conn.headers_done, "first_byte")
            try:
                await conn.headers_done
            except UpstreamTimeout:
                conn.close()
                raise
            except UpstreamProtocolError:
                conn.close()
                if conn.reused and not conn.got_bytes and attempt == 0:
                    continue  # the server dropped an idle keep-alive connection
                raise
            except BaseException:
                conn.close()
                raise
            finally:
                timer.cancel()
            return _PooledResponse(self, key, conn, timeouts.idle)
        raise UpstreamProtocolError("connection closed")  # pragma: no cover

    def _take_idle(self, key) -> _Connection | None:
        pool = self._idle.get(key)
        while pool:
            conn = pool.pop()
            if not conn.closed and conn.transport is not None and not conn.transport.is_closing():
                conn._reset()
                conn.reused = True
                return conn
        return None

    async def _connect(self, origin: Origin, connect_to, proxy: Proxy | None,
                       timeout: float) -> _Connection:
        try:
            return await asyncio.wait_for(self._open(origin, connect_to, proxy), timeout)
        except asyncio.TimeoutError:
            raise UpstreamTimeout("connect") from None
        except (OSError, ssl.SSLError) as exc:
            where = f"{origin.host}:{origin.port}" + (f" through proxy {proxy}" if proxy else "")
            raise UpstreamConnectError(f"cannot connect to {where}: "
                                       f"{exc.strerror or exc.__class__.__name__}") from None

    async def _open(self, origin: Origin, connect_to, proxy: Proxy | None) -> _Connection:
        loop = asyncio.get_running_loop()
        tls = self._ssl_context() if origin.scheme == "https" else None
        if proxy is None:
            host, port = connect_to or (origin.host, origin.port)
            _, conn = await loop.create_connection(
                lambda: _Connection(loop), host, port, ssl=tls,
                server_hostname=origin.host if tls else None,
            )
            return conn
        if tls is None:  # plain http: requests go to the proxy itself
            _, conn = await loop.create_connection(lambda: _Connection(loop), proxy.host, proxy.port)
            return conn
        raw, tunnel = await loop.create_connection(lambda: _Tunnel(loop), proxy.host, proxy.port)
        authority = f"[{origin.host}]:{origin.port}" if ":" in origin.host else f"{origin.host}:{origin.port}"
        connect = f"CONNECT {authority} HTTP/1.1\r\nhost: {authority}\r\n"
        if proxy.authorization:
            connect += f"proxy-authorization: {proxy.authorization}\r\n"
        raw.write((connect + "\r\n").encode("latin-1"))
        try:
            status_line = await tunnel.reply
            fields = status_line.split(None, 2)
            if len(fields) < 2 or not fields[1].startswith(b"2"):
                answer = fields[1].decode("latin-1", "replace") if len(fields) > 1 else "nothing"
                raise UpstreamConnectError(f"proxy {proxy} refused the tunnel to "
                                           f"{origin.host}:{origin.port}: HTTP {answer}")
            conn = _Connection(loop)
            conn.transport = await loop.start_tls(raw, conn, tls, server_hostname=origin.host)
        except BaseException:
            raw.close()
            raise
        return conn

    def _release(self, key, conn: _Connection) -> None:
        if key is None or not conn.reusable():
            conn.close()
            return
        pool = self._idle.setdefault(key, [])
        if len(pool) >= self._max_idle:
            conn.close()
        else:
            pool.append(conn)

    async def aclose(self) -> None:
        for pool in self._idle.values():
            for conn in pool:
                conn.close()
        self._idle.clear()
