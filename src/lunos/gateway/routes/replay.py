"""POST /v1/logs/{id}/replay (SPEC §12): the caller's traced request run on other models."""

from __future__ import annotations

from .. import replay as replays
from ..asgi import Request, send_json
from ..errors import GatewayError
from ..validation import parse_json
from .logs import get_row


async def replay(gw, request: Request, send, principal, path: str) -> None:
    row_id, _, action = path.rpartition("/")
    if action != "replay" or not row_id or "/" in row_id:
        raise GatewayError(404, f"No route POST /v1/logs/{path}", code="route_not_found")
    original = await get_row(gw, principal, row_id)
    models, overrides = replays.replay_request(parse_json(await request.body(gw.settings.max_body_bytes)))
    data = await replays.replay(gw, principal, original, models, overrides, request.header(b"x-app-id"))
    await send_json(send, 200, {"object": "list", "replay_of": original["id"], "data": data})
