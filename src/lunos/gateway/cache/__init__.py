"""The response cache (SPEC §10, docs/cache.md): a runner layer over the engine's chat body.

Every door turns its request into the engine's chat body, so the cache sits once, over
that body, outermost: `Cached.complete` returns a cached chat completion and
`Cached.stream` replays it as chunks (replay.py), which each door then frames in its own
wire format, as it frames a live answer. A miss runs the layers below (web search,
structured outputs, the engine) and stores the completion when it ended well.

What is keyed (keys.py), where entries live (stores.py: Redis or the database), and:
- `cache: false` (body or `x-lunos-cache`) always skips; `cache: true` or an object turns it
  on; with neither, the config's `cache.default` does, for its `keys` and `models`.
- A hit costs nothing: `usage.cost` 0, the row's cost 0 and `cache: "hit"`; what the answer
  cost the first time is the row's `extra.cache_saved_usd`.
- Semantic matching (`cache.semantic`) embeds the last user message with the configured
  embedding model and compares it, by cosine, with the stored prompts of the same scope
  (same key, model, parameters and earlier messages), brute force in numpy. Never for a
  request with tools (function tools may have side effects; searches change), unless
  `cache.semantic_with_tools`. When the embedding model is not available the request is
  matched exactly only, and the row's `extra.cache_semantic` says why.
- A failing cache store never fails a request: it is a miss, and a warning in the log.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import orjson

from .. import local_model
from ..config import Settings
from ..errors import GatewayError
from ..records import CallRecord
from ..usage import completion_output
from ..validation import ChatOptions
from .keys import exact_key, has_tools, prompt_text, semantic_scope
from .replay import Fold, to_chunks
from .stores import RedisCacheStore, SqlCacheStore

log = logging.getLogger("lunos")

__all__ = ["Cached", "ResponseCache", "open_cache"]


@dataclass(slots=True)
class _Pending:
    """Where a miss's answer goes once it is known."""

    key: str
    ttl: float
    scope: str | None = None
    vector: bytes | None = None


def open_cache(settings: Settings, db_engine, engine) -> ResponseCache:
    size = settings.cache.max_entries
    store = RedisCacheStore(settings.redis_url, size) if settings.redis_url else SqlCacheStore(db_engine, size)
    return ResponseCache(settings, store, engine)


