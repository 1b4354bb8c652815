"""OpenTelemetry export (SPEC §11): one span per model request, one child span per upstream
attempt, named and attributed by the GenAI semantic conventions.

Imported only when `Settings.otel` is set (the `lunos[otel]` extra). Spans are made after
the fact from the request's `CallRecord` (its start, latency and attempts, each with its
offset `started_ms`), one event-loop turn after the request ends, and handed
to the SDK's BatchSpanProcessor, whose thread exports them: a request never waits on the
collector. A batch the collector does not take, and a span the full queue pushes out, are
counted (`dropped`, shown in /metrics as `lunos_otel_spans_dropped_total`).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from collections.abc import Mapping
from typing import Any

import orjson
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from .records import CallRecord

log = logging.getLogger("lunos.otel")

# The GenAI operation of each front door (gen_ai.operation.name).
OPERATIONS = {"chat": "chat", "messages": "chat", "responses": "chat",
              "embeddings": "embeddings", "completions": "text_completion"}
_PROPAGATOR = TraceContextTextMapPropagator()


class CountingExporter(SpanExporter):
    """The real exporter, counting the spans of every batch it failed to deliver."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner
        self.dropped = 0

    def export(self, spans) -> SpanExportResult:
        try:
            result = self.inner.export(spans)
        except Exception:  # a broken exporter must not kill the export thread
            result = SpanExportResult.FAILURE
        if result is not SpanExportResult.SUCCESS:
            self.dropped += len(spans)
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


def make_exporter(otel: Mapping[str, Any]) -> SpanExporter:
    """OTLP over HTTP/protobuf (default) or gRPC. A `LUNOS_OTLP_ENDPOINT` is a base URL (as
    `OTEL_EXPORTER_OTLP_ENDPOINT`); without one the exporter reads the standard variables."""
    endpoint, timeout = otel["endpoint"], otel["timeout"]
    if otel["protocol"] == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=endpoint, insecure=bool(endpoint and endpoint.startswith(
            "http://")) or None, timeout=timeout)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces" if endpoint else None, timeout=timeout)


class ChosenTraceIds(RandomIdGenerator):
    """Trace ids chosen when the request ends (`Telemetry.new_trace_id`), so that its JSON log
    line can name the trace before the span is made; the next root span takes the one set."""

    def __init__(self) -> None:
        self.next: int | None = None

    def random_trace_id(self) -> int:
        return super().generate_trace_id()

    def generate_trace_id(self) -> int:
        chosen, self.next = self.next, None
        return chosen or self.random_trace_id()


