"""GET /v1/logs, GET /v1/logs/{id}, GET /v1/usage: the caller's own history (master: all)."""

from __future__ import annotations

from ..asgi import Request, send_json
from ..errors import GatewayError
from ..params import (
    cursor_filter,
    endpoint_filter,
    order_filter,
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


def key_filter(request: Request, principal) -> str | None:
    """`key`: a key id or name, for the master only (a key sees its own rows anyway)."""
    key = text_filter(request.arg("key"), "key")
    if key and not principal.is_master:
        raise GatewayError(403, "Only the master key may filter by 'key'", param="key",
                           code="master_key_required")
    return key


async def list_logs(gw, request: Request, send, principal) -> None:
    rows, cursor, total = await gw.store.list_logs(
        key_id=scope_key(request, principal),
        key=key_filter(request, principal),
        q=text_filter(request.arg("q"), "q"),
        session_id=text_filter(request.arg("session_id"), "session_id"),
        requested_model=text_filter(request.arg("requested_model"), "requested_model"),
        order=order_filter(request.arg("order")),
        with_total=True,
        model=text_filter(request.arg("model"), "model"),
        app_id=text_filter(request.arg("app_id"), "app_id"),
        status=status_filter(request.arg("status")),
        since=parse_time(request.arg("since"), "since"),
        until=parse_time(request.arg("until"), "until"),
        limit=whole_number(request.arg("limit"), "limit", default=50, maximum=500),
        cursor=cursor_filter(request.arg("cursor")),
        endpoint=endpoint_filter(request.arg("endpoint")),
    )
    await send_json(send, 200, {"object": "list", "data": rows, "next_cursor": cursor,
                                "total": total})


async def get_row(gw, principal, row_id: str) -> dict:
    """The caller's row with this id (master: anyone's), or a 404."""
    row_id = text_filter(row_id, "id") or ""
    row = await gw.store.get_log(row_id, None if principal.is_master else principal.key_id)
    if row is None:  # another key's row looks exactly like a missing one
        raise GatewayError(404, f"No log entry {row_id!r}", param="id", code="log_not_found")
    return row


async def get_log(gw, request: Request, send, principal, row_id: str) -> None:
    await send_json(send, 200, await get_row(gw, principal, row_id))


GROUPS = ("hour", "day", "model", "app_id", "provider", "key_id", "key", "endpoint")


async def usage(gw, request: Request, send, principal) -> None:
    group = request.arg("group_by") or "day,model,app_id"
    fields = tuple(g.strip() for g in group.split(",") if g.strip())
    if not fields or any(f not in GROUPS for f in fields):
        raise GatewayError(400, f"'group_by' takes a comma list of {', '.join(GROUPS)}",
                           param="group_by")
    if not principal.is_master and ("key" in fields or "key_id" in fields):
        raise GatewayError(403, "Only the master key may group usage by key", param="group_by",
                           code="master_key_required")
    rows = await gw.store.usage(
        key_id=scope_key(request, principal),
        since=parse_time(request.arg("since"), "since"),
        until=parse_time(request.arg("until"), "until"),
        group_by=fields,
        model=text_filter(request.arg("model"), "model"),
        app_id=text_filter(request.arg("app_id"), "app_id"),
        endpoint=endpoint_filter(request.arg("endpoint")),
        percentiles=True,
    )
    if "key" in fields:  # the key's name beside its id
        names = {k["id"]: k["name"] for k in await gw.store.list_keys()}
        for row in rows:
            row["key_name"] = "master" if row["key"] == "master" else names.get(row["key"])
    totals = {k: sum(r[k] for r in rows) for k in
              ("requests", "prompt_tokens", "completion_tokens", "total_tokens", "cost", "errors",
               "cache_hits", "cache_lookups", "cache_saved_usd")}
    totals["cost"] = round(totals["cost"], 10)
    totals["cache_saved_usd"] = round(totals["cache_saved_usd"], 10)
    await send_json(send, 200, {"object": "usage", "group_by": list(fields), "data": rows,
                                "totals": totals})
