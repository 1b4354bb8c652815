"""The dashboard's pages. Each view takes a `Context` and returns a `Response`.

Templates are Jinja2 with autoescaping on for every template, so every value a page shows is
HTML-escaped; URLs placed in `href`/`src` come only from trace.py's scheme checks.
"""

from __future__ import annotations

import datetime
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from ..asgi import Request
from ..auth import Principal
from ..errors import GatewayError
from ..keys import hash_key
from ..params import (
    ENDPOINTS,
    cursor_filter,
    endpoint_filter,
    parse_time,
    status_filter,
    text_filter,
    validate_key_request,
)
from . import charts, trace
from .csrf import Csrf
from .session import COOKIE, Session, Sessions, cookie_header, read_cookie

HTML = "text/html; charset=utf-8"
PAGE_SIZE = 50
LOGIN_COOKIE = "lunos_login"  # pre-session nonce that binds the sign-in form's CSRF token
USAGE_PERIODS = (1, 7, 30, 90)


@dataclass(slots=True)
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = HTML
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass(slots=True)
class Context:
    gw: Any
    request: Request
    csrf: Csrf
    session: Session | None
    principal: Principal | None
    form: dict[str, str] = field(default_factory=dict)

    @property
    def token(self) -> str:
        return self.csrf.token(self.session.sid) if self.session else ""

    @property
    def secure(self) -> bool:
        return self.request.scope.get("scheme") == "https"

    @property
    def own_key(self) -> str | None:
        """Whose rows this session may see: None (all) for the master."""
        return None if self.principal.is_master else self.principal.key_id


