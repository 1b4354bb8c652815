"""GET /v1/models: the catalog (public)."""

from __future__ import annotations

from ..asgi import send_json


async def list_models(gw, request, send, principal) -> None:
    data = [info.public() for info in gw.catalog]
    provider = request.arg("provider")
    if provider:
        data = [m for m in data if m["provider"] == provider]
    await send_json(send, 200, {"object": "list", "data": data})
