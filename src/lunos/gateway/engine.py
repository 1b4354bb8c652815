"""The only place that talks to upstreams: send, retry, fall back, pump streams.

For each candidate model (the requested one, then `models` / `fallback_model`) the engine
checks what the provider can honour, inlines image URLs for providers that want bytes, asks
the adapter for the upstream request, sends it and translates the answer. Retries happen
only before the first byte reaches the client. A stream that fails after it started goes on
with the next candidate, which continues the answer (resume.py); with none left it ends
with an SSE error event, never with `[DONE]`.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import time
from collections.abc import AsyncIterator

from .._sse import SSEDecoder
from .config import Settings
from .errors import GatewayError, Redactor
from .fetch import Fetcher, FetchTooLarge
from .health import Health, is_health_failure
from .http_client import (
    HttpClient,
    Timeouts,
    UpstreamConnectError,
    UpstreamProtocolError,
    UpstreamResponse,
    UpstreamTimeout,
)
from .providers.base import PAUSED_KEY, ChatRequest, NativeBody, UpstreamRequest, speaks
from .providers.embeddings import EmbeddingsRequest
from .providers.media import MediaRequest
from .records import Attempt, CallRecord
from .resume import MAX_PAUSES, Resume
from .routing import Route, Router, check_credentials
from .usage import Output, TokenCounts, cost_of
from .validation import ChatOptions

log = logging.getLogger("lunos")

MAX_RESPONSE_BYTES = 64 * 1024 * 1024
MAX_ERROR_BYTES = 1024 * 1024
MAX_IMAGE_URLS = 32  # distinct image URLs fetched for one request
MAX_IMAGE_FETCHES = 4  # of them at once


def _images_too_large(budget: int) -> GatewayError:
    return GatewayError(413, f"The images in 'messages' add up to more than {budget} bytes "
                        "(each counted as often as it is used); send fewer or smaller images",
                        param="messages", code="images_too_large")


class Engine:
    def __init__(self, router: Router, client: HttpClient, fetcher: Fetcher, settings: Settings,
                 health: Health | None = None) -> None:
        self.router = router
        self.client = client
        self.fetcher = fetcher
        self.settings = settings
        self.health = health or Health(settings.breaker_threshold, settings.breaker_cooldown)
        self.retries = settings.retries
        self.backoff = settings.retry_backoff
        self.retry_after_cap = settings.retry_after_cap
        self.timeouts = Timeouts(settings.connect_timeout, settings.first_byte_timeout,
                                 settings.idle_timeout)
        self.redactor = Redactor(credentials(router))

    # ------------------------------------------------------------------ planning
    async def prepare(self, route: Route, body: dict, options: ChatOptions, record: CallRecord,
                      stream: bool, native: NativeBody | None = None) -> ChatRequest:
        """The request for one deployment: the door's own body when the provider speaks it
        (passed through as sent), else the chat body, checked and with images inlined."""
        check_credentials(route)
        if native is not None and speaks(route.adapter, native.door):
            return ChatRequest(body, route.model, route.provider, route.upstream_model,
                               route.model_info, stream, native=native)
        include_usage = bool(stream and (body.get("stream_options") or {}).get("include_usage"))
        req = ChatRequest(body, route.model, route.provider, route.upstream_model,
                          route.model_info, stream, include_usage)
        if options.fit_max_tokens:
            req.body = _fit_max_tokens(req.body, route)
        unsupported = route.adapter.check(req)
        if unsupported and options.hinted:
            hinted = {u.param for u in unsupported} & options.hinted
            req.body = {k: v for k, v in req.body.items() if k not in hinted}
            unsupported = [u for u in unsupported if u.param not in hinted]
        if unsupported:
            drop = options.drop_params if options.drop_params is not None else self.settings.drop_params
            if not drop:
                first = unsupported[0]
                raise GatewayError(400, first.message + " (set drop_params to drop it instead)",
                                   param=first.param, code="unsupported_parameter")
            names = list(dict.fromkeys(u.param for u in unsupported))
            req.body = {k: v for k, v in req.body.items() if k not in names}
            record.dropped_params = names
        if not route.adapter.fetches_image_urls:
            req.body = await self.inline_images(req.body)
        return req

    async def inline_images(self, body: dict) -> dict:
        """Replace http(s) image URLs with data URLs fetched through the guarded fetch.

        A request must not turn a few bytes of URLs into a lot of memory: each distinct URL
        is fetched once (`MAX_IMAGE_FETCHES` at a time, at most `MAX_IMAGE_URLS` of them),
        and the images inlined into one request add up to at most the fetch size cap, each
        counted as often as it is used (every use is a copy in the upstream body). Nothing
        keeps the bytes once the request is built."""
        uses: dict[str, list[tuple[int, int]]] = {}
        for i, message in enumerate(body["messages"]):
            content = message.get("content")
            if not isinstance(content, list):
                continue
            for j, part in enumerate(content):
                if part.get("type") == "image_url" and not part["image_url"]["url"].startswith("data:"):
                    uses.setdefault(part["image_url"]["url"], []).append((i, j))
        if not uses:
            return body
        if len(uses) > MAX_IMAGE_URLS:
            raise GatewayError(400, f"'messages' holds {len(uses)} image URLs for this provider to "
                               f"receive inline; at most {MAX_IMAGE_URLS} are fetched per request",
                               param="messages", code="too_many_images")
        budget = self.fetcher.policy.max_bytes
        spent = 0
        gate = asyncio.Semaphore(MAX_IMAGE_FETCHES)

        async def inline(url: str, places: list[tuple[int, int]]) -> str:
            nonlocal spent
            param = f"messages[{places[0][0]}].content[{places[0][1]}].image_url.url"
            async with gate:
                left = (budget - spent) // len(places)
                try:
                    result = await self.fetcher.fetch(url, param=param, accept="image/*", limit=left)
                except FetchTooLarge:
                    result = None  # raised below, so the error does not chain the fetch's frames
            if result is None:
                raise _images_too_large(budget)
            spent += len(result.body) * len(places)
            if spent > budget:
                raise _images_too_large(budget)
            if not result.content_type.startswith("image/"):
                raise GatewayError(400, f"{url} is not an image (content type {result.content_type})",
                                   param=param, code="invalid_image")
            return f"data:{result.content_type};base64,{base64.b64encode(result.body).decode()}"

        tasks = [asyncio.ensure_future(inline(url, places)) for url, places in uses.items()]
        try:
            data_urls = await asyncio.gather(*tasks)
        finally:
            for task in tasks:  # on the first failure, stop the other fetches
                task.cancel()
            # A failed task holds its error, whose traceback holds this frame and so `tasks`:
            # unlinked here, the fetched bytes go with the last reference, not at the next GC.
            tasks.clear()
        messages = list(body["messages"])
        for places, data_url in zip(uses.values(), data_urls, strict=True):
            for i, j in places:
                message = messages[i] = dict(messages[i])
                content = message["content"] = list(message["content"])
                part = content[j] = dict(content[j])
                part["image_url"] = {**part["image_url"], "url": data_url}
        return {**body, "messages": messages}

    # ------------------------------------------------------------------ sending
    async def send(self, route: Route, req: ChatRequest | None, attempt: Attempt,
                   up: UpstreamRequest | None = None) -> UpstreamResponse:
        if up is None:
            up = route.adapter.build_native_request(req) if req.native else route.adapter.build_request(req)
        provider = route.provider
        started = time.perf_counter()
        try:
            response = await self.client.request(up.method, up.url, up.headers, up.body,
                                                 timeouts=self.timeouts)
        except UpstreamConnectError as exc:
            raise GatewayError(502, f"{provider}: {exc}", code="upstream_connect_error",
                               retryable=True) from None
        except UpstreamTimeout as exc:
            raise self.timeout_error(provider, exc.phase) from None
        except UpstreamProtocolError as exc:
            raise GatewayError(502, f"{provider}: {exc}", code="upstream_error", retryable=True) from None
        finally:
            attempt.latency_ms = round((time.perf_counter() - started) * 1000, 3)
        attempt.status = response.status
        if response.status >= 400:
            try:
                raw = await response.read(limit=MAX_ERROR_BYTES)
            except (UpstreamProtocolError, UpstreamTimeout):
                raw = b""
            raise route.adapter.parse_error(response.status, raw, response.headers)
        return response

    async def send_once(self, route: Route, up) -> bytes:
        """One request outside the retry plan (a token count): the body of a 2xx answer,
        or the provider's error as the adapter maps it."""
        try:
            response = await self.send(route, None, Attempt(route.model, route.provider), up)
        except GatewayError as exc:
            raise self.redactor.error(exc) from None
        try:
            return await response.read(limit=MAX_RESPONSE_BYTES)
        except UpstreamTimeout as exc:
            raise self.timeout_error(route.provider, exc.phase) from None
        except UpstreamProtocolError as exc:
            raise GatewayError(502, f"{route.provider}: {exc}", code="upstream_error") from None

    def timeout_error(self, provider: str, phase: str) -> GatewayError:
        seconds = {"connect": self.timeouts.connect, "first_byte": self.timeouts.first_byte,
                   "idle": self.timeouts.idle}.get(phase, self.settings.total_timeout)
        what = {"connect": "accept a connection", "first_byte": "start answering",
                "idle": "send more of its answer"}.get(phase, "finish")
        return GatewayError(504, f"{provider} did not {what} within {seconds:g} s",
                            code="upstream_timeout", retryable=phase in ("connect", "first_byte"))

    async def backoff_sleep(self, error: GatewayError, retry: int) -> None:
        delay = min(self.backoff * (2**retry), self.retry_after_cap) * (0.5 + random.random() / 2)
        retry_after = error.headers.get("retry-after")
        if retry_after:
            try:
                delay = min(max(float(retry_after), 0.0), self.retry_after_cap)
            except ValueError:
                pass
        await asyncio.sleep(delay)

    @staticmethod
    def falls_back(error: GatewayError) -> bool:
        """Whether the next candidate model should be tried after this error."""
        return error.retryable or error.status in (404, 429, 502, 503, 504) or error.code in (
            "provider_not_configured",
        )

    async def _attempts(self, body: dict, options: ChatOptions, record: CallRecord, stream: bool,
                        native: NativeBody | None = None, prepare=None):
        """Yield (route, req, attempt) for each try: the requested model's deployments, then
        each fallback model's. The caller sends back the error of a failed try (`asend`),
        or closes the generator on success and then ends the route's health claim itself.
        `prepare` builds each deployment's request (`self.prepare`, a chat request, unless
        another route's request is given: `embed`).

        Open breakers move traffic, they never leave a request with nothing to try: a retry
        goes through whatever its breaker says, and when the last model's deployments are
        all open, the skipped deployment that failed longest ago is tried anyway (Envoy's
        panic threshold)."""
        prepare = prepare or self.prepare
        error: GatewayError | None = None
        names = [body["model"], *options.models]
        record.requested_model = record.requested_model or body["model"]
        skipped: list[Route] = []  # deployments left out because their breaker is open
        for index, name in enumerate(names):
            try:
                routes = self.router.resolve(name)
            except GatewayError as exc:
                if not self.falls_back(exc):
                    raise
                routes, error = [], exc
            order = self.health.order(routes)
            if not order:
                skipped += routes
                if not skipped or index < len(names) - 1:
                    continue
                order = [self.health.longest_failed(skipped)]  # the last resort
            prepared: dict[str, ChatRequest] = {}
            broken: set[str] = set()  # deployments whose stream broke mid-way (resume.py)
            for retry in range(self.retries + 1):
                route = order[retry % len(order)]
                self.health.begin(route.deployment)
                try:
                    req = prepared.get(route.deployment)
                    if req is None:
                        req = prepared[route.deployment] = await prepare(route, body, options, record,
                                                                         stream, native)
                except BaseException as exc:
                    self.health.end(route.deployment, None)
                    if isinstance(exc, GatewayError) and self.falls_back(exc):
                        error = exc
                        break
                    raise
                attempt = record.attempt(route.model, route.provider)
                error = yield route, req, attempt
                if error is None:
                    return
                self.redactor.error(error)  # every failed try's error, before anyone sees it
                self.health.end(route.deployment, False if is_health_failure(error) else None)
                attempt.error = error.message
                if getattr(error, "midstream", False):  # the next deployment at once, else the next model
                    broken.add(route.deployment)
                    if retry == self.retries or order[(retry + 1) % len(order)].deployment in broken:
                        break
                    continue
                if not error.retryable or retry == self.retries:
                    break
                await self.backoff_sleep(error, retry)
            if error is not None and not self.falls_back(error) and not getattr(error, "midstream", False):
                raise error
        raise error  # type: ignore[misc]

    # ------------------------------------------------------------------ non-streaming
    async def complete(self, body: dict, options: ChatOptions, record: CallRecord,
                       native: NativeBody | None = None) -> dict:
        """The answer: a chat completion, or with `native` the provider's own answer when
        one that speaks the door's format answered (`record.extra["passthrough"]`)."""
        async def call(route: Route, req: ChatRequest, attempt: Attempt) -> tuple[dict, dict | None]:
            response = await self.send(route, req, attempt)
            raw = await self.read_body(route, response, attempt, retryable=True)
            if req.native:
                return route.adapter.parse_native_response(req, raw)
            completion = route.adapter.parse_response(req, response.status, raw)
            if completion.pop(PAUSED_KEY, False):
                completion = await self._go_on(route, req, completion, body, options, record)
            return completion, None

        plan = self._attempts(body, options, record, stream=False, native=native)
        route, req, (completion, usage) = await self._answer(plan, call, record)
        if req.native:
            return self.finish_native(completion, usage, route, record)
        return self.finish_completion(completion, route, record)

    async def _answer(self, plan, call, record: CallRecord) -> tuple:
        """Walk `plan` (`_attempts`): `call(route, req, attempt)` until one returns. A
        GatewayError steps the plan on (retry, next deployment, fallback; the plan raises
        the final error when nothing is left); a cancellation (the client went away) leaves
        the breaker's count of that deployment as it was. Returns (route, req, what `call`
        returned), the record saying who answered."""
        step = await plan.__anext__()
        while True:
            route, req, attempt = step
            try:
                result = await call(route, req, attempt)
            except GatewayError as exc:
                step = await plan.asend(exc)
                continue
            except BaseException:
                self.health.end(route.deployment, None)
                raise
            self.health.end(route.deployment, True)
            await plan.aclose()
            record.model, record.provider, record.status = route.model, route.provider, 200
            return route, req, result

    async def _go_on(self, route: Route, req: ChatRequest, completion: dict, body: dict,
                     options: ChatOptions, record: CallRecord) -> dict:
        """Continue a paused turn (Anthropic's `pause_turn`): the same request plus the answer
        so far, to the same deployment, up to `MAX_PAUSES` times; each is an attempt."""
        resume = self._resumable(body, options, req)
        while resume is not None and resume.pauses < MAX_PAUSES:
            resume.pauses += 1
            resume.text = [completion["choices"][0]["message"].get("content") or ""]
            attempt = record.attempt(route.model, route.provider)
            response = await self.send(route, resume.request(req, getattr(route.adapter, "continues_prefill", False)),
                                       attempt)
            raw = await self.read_body(route, response, attempt, retryable=True)
            later = route.adapter.parse_response(req, response.status, raw)
            paused = later.pop(PAUSED_KEY, False)
            completion = resume.joined(completion, later)
            if not paused:
                break
        return completion

    def finish_native(self, answer: dict, usage: dict | None, route: Route, record: CallRecord) -> dict:
        record.extra["passthrough"] = True
        record.tokens.add(TokenCounts.of(usage))
        record.cost = cost_of(record.tokens, route.model_info)
        return answer

    def finish_completion(self, completion: dict, route: Route, record: CallRecord) -> dict:
        usage = completion.get("usage")
        tokens = TokenCounts.of(usage)
        record.tokens.add(tokens)  # over every call this request made
        record.cost = cost_of(record.tokens, route.model_info)
        cost = cost_of(tokens, route.model_info)  # of this call's usage
        if usage is not None and cost is not None:
            usage["cost"] = cost
        out = {
            "id": record.id,
            "object": "chat.completion",
            "created": int(record.created_at),
            "model": route.model,
            "provider": route.provider,
        }
        for key, value in completion.items():
            if key not in out:
                out[key] = value
        for choice in out.get("choices") or ():  # a tool call without arguments: "{}"
            for call in (choice.get("message") or {}).get("tool_calls") or ():
                function = call.get("function")
                if isinstance(function, dict) and not function.get("arguments"):
                    function["arguments"] = "{}"
        return out

    # ------------------------------------------------------------------ embeddings
    async def embed(self, body: dict, options: ChatOptions, record: CallRecord) -> tuple[list, dict | None]:
        """Vectors (in input order) and usage for an embeddings body (`input` a list), with
        the same retries, fallbacks and breakers as chat; the record says who answered."""
        async def call(route: Route, req, attempt: Attempt) -> tuple[list, dict | None]:
            response = await self.send(route, None, attempt, route.adapter.build_embeddings_request(req))
            raw = await self.read_body(route, response, attempt, retryable=True)
            return route.adapter.parse_embeddings_response(req, raw)

        plan = self._attempts(body, options, record, stream=False, prepare=_embeddings_request)
        route, _, (vectors, usage) = await self._answer(plan, call, record)
        record.tokens.add(TokenCounts.of(usage))
        record.cost = cost_of(record.tokens, route.model_info)
        return vectors, usage

    # ------------------------------------------------------------------ media routes
    async def media(self, kind: str, body: dict, options: ChatOptions, record: CallRecord,
                    stream: bool = False, raw: tuple[bytes, str] | None = None):
        """Send a media route's body (`kind`: images, speech, transcriptions, completions;
        `raw`: a multipart body and its content type) to the first deployment that answers
        2xx, with the same retries, fallbacks and breakers as chat, and return
        (route, request, open response): the route reads the body whole or relays it."""

        async def prepare(route, body, options, record, stream, native) -> MediaRequest:
            check_credentials(route)
            if kind not in getattr(route.adapter, "media_routes", ()):
                raise GatewayError(400, f"The provider {route.provider!r} has no {ROUTE_NAMES[kind]} "
                                   "route", param="model", code="unsupported_endpoint")
            return MediaRequest(kind, body, route.model, route.provider, route.upstream_model,
                                route.model_info, stream, *(raw or (None, None)))

        async def call(route: Route, req: MediaRequest, attempt: Attempt) -> UpstreamResponse:
            return await self.send(route, None, attempt, route.adapter.build_media_request(req))

        plan = self._attempts(body, options, record, stream=stream, prepare=prepare)
        return await self._answer(plan, call, record)

    async def read_body(self, route: Route, response: UpstreamResponse, attempt: Attempt,
                        retryable: bool = False) -> bytes:
        """A response's whole body (a 502 or 504 naming the provider when it breaks off,
        `retryable` while the attempts may still go on); the wait counts as the attempt's
        upstream time."""
        started = time.perf_counter()
        try:
            return await response.read(limit=MAX_RESPONSE_BYTES)
        except UpstreamTimeout as exc:
            raise self.timeout_error(route.provider, exc.phase) from None
        except UpstreamProtocolError as exc:
            raise GatewayError(502, f"{route.provider}: {exc}", code="upstream_error",
                               retryable=retryable) from None
        finally:
            attempt.latency_ms = round(attempt.latency_ms + (time.perf_counter() - started) * 1000, 3)

    # ------------------------------------------------------------------ streaming
    async def stream(self, body: dict, options: ChatOptions, record: CallRecord,
                     native: NativeBody | None = None) -> AsyncIterator[list]:
        """Yield batches of stamped chunk dicts as the upstream sends them (usage-only chunks
        included, whatever the client asked: `sse.relay` hides them). Errors raise
        GatewayError, whatever went wrong (an undecodable event, a translator's surprise);
        before the first batch the request may still have been retried or sent to a
        fallback; after it, a failure hands the answer so far to the next candidate, which
        continues it on the same stream (stream failover, resume.py), and Anthropic's
        `pause_turn` is continued the same way on the same deployment. With `native`, a
        provider that speaks the door's format streams its own events, as framed bytes
        (`record.extra["passthrough"]` says so before the first batch)."""
        plan = self._attempts(body, options, record, stream=True, native=native)
        deadline = time.monotonic() + self.settings.total_timeout
        route, req, attempt, pump, chunks, first = await self._open(plan, await plan.__anext__(),
                                                                    body, options, record, deadline)
        resume = self._resumable(body, options, req)
        if resume is None:
            await plan.aclose()
        else:
            resume.follow(pump, first)
        record.model, record.provider, record.status = route.model, route.provider, 200
        if req.native:
            record.extra["passthrough"] = True
        ok: bool | None = None
        claimed = True  # this attempt's health claim is still to end (the plan ends a failed one's)
        try:
            yield first
            while True:
                try:
                    tail: list = []
                    if not pump.ended:
                        next_bytes = chunks.__anext__
                        while True:
                            started = time.monotonic()
                            try:
                                data = await next_bytes()
                            except StopAsyncIteration:
                                break
                            finally:
                                now = time.monotonic()
                                attempt.latency_ms += (now - started) * 1000  # upstream time
                            if now > deadline:
                                raise self.timeout_error(route.provider, "total")
                            batch = pump.feed(data)
                            if batch:
                                yield batch
                        tail = pump.finish()
                    if not pump.paused:
                        yield tail
                        ok = True
                        break
                    error = None  # Anthropic's pause_turn: the same deployment goes on
                except Exception as exc:
                    error, ok = self._broken(route, exc)
                    if resume is None or time.monotonic() > deadline:
                        pump.fail(error)
                        raise error from None
                resume.take(pump)
                attempt.latency_ms = round(attempt.latency_ms, 3)
                await chunks.aclose()
                claimed = False
                if error is None:
                    resume.pauses += 1
                    self.health.end(route.deployment, True)
                    self.health.begin(route.deployment)
                    attempt = record.attempt(route.model, route.provider)
                    step = route, req, attempt
                else:
                    error.midstream = True  # the plan tries another deployment or model, at once
                    try:
                        step = await plan.asend(error)
                    except GatewayError as final:  # no candidate left: the stream ends with the error
                        pump.fail(final)
                        raise final from None
                route, req, attempt, pump, chunks, first = await self._open(
                    plan, step, body, options, record, deadline, resume)
                claimed, ok = True, None
                record.model, record.provider = route.model, route.provider
                yield first
        finally:
            if claimed:
                self.health.end(route.deployment, ok)
            attempt.latency_ms = round(attempt.latency_ms, 3)
            pump.settle()
            if resume is not None:
                resume.settle(record)
                await plan.aclose()
            await chunks.aclose()

    def _resumable(self, body: dict, options: ChatOptions, req: ChatRequest) -> Resume | None:
        """The state for a stream failover, when this stream may have one: not when it is
        switched off, nor for a pass-through stream or several choices."""
        on = options.stream_failover if options.stream_failover is not None else self.settings.stream_failover
        if not on or req.native or (body.get("n") or 1) > 1:
            return None
        return Resume()

    def _broken(self, route: Route, exc: Exception) -> tuple[GatewayError, bool | None]:
        """A stream's failure after it started as the error the client is told, and what it
        says of the deployment's health."""
        if isinstance(exc, UpstreamTimeout):
            return self.timeout_error(route.provider, exc.phase), False
        if isinstance(exc, UpstreamProtocolError):
            return self.redactor.error(GatewayError(502, f"{route.provider}: {exc}", code="upstream_error")), False
        if isinstance(exc, GatewayError):  # an error event from the provider, mid-stream
            return self.redactor.error(exc), False if is_health_failure(exc) else None
        log.exception("stream from %s failed", route.provider)
        return GatewayError(500, f"The gateway failed while relaying {route.provider}'s stream",
                            code="internal_error"), None

    async def _open(self, plan, step, body: dict, options: ChatOptions, record: CallRecord,
                    deadline: float, resume: Resume | None = None):
        """Send the plan's tries until one stream has a first batch; with `resume`, each try
        continues the answer so far (a chat request, even where the provider speaks the door)."""
        while True:
            route, req, attempt = step
            chunks = None
            try:
                if resume is None:
                    pump = (_NativePump if req.native else _Pump)(route, req, record, attempt)
                else:
                    if req.native:
                        req = await self.prepare(route, body, options, record, True)
                    sent = resume.request(req, getattr(route.adapter, "continues_prefill", False))
                    pump = _ContinuedPump(route, sent, record, attempt, resume)
                response = await self.send(route, sent if resume is not None else req, attempt)
                chunks = response.aiter_bytes()
                first = await self._first_batch(pump, chunks, deadline)
            except GatewayError as exc:
                if chunks is not None:
                    await chunks.aclose()
                step = await plan.asend(exc)
                continue
            except BaseException:
                self.health.end(route.deployment, None)
                if chunks is not None:
                    await chunks.aclose()
                raise
            return route, req, attempt, pump, chunks, first

    async def _first_batch(self, pump: _Pump, chunks: AsyncIterator[bytes], deadline: float) -> list[dict]:
        """Read until the translator has something to send (retries stay possible until then).
        The wait for each piece is upstream time: it counts in the attempt's latency, so the
        gateway's own time (`x-lunos-overhead-ms`) leaves it out; the stream loop does the same."""
        attempt = pump.attempt
        next_bytes = chunks.__anext__
        try:
            while True:
                started = time.monotonic()
                try:
                    data = await next_bytes()
                except StopAsyncIteration:
                    return pump.finish()
                finally:
                    now = time.monotonic()
                    attempt.latency_ms += (now - started) * 1000
                if now > deadline:
                    raise self.timeout_error(pump.route.provider, "total")
                batch = pump.feed(data)
                if batch:
                    return batch
        except UpstreamTimeout as exc:
            raise self.timeout_error(pump.route.provider, exc.phase) from None
        except UpstreamProtocolError as exc:
            raise GatewayError(502, f"{pump.route.provider}: {exc}", code="upstream_error",
                               retryable=True) from None
        finally:
            attempt.latency_ms = round(attempt.latency_ms, 3)


