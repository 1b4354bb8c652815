"""An OTLP/HTTP trace receiver: decodes each `POST /v1/traces` body with the official
`opentelemetry-proto` messages (ExportTraceServiceRequest) and keeps the spans, flattened."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from .harness import read_body


@dataclass
class Span:
    name: str
    trace_id: str  # hex
    span_id: str
    parent_span_id: str  # "" for a root span
    kind: int
    start_ns: int
    end_ns: int
    attributes: dict
    status_code: int
    resource: dict


def _value(any_value):
    which = any_value.WhichOneof("value")
    return getattr(any_value, which) if which else None


def _attributes(pairs) -> dict:
    return {kv.key: _value(kv.value) for kv in pairs}


class OtlpCollector:
    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.paths: list[str] = []
        self.content_types: list[str] = []
        self._lock = threading.Lock()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
            ExportTraceServiceResponse,
        )

        body = await read_body(receive)
        headers = dict(scope["headers"])
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)  # raises on anything but the official encoding
        spans = []
        for resource_spans in request.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for s in scope_spans.spans:
                    spans.append(Span(s.name, s.trace_id.hex(), s.span_id.hex(),
                                      s.parent_span_id.hex(), s.kind, s.start_time_unix_nano,
                                      s.end_time_unix_nano, _attributes(s.attributes),
                                      s.status.code, resource))
        with self._lock:
            self.paths.append(scope["path"])
            self.content_types.append(headers.get(b"content-type", b"").decode())
            self.spans.extend(spans)
        payload = ExportTraceServiceResponse().SerializeToString()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/x-protobuf")]})
        await send({"type": "http.response.body", "body": payload})

    def by_attribute(self, name: str, value) -> list[Span]:
        with self._lock:
            return [s for s in self.spans if s.attributes.get(name) == value]

    def children_of(self, span: Span) -> list[Span]:
        with self._lock:
            return [s for s in self.spans if s.parent_span_id == span.span_id
                    and s.trace_id == span.trace_id]
