"""The load generator's checks with features on: a missed or doubled change is caught.

The probes follow every rev in order; the senders count the lines with a rev. Both are
fed real server lines here, in chunks as `data_received` gets them.
"""

from __future__ import annotations

import pytest

from bench.load_clients import ChatClient, Worker, WorkerPlan

MESSAGE = (
    b'{"type":"message","room":"bench","seq":%d,"from":"c9","text":"s=9 n=%d t=1 xx",'
    b'"action":false,"ts":"2026-12-02T23:00:00.000Z","rev":%d}\n'
)
REACTION = (
    b'{"type":"reaction","room":"bench","seq":%d,"emoji":"+1","nick":"c9","removed":false,'
    b'"ts":"2026-12-02T23:00:00.000Z","rev":%d}\n'
)


def _stream(*, drop_reaction: bool = False, double_reaction: bool = False) -> bytes:
    """Four messages, a reaction to the second one after the third."""
    lines = [MESSAGE % (1, 1, 1), MESSAGE % (2, 2, 2), MESSAGE % (3, 3, 3)]
    reaction = REACTION % (2, 4)
    if not drop_reaction:
        lines.append(reaction)
    if double_reaction:
        lines.append(reaction)
    lines.append(MESSAGE % (4, 4, 5))
    return b"".join(lines)


async def _client(*, probe: bool) -> ChatClient:
    plan = WorkerPlan(
        kind="chat",
        host="127.0.0.1",
        port=1,
        clients=(0,),
        senders=(0,),
        probes=frozenset({0} if probe else ()),
        active=frozenset({0}),
        mirrors=(),
        window=4,
        rate=0.0,
        text_len=64,
        join=True,
        connect_concurrency=1,
        setup_timeout=1.0,
        poll_interval=0.0,
        features=frozenset({"react"}),
    )
    worker = Worker(plan)
    worker.reactions_expected = 1
    client = ChatClient(worker, 0, sender=not probe, probe=probe)
    client.setup = False
    return client


@pytest.mark.parametrize("probe", [True, False], ids=["probe", "sender"])
async def test_every_change_once_passes(probe: bool) -> None:
    client = await _client(probe=probe)
    stream = _stream()
    client.data_received(stream[:150])  # a chunk can end inside a line
    client.data_received(stream[150:])
    assert not client.bad
    assert client.expected_ok({9: 4}, 4)


@pytest.mark.parametrize("probe", [True, False], ids=["probe", "sender"])
@pytest.mark.parametrize("fault", ["drop_reaction", "double_reaction"])
async def test_a_missed_or_doubled_change_fails(probe: bool, fault: str) -> None:
    client = await _client(probe=probe)
    client.data_received(_stream(**{fault: True}))
    assert client.bad or not client.expected_ok({9: 4}, 4)
    assert "reaction" in client.shortfall({9: 4}, 4) or "rev" in client.shortfall({9: 4}, 4)