async def _embeddings_request(route: Route, body: dict, options, record, stream, native) -> EmbeddingsRequest:
    """`_attempts`'s `prepare` for embeddings: the deployment's request, or a 400 when its
    provider has no embeddings API."""
    check_credentials(route)
    if not hasattr(route.adapter, "build_embeddings_request"):
        raise GatewayError(400, f"The provider {route.provider!r} has no embeddings API",
                           param="model", code="unsupported_endpoint")
    return EmbeddingsRequest(body, route.model, route.provider, route.upstream_model, route.model_info)


ROUTE_NAMES = {"images": "image generation", "speech": "text-to-speech",
               "transcriptions": "transcription", "completions": "text completions"}


def _fit_max_tokens(body: dict, route: Route) -> dict:
    """The body with `max_tokens` lowered to the model's catalog `max_output`, if above it."""
    most = route.model_info.max_output if route.model_info is not None else None
    asked = body.get("max_tokens")
    if most and isinstance(asked, int) and asked > most:
        return {**body, "max_tokens": most}
    return body


def credentials(router: Router) -> list[str | None]:
    """Every secret the gateway sends upstream: provider keys and credential-like headers."""
    configs = [a.config for a in router.adapters.values()]
    configs += [r.adapter.config for routes in router.aliases.values() for r in routes]
    found: list[str | None] = []
    for config in configs:
        found.append(config.api_key)
        found.extend(v for k, v in config.headers
                     if any(w in k for w in ("auth", "key", "token", "secret")))
    return found


