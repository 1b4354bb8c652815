"""Per-key limits: requests per minute, tokens per minute, and a budget in USD.

Exact under concurrency: before the call the gateway *reserves* the worst case — the prompt
counted at one token per byte (no tokenizer makes more tokens than bytes) plus `max_tokens`,
else the catalog's max output — and admits the request only if the reservation fits; after
the call it *settles* the reservation to the real tokens and cost. There is no window between
checking and spending for a concurrent request to slip through.

A request takes its rpm slot when it arrives (`arrive`, before its body is read), so a body
trickled in slowly is counted like any other request; tokens and budget are reserved once the
body is known (`admit`).

Windows are sliding (the last 60 s), not fixed minutes. With `LUNOS_REDIS_URL` the counters
live in Redis and every check is one Lua script, so all workers and hosts share them exactly.
Without Redis, one worker keeps them in the process; with `--workers N` the server creates
one SQLite file for the run before the workers start (`SHARED_LIMITS_ENV` names it) and every
worker checks and reserves in one write transaction on it, so the workers of one host share
them exactly. If Redis is unreachable, limited keys get 503: a budget is money, so the gateway
fails closed.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import sqlite3
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from .auth import Principal
from .catalog import ModelInfo
from .errors import GatewayError
from .usage import MILLION, TokenCounts

log = logging.getLogger("lunos.limits")

WINDOW = 60.0
PER_MESSAGE_TOKENS = 16
PER_IMAGE_TOKENS = 2_000
DEFAULT_MAX_OUTPUT = 4_096
# A reservation left by a process that died is released after this long.
RESERVATION_TTL = 3_600.0
# Set by `lunos serve --workers N` (without Redis): the SQLite file the workers share.
SHARED_LIMITS_ENV = "LUNOS_SHARED_LIMITS_FILE"


@dataclass(slots=True)
class Ticket:
    key_id: str
    id: str = field(default_factory=lambda: secrets.token_hex(8))
    tokens: int = 0  # reserved tokens (tpm)
    cost: float = 0.0  # reserved USD (budget)
    counted_tpm: bool = False
    counted_budget: bool = False


def prompt_upper_bound(body: dict) -> int:
    """At least as many tokens as the prompt can have: one per byte of text. Takes a chat
    body or a Messages body (its `system`, and blocks that are not text or images, counted
    by the bytes of their JSON)."""
    total = _content_bound(body.get("system"))
    for message in body.get("messages", ()):
        total += PER_MESSAGE_TOKENS + _content_bound(message.get("content"))
        for call in message.get("tool_calls") or ():
            total += len(str(call).encode())
    for tool in body.get("tools") or ():
        total += len(str(tool).encode())
    return total


def _content_bound(content) -> int:
    if isinstance(content, str):
        return len(content.encode())
    total = 0
    if isinstance(content, list):
        for part in content:
            kind = part.get("type")
            if kind == "text":
                total += len(part.get("text", "").encode())
            elif kind in ("image_url", "image", "document"):
                total += PER_IMAGE_TOKENS
            elif kind == "tool_result":
                total += _content_bound(part.get("content"))
            elif kind not in (None, "input_audio", "file"):  # tool_use, thinking, ...
                total += len(str(part).encode())
    return total


def call_plan(runner, body: dict, output: int) -> list[int]:
    """The upstream calls a request may make, as the tokens each adds to the prompt: one
    call for the engine alone; the layers above it (structured-output retries, web search
    rounds) say what they add through their `call_plan(body, output)`."""
    while runner is not None and not hasattr(runner, "call_plan"):
        runner = getattr(runner, "inner", None)  # a layer that adds no call
    return runner.call_plan(body, output) if runner is not None else [0]


def worst_case(body: dict, infos: list[ModelInfo | None], runner=None) -> tuple[int, float | None]:
    """(tokens, USD) the request can cost at most on any of its candidate models, over every
    upstream call it may make and all `n` choices; USD is None when a candidate has no
    known price. Each prompt token is priced at its dearest kind (a 1-hour cache write can
    cost twice an input token) and each output token at output or reasoning, whichever is
    dearer, in the price tier of the largest prompt."""
    prompt = prompt_upper_bound(body)
    asked = body.get("max_completion_tokens") or body.get("max_tokens")
    choices = body.get("n") if isinstance(body.get("n"), int) and body["n"] > 1 else 1
    tokens, cost = 0, 0.0
    for info in infos:
        output = (asked or (info.max_output if info and info.max_output else DEFAULT_MAX_OUTPUT)) * choices
        plan = call_plan(runner, body, output)
        prompts = sum(prompt + extra for extra in plan)
        tokens = max(tokens, prompts + output * len(plan))
        prices = info.prices(prompt + max(plan)) if info is not None else None
        if prices is None:
            return tokens, None
        cost = max(cost, (prompts * prices.most_per_input
                          + output * len(plan) * prices.most_per_output) / MILLION)
    return tokens, round(cost, 10)


def _limited(message: str, code: str, retry_after: float) -> GatewayError:
    """A 429 that always says, in whole seconds, when trying again can help."""
    return GatewayError(429, message, code=code,
                        headers={"retry-after": str(max(1, math.ceil(retry_after)))})


def rpm_error(principal: Principal, retry_after: float) -> GatewayError:
    return _limited(f"Rate limit of {principal.rpm} requests per minute reached", "rpm_exceeded",
                    retry_after)


def tpm_error(principal: Principal, ticket: Ticket, retry_after: float) -> GatewayError:
    return _limited(f"Rate limit of {principal.tpm} tokens per minute reached "
                    f"(this request may use up to {ticket.tokens})", "tpm_exceeded", retry_after)


def budget_error(principal: Principal, ticket: Ticket, pending: bool) -> GatewayError:
    # Nothing in flight: the budget is spent until an admin raises it; a long Retry-After
    # tells SDKs not to retry. Reservations in flight may still release room.
    return _limited(f"This key's budget of ${principal.budget_usd:g} cannot cover this request "
                    f"(it may cost up to ${ticket.cost:.6g}; lower max_tokens or n to need less)",
                    "budget_exceeded", 1 if pending else 3600)


class MemoryLimits:
    """Counters in this process."""

    def __init__(self) -> None:
        self._requests: dict[str, deque[float]] = {}
        self._tokens: dict[str, deque[list]] = {}  # [time, tokens, ticket id]
        self._spent: dict[str, float] = {}
        self._reserved: dict[str, dict[str, float]] = {}

    async def arrive(self, principal: Principal) -> None:
        now = time.monotonic()
        window = self._requests.setdefault(principal.key_id, deque())
        while window and window[0] <= now - WINDOW:
            window.popleft()
        if len(window) >= principal.rpm:
            raise rpm_error(principal, window[0] + WINDOW - now)
        window.append(now)

    async def admit(self, principal: Principal, ticket: Ticket, seed_spent: float) -> None:
        now = time.monotonic()
        key = principal.key_id
        if principal.tpm is not None:
            tokens = self._tokens.setdefault(key, deque())
            while tokens and tokens[0][0] <= now - WINDOW:
                tokens.popleft()
            used = sum(entry[1] for entry in tokens)
            if used + ticket.tokens > principal.tpm:
                raise tpm_error(principal, ticket, tokens[0][0] + WINDOW - now if tokens else WINDOW)
        if principal.budget_usd is not None:
            spent = self._spent.setdefault(key, seed_spent)
            reserved = self._reserved.setdefault(key, {})
            if spent + sum(reserved.values()) + ticket.cost > principal.budget_usd:
                raise budget_error(principal, ticket, bool(reserved))
            reserved[ticket.id] = ticket.cost
            ticket.counted_budget = True
        if principal.tpm is not None:
            self._tokens[key].append([now, ticket.tokens, ticket.id])
            ticket.counted_tpm = True

    async def settle(self, ticket: Ticket, tokens: int, cost: float) -> None:
        key = ticket.key_id
        if ticket.counted_tpm:
            for entry in self._tokens.get(key, ()):
                if entry[2] == ticket.id:
                    entry[1] = tokens
                    break
        if ticket.counted_budget:
            self._reserved.get(key, {}).pop(ticket.id, None)
            self._spent[key] = self._spent.get(key, 0.0) + cost

    async def close(self) -> None:
        return None


_SCHEMA = """
CREATE TABLE IF NOT EXISTS hits (key TEXT NOT NULL, kind TEXT NOT NULL, at REAL NOT NULL,
                                 id TEXT NOT NULL, amount REAL NOT NULL);
