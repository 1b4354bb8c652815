"""Provider health and load: a circuit breaker and an in-flight count per deployment.

Breaker: `threshold` consecutive failures that say the upstream is unwell (connect errors,
timeouts, 5xx; not a 4xx the request caused, not a client that left) open it; while open the
deployment gets no new requests; after `cooldown` seconds one request is let through
(half-open); its success closes the breaker, its failure opens it again. The breaker moves
traffic, it never leaves a model with nothing to try: a retry of a request already under way
goes through, and when a request's last candidate model has every deployment open, the
engine still tries the one that failed longest ago (Envoy's "panic threshold"); any success
closes it.

Balancing inside a group of deployments (an alias, or one model served by several keys):
"power of two choices" — draw two by weight, keep the less busy one relative to its weight
(in-flight / weight). Idle, traffic follows the weights; loaded, it avoids the busy one.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from enum import IntEnum

from .errors import GatewayError


class State(IntEnum):
    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2


@dataclass(slots=True)
class Breaker:
    state: State = State.CLOSED
    failures: int = 0
    opened_at: float = 0.0
    probing: bool = False


def is_health_failure(error: BaseException) -> bool:
    """Failures that say the deployment is unwell (not that the request was bad, nor that
    the gateway itself failed)."""
    return isinstance(error, GatewayError) and error.code != "internal_error" and (
        error.status >= 500 or error.code in ("upstream_connect_error", "upstream_timeout"))


class Health:
    def __init__(self, threshold: int = 5, cooldown: float = 30.0) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self.breakers: dict[str, Breaker] = {}
        self.in_flight: dict[str, int] = {}

    def allows(self, name: str) -> bool:
        """Whether this deployment may get a request now (a pure check)."""
        breaker = self.breakers.get(name)
        if breaker is None or breaker.state is State.CLOSED:
            return True
        if breaker.state is State.OPEN:
            return time.monotonic() - breaker.opened_at >= self.cooldown
        return not breaker.probing

    def begin(self, name: str) -> None:
        """Claim the deployment for one request. `order` said whether it may get new ones;
        a request claims it anyway for a retry, or when nothing else is left. An open
        breaker whose cooldown is over makes this request its probe."""
        breaker = self.breakers.get(name)
        if breaker is not None and breaker.state is not State.CLOSED and self.allows(name):
            breaker.state, breaker.probing = State.HALF_OPEN, True  # the probe
        self.in_flight[name] = self.in_flight.get(name, 0) + 1

    def end(self, name: str, ok: bool | None) -> None:
        """Release the claim: ok=True a success, False a health failure, None neither
        (the request was bad or the client left): a probe then goes back unused."""
        self.in_flight[name] = self.in_flight.get(name, 1) - 1
        breaker = self.breakers.get(name)
        if ok is True:
            if breaker is not None:
                breaker.state, breaker.failures, breaker.probing = State.CLOSED, 0, False
        elif ok is False:
            breaker = breaker or self.breakers.setdefault(name, Breaker())
            breaker.failures += 1
            if breaker.state is State.HALF_OPEN or breaker.failures >= self.threshold:
                breaker.state, breaker.opened_at = State.OPEN, time.monotonic()
            breaker.probing = False
        elif breaker is not None:
            breaker.probing = False

    def order(self, routes: list) -> list:
        """The routes to try, best first; deployments with an open breaker are left out."""
        candidates = [r for r in routes if self.allows(r.deployment)]
        if len(candidates) <= 1:
            return candidates
        ordered = []
        while candidates:
            if len(candidates) == 1:
                pick = candidates[0]
            else:
                a, b = random.choices(candidates, weights=[r.weight for r in candidates], k=2)
                pick = min((a, b), key=lambda r: self.in_flight.get(r.deployment, 0) / r.weight)
            ordered.append(pick)
            candidates.remove(pick)
        return ordered

    def longest_failed(self, routes: list):
        """The route whose breaker opened (or last failed while open) longest ago."""
        return min(routes, key=lambda r: self.breakers[r.deployment].opened_at)

    def states(self) -> dict[str, int]:
        return {name: int(b.state) for name, b in self.breakers.items()}
