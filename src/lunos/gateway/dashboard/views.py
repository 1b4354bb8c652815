"""The dashboard's pages. Each view takes a `Context` and returns a `Response`.

Templates are Jinja2 with autoescaping on for every template, so every value a page shows is
HTML-escaped; URLs placed in `href`/`src` come only from trace.py's scheme checks.
"""

from __future__ import annotations

import asyncio
import csv
import datetime
import io
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import orjson
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from .. import replay as replays
from ..asgi import Request
from ..auth import Principal
from ..errors import GatewayError
from ..keys import hash_key
from ..params import (
    ENDPOINTS,
    cursor_filter,
    endpoint_filter,
    order_filter,
    parse_time,
    status_filter,
    text_filter,
    validate_key_request,
)
from . import charts, markdown, trace
from .csrf import Csrf
from .session import COOKIE, Session, Sessions, cookie_header, read_cookie

HTML = "text/html; charset=utf-8"
PAGE_SIZE = 50
LOGIN_COOKIE = "lunos_login"  # pre-session nonce that binds the sign-in form's CSRF token
USAGE_PERIODS = (1, 7, 30, 90)  # 1: the last 24 hours, by hour


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


def _percent(value: Any) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


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
_env.filters.update(num=_num, usd=_usd, percent=_percent, ms=_ms, when=_when, md=markdown.render)


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
LOG_FILTERS = ("q", "model", "app", "endpoint", "status", "since", "until", "key", "session",
               "order")
ORDER_LABELS = (("newest", "Newest first"), ("oldest", "Oldest first"),
                ("latency", "Slowest first"), ("cost", "Dearest first"))


async def _log_page(ctx: Context, filters: dict[str, str], cursor: str | None, limit: int):
    """One page of the rows `filters` select (the Logs form's fields), with the total."""
    return await ctx.gw.store.list_logs(
        key_id=ctx.own_key,
        key=text_filter(filters["key"], "key") if ctx.principal.is_master else None,
        q=text_filter(filters["q"], "q"),
        model=text_filter(filters["model"], "model"),
        app_id=text_filter(filters["app"], "app"),
        status=status_filter(filters["status"]),
        since=parse_time(filters["since"], "since"),
        until=parse_time(filters["until"], "until"),
        session_id=text_filter(filters["session"], "session"),
        order=order_filter(filters["order"]),
        limit=limit,
        cursor=cursor_filter(cursor),
        endpoint=endpoint_filter(filters["endpoint"]),
        with_total=True,
    )


def _log_filters(ctx: Context) -> dict[str, str]:
    filters = {name: (ctx.request.arg(name) or "").strip() for name in LOG_FILTERS}
    if not ctx.principal.is_master:
        filters["key"] = ""
    return filters


async def logs(ctx: Context) -> Response:
    filters = _log_filters(ctx)
    cursor = ctx.request.arg("cursor") or None
    # the cursors of the pages before this one ("-": the first), for "Previous page"
    back = [c for c in (ctx.request.arg("back") or "").split(",") if c][:100]
    rows: list[dict] = []
    next_cursor, total, error = None, 0, ""
    try:
        rows, next_cursor, total = await _log_page(ctx, filters, cursor, PAGE_SIZE)
    except GatewayError as exc:
        if exc.status != 400:
            raise
        error = exc.message
    for row in rows:
        row["preview"] = trace.preview(row)
    active = {k: v for k, v in filters.items() if v}
    choices = await _filter_choices(ctx)
    next_url = prev_url = ""
    if next_cursor:
        next_url = "/dashboard/logs?" + urlencode(
            {**active, "cursor": next_cursor, "back": ",".join([*back, cursor or "-"])})
    if back:
        before = back[-1]
        prev_url = "/dashboard/logs?" + urlencode(
            {**active, **({"cursor": before} if before != "-" else {}),
             **({"back": ",".join(back[:-1])} if back[:-1] else {})})
    page_number = len(back) + 1
    return render(
        "logs.html", ctx, 400 if error else 200, title="Logs", nav="logs", rows=rows,
        filters=filters, error=error, choices=choices, endpoints=ENDPOINTS, paged=bool(cursor),
        next_url=next_url, prev_url=prev_url, total=total, orders=ORDER_LABELS,
        first_row=(page_number - 1) * PAGE_SIZE + 1 if rows else 0,
        last_row=(page_number - 1) * PAGE_SIZE + len(rows),
        export_query=urlencode(active),
        first_url="/dashboard/logs" + ("?" + urlencode(active) if active else ""),
    )


