"""The rewrite of Redis's append-only file after deletes: asked for at once, then rate-limited."""

from __future__ import annotations

import asyncio
from pathlib import Path

from chat_server.redis_changes import AofEraser
from chat_server.redis_store import PREFIX, RedisStore
from tests.redis_support import running_redis
from tests.support import UNIT


async def test_a_second_delete_in_the_interval_waits_for_it_then_rewrites(tmp_path: Path) -> None:
    redis = await running_redis(tmp_path)
    store = RedisStore(redis.url, node="n1")
    try:
        await store.open()
        eraser = AofEraser(store, interval=1.0)
        loop = asyncio.get_running_loop()
        eraser.erased()
        deadline = loop.time() + 10 * UNIT
        while eraser.rewrites < 1:
            assert loop.time() < deadline
            await asyncio.sleep(0.05)
        assert await store.client.pttl(PREFIX + "erase-rewrite") > 0  # the chat's gate is set
        started = loop.time()
        eraser.erased()  # within the interval: not now, once the gate expires
        eraser.erased()  # one pending at most
        await asyncio.sleep(0.2)
        assert eraser.rewrites == 1
        while eraser.rewrites < 2:
            assert loop.time() < deadline + 10 * UNIT
            await asyncio.sleep(0.05)
        assert loop.time() - started >= 0.5  # it waited for the gate
        await eraser.close()
    finally:
        await store.close()
        await redis.stop()