CREATE INDEX IF NOT EXISTS hits_by_key ON hits (key, kind, at);
CREATE INDEX IF NOT EXISTS hits_by_id ON hits (id);
CREATE TABLE IF NOT EXISTS spent (key TEXT PRIMARY KEY, usd REAL NOT NULL);
"""


def create_shared_file(path: str) -> None:
    """Create the shared counters' file (the server does it once, before the workers)."""
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(_SCHEMA)
    db.close()


class SharedLimits:
    """Counters in a SQLite file shared by the workers of one host (`lunos serve --workers N`
    without Redis). Each check-and-reserve is one write transaction (`BEGIN IMMEDIATE`), so
    the workers see one set of counters, as with Redis. The file lives for one run only, so
    it needs no durability: writes are not synced to disk. Rows in `hits`: `rpm` (one per
    request), `tpm` (tokens), `budget` (a reservation in USD; `at` is when it expires)."""

    def __init__(self, path: str) -> None:
        self._db = sqlite3.connect(path, timeout=10.0, isolation_level=None,
                                   check_same_thread=False)
        self._db.execute("PRAGMA synchronous=OFF")
        self._lock = threading.Lock()  # one transaction at a time on the one connection

    async def _write(self, work):
        """Run `work(db, now)` in one write transaction, off the event loop: waiting for
        another worker's lock must not stall this worker's other requests."""
        return await asyncio.to_thread(self._transaction, work)

    def _transaction(self, work):
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                result = work(db, time.time())
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return result

    async def arrive(self, principal: Principal) -> None:
        def work(db, now):
            key = principal.key_id
            db.execute("DELETE FROM hits WHERE key = ? AND kind = 'rpm' AND at <= ?",
                       (key, now - WINDOW))
            count, oldest = db.execute("SELECT count(*), min(at) FROM hits WHERE key = ? AND "
                                       "kind = 'rpm'", (key,)).fetchone()
            if count >= principal.rpm:
                return oldest + WINDOW - now
            db.execute("INSERT INTO hits VALUES (?, 'rpm', ?, '', 1)", (key, now))
            return None

        wait = await self._write(work)
        if wait is not None:
            raise rpm_error(principal, wait)

    async def admit(self, principal: Principal, ticket: Ticket, seed_spent: float) -> None:
        def work(db, now):
            key = principal.key_id
            if principal.tpm is not None:
                db.execute("DELETE FROM hits WHERE key = ? AND kind = 'tpm' AND at <= ?",
                           (key, now - WINDOW))
                used, oldest = db.execute("SELECT total(amount), min(at) FROM hits WHERE key = ? "
                                          "AND kind = 'tpm'", (key,)).fetchone()
                if used + ticket.tokens > principal.tpm:
                    return tpm_error(principal, ticket,
                                     oldest + WINDOW - now if oldest is not None else WINDOW)
            if principal.budget_usd is not None:
                db.execute("DELETE FROM hits WHERE key = ? AND kind = 'budget' AND at <= ?",
                           (key, now))
                db.execute("INSERT OR IGNORE INTO spent VALUES (?, ?)", (key, seed_spent))
                (spent,) = db.execute("SELECT usd FROM spent WHERE key = ?", (key,)).fetchone()
                reserved, count = db.execute("SELECT total(amount), count(*) FROM hits WHERE "
                                             "key = ? AND kind = 'budget'", (key,)).fetchone()
                if spent + reserved + ticket.cost > principal.budget_usd:
                    return budget_error(principal, ticket, count > 0)
                db.execute("INSERT INTO hits VALUES (?, 'budget', ?, ?, ?)",
                           (key, now + RESERVATION_TTL, ticket.id, ticket.cost))
                ticket.counted_budget = True
            if principal.tpm is not None:
                db.execute("INSERT INTO hits VALUES (?, 'tpm', ?, ?, ?)",
                           (key, now, ticket.id, ticket.tokens))
                ticket.counted_tpm = True
            return None

        refusal = await self._write(work)
        if refusal is not None:
            raise refusal

    async def settle(self, ticket: Ticket, tokens: int, cost: float) -> None:
        def work(db, now):
            if ticket.counted_tpm:
                db.execute("UPDATE hits SET amount = ? WHERE id = ? AND kind = 'tpm'",
                           (tokens, ticket.id))
            if ticket.counted_budget:
                db.execute("DELETE FROM hits WHERE id = ? AND kind = 'budget'", (ticket.id,))
                db.execute("UPDATE spent SET usd = usd + ? WHERE key = ?", (cost, ticket.key_id))

        await self._write(work)

    async def close(self) -> None:
        self._db.close()


