"""The floor: a byte pipe between the client and the stand-in, with no HTTP work at all.

    python bench/pipe.py --port 0 --upstream 127.0.0.1:PORT

Each client connection gets its own connection to the upstream; bytes are passed both ways
as they arrive (uvloop protocols: no parsing, no tasks, no copies beyond the kernel's). Its
CPU per request or per relayed event is what any Python gateway on this machine pays before
it does anything: one read and one write per event, and the event loop's wake-ups. Prints
`pipe listening on PORT` when ready.
"""

from __future__ import annotations

import argparse
import asyncio

import uvloop


class Upstream(asyncio.Protocol):
    def __init__(self, client: Client) -> None:
        self.client = client

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.client.transport.write(data)

    def connection_lost(self, exc) -> None:
        self.client.transport.close()


class Client(asyncio.Protocol):
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.upstream: Upstream | None = None
        self.pending: list[bytes] = []

    def connection_made(self, transport) -> None:
        self.transport = transport
        asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, self.upstream = await loop.create_connection(lambda: Upstream(self), self.host, self.port)
        except OSError:
            self.transport.close()
            return
        for data in self.pending:
            self.upstream.transport.write(data)
        self.pending.clear()

    def data_received(self, data: bytes) -> None:
        if self.upstream is None:
            self.pending.append(data)
        else:
            self.upstream.transport.write(data)

    def connection_lost(self, exc) -> None:
        if self.upstream is not None:
            self.upstream.transport.close()


async def serve(port: int, upstream: str) -> None:
    host, _, up_port = upstream.rpartition(":")
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Client(host, int(up_port)), "127.0.0.1", port,
                                      backlog=4096)
    print(f"pipe listening on {server.sockets[0].getsockname()[1]}", flush=True)
    await server.serve_forever()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--upstream", required=True, help="host:port of the stand-in")
    args = p.parse_args()
    uvloop.run(serve(args.port, args.upstream))


if __name__ == "__main__":
    main()
