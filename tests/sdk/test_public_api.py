"""The package's public surface: `__all__`, the error tree, and an import that stays small."""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import lunos
from lunos import _exceptions


def test_all_lists_exactly_the_public_names():
    public = {
        name
        for name, value in vars(lunos).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert set(lunos.__all__) == public | {"__version__"}
    assert len(lunos.__all__) == len(set(lunos.__all__))
    for name in lunos.__all__:
        assert getattr(lunos, name) is not None


def test_types_package_all_matches_its_names():
    from lunos import types

    public = {
        name
        for name, value in vars(types).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert set(types.__all__) == public


def test_version_matches_the_distribution():
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    declared = re.search(r'^version = "([^"]+)"', pyproject.read_text(), re.MULTILINE)
    assert declared is not None and lunos.__version__ == declared.group(1)


def test_error_tree():
    status_errors = [
        lunos.BadRequestError, lunos.AuthenticationError, lunos.PermissionDeniedError,
        lunos.NotFoundError, lunos.ConflictError, lunos.UnprocessableEntityError,
        lunos.RateLimitError, lunos.InternalServerError,
    ]
    for cls in status_errors:
        assert issubclass(cls, lunos.APIStatusError)
    assert issubclass(lunos.APIStatusError, lunos.APIError)
    assert issubclass(lunos.APITimeoutError, lunos.APIConnectionError)
    assert issubclass(lunos.APIConnectionError, lunos.APIError)
    assert issubclass(lunos.APIResponseValidationError, lunos.APIError)
    assert issubclass(lunos.APIError, lunos.LunosError)
    assert issubclass(lunos.StructuredOutputError, lunos.LunosError)
    assert not issubclass(lunos.StructuredOutputError, lunos.APIError)
    # Every class in the module is drawn in its docstring, and exported.
    for name in _exceptions.__all__:
        assert name in _exceptions.__doc__
        assert name in lunos.__all__
    assert lunos.RateLimitError.__module__ == "lunos"


def test_import_pulls_in_no_gateway_code_or_dependency():
    src = str(Path(lunos.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": src}
    code = (
        "import json, sys, lunos; "
        "print(json.dumps(sorted(m for m in sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    modules = set(json.loads(out))
    assert "lunos" in modules and "httpx" in modules and "pydantic" in modules
    forbidden = ("lunos.gateway", "lunos.cli", "uvicorn", "orjson", "yaml", "uvloop",
                 "httptools", "openai")
    leaked = sorted(m for m in modules if m.split(".")[0] in forbidden or m.startswith(forbidden))
    assert leaked == []