# Redis: each script is atomic, so check-and-reserve is one step for every worker and host.
_ARRIVE = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local rpm = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= rpm then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return tostring(tonumber(oldest[2]) + window - now)
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000))
return '0'
"""

_ADMIT = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local tpm = tonumber(ARGV[3])
local budget = tonumber(ARGV[4])
local tokens = tonumber(ARGV[5])
local cost = tonumber(ARGV[6])
local id = ARGV[7]
local seed = ARGV[8]
local ttl = tonumber(ARGV[9])
if tpm >= 0 then
  -- KEYS[6] keeps the window's sum, so a decision costs the entries that leave the
  -- window, not the whole window (which holds every request of the last minute)
  if redis.call('EXISTS', KEYS[6]) == 0 then
    local sum = 0
    for _, v in ipairs(redis.call('HVALS', KEYS[2])) do sum = sum + tonumber(v) end
    redis.call('SET', KEYS[6], sum)
  end
  local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - window)
  for _, member in ipairs(old) do
    local amount = redis.call('HGET', KEYS[2], member)
    if amount then redis.call('DECRBY', KEYS[6], amount) end
    redis.call('HDEL', KEYS[2], member)
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
  local used = tonumber(redis.call('GET', KEYS[6]))
  if used + tokens > tpm then
    local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    local wait = window
    if oldest[2] then wait = tonumber(oldest[2]) + window - now end
    return {2, tostring(wait)}
  end
end
if budget >= 0 then
  local stale = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now)
  for _, member in ipairs(stale) do redis.call('HDEL', KEYS[5], member) end
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
  redis.call('SET', KEYS[3], seed, 'NX')
  local spent = tonumber(redis.call('GET', KEYS[3]))
  local reserved = 0
  for _, v in ipairs(redis.call('HVALS', KEYS[5])) do reserved = reserved + tonumber(v) end
  if spent + reserved + cost > budget then
    return {3, tostring(reserved)}
  end
  redis.call('ZADD', KEYS[4], now + ttl, id)
  redis.call('HSET', KEYS[5], id, tostring(cost))
end
if tpm >= 0 then
  redis.call('ZADD', KEYS[1], now, id)
  redis.call('HSET', KEYS[2], id, tokens)
  redis.call('INCRBY', KEYS[6], tokens)
  redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000))
  redis.call('PEXPIRE', KEYS[2], math.ceil(window * 1000))
  redis.call('PEXPIRE', KEYS[6], math.ceil(window * 1000))
end
return {0, '0'}
"""

