"""Per-key limits: requests per minute, tokens per minute, and a budget in USD.

Exact under concurrency: before the call the gateway *reserves* the worst case — the prompt
counted at one token per byte (no tokenizer makes more tokens than bytes) plus `max_tokens`,
else the catalog's max output — and admits the request only if the reservation fits; after
the call it *settles* the reservation to the real tokens and cost. There is no window between
checking and spending for a concurrent request to slip through.

Windows are sliding (the last 60 s), not fixed minutes. With `LUNOS_REDIS_URL` the counters
live in Redis and every check is one Lua script, so all workers and hosts share them exactly;
without Redis they live in the process (exact for one worker). If Redis is unreachable,
limited keys get 503: a budget is money, so the gateway fails closed.
"""

from __future__ import annotations

import math
import secrets
import time
from collections import deque
from dataclasses import dataclass, field

from .auth import Principal
from .catalog import ModelInfo
from .errors import GatewayError
from .usage import TokenCounts, cost_of

WINDOW = 60.0
PER_MESSAGE_TOKENS = 16
PER_IMAGE_TOKENS = 2_000
DEFAULT_MAX_OUTPUT = 4_096
# A reservation left by a process that died is released after this long.
RESERVATION_TTL = 3_600.0


@dataclass(slots=True)
class Ticket:
    key_id: str
    id: str = field(default_factory=lambda: secrets.token_hex(8))
    tokens: int = 0  # reserved tokens (tpm)
    cost: float = 0.0  # reserved USD (budget)
    counted_tpm: bool = False
    counted_budget: bool = False


def prompt_upper_bound(body: dict) -> int:
    """At least as many tokens as the prompt can have: one per byte of text."""
    total = 0
    for message in body.get("messages", ()):
        total += PER_MESSAGE_TOKENS
        content = message.get("content")
        if isinstance(content, str):
            total += len(content.encode())
        elif isinstance(content, list):
            for part in content:
                if part.get("type") == "text":
                    total += len(part.get("text", "").encode())
                elif part.get("type") == "image_url":
                    total += PER_IMAGE_TOKENS
        for call in message.get("tool_calls") or ():
            total += len(str(call).encode())
    for tool in body.get("tools") or ():
        total += len(str(tool).encode())
    return total


def worst_case(body: dict, infos: list[ModelInfo | None]) -> tuple[int, float | None]:
    """(tokens, USD) the request can cost at most on any of its candidate models; USD is None
    when a candidate has no known price."""
    prompt = prompt_upper_bound(body)
    asked = body.get("max_completion_tokens") or body.get("max_tokens")
    tokens, cost = 0, 0.0
    for info in infos:
        output = asked or (info.max_output if info and info.max_output else DEFAULT_MAX_OUTPUT)
        tokens = max(tokens, prompt + output)
        price = cost_of(TokenCounts(prompt=prompt, completion=output), info)
        if price is None:
            return tokens, None
        cost = max(cost, price)
    return tokens, cost


def _limited(message: str, code: str, retry_after: float | None) -> GatewayError:
    headers = {"retry-after": str(max(1, math.ceil(retry_after)))} if retry_after is not None else {}
    return GatewayError(429, message, code=code, headers=headers)


def budget_error(principal: Principal, pending: bool) -> GatewayError:
    # Nothing in flight: the budget is spent until an admin raises it; a long Retry-After
    # tells SDKs not to retry. Reservations in flight may still release room.
    return _limited(f"This key's budget of ${principal.budget_usd:g} is used up",
                    "budget_exceeded", 1 if pending else 3600)


class MemoryLimits:
    """Counters in this process."""

    def __init__(self) -> None:
        self._requests: dict[str, deque[float]] = {}
        self._tokens: dict[str, deque[list]] = {}  # [time, tokens, ticket id]
        self._spent: dict[str, float] = {}
        self._reserved: dict[str, dict[str, float]] = {}

    async def admit(self, principal: Principal, ticket: Ticket, seed_spent: float) -> None:
        now = time.monotonic()
        key = principal.key_id
        if principal.rpm is not None:
            window = self._requests.setdefault(key, deque())
            while window and window[0] <= now - WINDOW:
                window.popleft()
            if len(window) >= principal.rpm:
                raise _limited(f"Rate limit of {principal.rpm} requests per minute reached",
                               "rpm_exceeded", window[0] + WINDOW - now)
        if principal.tpm is not None:
            tokens = self._tokens.setdefault(key, deque())
            while tokens and tokens[0][0] <= now - WINDOW:
                tokens.popleft()
            used = sum(entry[1] for entry in tokens)
            if used + ticket.tokens > principal.tpm:
                wait = tokens[0][0] + WINDOW - now if tokens else WINDOW
                raise _limited(f"Rate limit of {principal.tpm} tokens per minute reached "
                               f"(this request may use up to {ticket.tokens})", "tpm_exceeded", wait)
        if principal.budget_usd is not None:
            spent = self._spent.setdefault(key, seed_spent)
            reserved = self._reserved.setdefault(key, {})
            if spent + sum(reserved.values()) + ticket.cost > principal.budget_usd:
                raise budget_error(principal, bool(reserved))
            reserved[ticket.id] = ticket.cost
            ticket.counted_budget = True
        if principal.rpm is not None:
            self._requests[key].append(now)
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


