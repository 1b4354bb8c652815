"""GET /healthz: liveness (the process answers); GET /readyz: readiness (the database, and
Redis when configured, answer now)."""

from __future__ import annotations

import asyncio
import logging

from ..asgi import send_bytes
from ..errors import GatewayError

log = logging.getLogger("lunos")

_OK = b'{"status":"ok"}'
_READY = b'{"status":"ready"}'
PING_TIMEOUT = 2.0  # seconds each dependency has to answer a readiness probe


async def healthz(gw, request, send, principal) -> None:
    await send_bytes(send, 200, _OK)


async def readyz(gw, request, send, principal) -> None:
    """200 only when the database (migrated since start-up) and Redis, if configured, answer
    a round trip now; else 503 naming what is down, so a load balancer moves traffic away
    while the process itself stays alive (/healthz)."""
    if not gw.ready:
        raise _not_ready("The gateway has not reached its database yet", "store_unavailable")
    checks = [("database", gw.store.ping, "store_unavailable")]
    redis_ping = getattr(gw.limits.backend, "ping", None) if gw.limits else None
    if redis_ping is not None:
        checks.append(("Redis", redis_ping, "limits_store_unavailable"))
    for name, ping, code in checks:
        try:
            await asyncio.wait_for(ping(), PING_TIMEOUT)
        except Exception as exc:  # any failure to answer means not ready
            log.warning("readiness: %s does not answer (%s)", name, exc.__class__.__name__)
            raise _not_ready(f"The gateway's {name} does not answer", code) from None
    await send_bytes(send, 200, _READY)


def _not_ready(message: str, code: str) -> GatewayError:
    return GatewayError(503, message, code=code, headers={"retry-after": "1"})


async def openapi(gw, request, send, principal) -> None:
    from ..asgi import send_json
    from ..openapi import document

    await send_json(send, 200, document())
