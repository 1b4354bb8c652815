"""What an intact stream pays for being resumable (docs/reliability.md): the engine's stream
pump over the same OpenAI-shaped stream, with the answer's text kept for a failover (the
default) and without (`stream_failover: false`), in alternation.

    python bench/failover_overhead.py [--chunks 128] [--rounds 15] [--streams 200]

Prints each setting's median CPU time per chunk (decode, translate, stamp, fold: everything
the pump does) and the difference. No network and no gateway process: the pump is the only
code that differs between the two settings, so this is where a cost would show.
"""

from __future__ import annotations

import argparse
import statistics
import time

import orjson

from lunos.gateway.config import ProviderConfig
from lunos.gateway.engine import _Pump
from lunos.gateway.providers.base import ChatRequest
from lunos.gateway.providers.openai_compat import OpenAIAdapter
from lunos.gateway.records import Attempt, CallRecord
from lunos.gateway.routing import Route


def stream_bytes(chunks: int) -> list[bytes]:
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o"}
    events = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                    "finish_reason": None}]}]
    events += [{**base, "choices": [{"index": 0, "delta": {"content": f" word{i}"}, "finish_reason": None}]}
               for i in range(chunks)]
    events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    events.append({**base, "choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": chunks,
                                                      "total_tokens": 10 + chunks}})
    return [b"data: " + orjson.dumps(e) + b"\n\n" for e in events] + [b"data: [DONE]\n\n"]


def run(route: Route, req: ChatRequest, reads: list[bytes], streams: int, resumable: bool) -> float:
    """CPU seconds per chunk over `streams` streams."""
    started = time.process_time()
    for _ in range(streams):
        record = CallRecord(id="chatcmpl-bench", key_id=None, app_id="bench", model=route.model)
        pump = _Pump(route, req, record, Attempt(route.model, route.provider))
        if resumable:
            pump.text = []
        for data in reads:
            pump.feed(data)
        pump.finish()
    return (time.process_time() - started) / (streams * len(reads))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--streams", type=int, default=200)
    args = parser.parse_args()
    adapter = OpenAIAdapter(ProviderConfig("openai", "openai", "https://api.openai.com/v1", api_key="sk-x"))
    route = Route("openai/gpt-4o", "openai", "gpt-4o", adapter, None)
    req = ChatRequest({"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}], "stream": True},
                      "openai/gpt-4o", "openai", "gpt-4o", stream=True)
    reads = stream_bytes(args.chunks)
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(args.rounds):
        for resumable in (False, True):
            times[resumable].append(run(route, req, reads, args.streams, resumable))
    off, on = statistics.median(times[False]), statistics.median(times[True])
    print(f"pump CPU per chunk, {args.chunks}-chunk streams, median of {args.rounds} rounds:")
    print(f"  stream_failover false: {off * 1e6:.2f} us")
    print(f"  stream_failover true:  {on * 1e6:.2f} us  ({(on - off) * 1e9:+.0f} ns, {on / off - 1:+.1%})")


if __name__ == "__main__":
    main()