def unreadable(provider: str, exc: Exception) -> GatewayError:
    """An event a stream translator could not take: a 502 when it does not decode (the
    upstream's fault), else a 500 (the gateway's), logged with its traceback."""
    if isinstance(exc, ValueError):  # JSON and Unicode decode errors included
        return GatewayError(502, f"{provider} sent a stream event that could not be decoded",
                            code="upstream_bad_response")
    log.error("translating %s's stream failed", provider, exc_info=exc)
    return GatewayError(500, f"The gateway could not translate {provider}'s stream",
                        code="internal_error")


class _Pump:
    """Per-stream state: decode SSE, translate, stamp; fold usage, output and timing.

    A tool call that got no arguments by the time its choice finishes gets `"{}"`, as a
    non-streamed one does, whichever provider sent it.
    """

    __slots__ = ("attempt", "calls", "decoder", "ended", "first_token_at", "output", "record",
                 "route", "stamp", "text", "translator", "usage")

    def __init__(self, route: Route, req: ChatRequest, record: CallRecord, attempt: Attempt) -> None:
        self.route = route
        self.record = record
        self.attempt = attempt
        self.decoder = SSEDecoder()
        self.translator = route.adapter.stream_translator(req)
        self.stamp = {"id": record.id, "object": "chat.completion.chunk",
                      "created": int(record.created_at), "model": route.model,
                      "provider": route.provider}
        self.usage: dict | None = None
        self.output = Output() if record.trace else None
        self.first_token_at: float | None = None
        self.ended = False
        self.calls: dict[tuple[int, int], bool] = {}  # (choice, tool call) -> got arguments
        self.text: list[str] | None = None  # the content so far, kept when the stream may resume

    def feed(self, data: bytes) -> list[dict]:
        out: list[dict] = []
        try:
            for event in self.decoder.feed(data):
                for chunk in self.translator.feed(event):
                    self._stamp(chunk, out)
        except GatewayError:
            raise
        except Exception as exc:
            raise self._unreadable(exc) from None
        return out

    def finish(self) -> list[dict]:
        out: list[dict] = []
        try:
            for event in self.decoder.flush():
                for chunk in self.translator.feed(event):
                    self._stamp(chunk, out)
            for chunk in self.translator.finish():
                self._stamp(chunk, out)
            for choice in sorted({c for (c, _), seen in self.calls.items() if not seen}):
                self._fill_arguments({"index": choice}, out)  # choices that never said finish
        except GatewayError:
            raise
        except Exception as exc:
            raise self._unreadable(exc) from None
        self.ended = True
        return out

    def _unreadable(self, exc: Exception) -> GatewayError:
        return unreadable(self.route.provider, exc)

    @property
    def paused(self) -> bool:
        """Whether the turn ended in a `pause_turn` left open for a continuation."""
        return getattr(self.translator, "paused", False)

    def _stamp(self, chunk: dict, out: list[dict]) -> None:
        usage = chunk.get("usage")
        choices = chunk.get("choices")
        if usage:
            self.usage = usage
            cost = cost_of(TokenCounts.of(usage), self.route.model_info)
            if cost is not None:
                usage["cost"] = cost
        elif not choices:
            return  # neither output nor usage: nothing to say
        if choices:
            for choice in choices:
                delta = choice.get("delta")
                if delta and delta.get("tool_calls"):
                    self._note_calls(choice.get("index", 0), delta["tool_calls"])
                if choice.get("finish_reason") and self.calls:
                    self._fill_arguments(choice, out)
            delta = choices[0].get("delta") or {}
            if self.text is not None and delta.get("content"):
                self.text.append(delta["content"])
            if self.first_token_at is None and (
                delta.get("content") or delta.get("tool_calls") or delta.get("reasoning_content")
            ):
                self.first_token_at = time.perf_counter()
            if self.output is not None:
                for choice in choices:
                    if choice.get("index", 0) == 0:
                        self.output.fold_delta(choice.get("delta") or {})
                        if choice.get("finish_reason"):
                            self.output.finish_reason = choice["finish_reason"]
        chunk.update(self.stamp)
        out.append(chunk)

    def _note_calls(self, choice: int, calls: list) -> None:
        for call in calls:
            key = (choice, call.get("index", 0))
            function = call.get("function") or {}
            self.calls[key] = self.calls.get(key, False) or bool(function.get("arguments"))

    def _fill_arguments(self, choice: dict, out: list[dict]) -> None:
        """Give `"{}"` to this finishing choice's tool calls that got no arguments: in the
        finishing chunk itself when the call is there, else in a chunk just before it."""
        index = choice.get("index", 0)
        bare = [call for (c, call), seen in self.calls.items() if c == index and not seen]
        if not bare:
            return
        here = {call.get("index", 0): call for call in (choice.get("delta") or {}).get("tool_calls") or ()}
        missing = []
        for call in bare:
            self.calls[(index, call)] = True
            if call in here:
                function = here[call].get("function")
                if not isinstance(function, dict):
                    function = here[call]["function"] = {}
                function["arguments"] = "{}"
            else:
                missing.append({"index": call, "function": {"arguments": "{}"}})
        if missing:
            fill = {"choices": [{"index": index, "delta": {"tool_calls": missing}, "finish_reason": None}]}
            if self.output is not None and index == 0:
                self.output.fold_delta(fill["choices"][0]["delta"])
            fill.update(self.stamp)
            out.append(fill)

    def fail(self, error: GatewayError) -> None:
        self.record.status = error.status
        self.record.error = error.message

    def settle(self) -> None:
        """Fold what the stream produced into the history row."""
        record = self.record
        record.tokens.add(TokenCounts.of(self.usage))
        record.cost = cost_of(record.tokens, self.route.model_info)
        if self.output is not None:
            record.response = self.output.to_dict()
        record.finish(self.first_token_at)


