"""The only place that talks to upstreams: send, retry, fall back, pump streams.

For each candidate model (the requested one, then `models` / `fallback_model`) the engine
checks what the provider can honour, inlines image URLs for providers that want bytes, asks
the adapter for the upstream request, sends it and translates the answer. Retries happen
only before the first byte reaches the client. A stream that fails after it started ends
with an SSE error event, never with `[DONE]`.
"""

from __future__ import annotations

import asyncio
import base64
import random
import time
from collections.abc import AsyncIterator

from .._sse import SSEDecoder
from .config import Settings
from .errors import GatewayError
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
from .providers.base import ChatRequest
from .records import Attempt, CallRecord
from .routing import Route, Router, check_credentials
from .usage import Output, TokenCounts, cost_of
from .validation import ChatOptions

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

    # ------------------------------------------------------------------ planning
    async def prepare(self, route: Route, body: dict, options: ChatOptions, record: CallRecord,
                      stream: bool) -> ChatRequest:
        check_credentials(route)
        include_usage = bool(stream and (body.get("stream_options") or {}).get("include_usage"))
        req = ChatRequest(body, route.model, route.provider, route.upstream_model,
                          route.model_info, stream, include_usage)
        unsupported = route.adapter.check(req)
        if unsupported:
            drop = options.drop_params if options.drop_params is not None else self.settings.drop_params
            if not drop:
                first = unsupported[0]
                raise GatewayError(400, first.message + " (set drop_params to drop it instead)",
                                   param=first.param, code="unsupported_parameter")
            names = list(dict.fromkeys(u.param for u in unsupported))
            req.body = {k: v for k, v in body.items() if k not in names}
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
    async def send(self, route: Route, req: ChatRequest, attempt: Attempt) -> UpstreamResponse:
        up = route.adapter.build_request(req)
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

    def circuit_open(self, model: str) -> GatewayError:
        return GatewayError(503, f"Every deployment of {model!r} is failing; the gateway is "
                            "not sending it traffic for now (circuit open)", code="circuit_open",
                            headers={"retry-after": str(max(int(self.health.cooldown), 1))})

    async def _attempts(self, body: dict, options: ChatOptions, record: CallRecord, stream: bool):
        """Yield (route, req, attempt) for each try: the requested model's deployments, then
        each fallback model's. The caller sends back the error of a failed try (`asend`),
        or closes the generator on success and then ends the route's health claim itself."""
        error: GatewayError | None = None
        for name in [body["model"], *options.models]:
            try:
                order = self.health.order(self.router.resolve(name))
            except GatewayError as exc:
                order, error = [], exc
            if not order:
                error = error if error is not None and not error.retryable else self.circuit_open(name)
                if not self.falls_back(error):
                    raise error
                continue
            prepared: dict[str, ChatRequest] = {}
            for retry in range(self.retries + 1):
                route = order[retry % len(order)]
                if not self.health.begin(route.deployment):
                    error = self.circuit_open(name)
                    continue
                try:
                    req = prepared.get(route.deployment)
                    if req is None:
                        req = prepared[route.deployment] = await self.prepare(route, body, options, record, stream)
                except BaseException as exc:
                    self.health.end(route.deployment, None)
                    if isinstance(exc, GatewayError) and self.falls_back(exc):
                        error = exc
                        break
                    raise
                attempt = Attempt(route.model, route.provider)
                record.attempts.append(attempt)
                error = yield route, req, attempt
                if error is None:
                    return
                self.health.end(route.deployment, False if is_health_failure(error) else None)
                attempt.error = error.message
                if not error.retryable or retry == self.retries:
                    break
                await self.backoff_sleep(error, retry)
            if error is not None and not self.falls_back(error):
                raise error
        raise error  # type: ignore[misc]

    # ------------------------------------------------------------------ non-streaming
    async def complete(self, body: dict, options: ChatOptions, record: CallRecord) -> dict:
        plan = self._attempts(body, options, record, stream=False)
        step = await plan.__anext__()
        while True:
            route, req, attempt = step
            try:
                response = await self.send(route, req, attempt)
                try:
                    raw = await response.read(limit=MAX_RESPONSE_BYTES)
                except UpstreamTimeout as exc:
                    raise self.timeout_error(route.provider, exc.phase) from None
                except UpstreamProtocolError as exc:
                    raise GatewayError(502, f"{route.provider}: {exc}", code="upstream_error",
                                       retryable=True) from None
                completion = route.adapter.parse_response(req, response.status, raw)
            except GatewayError as exc:
                step = await plan.asend(exc)  # raises the final error when nothing is left
                continue
            except BaseException:  # cancelled: the client went away
                self.health.end(route.deployment, None)
                raise
            self.health.end(route.deployment, True)
            await plan.aclose()
            return self.finish_completion(completion, route, record)

    def finish_completion(self, completion: dict, route: Route, record: CallRecord) -> dict:
        record.model, record.provider, record.status = route.model, route.provider, 200
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
        return out

    # ------------------------------------------------------------------ streaming
    async def stream(self, body: dict, options: ChatOptions, record: CallRecord) -> AsyncIterator[list[dict]]:
        """Yield batches of stamped chunk dicts as the upstream sends them (usage-only chunks
        included, whatever the client asked: `sse.relay` hides them). Errors raise
        GatewayError; before the first batch the request may still have been retried or
        sent to a fallback, after it the stream is the client's and only ends."""
        plan = self._attempts(body, options, record, stream=True)
        step = await plan.__anext__()
        deadline = time.monotonic() + self.settings.total_timeout
        while True:
            route, req, attempt = step
            pump = _Pump(route, req, record)
            chunks = None
            try:
                response = await self.send(route, req, attempt)
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
            break
        await plan.aclose()
        record.model, record.provider, record.status = route.model, route.provider, 200
        ok: bool | None = None
        try:
            yield first
            if not pump.ended:
                async for data in chunks:
                    batch = pump.feed(data)
                    if batch:
                        yield batch
                    if time.monotonic() > deadline:
                        raise self.timeout_error(route.provider, "total")
                yield pump.finish()
            ok = True
        except UpstreamTimeout as exc:
            error = self.timeout_error(route.provider, exc.phase)
            pump.fail(error)
            ok = False
            raise error from None
        except UpstreamProtocolError as exc:
            error = GatewayError(502, f"{route.provider}: {exc}", code="upstream_error")
            pump.fail(error)
            ok = False
            raise error from None
        except GatewayError as exc:
            pump.fail(exc)
            ok = False if is_health_failure(exc) else None
            raise
        finally:
            self.health.end(route.deployment, ok)
            pump.settle()
            await chunks.aclose()

    async def _first_batch(self, pump: _Pump, chunks: AsyncIterator[bytes], deadline: float) -> list[dict]:
        """Read until the translator has something to send (retries stay possible until then)."""
        try:
            async for data in chunks:
                batch = pump.feed(data)
                if batch:
                    return batch
                if time.monotonic() > deadline:
                    raise self.timeout_error(pump.route.provider, "total")
            return pump.finish()
        except UpstreamTimeout as exc:
            raise self.timeout_error(pump.route.provider, exc.phase) from None
        except UpstreamProtocolError as exc:
            raise GatewayError(502, f"{pump.route.provider}: {exc}", code="upstream_error",
                               retryable=True) from None


class _Pump:
    """Per-stream state: decode SSE, translate, stamp; fold usage, output and timing."""

    __slots__ = ("decoder", "ended", "first_token_at", "output", "record", "route", "stamp",
                 "translator", "usage")

    def __init__(self, route: Route, req: ChatRequest, record: CallRecord) -> None:
        self.route = route
        self.record = record
        self.decoder = SSEDecoder()
        self.translator = route.adapter.stream_translator(req)
        self.stamp = {"id": record.id, "object": "chat.completion.chunk",
                      "created": int(record.created_at), "model": route.model,
                      "provider": route.provider}
        self.usage: dict | None = None
        self.output = Output() if record.trace else None
        self.first_token_at: float | None = None
        self.ended = False

    def feed(self, data: bytes) -> list[dict]:
        out: list[dict] = []
        for event in self.decoder.feed(data):
            for chunk in self.translator.feed(event):
                self._stamp(chunk, out)
        return out

    def finish(self) -> list[dict]:
        out: list[dict] = []
        for event in self.decoder.flush():
            for chunk in self.translator.feed(event):
                self._stamp(chunk, out)
        for chunk in self.translator.finish():
            self._stamp(chunk, out)
        self.ended = True
        return out

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
            delta = choices[0].get("delta") or {}
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
