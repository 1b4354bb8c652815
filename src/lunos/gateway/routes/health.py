"""GET /healthz: liveness; GET /readyz: readiness (the database reached and migrated)."""

from __future__ import annotations

from ..asgi import send_bytes
from ..errors import GatewayError

_OK = b'{"status":"ok"}'
_READY = b'{"status":"ready"}'


async def healthz(gw, request, send, principal) -> None:
    await send_bytes(send, 200, _OK)


async def readyz(gw, request, send, principal) -> None:
    """503 while the database has not been reached since start-up (the gateway retries in
    the background); a load balancer sends traffic only once this is 200."""
    if not gw.ready:
        raise GatewayError(503, "The gateway has not reached its database yet",
                           code="store_unavailable", headers={"retry-after": "1"})
    await send_bytes(send, 200, _READY)


async def openapi(gw, request, send, principal) -> None:
    from ..asgi import send_json
    from ..openapi import document

    await send_json(send, 200, document())
