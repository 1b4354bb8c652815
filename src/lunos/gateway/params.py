"""Values clients send outside a chat body (query strings, the dashboard's forms, the CLI's
flags), checked one way wherever they arrive: a 400 naming the parameter, never a 500 from
a value `int()` or the database refuses (a NUL in a PostgreSQL string, a number past 64
bits, a non-finite time).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import math

import orjson

from .errors import GatewayError

# The routes a history row can come through, its `endpoint` (SPEC §9).
ENDPOINTS = ("chat", "messages", "responses", "embeddings", "images", "audio", "completions")

# 9999-12-31T23:59:59Z: a time past it (or before minus it) is no time a row can have.
MAX_TIME = 253402300799.0


def parse_time(value: str | None, param: str) -> float | None:
    """Unix seconds or ISO 8601 (a date alone means its midnight UTC)."""
    if not value:
        return None
    what = f"'{param}' must be unix seconds or an ISO 8601 time"
    try:
        seconds = float(value)
    except ValueError:
        try:
            parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise GatewayError(400, what, param=param) from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=datetime.timezone.utc)
        seconds = parsed.timestamp()
    if not math.isfinite(seconds) or abs(seconds) > MAX_TIME:
        raise GatewayError(400, f"{what} before the year 10000", param=param)
    return seconds


def whole_number(raw: str | None, param: str, default: int, maximum: int) -> int:
    """An integer from 1 to `maximum` written in ASCII digits (`²` is a digit to Python)."""
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9 and 1 <= int(raw) <= maximum):
        raise GatewayError(400, f"'{param}' must be an integer from 1 to {maximum}", param=param)
    return int(raw)


def status_filter(raw: str | None) -> str | None:
    """`success`, `error` or an HTTP status (100-599)."""
    if not raw:
        return None
    if raw in ("success", "error") or (raw.isascii() and raw.isdigit() and len(raw) == 3
                                       and 100 <= int(raw) <= 599):
        return raw
    raise GatewayError(400, "'status' must be success, error or an HTTP status", param="status")


def endpoint_filter(raw: str | None) -> str | None:
    """One of ENDPOINTS."""
    if not raw:
        return None
    if raw in ENDPOINTS:
        return raw
    raise GatewayError(400, f"'endpoint' must be one of {', '.join(ENDPOINTS)}", param="endpoint")


# `order` of GET /v1/logs (SPEC §12); the store knows each one's column.
LOG_ORDERS = ("newest", "oldest", "latency", "cost")


def order_filter(raw: str | None) -> str:
    """One of LOG_ORDERS; `newest` when not given."""
    if not raw:
        return "newest"
    if raw not in LOG_ORDERS:
        raise GatewayError(400, f"'order' must be one of {', '.join(LOG_ORDERS)}", param="order")
    return raw


def text_filter(raw: str | None, param: str) -> str | None:
    """A text to match exactly: any text but a NUL, which no stored value holds."""
    if raw and "\x00" in raw:
        raise GatewayError(400, f"'{param}' must not contain a NUL character", param=param)
    return raw or None


def cursor_filter(raw: str | None) -> str | None:
    """A `next_cursor` as a list answer gave it (the store decodes it again)."""
    if not raw:
        return None
    try:
        value, row_id = orjson.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        # the last row's time, latency or cost (None: a row without one, `order`)
        valid = ((value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)
                  and math.isfinite(value))) and isinstance(row_id, str) and "\x00" not in row_id)
    except (ValueError, TypeError, binascii.Error):  # orjson.JSONDecodeError is a ValueError
        valid = False
    if not valid:
        raise GatewayError(400, "'cursor' must be a next_cursor from an earlier page", param="cursor")
    return raw


def _non_negative(body: dict, name: str, kind, top: int = 10**15, shown: str = "10^15") -> None:
    """A number from 0 to `top` (NaN, infinity and 64-bit overflows are no limit)."""
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, kind) or not 0 <= value <= top:
        raise GatewayError(400, f"'{name}' must be a non-negative number up to {shown}", param=name)


def validate_key_request(body) -> dict:
    """The fields of a new key, from the API's JSON body or the dashboard's form."""
    if not isinstance(body, dict):
        raise GatewayError(400, "The request body must be a JSON object")
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise GatewayError(400, "'name' must be a non-empty string of at most 200 characters",
                           param="name")
    _non_negative(body, "budget_usd", (int, float))
    # rpm and tpm are 32-bit columns (PostgreSQL refuses more: that was a 503)
    _non_negative(body, "rpm", int, 2**31 - 1, "2147483647")
    _non_negative(body, "tpm", int, 2**31 - 1, "2147483647")
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
