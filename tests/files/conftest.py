"""Fixtures for the file tests: clients closed at the end, and netcat users."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.server.helpers import Clients
from tests.server.test_text_mode import netcat

__all__ = ["clients", "netcat"]


@pytest.fixture
async def clients() -> AsyncIterator[Clients]:
    opened = Clients()
    yield opened
    await opened.close_all()
