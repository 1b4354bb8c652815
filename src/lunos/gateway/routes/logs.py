"""GET /v1/logs, GET /v1/logs/{id}, GET /v1/usage: the caller's own history (master: all)."""

from __future__ import annotations

from ..asgi import Request, send_json
from ..errors import GatewayError
from ..params import (
    cursor_filter,
    endpoint_filter,
    parse_time,
    status_filter,
    text_filter,
    whole_number,
)


def scope_key(request: Request, principal) -> str | None:
    """Whose rows: a key sees its own; the master sees all, or one key with `key_id`."""
    if principal.is_master:
        return text_filter(request.arg("key_id"), "key_id")
    return principal.key_id


async def list_logs(gw, request: Request, send, principal) -> None:
    rows, cursor = await gw.store.list_logs(
        key_id=scope_key(request, principal),
        model=text_filter(request.arg("model"), "model"),
        app_id=text_filter(request.arg("app_id"), "app_id"),
        status=status_filter(request.arg("status")),
        since=parse_time(request.arg("since"), "since"),
        until=parse_time(request.arg("until"), "until"),
        limit=whole_number(request.arg("limit"), "limit", default=50, maximum=500),
        cursor=cursor_filter(request.arg("cursor")),
        endpoint=endpoint_filter(request.arg("endpoint")),
    )
    await send_json(send, 200, {"object": "list", "data": rows, "next_cursor": cursor})


async def get_log(gw, request: Request, send, principal, row_id: str) -> None:
    row_id = text_filter(row_id, "id") or ""
    row = await gw.store.get_log(row_id, None if principal.is_master else principal.key_id)
    if row is None:  # another key's row looks exactly like a missing one
        raise GatewayError(404, f"No log entry {row_id!r}", param="id", code="log_not_found")
    await send_json(send, 200, row)


GROUPS = ("day", "model", "app_id", "provider", "key_id", "endpoint")


async def usage(gw, request: Request, send, principal) -> None:
    group = request.arg("group_by") or "day,model,app_id"
    fields = tuple(g.strip() for g in group.split(",") if g.strip())
    if not fields or any(f not in GROUPS for f in fields):
        raise GatewayError(400, f"'group_by' takes a comma list of {', '.join(GROUPS)}",
                           param="group_by")
    rows = await gw.store.usage(
        key_id=scope_key(request, principal),
        since=parse_time(request.arg("since"), "since"),
        until=parse_time(request.arg("until"), "until"),
        group_by=fields,
        model=text_filter(request.arg("model"), "model"),
        app_id=text_filter(request.arg("app_id"), "app_id"),
    )
    totals = {k: sum(r[k] for r in rows) for k in
              ("requests", "prompt_tokens", "completion_tokens", "total_tokens", "cost", "errors")}
    totals["cost"] = round(totals["cost"], 10)
    await send_json(send, 200, {"object": "usage", "group_by": list(fields), "data": rows,
                                "totals": totals})