_SETTLE = """
local id = ARGV[1]
if ARGV[2] == '1' and redis.call('HEXISTS', KEYS[2], id) == 1 then
  local before = tonumber(redis.call('HGET', KEYS[2], id))
  redis.call('HSET', KEYS[2], id, ARGV[3])
  if redis.call('EXISTS', KEYS[5]) == 1 then
    redis.call('INCRBY', KEYS[5], tonumber(ARGV[3]) - before)
  end
end
if ARGV[4] == '1' and redis.call('HEXISTS', KEYS[4], id) == 1 then
  redis.call('ZREM', KEYS[3], id)
  redis.call('HDEL', KEYS[4], id)
  redis.call('INCRBYFLOAT', KEYS[1], ARGV[5])
end
return 0
"""

# A settlement Redis refused is retried in the background, backing off up to this delay,
# until it lands or its reservation would expire (RESERVATION_TTL).
SETTLE_RETRY_MAX_DELAY = 30.0
SETTLE_RETRY_FIRST_DELAY = 0.25


def _unavailable(exc: Exception) -> GatewayError:
    return GatewayError(503, "The limits store (Redis) is unavailable; try again shortly",
                        code="limits_store_unavailable", headers={"retry-after": "1"})


class RedisLimits:
    """Counters in Redis, shared by every worker and host."""

    def __init__(self, url: str) -> None:
        import redis.asyncio as redis

        self._redis = redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._arrive = self._redis.register_script(_ARRIVE)
        self._admit = self._redis.register_script(_ADMIT)
        self._settle = self._redis.register_script(_SETTLE)
        # Settlements waiting for Redis to answer: task -> (ticket, tokens, cost).
        self.pending: dict[asyncio.Future, tuple[Ticket, int, float]] = {}
        self.unsettled = 0  # settlements given up on (each logged as an error)

    @staticmethod
    def _keys(key_id: str) -> dict[str, str]:
        base = f"lunos:limits:{{{key_id}}}"  # one hash slot per key (Redis Cluster friendly)
        return {name: f"{base}:{name}" for name in (
            "rpm", "tpm", "tpm:amounts", "spent", "reserved", "reserved:amounts", "tpm:used")}

    async def arrive(self, principal: Principal) -> None:
        from redis.exceptions import RedisError

        try:
            wait = await self._arrive(keys=[self._keys(principal.key_id)["rpm"]], args=[
                time.time(), WINDOW, principal.rpm, secrets.token_hex(8)])
        except (RedisError, OSError) as exc:
            raise _unavailable(exc) from exc
        wait = float(wait)
        if wait > 0:
            raise rpm_error(principal, wait)

    async def admit(self, principal: Principal, ticket: Ticket, seed_spent: float) -> None:
        from redis.exceptions import RedisError

        if principal.tpm is None and principal.budget_usd is None:
            return
        keys = self._keys(principal.key_id)
        args = [
            time.time(), WINDOW,
            principal.tpm if principal.tpm is not None else -1,
            principal.budget_usd if principal.budget_usd is not None else -1,
            int(ticket.tokens), repr(ticket.cost), ticket.id, repr(seed_spent), RESERVATION_TTL,
        ]
        try:
            verdict, detail = await self._admit(keys=[
                keys["tpm"], keys["tpm:amounts"], keys["spent"], keys["reserved"],
                keys["reserved:amounts"], keys["tpm:used"]], args=args)
        except (RedisError, OSError) as exc:
            raise _unavailable(exc) from exc
        verdict, detail = int(verdict), float(detail)
        if verdict == 2:
            raise tpm_error(principal, ticket, detail)
        if verdict == 3:
            raise budget_error(principal, ticket, detail > 0)
        ticket.counted_tpm = principal.tpm is not None
        ticket.counted_budget = principal.budget_usd is not None

    async def settle(self, ticket: Ticket, tokens: int, cost: float) -> None:
        """Settle now; if Redis refuses, retry in the background until it lands (the answer
        is not held up). Meanwhile the reservation, the worst case and so at least `cost`,
        stays counted, so the budget is never under-counted. The script settles a ticket at
        most once, so a retry after a lost reply cannot count the spend twice."""
        if await self._settle_once(ticket, tokens, cost):
            return
        log.warning("settling the spend of key %s in Redis failed; retrying in the background",
                    ticket.key_id)
        task = asyncio.ensure_future(self._settle_later(ticket, tokens, cost))
        self.pending[task] = (ticket, tokens, cost)
        task.add_done_callback(lambda done: self.pending.pop(done, None))

    async def _settle_once(self, ticket: Ticket, tokens: int, cost: float) -> bool:
        from redis.exceptions import RedisError

        keys = self._keys(ticket.key_id)
        try:
            await self._settle(keys=[keys["spent"], keys["tpm:amounts"], keys["reserved"],
                                     keys["reserved:amounts"], keys["tpm:used"]], args=[
                ticket.id, "1" if ticket.counted_tpm else "0", int(tokens),
                "1" if ticket.counted_budget else "0", repr(cost)])
        except (RedisError, OSError):
            return False
        return True

    async def _settle_later(self, ticket: Ticket, tokens: int, cost: float) -> None:
        deadline = time.monotonic() + RESERVATION_TTL - SETTLE_RETRY_MAX_DELAY
        delay = SETTLE_RETRY_FIRST_DELAY
        while time.monotonic() < deadline:
            await asyncio.sleep(delay)
            if await self._settle_once(ticket, tokens, cost):
                log.info("settled the spend of key %s in Redis after a retry", ticket.key_id)
                return
            delay = min(delay * 2, SETTLE_RETRY_MAX_DELAY)
        self._lost(ticket, cost)

    def _lost(self, ticket: Ticket, cost: float) -> None:
        self.unsettled += 1
        log.error("the spend of $%s for key %s could not be settled in Redis; its reservation "
                  "expires within %g s, and the counters then lack this spend until they are "
                  "seeded again (the history row has it)", cost, ticket.key_id, RESERVATION_TTL)

    async def ping(self) -> None:
        """One round trip (`/readyz`); raises when Redis does not answer."""
        await self._redis.ping()

    async def close(self) -> None:
        pending = dict(self.pending)  # shutting down: one last try each, else lost
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for ticket, tokens, cost in pending.values():
            if not await self._settle_once(ticket, tokens, cost):
                self._lost(ticket, cost)
        await self._redis.aclose()