# ---------------------------------------------------------------------- rendering
def _num(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def _usd(value: Any) -> str:
    if value is None:
        return "—"
    if value == 0:
        return "$0"
    text = f"{value:,.6f}".rstrip("0").rstrip(".")
    return f"${text}"


def _ms(value: Any) -> str:
    if value is None:
        return "—"
    return f"{value:,.1f} ms" if value < 10 else f"{value:,.0f} ms"


def _when(value: Any) -> str:
    if not value:
        return "—"
    text = str(value).replace("T", " ").replace("Z", "")
    return text.split(".")[0] + " UTC"


_env = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters.update(num=_num, usd=_usd, ms=_ms, when=_when)


def render(name: str, ctx: Context | None = None, status: int = 200, **values: Any) -> Response:
    base = {"me": ctx.principal if ctx else None, "csrf": ctx.token if ctx else "",
            "nav": "", "title": "Lunos"}
    body = _env.get_template(name).render(**{**base, **values})
    return Response(status, body.encode("utf-8"))


def redirect(location: str, headers: list[tuple[str, str]] = ()) -> Response:
    return Response(303, b"", HTML, [("location", location), *headers])


def error_page(status: int, message: str, ctx: Context | None = None) -> Response:
    signed_in = ctx is not None and ctx.principal is not None
    return render("error.html", ctx if signed_in else None, status, title=f"Error {status}",
                  code=status, message=message)


# ---------------------------------------------------------------------- sign-in
def login_page(ctx: Context, status: int = 200, error: str = "") -> Response:
    nonce = read_cookie(ctx.request.headers.get(b"cookie"), LOGIN_COOKIE)
    headers = []
    if not nonce or len(nonce) > 64:
        nonce = secrets.token_urlsafe(16)
        headers.append(cookie_header(LOGIN_COOKIE, nonce, secure=ctx.secure, max_age=3600,
                                     same_site="Strict"))
    response = render("login.html", None, status, title="Sign in", error=error,
                      login_csrf=ctx.csrf.token("login:" + nonce))
    response.headers.extend(headers)
    return response


async def login(ctx: Context, sessions: Sessions, form: dict[str, str]) -> Response:
    nonce = read_cookie(ctx.request.headers.get(b"cookie"), LOGIN_COOKIE)
    if not nonce or not ctx.csrf.valid("login:" + nonce, form.get("csrf")):
        return login_page(ctx, 403, "The sign-in form expired; please try again.")
    key = form.get("key", "").strip()
    try:
        ctx.gw.auth.authenticate(b"Bearer " + key.encode("utf-8"))
    except GatewayError as exc:
        return login_page(ctx, 401, exc.message if key else "Enter a Lunos key.")
    value, _ = sessions.issue(hash_key(key))
    return redirect("/dashboard/logs", [
        cookie_header(COOKIE, value, secure=ctx.secure, max_age=int(sessions.lifetime)),
        cookie_header(LOGIN_COOKIE, "", secure=ctx.secure, max_age=0, same_site="Strict"),
    ])


async def logout(ctx: Context) -> Response:
    return redirect("/dashboard/login", [cookie_header(COOKIE, "", secure=ctx.secure, max_age=0)])


# ---------------------------------------------------------------------- logs
LOG_FILTERS = ("model", "app", "endpoint", "status", "since", "until", "key")


async def logs(ctx: Context) -> Response:
    request = ctx.request
    filters = {name: (request.arg(name) or "").strip() for name in LOG_FILTERS}
    if not ctx.principal.is_master:
        filters["key"] = ""
    cursor = request.arg("cursor")
    rows: list[dict] = []
    next_cursor = None
    error = ""
    try:
        rows, next_cursor = await ctx.gw.store.list_logs(
            key_id=text_filter(filters["key"], "key") or ctx.own_key,
            model=text_filter(filters["model"], "model"),
            app_id=text_filter(filters["app"], "app"),
            status=status_filter(filters["status"]),
            since=parse_time(filters["since"], "since"),
            until=parse_time(filters["until"], "until"),
            limit=PAGE_SIZE,
            cursor=cursor_filter(cursor),
            endpoint=endpoint_filter(filters["endpoint"]),
        )
    except GatewayError as exc:
        if exc.status != 400:
            raise
        error = exc.message
    active = {k: v for k, v in filters.items() if v}
    choices = await _filter_choices(ctx)
    return render(
        "logs.html", ctx, 400 if error else 200, title="Logs", nav="logs", rows=rows,
        filters=filters, error=error, choices=choices, endpoints=ENDPOINTS, paged=bool(cursor),
        next_url=("/dashboard/logs?" + urlencode({**active, "cursor": next_cursor})
                  if next_cursor else ""),
        first_url="/dashboard/logs" + ("?" + urlencode(active) if active else ""),
    )


async def _filter_choices(ctx: Context) -> dict[str, list[str]]:
    """Models and apps seen in the last 90 days, for the filter suggestions."""
    since = datetime.datetime.now(datetime.timezone.utc).timestamp() - 90 * 86400
    rows = await ctx.gw.store.usage(key_id=ctx.own_key, since=since, group_by=("model", "app_id"))
    return {"models": sorted({r["model"] for r in rows if r["model"]}),
            "apps": sorted({r["app_id"] for r in rows if r["app_id"]})}


async def detail(ctx: Context, row_id: str) -> Response:
    row = None if "\x00" in row_id else await ctx.gw.store.get_log(row_id, ctx.own_key)
    if row is None:  # another key's row looks exactly like a missing one
        return error_page(404, "No such log entry.", ctx)
    return render("detail.html", ctx, title=f"Log {row_id}", nav="logs", row=row,
                  request=trace.request_view(row.get("request")),
                  response=trace.response_view(row.get("response")),
                  extra=trace.pretty_json(row["extra"]) if row.get("extra") else "")


# ---------------------------------------------------------------------- usage
async def usage(ctx: Context) -> Response:
    raw = ctx.request.arg("days") or "30"
    if raw not in {str(d) for d in USAGE_PERIODS}:
        return error_page(400, f"'days' must be one of {', '.join(map(str, USAGE_PERIODS))}.", ctx)
    days = int(raw)
    today = datetime.datetime.now(datetime.timezone.utc).date()
    first = today - datetime.timedelta(days=days - 1)
    since = datetime.datetime(first.year, first.month, first.day,
                              tzinfo=datetime.timezone.utc).timestamp()
    rows = await ctx.gw.store.usage(key_id=ctx.own_key, since=since,
                                    group_by=("day", "model", "app_id"))
    view = charts.usage_view(rows, charts.day_list(first, today))
    return render("usage.html", ctx, title="Usage", nav="usage", days=days,
                  periods=USAGE_PERIODS, **view)


# ---------------------------------------------------------------------- keys
KEY_FORM = ("name", "budget_usd", "rpm", "tpm", "allowed_models", "expires_at")


async def keys(ctx: Context, status: int = 200, error: str = "", created: dict | None = None,
               form: dict[str, str] | None = None) -> Response:
    rows = await ctx.gw.store.list_keys()
    now = datetime.datetime.now(datetime.timezone.utc)
    for row in rows:
        if row["revoked_at"]:
            row["status"] = "revoked"
        elif row["expires_at"] and _parse_iso(row["expires_at"]) <= now:
            row["status"] = "expired"
        else:
            row["status"] = "active"
    revoked = ctx.request.arg("revoked") if created is None and not error else None
    return render("keys.html", ctx, status, title="Keys", nav="keys", keys=rows, error=error,
                  created=created, revoked=revoked or "",
                  form=form or dict.fromkeys(KEY_FORM, ""))


def _parse_iso(value: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _key_request(form: dict[str, str]) -> dict:
    """Form fields -> the body `validate_key_request` checks (the same rules as the API)."""
    body: dict[str, Any] = {"name": form.get("name", "")}
    numbers = (("budget_usd", float, "a number of US dollars"), ("rpm", int, "a whole number"),
               ("tpm", int, "a whole number"))
    for name, kind, what in numbers:
        text = form.get(name, "").strip()
        if text:
            try:
                body[name] = kind(text)
            except ValueError:
                raise GatewayError(400, f"'{name}' must be {what}", param=name) from None
    models = [m for m in form.get("allowed_models", "").replace(",", " ").split() if m]
    if models:
        body["allowed_models"] = models
    expires = form.get("expires_at", "").strip()
    if expires:
        body["expires_at"] = expires
    return validate_key_request(body)


async def create_key(ctx: Context) -> Response:
    form = {name: ctx.form.get(name, "") for name in KEY_FORM}
    try:
        fields = _key_request(form)
    except GatewayError as exc:
        return await keys(ctx, 400, exc.message, form=form)
    row, raw = await ctx.gw.store.create_key(fields.pop("name"), **fields)
    await ctx.gw.keysync.refresh()
    return await keys(ctx, created={**row, "key": raw})


async def revoke_key(ctx: Context, key_id: str) -> Response:
    row = await ctx.gw.store.revoke_key(key_id)
    if row is None:
        return error_page(404, "No such key.", ctx)
    await ctx.gw.keysync.refresh()
    return redirect("/dashboard/keys?" + urlencode({"revoked": key_id}))