class ResponseCache:
    def __init__(self, settings: Settings, store, engine) -> None:
        self.config = settings.cache
        self.local_model_dir = settings.local_model_dir
        self.store = store
        self.engine = engine  # for an embedding model that is not the local one
        self._warned: set[str] = set()

    def asked(self, options: ChatOptions, principal, model: str) -> bool:
        """Whether this request uses the cache: its own say, else the config's default."""
        if options.cache is not None:
            return options.cache
        c = self.config
        return c.default and (not c.keys or principal.key_id in c.keys or principal.name in c.keys) \
            and (not c.models or model in c.models)

    def wrap(self, runner, options: ChatOptions, principal, model: str):
        return Cached(self, runner, principal.key_id) if self.asked(options, principal, model) else runner

    async def clear(self) -> int:
        return await self.store.clear()

    async def close(self) -> None:
        await self.store.close()

    # ------------------------------------------------------------------ lookup
    async def lookup(self, body: dict, options: ChatOptions, record: CallRecord,
                     scope: str) -> tuple[dict | None, _Pending]:
        """The cached completion for this request (or None: a miss), and where to store it."""
        pending = _Pending(exact_key(scope, body, options), options.cache_ttl or self.config.ttl)
        record.cache = "miss"
        try:
            raw = await self.store.get(pending.key)
            if raw is None and options.cache_semantic is not None:
                raw = await self._semantic(body, options, record, scope, pending)
        except Exception as exc:  # the store is down: a miss, never a failed request
            self._warn("lookup", exc)
            raw = None
        return (self._serve(raw, record) if raw is not None else None), pending

    async def _semantic(self, body: dict, options: ChatOptions, record: CallRecord, scope: str,
                        pending: _Pending) -> bytes | None:
        text = prompt_text(body)
        if text is None or (has_tools(body, options) and not self.config.semantic_with_tools):
            return None
        vector = await self._embed(text, record)
        if vector is None:
            return None
        import numpy as np

        pending.scope, pending.vector = semantic_scope(scope, body, options), vector.tobytes()
        found = [(k, v) for k, v in await self.store.candidates(pending.scope) if len(v) == len(pending.vector)]
        if not found:
            return None
        matrix = np.frombuffer(b"".join(v for _, v in found), dtype="<f4").reshape(len(found), -1)
        scores = matrix @ vector
        above = np.flatnonzero(scores >= options.cache_semantic)
        for i in above[np.argsort(-scores[above])]:  # the best first
            raw = await self.store.get(found[i][0])
            if raw is not None:
                record.extra["cache_similarity"] = round(float(scores[i]), 4)
                return raw
            await self.store.forget_vector(pending.scope, found[i][0])  # expired or evicted
        return None

    async def _embed(self, text: str, record: CallRecord):
        """The prompt's unit vector (float32), or None when the embedding model is not
        available (the request is then matched exactly only, and its row says why)."""
        model = self.config.embedding_model
        try:
            try:
                import numpy as np
            except ImportError:
                raise local_model.ModelMissing("semantic matching needs numpy: run "
                                               f"`{local_model.INSTALL}`") from None
            if model == local_model.MODEL_ID:
                vectors, _ = await local_model.embed_off_loop(self.local_model_dir, [text])
                vector = np.asarray(vectors[0], dtype="<f4")
            else:
                scratch = CallRecord(record.id, record.key_id, record.app_id, model, endpoint="embeddings")
                vectors, _ = await self.engine.embed({"model": model, "input": [text]}, ChatOptions(), scratch)
                vector = np.asarray(vectors[0], dtype="<f4")
        except (local_model.ModelMissing, GatewayError) as exc:
            record.extra["cache_semantic"] = f"unavailable, matched exactly only: {exc}"
            self._warn("semantic", exc)
            return None
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm else None

    def _serve(self, raw: bytes, record: CallRecord) -> dict:
        entry = orjson.loads(raw)
        completion = entry["completion"]
        completion.update(id=record.id, created=int(record.created_at))
        usage = completion.get("usage")
        if isinstance(usage, dict):
            usage["cost"] = 0.0
        record.model = completion.get("model") or record.model
        record.provider, record.status, record.cost, record.cache = completion.get("provider"), 200, 0.0, "hit"
        if entry.get("cost"):
            record.extra["cache_saved_usd"] = entry["cost"]
        if record.trace:
            record.response = completion_output(completion)
        return completion

    # ------------------------------------------------------------------ store
    async def save(self, pending: _Pending, completion: dict, record: CallRecord) -> None:
        if record.cache != "miss" or record.status != 200 or not completion.get("choices"):
            return
        value = orjson.dumps({"completion": completion, "cost": record.cost})
        try:
            await self.store.put(pending.key, value, pending.ttl, pending.scope, pending.vector)
        except Exception as exc:
            self._warn("store", exc)

    def _warn(self, what: str, exc: Exception) -> None:
        if what not in self._warned:  # once per kind of failure, not once per request
            self._warned.add(what)
            log.warning("response cache: %s failed (%s: %s); requests go on without it",
                        what, type(exc).__name__, str(exc)[:200])


class Cached:
    """The cache as a runner (tools/__init__.py): the runner below is asked only on a miss."""

    def __init__(self, cache: ResponseCache, inner, scope: str) -> None:
        self.cache = cache
        self.inner = inner
        self.scope = scope

    async def complete(self, body: dict, options: ChatOptions, record: CallRecord, native=None) -> dict:
        hit, pending = await self.cache.lookup(body, options, record, self.scope)
        if hit is not None:
            return hit
        completion = await self.inner.complete(body, options, record)
        await self.cache.save(pending, completion, record)
        return completion

    async def stream(self, body: dict, options: ChatOptions, record: CallRecord, native=None):
        hit, pending = await self.cache.lookup(body, options, record, self.scope)
        if hit is not None:
            stamp = {"id": record.id, "object": "chat.completion.chunk", "created": int(record.created_at),
                     "model": record.model, "provider": record.provider}
            record.finish(time.perf_counter())
            yield to_chunks(hit, stamp)
            return
        fold = Fold()
        # The usage is part of what is stored, whatever this client asked to see.
        batches = self.inner.stream({**body, "stream_options": {"include_usage": True}}, options, record)
        try:
            async for batch in batches:
                fold.feed(batch)
                yield batch
        finally:
            await batches.aclose()
        await self.cache.save(pending, fold.completion(), record)
