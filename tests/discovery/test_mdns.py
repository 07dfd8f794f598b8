"""Discovery over real multicast, on the loopback interface only (never a real one).

Other test runs on this machine may announce at the same time, so every
assertion looks only at the server ids its own test made.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from chat_client.discovery import DiscoveredServer, DiscoveryUnavailable, ServerBrowser, discover
from chat_server.discovery import (
    SERVER_ID_FILE,
    Announcer,
    lan_addresses,
    load_or_create_server_id,
)
from protocol import Announcement, fingerprint_of

LOOPBACK = ["127.0.0.1"]
FP = fingerprint_of(b"test certificate")


def announcement(**overrides: Any) -> Announcement:
    """A record with a fresh id, so runs on one machine never see each other's."""
    base = Announcement(secrets.token_hex(4), 7777, 7778, FP, False, 0)
    return dataclasses.replace(base, **overrides)


@pytest.fixture
async def browser() -> AsyncIterator[ServerBrowser]:
    async with ServerBrowser(LOOPBACK) as live:
        yield live


@pytest.fixture
async def announcers() -> AsyncIterator[list[Announcer]]:
    started: list[Announcer] = []
    yield started
    for announcer in started:
        await announcer.close()


async def start(announcers: list[Announcer], announcer: Announcer) -> Announcer:
    await announcer.start()
    announcers.append(announcer)
    return announcer


async def wait_for(
    browser: ServerBrowser,
    check: Callable[[list[DiscoveredServer]], bool],
    timeout: float,
) -> float:
    """Seconds until `check(browser.servers())` holds; fails after `timeout`."""
    began = time.monotonic()
    async with asyncio.timeout(timeout):
        while not check(browser.servers()):
            browser.changed.clear()
            if check(browser.servers()):
                break
            await browser.changed.wait()
    return time.monotonic() - began


def by_id(servers: list[DiscoveredServer], server_id: str) -> DiscoveredServer | None:
    return next((s for s in servers if s.server_id == server_id), None)


async def test_announcement_is_browsed_and_resolved_with_txt_within_3_s(
    browser: ServerBrowser, announcers: list[Announcer]
) -> None:
    record = announcement(password_required=True, users=4)
    began = time.monotonic()
    await start(announcers, Announcer("office chat", record, lambda: 4, LOOPBACK))
    await wait_for(browser, lambda s: by_id(s, record.server_id) is not None, 3.0)
    assert time.monotonic() - began < 3.0
    found = by_id(browser.servers(), record.server_id)
    assert found == DiscoveredServer(
        server_id=record.server_id,
        name="office chat",
        addresses=("127.0.0.1",),
        port=7777,
        tls_port=7778,
        fingerprint=FP,
        password_required=True,
        users=4,
        protocol=2,
    )


async def test_two_servers_with_one_name_get_distinct_instances(
    browser: ServerBrowser, announcers: list[Announcer]
) -> None:
    first, second = announcement(), announcement(port=7790, tls_port=None, fingerprint=None)
    a = await start(announcers, Announcer("twin", first, lambda: 0, LOOPBACK))
    b = await start(announcers, Announcer("twin", second, lambda: 0, LOOPBACK))
    assert a.instance != b.instance
    ids = {first.server_id, second.server_id}
    await wait_for(browser, lambda s: ids <= {x.server_id for x in s}, 5.0)
    mine = [s for s in browser.servers() if s.server_id in ids]
    assert [s.name for s in mine] == ["twin", "twin"]
    plain_only = by_id(mine, second.server_id)
    assert plain_only is not None
    assert (plain_only.tls_port, plain_only.fingerprint, plain_only.plain_port) == (
        None,
        None,
        7790,
    )


async def test_shutdown_withdraws_the_record(
    browser: ServerBrowser, announcers: list[Announcer]
) -> None:
    record = announcement()
    announcer = Announcer("leaving", record, lambda: 0, LOOPBACK)
    await announcer.start()
    try:
        await wait_for(browser, lambda s: by_id(s, record.server_id) is not None, 5.0)
    finally:
        await announcer.close()
    await wait_for(browser, lambda s: by_id(s, record.server_id) is None, 5.0)


