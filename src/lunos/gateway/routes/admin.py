"""POST/GET /admin/keys, DELETE /admin/keys/{id} (master key only)."""

from __future__ import annotations

from ..asgi import Request, send_json
from ..errors import GatewayError
from ..validation import parse_json
from .logs import parse_time


def _positive(body: dict, name: str, kind) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, kind) or value < 0:
        raise GatewayError(400, f"'{name}' must be a non-negative number", param=name)


def validate_key_request(body) -> dict:
    if not isinstance(body, dict):
        raise GatewayError(400, "The request body must be a JSON object")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise GatewayError(400, "'name' must be a non-empty string of at most 200 characters",
                           param="name")
    _positive(body, "budget_usd", (int, float))
    _positive(body, "rpm", int)
    _positive(body, "tpm", int)
    allowed = body.get("allowed_models")
    if allowed is not None and (not isinstance(allowed, list)
                                or not all(isinstance(m, str) and m for m in allowed)):
        raise GatewayError(400, "'allowed_models' must be an array of model ids",
                           param="allowed_models")
    expires = body.get("expires_at")
    expires_at = None
    if expires is not None:
        expires_at = parse_time(str(expires), "expires_at")
    unknown = set(body) - {"name", "budget_usd", "rpm", "tpm", "allowed_models", "expires_at"}
    if unknown:
        first = sorted(unknown)[0]
        raise GatewayError(400, f"Unknown field {first!r}", param=first)
    return {
        "name": name.strip(),
        "budget_usd": body.get("budget_usd"),
        "rpm": body.get("rpm"),
        "tpm": body.get("tpm"),
        "allowed_models": allowed,
        "expires_at": expires_at,
    }


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