class _ContinuedPump(_Pump):
    """A stream failover's pump (resume.py): the continuation goes on the client's stream as
    if one answer: no second role chunk, the whitespace the prefill left out not sent twice,
    tool calls numbered after the ones the client saw, usage summed over every attempt."""

    __slots__ = ("resume",)

    def __init__(self, route: Route, req: ChatRequest, record: CallRecord, attempt: Attempt,
                 resume: Resume) -> None:
        super().__init__(route, req, record, attempt)
        self.resume = resume
        self.stamp = resume.stamp  # the stream's own id, model and provider
        self.text = resume.text
        self.output = resume.output
        self.first_token_at = resume.first_token_at
        resume.pausing(self)

    def _stamp(self, chunk: dict, out: list[dict]) -> None:
        choices = chunk.get("choices")
        if choices:
            resume = self.resume
            for choice in choices:
                delta = choice.get("delta")
                if not delta:
                    continue
                delta.pop("role", None)
                if resume.trim and delta.get("content"):
                    delta["content"] = delta["content"].lstrip()
                    resume.trim = False
                if resume.tools and delta.get("tool_calls"):
                    for call in delta["tool_calls"]:
                        call["index"] = call.get("index", 0) + resume.tools
            if not chunk.get("usage") and not any(
                choice.get("finish_reason") or any((choice.get("delta") or {}).values()) for choice in choices
            ):
                return  # what was left of the role chunk
        usage = chunk.get("usage")
        super()._stamp(chunk, out)
        if usage and out and out[-1] is chunk:
            chunk["usage"] = self.resume.total(usage)