async def test_discover_returns_the_server_after_its_window(announcers: list[Announcer]) -> None:
    record = announcement()
    announcer = await start(announcers, Announcer("listed", record, lambda: 2, LOOPBACK))
    await asyncio.wait_for(announcer.announced.wait(), 5)
    began = time.monotonic()
    found = await discover(1.0, LOOPBACK)
    assert 1.0 <= time.monotonic() - began < 2.5
    mine = by_id(found, record.server_id)
    assert mine is not None
    assert (mine.name, mine.users, mine.host) == ("listed", 2, "127.0.0.1")


async def test_users_count_is_refreshed_but_not_more_often_than_the_interval(
    browser: ServerBrowser, announcers: list[Announcer]
) -> None:
    online = [1]
    record = announcement()
    announcer = Announcer("busy", record, lambda: online[0], LOOPBACK, users_refresh=1.0, poll=0.05)
    await start(announcers, announcer)
    await wait_for(browser, lambda s: getattr(by_id(s, record.server_id), "users", 0) == 1, 5.0)
    online[0] = 2
    waited = await wait_for(
        browser, lambda s: getattr(by_id(s, record.server_id), "users", 0) == 2, 5.0
    )
    assert waited < 3.0
    online[0] = 3
    began = time.monotonic()
    await wait_for(browser, lambda s: getattr(by_id(s, record.server_id), "users", 0) == 3, 5.0)
    assert time.monotonic() - began >= 0.8  # held back by users_refresh after the last update


async def test_address_change_is_announced_within_5_s(
    browser: ServerBrowser, announcers: list[Announcer]
) -> None:
    addresses = ["127.0.0.1"]
    record = announcement()
    announcer = Announcer(
        "roaming", record, lambda: 0, LOOPBACK, poll=0.5, addresses=lambda: list(addresses)
    )
    await start(announcers, announcer)
    await wait_for(browser, lambda s: by_id(s, record.server_id) is not None, 5.0)
    addresses.append("127.0.0.2")  # as if a VPN came up
    waited = await wait_for(
        browser,
        lambda s: (
            getattr(by_id(s, record.server_id), "addresses", ()) == ("127.0.0.1", "127.0.0.2")
        ),
        6.0,
    )
    assert waited < 5.0


async def test_without_multicast_one_log_line_and_no_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # 203.0.113.1 (TEST-NET-3) is on no interface here, so no socket can be opened on it.
    announcer = Announcer("lonely", announcement(), lambda: 0, ["203.0.113.1"], poll=0.05)
    with caplog.at_level(logging.INFO, logger="chat_server.discovery"):
        await announcer.start()
        await asyncio.sleep(0.3)
        await announcer.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "chat_server.discovery"]
    assert len(lines) == 1, lines
    assert "multicast cannot be used" in lines[0]
    assert not announcer.announced.is_set()


async def test_no_lan_interface_is_said_once(caplog: pytest.LogCaptureFixture) -> None:
    announcer = Announcer("alone", announcement(), lambda: 0, poll=0.05, addresses=list)
    with caplog.at_level(logging.INFO, logger="chat_server.discovery"):
        await announcer.start()
        await asyncio.sleep(0.3)
        await announcer.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "chat_server.discovery"]
    assert len(lines) == 1, lines
    assert "no LAN interface" in lines[0]


def test_server_id_is_made_once_and_kept(tmp_path: Path) -> None:
    first = load_or_create_server_id(tmp_path)
    assert len(first) == 8
    assert load_or_create_server_id(tmp_path) == first
    (tmp_path / SERVER_ID_FILE).write_text("garbage!\n")
    replaced = load_or_create_server_id(tmp_path)
    assert replaced != "garbage!"
    assert load_or_create_server_id(tmp_path) == replaced


def test_lan_addresses_are_the_given_ones_or_no_loopback() -> None:
    assert lan_addresses(["127.0.0.1", "127.0.0.1"]) == ["127.0.0.1"]
    assert all(not a.startswith("127.") for a in lan_addresses())


async def test_browsing_without_multicast_says_why() -> None:
    with pytest.raises(DiscoveryUnavailable, match=r"203\.0\.113\.1"):
        await discover(0.1, ["203.0.113.1"])
