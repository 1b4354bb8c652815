"""Who is calling: bearer key -> `Principal`, answered from memory.

The table of key hashes is loaded from the store at start and refreshed when keys change
(see `store.KeySync`); a request with a known key never waits on the database. Only a key
the table does not know is checked once against it (`KeySync.lookup`).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass

from .errors import GatewayError
from .keys import hash_key

MASTER_ID = "master"


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    name: str
    is_master: bool = False
    allowed_models: frozenset[str] | None = None
    expires_at: float | None = None
    budget_usd: float | None = None
    rpm: int | None = None
    tpm: int | None = None

    def check_model(self, model: str, fallbacks: list[str] = (),
                    full_id: Callable[[str], str] = str) -> None:
        """Refuse a model the key may not use; `full_id` gives a bare id's `provider/model`,
        so a key allowed `openai/gpt-4o` may also ask for `gpt-4o`."""
        if self.allowed_models is None:
            return
        for name in (model, *fallbacks):
            if name not in self.allowed_models and full_id(name) not in self.allowed_models:
                raise GatewayError(403, f"This key may not use the model {name!r}",
                                   param="model", code="model_not_allowed")


def bearer(header: bytes | None) -> str | None:
    if not header:
        return None
    text = header.decode("latin-1").strip()
    scheme, _, token = text.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class Authenticator:
    def __init__(self, master_key: str) -> None:
        self._master_hash = hash_key(master_key)
        self._master = Principal(MASTER_ID, "master", is_master=True)
        self._keys: dict[str, Principal] = {}

    def replace_keys(self, keys: dict[str, Principal]) -> None:
        """Swap in a new table of key hash -> principal (atomic for readers)."""
        self._keys = keys

    def authenticate(self, header: bytes | None) -> Principal:
        token = bearer(header)
        if token is None:
            raise GatewayError(401, "Missing API key: send 'Authorization: Bearer <key>' or 'x-api-key: <key>'",
                               code="missing_api_key")
        principal = self._keys.get(hash_key(token)) or self._master_if(hash_key(token))
        if principal is None:
            raise GatewayError(401, "Invalid API key", code="invalid_api_key")
        if principal.expires_at is not None and principal.expires_at <= time.time():
            raise GatewayError(401, "This API key has expired", code="expired_api_key")
        return principal

    def by_hash(self, digest: str, now: float | None = None) -> Principal | None:
        """The principal of a key hash if that key still authenticates (dashboard sessions)."""
        principal = self._keys.get(digest) or self._master_if(digest)
        if principal is None:
            return None
        now = time.time() if now is None else now
        if principal.expires_at is not None and principal.expires_at <= now:
            return None
        return principal

    def _master_if(self, digest: str) -> Principal | None:
        return self._master if hmac.compare_digest(digest, self._master_hash) else None