# Redis: each script is atomic, so check-and-reserve is one step for every worker and host.
_ADMIT = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local rpm = tonumber(ARGV[3])
local tpm = tonumber(ARGV[4])
local budget = tonumber(ARGV[5])
local tokens = tonumber(ARGV[6])
local cost = tonumber(ARGV[7])
local id = ARGV[8]
local seed = ARGV[9]
local ttl = tonumber(ARGV[10])
if rpm >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
  if redis.call('ZCARD', KEYS[1]) >= rpm then
    local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    return {1, tostring(tonumber(oldest[2]) + window - now)}
  end
end
if tpm >= 0 then
  local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - window)
  for _, member in ipairs(old) do redis.call('HDEL', KEYS[3], member) end
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
  local used = 0
  for _, v in ipairs(redis.call('HVALS', KEYS[3])) do used = used + tonumber(v) end
  if used + tokens > tpm then
    local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    local wait = window
    if oldest[2] then wait = tonumber(oldest[2]) + window - now end
    return {2, tostring(wait)}
  end
end
if budget >= 0 then
  local stale = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now)
  for _, member in ipairs(stale) do redis.call('HDEL', KEYS[6], member) end
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)
  redis.call('SET', KEYS[4], seed, 'NX')
  local spent = tonumber(redis.call('GET', KEYS[4]))
  local reserved = 0
  for _, v in ipairs(redis.call('HVALS', KEYS[6])) do reserved = reserved + tonumber(v) end
  if spent + reserved + cost > budget then
    return {3, tostring(reserved)}
  end
  redis.call('ZADD', KEYS[5], now + ttl, id)
  redis.call('HSET', KEYS[6], id, tostring(cost))
end
if rpm >= 0 then
  redis.call('ZADD', KEYS[1], now, id)
  redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000))
end
if tpm >= 0 then
  redis.call('ZADD', KEYS[2], now, id)
  redis.call('HSET', KEYS[3], id, tostring(tokens))
  redis.call('PEXPIRE', KEYS[2], math.ceil(window * 1000))
  redis.call('PEXPIRE', KEYS[3], math.ceil(window * 1000))
end
return {0, '0'}
"""

_SETTLE = """
local id = ARGV[1]
if ARGV[2] == '1' and redis.call('HEXISTS', KEYS[2], id) == 1 then
  redis.call('HSET', KEYS[2], id, ARGV[3])
end
if ARGV[4] == '1' then
  redis.call('ZREM', KEYS[3], id)
  redis.call('HDEL', KEYS[4], id)
  redis.call('INCRBYFLOAT', KEYS[1], ARGV[5])
end
return 0
"""


class RedisLimits:
    """Counters in Redis, shared by every worker and host."""

    def __init__(self, url: str) -> None:
        import redis.asyncio as redis

        self._redis = redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._admit = self._redis.register_script(_ADMIT)
        self._settle = self._redis.register_script(_SETTLE)

    @staticmethod
    def _keys(key_id: str) -> list[str]:
        base = f"lunos:limits:{{{key_id}}}"  # one hash slot per key (Redis Cluster friendly)
        return [f"{base}:rpm", f"{base}:tpm", f"{base}:tpm:amounts", f"{base}:spent",
                f"{base}:reserved", f"{base}:reserved:amounts"]

    async def admit(self, principal: Principal, ticket: Ticket, seed_spent: float) -> None:
        from redis.exceptions import RedisError

        args = [
            time.time(), WINDOW,
            principal.rpm if principal.rpm is not None else -1,
            principal.tpm if principal.tpm is not None else -1,
            principal.budget_usd if principal.budget_usd is not None else -1,
            ticket.tokens, repr(ticket.cost), ticket.id, repr(seed_spent), RESERVATION_TTL,
        ]
        try:
            verdict, detail = await self._admit(keys=self._keys(principal.key_id), args=args)
        except (RedisError, OSError) as exc:
            raise GatewayError(503, "The limits store (Redis) is unavailable; try again shortly",
                               code="limits_store_unavailable", headers={"retry-after": "1"}) from exc
        verdict, detail = int(verdict), float(detail)
        if verdict == 1:
            raise _limited(f"Rate limit of {principal.rpm} requests per minute reached",
                           "rpm_exceeded", detail)
        if verdict == 2:
            raise _limited(f"Rate limit of {principal.tpm} tokens per minute reached "
                           f"(this request may use up to {ticket.tokens})", "tpm_exceeded", detail)
        if verdict == 3:
            raise budget_error(principal, detail > 0)
        ticket.counted_tpm = principal.tpm is not None
        ticket.counted_budget = principal.budget_usd is not None

    async def settle(self, ticket: Ticket, tokens: int, cost: float) -> None:
        from redis.exceptions import RedisError

        keys = self._keys(ticket.key_id)
        try:
            await self._settle(keys=[keys[3], keys[2], keys[4], keys[5]], args=[
                ticket.id, "1" if ticket.counted_tpm else "0", tokens,
                "1" if ticket.counted_budget else "0", repr(cost)])
        except (RedisError, OSError):
            pass  # the reservation expires on its own (RESERVATION_TTL)

    async def close(self) -> None:
        await self._redis.aclose()


class Limits:
    """The gateway's front door for limits: skips keys without any, reserves, settles."""

    def __init__(self, backend: MemoryLimits | RedisLimits) -> None:
        self.backend = backend
        self.spent_seed: dict[str, float] = {}  # from the database, when keys are loaded

    async def admit(self, principal: Principal, body: dict, infos: list[ModelInfo | None]) -> Ticket | None:
        if principal.rpm is None and principal.tpm is None and principal.budget_usd is None:
            return None
        ticket = Ticket(principal.key_id)
        if principal.tpm is not None or principal.budget_usd is not None:
            tokens, cost = worst_case(body, infos)
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
