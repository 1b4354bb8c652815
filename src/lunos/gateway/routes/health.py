"""GET /healthz: liveness."""

from __future__ import annotations

from ..asgi import send_bytes

_OK = b'{"status":"ok"}'


async def healthz(gw, request, send, principal) -> None:
    await send_bytes(send, 200, _OK)


async def openapi(gw, request, send, principal) -> None:
    from ..asgi import send_json
    from ..openapi import document

    await send_json(send, 200, document())