class Telemetry:
    def __init__(self, otel: Mapping[str, Any], version: str,
                 exporter: SpanExporter | None = None) -> None:
        self.capture_content = bool(otel.get("capture_content"))
        self.exporter = CountingExporter(exporter or make_exporter(otel))
        resource = Resource.create({
            "service.name": "lunos",
            "service.version": version,
            "service.instance.id": f"{socket.gethostname()}-{uuid.uuid4().hex[:12]}",
        })
        self.ids = ChosenTraceIds()
        self.provider = TracerProvider(resource=resource, id_generator=self.ids)
        self.processor = BatchSpanProcessor(self.exporter, export_timeout_millis=otel["timeout"] * 1000)
        self.provider.add_span_processor(self.processor)
        self.tracer = self.provider.get_tracer("lunos", version)
        self.queue_dropped = 0

    @property
    def dropped(self) -> int:
        return self.exporter.dropped + self.queue_dropped

    def new_trace_id(self) -> str:
        """A trace id for a request that came without one (32 hex digits)."""
        return format(self.ids.random_trace_id(), "032x")

    def put(self, record: CallRecord, traceparent: str | None, tracestate: str | None) -> None:
        """Queue the request's spans, built on the next event-loop turn."""
        asyncio.get_running_loop().call_soon(self._spans, record, traceparent, tracestate)

    def _spans(self, record: CallRecord, traceparent: str | None, tracestate: str | None) -> None:
        try:
            self._export(record, traceparent, tracestate)
        except Exception:  # telemetry never breaks the gateway
            log.exception("building the spans of %s failed", record.id)

    def _export(self, record: CallRecord, traceparent: str | None, tracestate: str | None) -> None:
        parent = None
        if traceparent:
            carrier = {"traceparent": traceparent}
            if tracestate:
                carrier["tracestate"] = tracestate
            parent = _PROPAGATOR.extract(carrier)
        operation = OPERATIONS.get(record.endpoint, record.endpoint)
        attempts = record.attempts
        request_model = attempts[0].model if attempts else record.model
        start = _ns(record.created_at)
        end = start + int((record.latency_ms or 0) * 1e6)
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": operation,
            "gen_ai.request.model": request_model,
            "lunos.request_id": record.id,
            "lunos.endpoint": record.endpoint,
            "http.response.status_code": record.status,
        }
        if record.provider:
            attributes["gen_ai.provider.name"] = record.provider
        if record.status < 400 and record.model:
            attributes["gen_ai.response.model"] = record.model
        if record.tokens.prompt or record.tokens.completion:
            attributes["gen_ai.usage.input_tokens"] = record.tokens.prompt
            attributes["gen_ai.usage.output_tokens"] = record.tokens.completion
        if record.key_id:
            attributes["lunos.key_id"] = record.key_id
        if record.app_id:
            attributes["lunos.app_id"] = record.app_id
        if record.stream:
            attributes["lunos.stream"] = True
        if record.status >= 400:
            attributes["error.type"] = str(record.status)
        if self.capture_content and record.trace:
            if record.request is not None:
                attributes["gen_ai.input.messages"] = record.request.decode("utf-8", "replace")
            if record.response is not None:
                attributes["gen_ai.output.messages"] = orjson.dumps(record.response).decode()
        if record.trace_id and not trace.get_current_span(parent).get_span_context().is_valid:
            self.ids.next = int(record.trace_id, 16)  # a root span: the trace its log line names
        span = self.tracer.start_span(f"{operation} {request_model}", context=parent,
                                      kind=SpanKind.SERVER, attributes=attributes, start_time=start)
        self.ids.next = None
        if record.status >= 400:
            span.set_status(Status(StatusCode.ERROR, record.error or None))
        inside = trace.set_span_in_context(span)
        for i, attempt in enumerate(attempts):
            begun = _ns(record.created_at + attempt.started_ms / 1000)
            model = attempt.model.removeprefix(f"{attempt.provider}/")  # as sent upstream
            child: dict[str, Any] = {
                "gen_ai.operation.name": operation,
                "gen_ai.provider.name": attempt.provider,
                "gen_ai.request.model": model,
                "lunos.attempt": i + 1,
            }
            if attempt.status is not None:
                child["http.response.status_code"] = attempt.status
            failed = attempt.error is not None or (attempt.status or 0) >= 400
            if failed:
                child["error.type"] = str(attempt.status) if attempt.status else "_OTHER"
            sub = self.tracer.start_span(f"{operation} {model}", context=inside,
                                         kind=SpanKind.CLIENT, attributes=child, start_time=begun)
            if failed:
                sub.set_status(Status(StatusCode.ERROR, attempt.error or None))
            sub.end(end_time=begun + int(attempt.latency_ms * 1e6))
        span.end(end_time=end)
        self._count_queue_drops(len(attempts) + 1)

    def _count_queue_drops(self, added: int) -> None:
        """A full queue drops its oldest spans silently (logging a warning); count them."""
        inner = getattr(self.processor, "_batch_processor", None)
        queue = getattr(inner, "_queue", None)
        if queue is not None and len(queue) == queue.maxlen:
            self.queue_dropped += added

    def shutdown(self) -> None:
        self.provider.shutdown()


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)
