"""Dashboard sessions: a signed, expiring cookie that names the signed-in key by its hash.

The cookie value is `<payload>.<signature>`: the payload is base64url JSON holding the key's
SHA-256 hash, a random session id and the expiry time; the signature is HMAC-SHA256 under a
secret derived from the master key. Every worker derives the same secret, so any worker can
read any session, and changing the master key ends them all. The raw key is never stored.

A valid signature is not enough: each request looks the hash up in the in-memory key table
again (`principal_for`), so revoking or expiring the key ends its sessions at the next request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import orjson

from ..auth import Authenticator, Principal

COOKIE = "lunos_session"
COOKIE_PATH = "/dashboard"
LIFETIME = 8 * 3600  # seconds; a session is not extended by use


def derive_secret(master_key: str, purpose: str) -> bytes:
    """A secret for one purpose ("session", "csrf"), derived from the master key."""
    return hmac.new(master_key.encode("utf-8"), b"lunos-dashboard/" + purpose.encode(),
                    hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Session:
    key_hash: str
    sid: str  # random per sign-in; the CSRF token is bound to it
    expires_at: float


class Sessions:
    def __init__(self, secret: bytes, lifetime: float = LIFETIME) -> None:
        self._secret = secret
        self.lifetime = lifetime

    def _sign(self, payload: bytes) -> str:
        return _b64(hmac.new(self._secret, payload, hashlib.sha256).digest())

    def issue(self, key_hash: str, now: float | None = None) -> tuple[str, Session]:
        """A new session for `key_hash`: the cookie value and what it says."""
        now = time.time() if now is None else now
        session = Session(key_hash, secrets.token_urlsafe(16), now + self.lifetime)
        payload = _b64(orjson.dumps({"h": session.key_hash, "s": session.sid,
                                     "e": int(session.expires_at)}))
        return f"{payload}.{self._sign(payload.encode('ascii'))}", session

    def read(self, value: str | None, now: float | None = None) -> Session | None:
        """The session a cookie value names, or None if it is forged, malformed or expired."""
        if not value or value.count(".") != 1:
            return None
        payload, signature = value.split(".")
        try:
            expected = self._sign(payload.encode("ascii"))
        except UnicodeEncodeError:
            return None
        if not hmac.compare_digest(expected, signature):
            return None
        try:
            data = orjson.loads(_unb64(payload))
            session = Session(str(data["h"]), str(data["s"]), float(data["e"]))
        except (ValueError, TypeError, KeyError, orjson.JSONDecodeError):
            return None
        now = time.time() if now is None else now
        if session.expires_at <= now:
            return None
        return session


def principal_for(auth: Authenticator, key_hash: str, now: float | None = None) -> Principal | None:
    """The principal whose key hashes to `key_hash`, if that key still authenticates.

    Reads the authenticator's in-memory table (the same one every API request uses), so a
    revocation or expiry is seen as soon as the table is refreshed.
    """
    return auth.by_hash(key_hash, now)


def read_cookie(header: bytes | None, name: str) -> str | None:
    """The value of cookie `name` in a Cookie header (the last one wins)."""
    if not header:
        return None
    found = None
    for item in header.decode("latin-1").split(";"):
        key, sep, value = item.strip().partition("=")
        if sep and key == name:
            found = value.strip().strip('"')
    return found


def cookie_header(name: str, value: str, *, secure: bool, max_age: int,
                  same_site: str = "Lax") -> tuple[str, str]:
    """A Set-Cookie header for a dashboard cookie (HttpOnly, Path=/dashboard)."""
    parts = [f"{name}={value}", f"Path={COOKIE_PATH}", f"Max-Age={max_age}", "HttpOnly",
             f"SameSite={same_site}"]
    if secure:
        parts.append("Secure")
    return ("set-cookie", "; ".join(parts))
