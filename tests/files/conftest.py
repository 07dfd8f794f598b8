"""Fixtures for the file tests: clients closed at the end, and netcat users.

Every async test here runs twice, on the stock asyncio loop and on uvloop (what
`chat-server` runs on when the `fast` extra is installed): downloads take a different
path on each (see chat_server/files/sendfile.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path

import pytest

from tests.server.helpers import Clients
from tests.server.test_text_mode import netcat

__all__ = ["clients", "netcat"]


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    factories: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
        "asyncio": asyncio.new_event_loop
    }
    try:
        import uvloop
    except ImportError:  # pragma: no cover - the test extra installs `fast` too
        return factories
    factories["uvloop"] = uvloop.new_event_loop
    return factories


@pytest.fixture
async def clients() -> AsyncIterator[Clients]:
    opened = Clients()
    yield opened
    await opened.close_all()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # pytest-timeout's default (SIGALRM) cannot end a test that hangs on uvloop: its
    # handler raises inside uvloop's signal callback, which logs it and goes on waiting.
    # The thread method ends the whole run instead (stacks dumped): a hang still fails.
    here = Path(__file__).parent
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None or "uvloop" not in callspec.id or here not in item.path.parents:
            continue
        marker = item.get_closest_marker("timeout")
        args, kwargs = (marker.args, marker.kwargs) if marker is not None else ((), {})
        item.add_marker(pytest.mark.timeout(*args, **{**kwargs, "method": "thread"}), False)
