"""CSRF protection for the dashboard's forms.

Two checks on every POST:
- the token: a hidden `csrf` field must equal HMAC(secret, session id). The token is bound to
  the session, so a page of another session (or another site) cannot supply it, and no
  server-side state is needed.
- the origin: when the browser sends `Origin` (or, failing that, `Referer`), its host must be
  the host the request was sent to. Browsers send `Origin` on every cross-site POST.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlsplit

FIELD = "csrf"


class Csrf:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def token(self, sid: str) -> str:
        return hmac.new(self._secret, b"csrf:" + sid.encode("utf-8"), hashlib.sha256).hexdigest()

    def valid(self, sid: str, submitted: str | None) -> bool:
        if not submitted:
            return False
        return hmac.compare_digest(self.token(sid), submitted)


def same_origin(headers: dict[bytes, bytes]) -> bool:
    """False when `Origin` or `Referer` names another host than `Host`; True when neither
    is sent (the token check alone decides then)."""
    host = headers.get(b"host", b"").decode("latin-1").strip().lower()
    origin = headers.get(b"origin")
    source = origin if origin is not None else headers.get(b"referer")
    if source is None:
        return True
    text = source.decode("latin-1").strip()
    if text == "null":  # opaque origin: sandboxed frame, data: URL, some redirects
        return False
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    return bool(host) and hmac.compare_digest(parts.netloc.lower(), host)
