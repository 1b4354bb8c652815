"""GET /v1/logs, GET /v1/logs/{id}, GET /v1/usage: the caller's own history (master: all)."""

from __future__ import annotations

import datetime

from ..asgi import Request, send_json
from ..errors import GatewayError


def parse_time(value: str | None, param: str) -> float | None:
    """Unix seconds or ISO 8601 (a date alone means its midnight UTC)."""
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise GatewayError(400, f"'{param}' must be unix seconds or an ISO 8601 time",
                           param=param) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed.timestamp()


def limit_arg(request: Request, default: int = 50, maximum: int = 500) -> int:
    raw = request.arg("limit")
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise GatewayError(400, f"'limit' must be an integer from 1 to {maximum}", param="limit")
    return int(raw)


def scope_key(request: Request, principal) -> str | None:
    """Whose rows: a key sees its own; the master sees all, or one key with `key_id`."""
    if principal.is_master:
        return request.arg("key_id")
    return principal.key_id


async def list_logs(gw, request: Request, send, principal) -> None:
    rows, cursor = await gw.store.list_logs(
        key_id=scope_key(request, principal),
        model=request.arg("model"),
        app_id=request.arg("app_id"),
        status=request.arg("status"),
        since=parse_time(request.arg("since"), "since"),
        until=parse_time(request.arg("until"), "until"),
        limit=limit_arg(request),
        cursor=request.arg("cursor"),
    )
    await send_json(send, 200, {"object": "list", "data": rows, "next_cursor": cursor})


async def get_log(gw, request: Request, send, principal, row_id: str) -> None:
    row = await gw.store.get_log(row_id, None if principal.is_master else principal.key_id)
    if row is None:  # another key's row looks exactly like a missing one
        raise GatewayError(404, f"No log entry {row_id!r}", param="id", code="log_not_found")
    await send_json(send, 200, row)


GROUPS = ("day", "model", "app_id", "provider", "key_id")


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
        model=request.arg("model"),
        app_id=request.arg("app_id"),
    )
    totals = {k: sum(r[k] for r in rows) for k in
              ("requests", "prompt_tokens", "completion_tokens", "total_tokens", "cost", "errors")}
    totals["cost"] = round(totals["cost"], 10)
    await send_json(send, 200, {"object": "usage", "group_by": list(fields), "data": rows,
                                "totals": totals})
