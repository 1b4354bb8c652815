"""Keys: the display prefix, the master key's bootstrap, and its length rule."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from lunos.gateway.config import ConfigError
from lunos.gateway.keys import DISPLAY_CHARS, MIN_MASTER_CHARS, display_prefix, master_key, new_key


def test_the_display_prefix_is_short_and_never_half_the_key():
    for n in range(1, 80):
        key = "k" * n
        assert len(display_prefix(key)) <= DISPLAY_CHARS and len(display_prefix(key)) * 2 < n
    generated = new_key()
    assert display_prefix(generated) == generated[:DISPLAY_CHARS]  # keys made by Lunos: as before


def test_a_generated_master_key_is_private(tmp_path):
    home = tmp_path / "home"
    key, path = master_key(None, home)
    assert path == home / "master_key" and len(key) > MIN_MASTER_CHARS
    assert home.stat().st_mode & 0o777 == 0o700 and path.stat().st_mode & 0o777 == 0o600
    assert master_key(None, home) == (key, path)  # read back on the next start


def test_a_short_master_key_is_refused_with_one_clear_line(tmp_path):
    with pytest.raises(ConfigError, match="LUNOS_MASTER_KEY is 15 characters; use at least 16"):
        master_key("sk-lunos-abcdef", tmp_path)
    (tmp_path / "master_key").write_text("tooshort\n")
    with pytest.raises(ConfigError, match="master_key is 8 characters"):
        master_key(None, tmp_path)
    assert master_key("x" * MIN_MASTER_CHARS, tmp_path)[0] == "x" * MIN_MASTER_CHARS


def test_serve_with_a_short_master_key_exits_with_one_line(tmp_path):
    env = {**os.environ, "LUNOS_HOME": str(tmp_path), "LUNOS_MASTER_KEY": "changeme"}
    done = subprocess.run([sys.executable, "-m", "lunos.cli", "serve", "--port", "1"], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "lunos: the master key in LUNOS_MASTER_KEY is 8 characters; use at least 16 "
        "(or unset it to have one generated in $LUNOS_HOME/master_key)"]