def backend_for(redis_url: str | None, shared_file: str | None
                ) -> MemoryLimits | SharedLimits | RedisLimits:
    """Redis when configured; else the file the server shares between its workers; else
    this process's memory."""
    if redis_url:
        return RedisLimits(redis_url)
    return SharedLimits(shared_file) if shared_file else MemoryLimits()


class Limits:
    """The gateway's front door for limits: skips keys without any, counts arrivals,
    reserves, settles."""

    def __init__(self, backend: MemoryLimits | SharedLimits | RedisLimits) -> None:
        self.backend = backend
        self.spent_seed: dict[str, float] = {}  # from the database, when keys are loaded

    async def arrive(self, principal: Principal | None) -> None:
        """Take the request's rpm slot as it arrives, before its body is read."""
        if principal is not None and principal.rpm is not None:
            await self.backend.arrive(principal)

    async def admit(self, principal: Principal, body: dict, infos: list[ModelInfo | None],
                    runner=None) -> Ticket | None:
        """Reserve the worst case of everything `runner` may call upstream for `body`."""
        if principal.tpm is None and principal.budget_usd is None:
            return None
        ticket = Ticket(principal.key_id)
        tokens, cost = worst_case(body, infos, runner)
        if principal.budget_usd is not None and cost is None:
            raise GatewayError(403, "This key has a budget, and the model's price is not in "
                               "the catalog, so its cost cannot be bounded", param="model",
                               code="price_unknown")
        ticket.tokens, ticket.cost = tokens, cost or 0.0
        await self.backend.admit(principal, ticket, self.spent_seed.get(principal.key_id, 0.0))
        return ticket
    def seed(self, rows: list[dict]) -> None:
        """Spend so far per key, as the database knows it (the counters start from it)."""
        self.spent_seed = {row["id"]: row.get("spend_usd") or 0.0 for row in rows}

    async def settle(self, ticket: Ticket | None, tokens: TokenCounts, cost: float | None) -> None:
        if ticket is not None:
            await self.backend.settle(ticket, tokens.prompt + tokens.completion, cost or 0.0)

    async def close(self) -> None:
        await self.backend.close()
