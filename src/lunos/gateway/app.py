"""create_app(settings) -> the ASGI application. The request pipeline is built here only.

Pipeline for every HTTP request: route lookup -> authentication (before the body is read:
a request without a valid key gets 401 whatever its body) -> handler, raced against the
client's disconnect so that a client that goes away cancels the upstream call at once.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sqlalchemy.exc import SQLAlchemyError

from . import sse
from .asgi import ClientGone, Request, new_request_id, send_error
from .auth import Authenticator, Principal, bearer
from .cache import ResponseCache, open_cache
from .catalog import Catalog
from .config import Settings
from .engine import Engine
from .errors import GatewayError
from .fetch import Fetcher, FetchPolicy
from .history import DiscardHistory, History
from .http_client import HttpClient, Timeouts, Transport
from .keys import hash_key, master_key
from .limits import Limits, backend_for
from .metrics import Metrics
from .records import CallRecord
from .request_log import RequestLog, trace_id_of
from .routing import Router
from .store import HistoryWriter, KeySync, Store, StoreUnavailable
from .transports import make_transport

log = logging.getLogger("lunos")

Handler = Callable[..., Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RouteSpec:
    handler: Handler
    auth: str = "key"  # "public" | "key" | "master"
    record: bool = False  # model requests get a history row
    slashes: bool = False  # a prefix route's parameter may hold `/` (model ids)
    anthropic: bool = False  # errors in Anthropic's shape (the Messages door)
    id_prefix: str = "chatcmpl"  # of the request id (`x-request-id`, the history row's id)


@dataclass
class Gateway:
    """Everything a handler needs, built once at start."""

    settings: Settings
    catalog: Catalog
    router: Router
    client: HttpClient
    fetcher: Fetcher
    engine: Engine
    auth: Authenticator
    history: History
    store: Store | None = None
    keysync: KeySync | None = None
    limits: Limits | None = None
    metrics: Metrics = field(default_factory=Metrics)
    cache: ResponseCache | None = None  # the response cache (cache/), SPEC §10
    master_key_path: object = None
    ready: bool = False  # the store is migrated and the key table loaded (/readyz)
    request_log: object = None  # request_log.RequestLog with LUNOS_LOG_FORMAT=json
    telemetry: object = None  # telemetry.Telemetry when OpenTelemetry export is on
    in_flight: int = 0
    background: list[asyncio.Task] = field(default_factory=list)


class LunosApp:
    def __init__(self, settings: Settings, history: History | None = None,
                 transport: Transport | None = None) -> None:
        self.settings = settings
        self._history = history
        self._transport = transport  # tests: an in-process mock instead of the network
        self.gw: Gateway | None = None
        from . import dashboard
        from .routes import (
            admin,
            chat,
            embeddings,
            health,
            logs,
            media,
            messages,
            metrics,
            models,
            replay,
            responses,
            stored_responses,
        )

        self.dashboard = dashboard.handle

        self.routes: dict[tuple[str, str], RouteSpec] = {
            ("POST", "/v1/chat/completions"): RouteSpec(chat.chat_completions, "key", record=True),
            ("POST", "/v1/messages"): RouteSpec(messages.create_message, "key", record=True,
                                                anthropic=True, id_prefix="msg_"),
            ("POST", "/v1/responses"): RouteSpec(responses.create_response, "key", record=True,
                                                 id_prefix="resp_"),
            ("POST", "/v1/embeddings"): RouteSpec(embeddings.create_embeddings, "key", record=True,
                                                  id_prefix="emb"),
            ("POST", "/v1/images/generations"): RouteSpec(media.create_images, "key", record=True,
                                                          id_prefix="img"),
            ("POST", "/v1/audio/speech"): RouteSpec(media.create_speech, "key", record=True,
                                                    id_prefix="aud"),
            ("POST", "/v1/audio/transcriptions"): RouteSpec(media.create_transcription, "key",
                                                            record=True, id_prefix="aud"),
            ("POST", "/v1/completions"): RouteSpec(media.create_completion, "key", record=True,
                                                   id_prefix="cmpl"),
            ("POST", "/v1/messages/count_tokens"): RouteSpec(messages.count_tokens, "key",
                                                             anthropic=True),
            ("GET", "/v1/models"): RouteSpec(models.list_models, "public"),
            ("GET", "/v1/logs"): RouteSpec(logs.list_logs),
            ("GET", "/v1/usage"): RouteSpec(logs.usage),
            ("POST", "/admin/keys"): RouteSpec(admin.create_key, "master"),
            ("GET", "/admin/keys"): RouteSpec(admin.list_keys, "master"),
            ("DELETE", "/admin/cache"): RouteSpec(admin.clear_cache, "master"),
            ("GET", "/healthz"): RouteSpec(health.healthz, "public"),
            ("GET", "/readyz"): RouteSpec(health.readyz, "public"),
            ("GET", "/openapi.json"): RouteSpec(health.openapi, "public"),
        }
        self.metrics_route = RouteSpec(metrics.prometheus, "public")  # on its own address
        # /metrics on its own address (served there alone), or on the API port.
        self.metrics_port = settings.metrics_address[1] if settings.metrics_address else None
        if self.metrics_port is None:
            self.routes[("GET", "/metrics")] = RouteSpec(
                metrics.prometheus, "public" if settings.metrics_auth == "none" else settings.metrics_auth)
        # Routes ending in one path parameter: (method, prefix) -> spec.
        self.prefix_routes: dict[tuple[str, str], RouteSpec] = {
            ("GET", "/v1/logs/"): RouteSpec(logs.get_log),
            ("POST", "/v1/logs/"): RouteSpec(replay.replay, slashes=True),  # {id}/replay
            ("DELETE", "/admin/keys/"): RouteSpec(admin.revoke_key, "master"),
            ("GET", "/v1/models/"): RouteSpec(models.get_model, "public", slashes=True),
            # {id} and {id}/input_items; an id with a slash is simply not found
            ("GET", "/v1/responses/"): RouteSpec(stored_responses.retrieve, slashes=True),
            ("DELETE", "/v1/responses/"): RouteSpec(stored_responses.delete, slashes=True),
        }

    # ------------------------------------------------------------------ lifecycle
    async def startup(self) -> None:
        settings = self.settings
        catalog = Catalog.load(settings.models)
        client = HttpClient(Timeouts(settings.connect_timeout, settings.first_byte_timeout,
                                     settings.idle_timeout),
                            self._transport or make_transport(settings.http_transport,
                                                                 settings.proxy_env))
        fetcher = Fetcher(client, FetchPolicy(settings.fetch_allow_hosts, settings.fetch_max_bytes,
                                              settings.fetch_timeout, settings.fetch_max_redirects))
        router = Router(settings, catalog)
        key, path = master_key(settings.master_key, settings.home)
        auth = Authenticator(key)
        store = Store.open(settings.db_url())
        limits = Limits(backend_for(settings.redis_url, settings.shared_limits_file))
        keysync = KeySync(store, auth, settings.key_sync_interval, on_load=limits.seed)
        history = self._history or (
            HistoryWriter(store, max_queue=settings.history_queue,
                          failed_rows=settings.home / "history-failed.jsonl") if settings.history
            else DiscardHistory())
        self.gw = Gateway(
            settings=settings,
            catalog=catalog,
            router=router,
            client=client,
            fetcher=fetcher,
            engine=Engine(router, client, fetcher, settings),
            auth=auth,
            history=history,
            store=store,
            keysync=keysync,
            limits=limits,
            master_key_path=path,
        )
        self.gw.cache = open_cache(settings, store.engine, self.gw.engine)
        if settings.log_format == "json":
            self.gw.request_log = RequestLog()
        if settings.otel is not None:
            self.gw.telemetry = start_telemetry(settings.otel)
        await history.start()
        try:
            await self._open_store(key)
        except (SQLAlchemyError, OSError) as exc:
            log.warning("the database is unreachable (%s); retrying in the background, and "
                        "/readyz answers 503 until it is up", describe_store_error(exc))
            self.gw.background.append(asyncio.create_task(self._retry_store(key)))
        # Everything built so far lives as long as the process: out of the collector's
        # sight, a full collection stops walking the catalog, routes and modules (without
        # it, p99 at c=64 was 2-4x higher; see docs/benchmarks.md).
        gc.collect()
        gc.freeze()
        if settings.trace_retention_days:
            self.gw.background.append(asyncio.create_task(self._purge_traces()))

    async def _open_store(self, key: str) -> None:
        gw = self.gw
        await gw.store.migrate()
        await gw.store.set_master(key)
        await gw.keysync.start()
        gw.ready = True

    async def _retry_store(self, key: str) -> None:
        """Connect to a database that was down at start-up, backing off up to 10 s."""
        delay = 0.5
        while True:
            await asyncio.sleep(delay)
            try:
                await self._open_store(key)
            except (SQLAlchemyError, OSError):
                delay = min(delay * 2, 10.0)
                continue
            log.warning("the database is up; the gateway is ready")
            return

    async def _purge_traces(self) -> None:
        """Drop trace payloads older than the retention period, hourly (rows stay), and the
        stored Responses-API responses as old."""
        import time

        days = self.settings.trace_retention_days
        while True:
            try:
                before = time.time() - days * 86400
                purged = await self.gw.store.purge_traces(before)
                if purged:
                    log.info("purged the traces of %d rows older than %g days", purged, days)
                purged = await self.gw.store.purge_responses(before)
                if purged:
                    log.info("purged %d stored responses older than %g days", purged, days)
            except Exception as exc:  # the store may be down; try again next round
                log.warning("trace purge failed: %s", exc.__class__.__name__)
            await asyncio.sleep(3600)

    async def shutdown(self) -> None:
        gw = self.gw
        if gw is None:
            return
        for task in gw.background:
            task.cancel()
        await gw.history.close()
        if gw.keysync is not None:
            await gw.keysync.close()
        if gw.limits is not None:
            await gw.limits.close()
        await gw.client.aclose()
        if gw.cache is not None:
            await gw.cache.close()
        if gw.telemetry is not None:  # the last spans, within the export timeout
            await asyncio.to_thread(gw.telemetry.shutdown)
        if gw.store is not None:
            await gw.store.close()

    # ------------------------------------------------------------------ ASGI
    async def __call__(self, scope, receive, send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self.http(scope, receive, send)
        elif kind == "lifespan":
            await self.lifespan(receive, send)

    async def lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:  # report in one line, and let the server exit
                    log.error("startup failed: %s", describe_store_error(exc)
                              if isinstance(exc, SQLAlchemyError) else exc)
                    log.debug("startup failure", exc_info=True)
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def http(self, scope, receive, send) -> None:
        gw = self.gw
        request = Request(scope, receive, self.settings.request_read_timeout)
        if request.path.startswith("/dashboard") and request.path[10:11] in ("", "/"):
            # its own sign-in, with a session cookie
            request_id = new_request_id()
            try:
                await self.dashboard(gw, request, _with_request_id(send, request_id))
            except asyncio.CancelledError:
                await self._shutting_down(send, None, request_id)
            return
        spec = self.routes.get((request.method, request.path))
        args: tuple = ()
        if self.metrics_port is not None and (scope.get("server") or (None, None))[1] == self.metrics_port:
            spec = self.metrics_route if (request.method, request.path) == ("GET", "/metrics") else None
            args = ()
            if spec is None:
                error = GatewayError(404, f"Only GET /metrics is served on this address, not "
                                     f"{request.method} {request.path}", code="route_not_found")
                await send_error(send, error, [("x-request-id", new_request_id())])
                return
        if spec is None:
            spec, args = self._prefix_route(request)
        if spec is None:  # Anthropic's error shape under the Messages door's paths
            await send_error(send, self._no_route(request), [("x-request-id", new_request_id())],
                             request.path.startswith("/v1/messages"))
            return
        record: CallRecord | None = None
        counted = False
        request_id = None
        try:
            principal = await self._authenticate(spec, request)
            if spec.record:
                record = CallRecord(new_request_id(spec.id_prefix), principal.key_id,
                                    request.header(b"x-app-id") or "unknown", "")
                record.session_id = request.header(b"x-lunos-session-id") or None
                if gw.in_flight >= self.settings.max_concurrency:
                    record.status, record.error = 503, "overloaded"
                    gw.metrics.inc("lunos_limited_total", (("reason", "overloaded"),))
                    raise GatewayError(503, "The gateway is at its concurrency limit; retry shortly",
                                       code="overloaded", headers={"retry-after": "1"})
                gw.in_flight += 1
                counted = True
                try:
                    await gw.limits.arrive(principal)  # rpm counts arrivals, not bodies
                    raw = await request.body(self.settings.max_body_bytes)
                except GatewayError as exc:
                    record.status, record.error = exc.status, exc.message
                    raise
                await self._watched(spec.handler, gw, request, raw, send, principal, receive, record)
            else:
                request_id = new_request_id()
                try:
                    await spec.handler(gw, request, _with_request_id(send, request_id), principal, *args)
                except (SQLAlchemyError, OSError) as exc:
                    log.warning("store error on %s %s: %s", request.method, request.path,
                                exc.__class__.__name__)
                    raise StoreUnavailable() from None
        except GatewayError as exc:
            await send_error(send, exc, [("x-request-id", record.id if record else request_id or new_request_id())],
                             spec.anthropic)
        except ClientGone:
            if record is not None:
                record.status, record.error = 499, "client disconnected"
        except asyncio.CancelledError:
            # Only the server cancels a request (a client that leaves is handled in
            # `_watched`): the shutdown grace is over. Say so, in the API's shape.
            await self._shutting_down(send, record, request_id, spec.anthropic)
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.path)
            error = GatewayError(500, "Internal error", code="internal_error")
            try:
                await send_error(send, error, [("x-request-id", record.id if record else request_id or new_request_id())],
                                 spec.anthropic)
            except Exception:  # the response had already started
                pass
            if record is not None:
                record.status, record.error = 500, "internal error"
        finally:
            if counted:
                gw.in_flight -= 1
            if record is not None:
                if record.status == 0:
                    record.status, record.error = 499, "client disconnected"
                if record.latency_ms is None:
                    record.finish()
                if record.status == 429:
                    gw.metrics.inc("lunos_limited_total", (("reason", "rate_or_budget"),))
                gw.history.put(record)
                gw.metrics.observe(record)
                traceparent = request.header(b"traceparent")
                record.trace_id = trace_id_of(traceparent)
                if record.trace_id is None and gw.telemetry is not None:
                    record.trace_id = gw.telemetry.new_trace_id()
                if gw.request_log is not None:
                    gw.request_log.put(record)
                if gw.telemetry is not None:
                    gw.telemetry.put(record, traceparent, request.header(b"tracestate"))

    async def _shutting_down(self, send, record: CallRecord | None, request_id: str | None,
                             anthropic: bool = False) -> None:
        """Answer a request cut off by the end of the shutdown grace: a JSON error, or an SSE
        error event when a stream had started; its history row says why."""
        if record is not None and record.responded:
            return  # answered in full already; its row stands
        error = GatewayError(503, "The gateway is shutting down; the request was cut off",
                             code="gateway_shutting_down", headers={"retry-after": "1"})
        try:
            if record is not None and record.stream and record.status == 200:
                event = sse.anthropic_error_event(error) if anthropic else sse.error_event(error)
                await send({"type": "http.response.body", "body": event})
            else:
                await send_error(send, error, [("x-request-id", record.id if record else
                                                request_id or new_request_id())], anthropic)
        except Exception:  # the response is past repair: the connection just closes
            pass
        if record is not None:
            record.responded = True
            record.status, record.error = 503, "gateway shutting down"

    async def _authenticate(self, spec: RouteSpec, request: Request) -> Principal | None:
        if spec.auth == "public":
            return None
        header = request.headers.get(b"authorization")
        if header is None and b"x-api-key" in request.headers:  # Anthropic's clients send this
            header = b"Bearer " + request.headers[b"x-api-key"]
        try:
            principal = self.gw.auth.authenticate(header)
        except GatewayError as exc:
            # A key created a moment ago (maybe on another worker) is not in the table yet.
            if exc.code != "invalid_api_key" or self.gw.keysync is None:
                raise
            principal = await self.gw.keysync.lookup(hash_key(bearer(header)))
            if principal is None:
                raise
        if spec.auth == "master" and not principal.is_master:
            raise GatewayError(403, "This route needs the master key", code="master_key_required")
        return principal

    async def _watched(self, handler, gw, request: Request, raw: bytes, send, principal, receive,
                       record: CallRecord) -> None:
        """Run the handler here, and cancel it (and so the upstream call) if the client
        disconnects before the response is complete (`record.responded`).

        Watching costs a task, so it starts only once a request has run for WATCH_AFTER
        seconds: most answers are done before then, and a client that leaves is still
        noticed within that delay.
        """
        task = asyncio.current_task()
        watch = _Watch(task, record)
        timer = asyncio.get_running_loop().call_later(WATCH_AFTER, watch.start, receive)
        try:
            await handler(gw, request, raw, send, principal, record)
        except asyncio.CancelledError:
            if not watch.gone:
                raise
            record.status, record.error = 499, "client disconnected"
            if hasattr(task, "uncancel"):  # Python 3.11+
                task.uncancel()
        finally:
            timer.cancel()
            watch.stop()

    def _prefix_route(self, request: Request) -> tuple[RouteSpec | None, tuple]:
        for (method, prefix), spec in self.prefix_routes.items():
            if method == request.method and request.path.startswith(prefix):
                rest = request.path[len(prefix):]
                if rest and (spec.slashes or "/" not in rest):
                    return spec, (rest,)
        return None, ()

    def _no_route(self, request: Request) -> GatewayError:
        if any(path == request.path for _, path in self.routes) or any(
            request.path.startswith(prefix) for _, prefix in self.prefix_routes
        ):
            return GatewayError(405, f"Method {request.method} is not allowed on {request.path}",
                                code="method_not_allowed")
        return GatewayError(404, f"No route {request.method} {request.path}", code="route_not_found")


WATCH_AFTER = 0.05


class _Watch:
    """The disconnect watch of one request (see `LunosApp._watched`)."""

    __slots__ = ("gone", "record", "task", "watcher")

    def __init__(self, task: asyncio.Task, record: CallRecord) -> None:
        self.task = task
        self.record = record
        self.gone = False
        self.watcher: asyncio.Future | None = None

    def start(self, receive) -> None:
        if not self.record.responded:
            self.watcher = asyncio.ensure_future(_disconnected(receive))
            self.watcher.add_done_callback(self._on_disconnect)

    def _on_disconnect(self, watcher: asyncio.Future) -> None:
        if not watcher.cancelled() and not self.record.responded:
            self.gone = True
            self.task.cancel()

    def stop(self) -> None:
        if self.watcher is not None:
            self.watcher.remove_done_callback(self._on_disconnect)
            self.watcher.cancel()


async def _disconnected(receive) -> None:
    """Return when the client goes away (the body has been read whole before this runs)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


def describe_store_error(exc: BaseException) -> str:
    """A store error in one line, without the SQL or the connection string."""
    cause = getattr(exc, "orig", None) or exc
    text = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
    return f"{cause.__class__.__name__}: {text}" if text else cause.__class__.__name__


def start_telemetry(otel):
    """OpenTelemetry export, or None (logged) when the `lunos[otel]` extra is missing."""
    try:
        from .telemetry import Telemetry
    except ImportError:
        log.error("OpenTelemetry export is configured but its packages are missing: "
                  "pip install 'lunos[otel]'; spans are not exported")
        return None
    from lunos import __version__

    return Telemetry(otel, __version__)


def _with_request_id(send, request_id: str):
    """`send`, adding `x-request-id` to a response that does not carry one already."""
    async def sending(message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers") or ())
            if not any(name.lower() == b"x-request-id" for name, _ in headers):
                headers.append((b"x-request-id", request_id.encode()))
            message = {**message, "headers": headers}
        await send(message)
    return sending


def create_app(settings: Settings, history: History | None = None,
               transport: Transport | None = None) -> LunosApp:
    return LunosApp(settings, history, transport)
