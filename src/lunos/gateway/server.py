"""Run the gateway under uvicorn (uvloop + httptools)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import shutil
import sys
import tempfile

from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .app import LunosApp, create_app, describe_store_error
from .asgi import new_request_id
from .config import Settings, load_settings, share_with_workers
from .keys import master_key
from .limits import SHARED_LIMITS_ENV, create_shared_file
from .store import Store


def app_from_env() -> LunosApp:
    """The app factory each worker process calls (settings come from the environment)."""
    settings = load_settings()  # the file named by LUNOS_CONFIG, then the environment
    return create_app(settings)


class Protocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline on request headers.

    uvicorn arms no timer while a request's headers arrive, so a client that opens a
    connection and trickles (or never sends) its headers would hold it forever. Here every
    request must have its headers in within `header_timeout` seconds of its first byte (or
    of the connection opening), else it gets a 408 in OpenAI's error shape and the
    connection is closed. One sweeper task checks every connection a few times a second
    (a timer per request would cost more). The body has its own deadline (`Request.body`).
    """

    TICK = 0.25
    sweeper: asyncio.Task | None = None

    def __init__(self, *args, header_timeout: float | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout
        self.waiting_since: float | None = None  # when the headers being waited for were due to start

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        if self.header_timeout:
            self.waiting_since = self.loop.time()
            sweeper = Protocol.sweeper
            if sweeper is None or sweeper.done() or sweeper.get_loop() is not self.loop:
                Protocol.sweeper = self.loop.create_task(_sweep(self.connections, self.loop))

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self.header_timeout and self.waiting_since is None:
            self.waiting_since = self.loop.time()

    def on_headers_complete(self) -> None:
        self.waiting_since = None
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self.waiting_since = None  # the keep-alive timer covers an idle connection

    def headers_late(self, now: float) -> bool:
        return self.waiting_since is not None and now - self.waiting_since > self.header_timeout

    def refuse_late(self) -> None:
        self.waiting_since = None
        if not self.transport.is_closing():
            self._refuse(408, f"The request headers were not received within {self.header_timeout:g} s",
                         "request_timeout", "timeout_error")

    def send_400_response(self, msg: str) -> None:
        self._refuse(400, msg, "invalid_http", "invalid_request_error")

    def _refuse(self, status: int, message: str, code: str, kind: str) -> None:
        """Answer before the app could (no request was parsed) and close the connection."""
        import orjson

        body = orjson.dumps({"error": {"message": message, "type": kind, "param": None, "code": code}})
        reason = b"Request Timeout" if status == 408 else b"Bad Request"
        head = b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n" \
               b"x-request-id: %s\r\nconnection: close\r\n\r\n" % (status, reason, len(body),
                                                                  new_request_id().encode())
        self.transport.write(head + body)
        self.transport.close()


async def _sweep(connections: set, loop) -> None:
    """Close the connections whose request headers are late (see `Protocol`)."""
    while connections:
        await asyncio.sleep(Protocol.TICK)
        now = loop.time()
        for connection in list(connections):
            if isinstance(connection, Protocol) and connection.headers_late(now):
                connection.refuse_late()


def protocol(settings: Settings):
    return functools.partial(Protocol, header_timeout=settings.header_read_timeout)


async def prepare_store(settings: Settings, key: str) -> None:
    """Migrate once, before any worker starts, and record the master key's hash."""
    store = Store.open(settings.db_url())
    try:
        await store.migrate()
        await store.set_master(key)
    finally:
        await store.close()


@contextlib.contextmanager
def _shared_limits(settings: Settings):
    """Without Redis, the workers share rate-limit and budget counters through one SQLite
    file made for this run (in a private temporary directory, removed at exit)."""
    if settings.redis_url:
        yield
        return
    folder = tempfile.mkdtemp(prefix="lunos-limits-")  # mode 0700
    path = os.path.join(folder, "limits.db")
    create_shared_file(path)
    share_with_workers(SHARED_LIMITS_ENV, path)
    try:
        yield
    finally:
        share_with_workers(SHARED_LIMITS_ENV, None)
        shutil.rmtree(folder, ignore_errors=True)


def serve(settings: Settings) -> None:
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    key, path = master_key(settings.master_key, settings.home)
    if path is not None:
        # Workers read the same file; the key itself is never printed.
        print(f"lunos: master key in {path} (mode 0600)", flush=True)
    try:
        asyncio.run(prepare_store(settings, key))
    except ArgumentError as exc:  # an unusable URL: a setting to fix, not a server to start
        raise SystemExit(f"lunos: LUNOS_DATABASE_URL / database_url: {exc}") from None
    except (SQLAlchemyError, OSError) as exc:
        # Start anyway: each worker retries, and /readyz answers 503 until the store is up.
        print(f"lunos: the database is unreachable ({describe_store_error(exc)}); "
              "starting anyway", file=sys.stderr, flush=True)
    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:  # pragma: no cover - Windows
        loop = "asyncio"
    common = dict(
        host=settings.host,
        port=settings.port,
        loop=loop,
        http=protocol(settings),
        lifespan="on",
        access_log=settings.access_log,
        log_level="info",
        timeout_graceful_shutdown=settings.shutdown_grace,
        server_header=False,
        proxy_headers=False,  # no X-Forwarded-* rewriting on the hot path
    )
    if settings.workers > 1:
        config = uvicorn.Config("lunos.gateway.server:app_from_env", factory=True,
                                workers=settings.workers, **common)
    else:
        config = uvicorn.Config(create_app(settings), **common)
    # Every worker listens on the API socket and, when set, on the metrics address.
    sockets = [config.bind_socket()]
    if settings.metrics_address is not None:
        sockets.append(_bind(*settings.metrics_address))
    if settings.workers > 1:
        with _shared_limits(settings):
            Multiprocess(config, sockets=sockets).run()
        return
    server = uvicorn.Server(config)
    server.run(sockets=sockets)
    if not server.started:
        raise SystemExit(3)


def _bind(host: str, port: int):
    """A listening socket for the metrics address, shared with the workers like the API's."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        raise SystemExit(f"lunos: cannot listen on LUNOS_METRICS_ADDRESS {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock
