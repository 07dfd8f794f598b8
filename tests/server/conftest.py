"""Fixtures for the server tests: every client a test opens is closed when it ends."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.server.helpers import Clients


@pytest.fixture
async def clients() -> AsyncIterator[Clients]:
    opened = Clients()
    yield opened
    await opened.close_all()
