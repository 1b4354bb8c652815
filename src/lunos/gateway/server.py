"""Run the gateway under uvicorn (uvloop + httptools)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile

from .app import LunosApp, create_app
from .config import Settings, load_settings
from .keys import master_key
from .limits import SHARED_LIMITS_ENV, create_shared_file
from .store import Store


def app_from_env() -> LunosApp:
    """The app factory each worker process calls (settings come from the environment)."""
    settings = load_settings(os.environ.get("LUNOS_CONFIG") or None)
    return create_app(settings)


async def prepare_store(settings: Settings, key: str) -> None:
    """Migrate once, before any worker starts, and record the master key's hash."""
    store = Store.open(settings.db_url())
    try:
        await store.migrate()
        await store.set_master(key)
    finally:
        await store.close()


@contextlib.contextmanager
def _shared_limits(settings: Settings):
    """Without Redis, the workers share rate-limit and budget counters through one SQLite
    file made for this run (in a private temporary directory, removed at exit)."""
    if settings.redis_url:
        yield
        return
    folder = tempfile.mkdtemp(prefix="lunos-limits-")  # mode 0700
    path = os.path.join(folder, "limits.db")
    create_shared_file(path)
    os.environ[SHARED_LIMITS_ENV] = path  # the workers inherit it
    try:
        yield
    finally:
        os.environ.pop(SHARED_LIMITS_ENV, None)
        shutil.rmtree(folder, ignore_errors=True)


def serve(settings: Settings) -> None:
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    key, path = master_key(settings.master_key, settings.home)
    if path is not None:
        # Workers read the same file; the key itself is never printed.
        print(f"lunos: master key in {path} (mode 0600)", flush=True)
    asyncio.run(prepare_store(settings, key))
    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:  # pragma: no cover - Windows
        loop = "asyncio"
    common = dict(
        host=settings.host,
        port=settings.port,
        loop=loop,
        http="httptools",
        lifespan="on",
        access_log=settings.access_log,
        log_level="info",
        timeout_graceful_shutdown=settings.shutdown_grace,
        server_header=False,
        proxy_headers=False,  # no X-Forwarded-* rewriting on the hot path
    )
    if settings.workers > 1:
        with _shared_limits(settings):
            uvicorn.run("lunos.gateway.server:app_from_env", factory=True,
                        workers=settings.workers, **common)
    else:
        uvicorn.run(create_app(settings), **common)