EXPORT_LIMIT = 10_000


async def export_logs(ctx: Context, kind: str) -> Response:
    """The filtered Logs (up to EXPORT_LIMIT rows) as CSV or JSON lines, without traces'
    payloads in CSV."""
    filters = _log_filters(ctx)
    out: list[dict] = []
    cursor = None
    while len(out) < EXPORT_LIMIT:
        rows, cursor, _ = await _log_page(ctx, filters, cursor, 500)
        out += rows
        if not cursor:
            break
    if kind == "jsonl":
        body = b"".join(orjson.dumps(r) + b"\n" for r in out)
        return Response(200, body, "application/x-ndjson",
                        [("content-disposition", 'attachment; filename="lunos-logs.jsonl"')])
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for r in out:
        u = r["usage"]
        writer.writerow([_csv_cell(v) for v in (
            r["id"], r["created_at"], r["endpoint"], r["requested_model"], r["model"], r["provider"],
            r["app_id"], r["key_id"], r["session_id"], r["status"], r["error"], r["latency_ms"],
            r["ttft_ms"], u["prompt_tokens"], u["completion_tokens"], u["cost"], r["replay_of"])])
    return Response(200, buffer.getvalue().encode("utf-8"), "text/csv; charset=utf-8",
                    [("content-disposition", 'attachment; filename="lunos-logs.csv"')])


CSV_COLUMNS = ("id", "created_at", "endpoint", "requested_model", "model", "provider", "app_id",
               "key_id", "session_id", "status", "error", "latency_ms", "ttft_ms",
               "prompt_tokens", "completion_tokens", "cost", "replay_of")


