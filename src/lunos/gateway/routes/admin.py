"""POST/GET /admin/keys, DELETE /admin/keys/{id}, DELETE /admin/cache (master key only)."""

from __future__ import annotations

from ..asgi import Request, send_json
from ..errors import GatewayError
from ..params import validate_key_request
from ..validation import parse_json


async def create_key(gw, request: Request, send, principal) -> None:
    fields = validate_key_request(parse_json(await request.body(64 * 1024)))
    row, raw = await gw.store.create_key(fields.pop("name"), **fields)
    await gw.keysync.refresh()
    await send_json(send, 201, {**row, "key": raw})


async def list_keys(gw, request: Request, send, principal) -> None:
    await send_json(send, 200, {"object": "list", "data": await gw.store.list_keys()})


async def revoke_key(gw, request: Request, send, principal, key_id: str) -> None:
    row = await gw.store.revoke_key(key_id)
    if row is None:
        raise GatewayError(404, f"No key {key_id!r}", param="id", code="key_not_found")
    await gw.keysync.refresh()
    await send_json(send, 200, row)


async def clear_cache(gw, request: Request, send, principal) -> None:
    """Empty the response cache (docs/cache.md): `{"deleted": N}` entries."""
    try:
        deleted = await gw.cache.clear()
    except Exception as exc:  # Redis or the database is down
        raise GatewayError(503, f"The response cache's store is unavailable ({type(exc).__name__})",
                           code="cache_unavailable") from None
    await send_json(send, 200, {"object": "cache", "deleted": deleted})