class _NativePump:
    """Per-stream state of a pass-through stream: the provider's events go out re-framed as
    they came (the adapter's relay decides what to hold), usage and output are folded for
    the row. The same interface as `_Pump`, so the stream loop is one."""

    __slots__ = ("attempt", "decoder", "ended", "first_token_at", "record", "relay", "route")
    paused = False

    def __init__(self, route: Route, req: ChatRequest, record: CallRecord, attempt: Attempt) -> None:
        self.route = route
        self.record = record
        self.attempt = attempt
        self.decoder = SSEDecoder()
        self.relay = route.adapter.native_relay(req, trace=record.trace)
        self.first_token_at: float | None = None
        self.ended = False

    def feed(self, data: bytes) -> list[bytes]:
        out: list[bytes] = []
        try:
            for event in self.decoder.feed(data):
                out += self.relay.feed(event)
        except GatewayError:
            raise
        except Exception as exc:
            raise unreadable(self.route.provider, exc) from None
        if out and self.first_token_at is None:
            self.first_token_at = time.perf_counter()
        return out

    def finish(self) -> list[bytes]:
        out = self.feed(b"")
        try:
            for event in self.decoder.flush():
                out += self.relay.feed(event)
            out += self.relay.finish()
        except GatewayError:
            raise
        except Exception as exc:
            raise unreadable(self.route.provider, exc) from None
        self.ended = True
        return out

    def fail(self, error: GatewayError) -> None:
        self.record.status = error.status
        self.record.error = error.message

    def settle(self) -> None:
        record = self.record
        record.tokens.add(TokenCounts.of(self.relay.usage))
        record.cost = cost_of(record.tokens, self.route.model_info)
        if self.relay.output is not None:
            record.response = self.relay.output.to_dict()
        record.finish(self.first_token_at)