def _csv_cell(value: Any) -> Any:
    """A value a spreadsheet will not run as a formula (OWASP CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


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
    store = ctx.gw.store
    newer, older = await store.neighbours(row["id"], ctx.own_key)
    replays, _ = await store.list_logs(key_id=ctx.own_key, replay_of=row["id"], order="oldest",
                                       limit=20)
    runs = [row, *replays] if replays else []
    return render("detail.html", ctx, title=f"Log {row_id}", nav="logs", row=row,
                  request=trace.request_view(row.get("request")),
                  response=trace.response_view(row.get("response")),
                  timeline=trace.timeline(row), newer=newer, older=older,
                  runs=[{**r, "view": trace.response_view(r.get("response"))} for r in runs],
                  raw_json=trace.pretty_json({k: row[k] for k in ("request", "response")}),
                  replay_error=ctx.request.arg("replay_error") or "",
                  extra=trace.pretty_json(row["extra"]) if row.get("extra") else "")


async def replay(ctx: Context, row_id: str) -> Response:
    """Detail's Replay form: run this request on the models named, then show Detail again
    (post/redirect/get), where the runs appear side by side."""
    row = None if "\x00" in row_id else await ctx.gw.store.get_log(row_id, ctx.own_key)
    if row is None:
        return error_page(404, "No such log entry.", ctx)
    here = "/dashboard/logs/" + quote(row_id, safe="")
    try:
        models = [m for m in ctx.form.get("models", "").replace(",", " ").split() if m]
        overrides = ctx.form.get("overrides", "").strip()
        body = {"models": models, "overrides": orjson.loads(overrides) if overrides else {}}
        models, overrides = replays.replay_request(body)
        runs = await replays.replay(ctx.gw, ctx.principal, row, models, overrides)
    except orjson.JSONDecodeError:
        return redirect(here + "?" + urlencode({"replay_error": "Overrides must be a JSON object."}))
    except GatewayError as exc:
        return redirect(here + "?" + urlencode({"replay_error": exc.message}))
    # the runs' rows are written within a second (the history writer): wait for them, so
    # the page the redirect leads to shows them
    ids = [r["id"] for r in runs]
    for _ in range(40):
        if len(await ctx.gw.store.existing_ids(ids)) == len(ids):
            break
        await asyncio.sleep(0.05)
    return redirect(here + "#runs")


# ---------------------------------------------------------------------- usage
MAX_RANGE_DAYS = 400


def _usage_range(ctx: Context) -> tuple[float, float | None, list[str], str, int]:
    """(since, until, buckets, "hour" or "day", days) of the Usage page: a preset `days`,
    or a custom `since`/`until` range (by hour up to two days, else by day)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    utc = datetime.timezone.utc
    since_arg, until_arg = ctx.request.arg("since"), ctx.request.arg("until")
    if since_arg:
        since = parse_time(since_arg, "since")
        until = parse_time(until_arg, "until") if until_arg else now.timestamp()
        if until <= since or until - since > MAX_RANGE_DAYS * 86400:
            raise GatewayError(400, f"The range must end after it starts and span at most "
                                    f"{MAX_RANGE_DAYS} days.", param="until")
        start = datetime.datetime.fromtimestamp(since, utc)
        if until - since <= 2 * 86400:
            first = start.replace(minute=0, second=0, microsecond=0)
            hours = int((until - first.timestamp()) // 3600) + 1
            return since, until, charts.hour_list(first, hours), "hour", 0
        last = datetime.datetime.fromtimestamp(until - 0.001, utc).date()
        return since, until, charts.day_list(start.date(), last), "day", 0
    raw = ctx.request.arg("days") or "30"
    if raw not in {str(d) for d in USAGE_PERIODS}:
        raise GatewayError(400, f"'days' must be one of {', '.join(map(str, USAGE_PERIODS))}.",
                           param="days")
    days = int(raw)
    if days == 1:  # the last 24 hours, by hour
        first_hour = now.replace(minute=0, second=0, microsecond=0) - datetime.timedelta(hours=23)
        return first_hour.timestamp(), None, charts.hour_list(first_hour, 24), "hour", 1
    first = now.date() - datetime.timedelta(days=days - 1)
    since = datetime.datetime(first.year, first.month, first.day, tzinfo=utc).timestamp()
    return since, None, charts.day_list(first, now.date()), "day", days


async def usage(ctx: Context) -> Response:
    try:
        since, until, buckets, group, days = _usage_range(ctx)
    except GatewayError as exc:
        return error_page(400, exc.message, ctx)
    store, own = ctx.gw.store, ctx.own_key
    # one scan for the charts and every table, one for the percentiles
    fields = ("model", "endpoint", "key") if ctx.principal.is_master else ("model", "endpoint")
    rows = await store.usage(key_id=own, since=since, until=until,
                             group_by=(group, "model", "app_id", *fields[1:]))
    ranks = await store.percentiles(key_id=own, since=since, until=until, fields=fields)
    view = charts.usage_view(rows, buckets)
    tables = {f"by_{f}": charts.ranked_table(rows, f, ranks[f]) for f in fields}
    if "by_key" in tables:
        names = {k["id"]: k["name"] for k in await store.list_keys()}
        for row in tables["by_key"]:
            row["key_name"] = "master" if row["key"] == "master" else names.get(row["key"]) or "—"

    def minute(ts: float | None) -> str:
        return "" if ts is None else datetime.datetime.fromtimestamp(
            ts, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M")

    return render("usage.html", ctx, title="Usage", nav="usage", days=days,
                  periods=USAGE_PERIODS, since_param=minute(since), until_param=minute(until),
                  budget=await _budget(ctx), **{**view, **tables})


async def _budget(ctx: Context) -> dict | None:
    """A key's own budget and what is left of it (its spend as the key table has it)."""
    me = ctx.principal
    if me.is_master or me.budget_usd is None:
        return None
    row = await ctx.gw.store.get_key(me.key_id)
    spent = row["spend_usd"] if row else 0.0
    return {"budget": me.budget_usd, "spent": spent, "left": max(me.budget_usd - spent, 0.0)}


# ---------------------------------------------------------------------- keys
KEY_FORM = ("name", "budget_usd", "rpm", "tpm", "allowed_models", "expires_at")
NEW_KEY_COOKIE = "lunos_new_key"  # the secret of a key just made, shown once after the redirect


async def keys(ctx: Context, status: int = 200, error: str = "",
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
    rows.sort(key=lambda r: (r["status"] != "active", r["name"].lower()))  # by name
    # post/redirect/get: a key made (or rotated) by the form is shown once, from a cookie
    # the redirect set and this page clears, so a reload makes nothing and shows nothing
    headers, created = [], None
    flash = read_cookie(ctx.request.headers.get(b"cookie"), NEW_KEY_COOKIE)
    if flash and not error:
        key_id, _, raw = flash.partition(":")
        created = next(({**r, "key": raw} for r in rows if r["id"] == key_id), None)
        headers.append(cookie_header(NEW_KEY_COOKIE, "", secure=ctx.secure, max_age=0,
                                     same_site="Strict"))
    notice = "" if error else {"revoked": "Key {} revoked.", "edited": "Key {} saved."}.get(
        next((k for k in ("revoked", "edited") if ctx.request.arg(k)), ""), "")
    if notice:
        notice = notice.format(ctx.request.arg("revoked") or ctx.request.arg("edited"))
    editing = next((r for r in rows if r["id"] == ctx.request.arg("edit")), None)
    response = render("keys.html", ctx, status, title="Keys", nav="keys", keys=rows, error=error,
                      created=created, notice=notice, editing=editing,
                      form=form or dict.fromkeys(KEY_FORM, ""))
    response.headers.extend(headers)
    return response


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


def _show_once(ctx: Context, row: dict, raw: str, query: str = "") -> Response:
    return redirect("/dashboard/keys" + query, [cookie_header(
        NEW_KEY_COOKIE, f"{row['id']}:{raw}", secure=ctx.secure, max_age=300, same_site="Strict")])


async def create_key(ctx: Context) -> Response:
    form = {name: ctx.form.get(name, "") for name in KEY_FORM}
    try:
        fields = _key_request(form)
    except GatewayError as exc:
        return await keys(ctx, 400, exc.message, form=form)
    row, raw = await ctx.gw.store.create_key(fields.pop("name"), **fields)
    await ctx.gw.keysync.refresh()
    return _show_once(ctx, row, raw)


async def edit_key(ctx: Context, key_id: str) -> Response:
    form = {name: ctx.form.get(name, "") for name in KEY_FORM}
    try:
        fields = _key_request(form)
    except GatewayError as exc:
        return await keys(ctx, 400, exc.message, form=form)
    if await ctx.gw.store.update_key(key_id, **fields) is None:
        return error_page(404, "No such active key.", ctx)
    await ctx.gw.keysync.refresh()
    return redirect("/dashboard/keys?" + urlencode({"edited": key_id}))


async def rotate_key(ctx: Context, key_id: str) -> Response:
    if ctx.form.get("confirm") != "yes":
        return await _confirm(ctx, key_id, "rotate")
    rotated = await ctx.gw.store.rotate_key(key_id)
    if rotated is None:
        return error_page(404, "No such active key.", ctx)
    await ctx.gw.keysync.refresh()
    return _show_once(ctx, *rotated)


async def _confirm(ctx: Context, key_id: str, action: str) -> Response:
    row = await ctx.gw.store.get_key(key_id)
    if row is None:
        return error_page(404, "No such key.", ctx)
    return render("confirm.html", ctx, title=f"{action.title()} key", nav="keys", key=row,
                  action=action)


async def revoke_key(ctx: Context, key_id: str) -> Response:
    if ctx.form.get("confirm") != "yes":  # a page that asks first, then posts again
        return await _confirm(ctx, key_id, "revoke")
    row = await ctx.gw.store.revoke_key(key_id)
    if row is None:
        return error_page(404, "No such key.", ctx)
    await ctx.gw.keysync.refresh()
    return redirect("/dashboard/keys?" + urlencode({"revoked": key_id}))
