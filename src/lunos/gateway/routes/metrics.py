"""GET /metrics: Prometheus text format (who may read it: `metrics_auth`, `metrics_address`)."""

from __future__ import annotations

from ..asgi import send_bytes

CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"


async def prometheus(gw, request, send, principal) -> None:
    history = gw.history
    gauges = {
        "lunos_breaker_state": {(("deployment", name),): state
                                for name, state in gw.engine.health.states().items()},
        "lunos_in_flight_requests": {(): gw.in_flight},
        "lunos_history_queue_depth": {(): getattr(history, "depth", 0)},
        "lunos_history_dropped_total": {(): getattr(history, "dropped", 0)},
        "lunos_history_written_total": {(): getattr(history, "written", 0)},
        "lunos_history_rows_failed_total": {(): getattr(history, "failed", 0)},
        "lunos_history_store_up": {(): 1 if getattr(history, "store_ok", True) else 0},
        "lunos_spend_settle_pending": {(): len(getattr(gw.limits.backend, "pending", ()))},
        "lunos_spend_unsettled_total": {(): getattr(gw.limits.backend, "unsettled", 0)},
    }
    if gw.telemetry is not None:
        gauges["lunos_otel_spans_dropped_total"] = {(): gw.telemetry.dropped}
    await send_bytes(send, 200, gw.metrics.render(gauges).encode(), CONTENT_TYPE)
