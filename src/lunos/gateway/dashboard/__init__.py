"""The web dashboard: Logs, Detail, Usage and Keys, server-rendered, under `/dashboard`.

`handle(gw, request, send)` serves every path under `/dashboard`. It runs before the API's
bearer authentication: the dashboard signs people in with a Lunos key and then keeps a signed
session cookie (see session.py). Every response carries a strict Content-Security-Policy (no
inline script or style anywhere), and every POST is checked for CSRF (see csrf.py).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs

from sqlalchemy.exc import SQLAlchemyError

from ..asgi import ClientGone, Request
from ..auth import Principal
from ..errors import GatewayError
from ..keys import master_key
from . import views
from .csrf import FIELD, Csrf, same_origin
from .session import COOKIE, Session, Sessions, derive_secret, principal_for, read_cookie
from .views import Context, Response

log = logging.getLogger("lunos.dashboard")

PREFIX = "/dashboard"
STATIC = Path(__file__).parent / "static"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = [
    ("content-security-policy", CSP),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "same-origin"),
    ("cross-origin-opener-policy", "same-origin"),
]
FORM_LIMIT = 64 * 1024
PAGES = {  # (method, path after /dashboard) -> view; Detail and revoke take an id (see _route)
    ("GET", "/logs"): views.logs,
    ("GET", "/usage"): views.usage,
    ("GET", "/keys"): views.keys,
    ("POST", "/keys"): views.create_key,
    ("POST", "/logout"): views.logout,
    ("GET", "/logs.csv"): lambda ctx: views.export_logs(ctx, "csv"),
    ("GET", "/logs.jsonl"): lambda ctx: views.export_logs(ctx, "jsonl"),
}
KEY_ACTIONS = {"revoke": views.revoke_key, "edit": views.edit_key, "rotate": views.rotate_key}
_STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".svg": "image/svg+xml",
                 ".txt": "text/plain; charset=utf-8", "": "text/plain; charset=utf-8"}
_STATIC_NAME = re.compile(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*(\.[A-Za-z0-9.]+)?$")


@dataclass(frozen=True, slots=True)
class Dashboard:
    """Per-gateway state: the session signer and the CSRF token maker."""

    sessions: Sessions
    csrf: Csrf


_instances: dict[int, tuple[object, Dashboard]] = {}
_static_cache: dict[str, bytes] = {}


def _dashboard(gw) -> Dashboard:
    cached = _instances.get(id(gw))
    if cached is not None and cached[0] is gw:
        return cached[1]
    key, _ = master_key(gw.settings.master_key, gw.settings.home)
    dash = Dashboard(Sessions(derive_secret(key, "session")), Csrf(derive_secret(key, "csrf")))
    _instances[id(gw)] = (gw, dash)
    return dash


async def handle(gw, request: Request, send) -> None:
    """Serve one request under `/dashboard`; never raises (except when the client left)."""
    try:
        response = await _dispatch(gw, request)
    except ClientGone:
        return
    except GatewayError as exc:
        response = views.error_page(exc.status, exc.message)
    except (SQLAlchemyError, OSError) as exc:
        log.warning("store error on %s %s: %s", request.method, request.path,
                    exc.__class__.__name__)
        response = views.error_page(503, "The gateway's store is unavailable; try again shortly.")
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        response = Response(500, b"Internal error.", "text/plain; charset=utf-8")
    await _send(send, response)


async def _dispatch(gw, request: Request) -> Response:
    path, method = request.path.rstrip("/") or "/", request.method
    if path.startswith(PREFIX + "/static/"):
        return _static(path[len(PREFIX + "/static/"):], method)
    dash = _dashboard(gw)
    if method == "POST" and not same_origin(request.headers):
        return views.error_page(403, "Cross-origin form submissions are refused.")
    session, principal = _signed_in(gw, dash, request)
    ctx = Context(gw, request, dash.csrf, session, principal)
    if path == PREFIX + "/login":
        if method == "GET":
            return views.redirect(PREFIX + "/logs") if principal else views.login_page(ctx)
        if method == "POST":
            return await views.login(ctx, dash.sessions, await _form(request))
        return _not_allowed()
    if principal is None or session is None:
        return views.redirect(PREFIX + "/login")
    if method == "POST":
        form = await _form(request)
        if not dash.csrf.valid(session.sid, form.get(FIELD)):
            return views.error_page(403, "The form's security token is missing or wrong; "
                                         "reload the page and try again.", ctx)
        ctx.form = form
    return await _route(ctx, path, method)


async def _route(ctx: Context, path: str, method: str) -> Response:
    if path == PREFIX:
        return views.redirect(PREFIX + "/logs")
    if path == PREFIX + "/favicon.ico":
        return views.redirect(PREFIX + "/static/favicon.svg")
    sub = path[len(PREFIX):]
    page = PAGES.get((method, sub))
    if page is not None:
        if sub.startswith("/keys") and not ctx.principal.is_master:
            return views.error_page(403, "Only the master key can manage keys.", ctx)
        return await page(ctx)
    parts = sub.split("/")  # "", "logs", "<id>" ...
    if method == "GET" and len(parts) == 3 and parts[1] == "logs" and parts[2]:
        return await views.detail(ctx, parts[2])
    if method == "POST" and len(parts) == 4 and parts[1] == "logs" and parts[3] == "replay":
        return await views.replay(ctx, parts[2])
    if method == "POST" and len(parts) == 4 and parts[1] == "keys" and parts[3] in KEY_ACTIONS:
        if not ctx.principal.is_master:
            return views.error_page(403, "Only the master key can manage keys.", ctx)
        return await KEY_ACTIONS[parts[3]](ctx, parts[2])
    if any(sub == route for _, route in PAGES):
        return _not_allowed(ctx)
    return views.error_page(404, "No such page.", ctx)


def _signed_in(gw, dash: Dashboard, request: Request) -> tuple[Session | None, Principal | None]:
    session = dash.sessions.read(read_cookie(request.headers.get(b"cookie"), COOKIE))
    if session is None:
        return None, None
    principal = principal_for(gw.auth, session.key_hash)
    return (session, principal) if principal is not None else (None, None)


async def _form(request: Request) -> dict[str, str]:
    raw = await request.body(FORM_LIMIT)
    try:
        fields = parse_qs(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=100)
    except (UnicodeDecodeError, ValueError):
        raise GatewayError(400, "The form could not be read.") from None
    return {name: values[-1] for name, values in fields.items()}


def _not_allowed(ctx: Context | None = None) -> Response:
    return views.error_page(405, "Method not allowed.", ctx)


def _static(name: str, method: str) -> Response:
    if method not in ("GET", "HEAD"):
        return _not_allowed()
    if not _STATIC_NAME.match(name):
        return views.error_page(404, "No such file.")
    body = _static_cache.get(name)
    if body is None:
        path = (STATIC / name).resolve()
        if STATIC.resolve() not in path.parents or not path.is_file():
            return views.error_page(404, "No such file.")
        body = _static_cache[name] = path.read_bytes()
    content_type = _STATIC_TYPES.get(Path(name).suffix, "application/octet-stream")
    return Response(200, b"" if method == "HEAD" else body, content_type,
                    [("cache-control", "public, max-age=3600")])


async def _send(send, response: Response) -> None:
    headers = [(b"content-type", response.content_type.encode("latin-1"))]
    if not any(name == "cache-control" for name, _ in response.headers):
        headers.append((b"cache-control", b"no-store"))
    for name, value in [*SECURITY_HEADERS, *response.headers]:
        headers.append((name.encode("latin-1"), value.encode("latin-1")))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})
