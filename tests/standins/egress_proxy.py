"""A small egress proxy (CONNECT for https, absolute-form forwarding for http) that records
what it was asked, as a corporate proxy's log would.

`seen` holds one entry per request: (method, target, headers), target being `host:port` for
CONNECT and the absolute URL otherwise. With `credentials=(user, password)` a request
without the matching `Proxy-Authorization` gets 407. Forwarded requests are sent upstream
with `connection: close`, one request per client connection, so each is recorded.
"""

from __future__ import annotations

import asyncio
import base64
import threading
from urllib.parse import urlsplit

from .harness import free_port
from .tcp_proxy import pipe


class EgressProxy:
    def __init__(self, credentials: tuple[str, str] | None = None) -> None:
        self.credentials = credentials
        self.port = free_port()
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def url(self, user: str | None = None, password: str | None = None) -> str:
        auth = f"{user}:{password}@" if user is not None else ""
        return f"http://{auth}127.0.0.1:{self.port}"

    def start(self) -> EgressProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(5)
        return self

    async def _serve(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    def targets(self) -> list[str]:
        return [f"{method} {target}" for method, target, _ in self.seen]

    def _authorized(self, headers: dict[str, str]) -> bool:
        if self.credentials is None:
            return True
        expected = base64.b64encode(":".join(self.credentials).encode()).decode()
        return headers.get("proxy-authorization") == f"Basic {expected}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        self.seen.append((method, target, headers))
        if not self._authorized(headers):
            writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                         b"proxy-authenticate: Basic realm=\"egress\"\r\ncontent-length: 0\r\n"
                         b"connection: close\r\n\r\n")
            await writer.drain()
            writer.close()
            return
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            try:
                up_reader, up_writer = await asyncio.open_connection(host.strip("[]"), int(port))
            except OSError:
                writer.write(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")
                writer.close()
                return
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            parts = urlsplit(target)
            try:
                up_reader, up_writer = await asyncio.open_connection(
                    parts.hostname, parts.port or 80)
            except OSError:
                writer.write(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")
                writer.close()
                return
            path = parts.path or "/"
            if parts.query:
                path += "?" + parts.query
            forwarded = [f"{method} {path} {version}"]
            forwarded += [f"{name}: {value}" for name, value in headers.items()
                          if name not in ("proxy-authorization", "connection")]
            forwarded.append("connection: close")
            up_writer.write(("\r\n".join(forwarded) + "\r\n\r\n").encode("latin-1"))
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(_shutdown(self._server), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()


async def _shutdown(server: asyncio.AbstractServer) -> None:
    """Close the listener and end every connection task, so nothing outlives the loop."""
    server.close()
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
