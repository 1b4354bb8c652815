"""The gateway's collector settings: start-up objects frozen, thresholds left alone."""

from __future__ import annotations

import gc

from lunos.gateway.app import create_app
from lunos.gateway.config import Settings


async def test_a_running_gateway_freezes_its_start_up_objects_and_keeps_the_thresholds(tmp_path):
    before = gc.get_threshold()
    app = create_app(Settings(home=tmp_path, master_key="sk-lunos-gc-test-master-key"))
    await app.startup()
    try:
        assert gc.isenabled()
        assert gc.get_freeze_count() > 0  # the catalog, routes and modules: out of every collection
        assert gc.get_threshold() == before  # failed requests' cycles are collected at the usual pace
    finally:
        await app.shutdown()
        gc.unfreeze()
