"""Lunos API keys: making them, hashing them, and the master-key bootstrap.

Keys are random (256 bits), so one SHA-256 is the right hash: no salt or slow hash is needed
against guessing, and checking stays a dictionary lookup. Only the hash and a short display
prefix are stored; the raw key is shown once.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from .config import ConfigError

KEY_PREFIX = "sk-lunos-"
DISPLAY_CHARS = len(KEY_PREFIX) + 6
MIN_MASTER_CHARS = 16


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def display_prefix(key: str) -> str:
    """What lists show of a key: at most `DISPLAY_CHARS`, and always fewer than half its
    characters, so a short (master) key is never stored whole."""
    return key[:min(DISPLAY_CHARS, (len(key) - 1) // 2)]


def master_key(configured: str | None, home: Path) -> tuple[str, Path | None]:
    """The master key: configured, or read from `$LUNOS_HOME/master_key`, or made and written
    there (mode 0600, in a directory made 0700). Returns the key and the file it came from
    or went to (None if set). A key shorter than `MIN_MASTER_CHARS` is refused: it guards
    every key, every row and every budget."""
    if configured:
        return _long_enough(configured, "LUNOS_MASTER_KEY"), None
    path = home / "master_key"
    if path.is_file():
        return _long_enough(path.read_text().strip(), str(path)), path
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = new_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return key, path


def _long_enough(key: str, source: str) -> str:
    if len(key) < MIN_MASTER_CHARS:
        raise ConfigError(
            f"the master key in {source} is {len(key)} characters; use at least "
            f"{MIN_MASTER_CHARS} (or unset it to have one generated in $LUNOS_HOME/master_key)")
    return key
