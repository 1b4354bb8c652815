"""Lunos API keys: making them, hashing them, and the master-key bootstrap.

Keys are random (256 bits), so one SHA-256 is the right hash: no salt or slow hash is needed
against guessing, and checking stays a dictionary lookup. Only the hash and a short display
prefix are stored; the raw key is shown once.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

KEY_PREFIX = "sk-lunos-"
DISPLAY_CHARS = len(KEY_PREFIX) + 6


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def display_prefix(key: str) -> str:
    return key[:DISPLAY_CHARS]


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def master_key(configured: str | None, home: Path) -> tuple[str, Path | None]:
    """The master key: configured, or read from `$LUNOS_HOME/master_key`, or made and written
    there (mode 0600). Returns the key and the file it came from or went to (None if set)."""
    if configured:
        return configured, None
    path = home / "master_key"
    if path.is_file():
        return path.read_text().strip(), path
    home.mkdir(parents=True, exist_ok=True)
    key = new_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return key, path
