"""A raw HTTP/1.1 server on asyncio streams, for answers uvicorn would never write.

`answer(method, path, body)` returns the response as pieces of bytes (or (delay, bytes)
pairs, to pace them); the server writes them and closes the connection, so a response
without Content-Length or chunking ends at the close, as HTTP/1.1 allows.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Callable, Iterable

from .egress_proxy import _shutdown
from .harness import free_port

Piece = bytes | tuple[float, bytes]


def close_delimited(content_type: str, *pieces: Piece) -> list[Piece]:
    """A 200 whose body has neither a length nor chunking: it ends when the server closes."""
    head = f"HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\nconnection: close\r\n\r\n"
    return [head.encode(), *pieces]


class RawServer:
    def __init__(self, answer: Callable[[str, str, bytes], Iterable[Piece]],
                 tls: ssl.SSLContext | None = None) -> None:
        self.answer = answer
        self.tls = tls
        self.port = free_port()
        self.url = f"{'https://localhost' if tls else 'http://127.0.0.1'}:{self.port}"
        self.requests: list[tuple[str, str, bytes]] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> RawServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(5)
        return self

    async def _serve(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, ssl=self.tls)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            length = next((int(line.split(":", 1)[1]) for line in lines[1:]
                           if line.lower().startswith("content-length:")), 0)
            body = await reader.readexactly(length)
            self.requests.append((method, path, body))
            for piece in self.answer(method, path, body):
                if isinstance(piece, tuple):
                    await asyncio.sleep(piece[0])
                    piece = piece[1]
                writer.write(piece)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(_shutdown(self._server), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()
