"""The gateway's collector settings: rare young-generation collections while it runs."""

from __future__ import annotations

import gc

from lunos.gateway.app import YOUNG_GC_THRESHOLD, create_app
from lunos.gateway.config import Settings


async def test_a_running_gateway_collects_its_young_objects_rarely_and_restores_the_setting(tmp_path):
    before = gc.get_threshold()
    assert before[0] < YOUNG_GC_THRESHOLD
    app = create_app(Settings(home=tmp_path, master_key="sk-lunos-gc-test-master-key"))
    await app.startup()
    try:
        assert gc.isenabled()
        assert gc.get_threshold() == (YOUNG_GC_THRESHOLD, *before[1:])
    finally:
        await app.shutdown()
    assert gc.get_threshold() == before
