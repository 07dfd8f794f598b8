"""`python -m bench.load --features`: the version-2 features in use, checked exactly.

Tiny rooms for a second each, with real `chat-server` processes on 127.0.0.1 and the
benchmark's own worker processes.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import bench.load_clients
from bench.load import main

pytestmark = pytest.mark.slow

SMALL = ["--clients", "8", "--senders", "2", "--duration", "1", "--drain-timeout", "3"]


def _run(tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main([*SMALL, "--tmp-dir", str(tmp_path), *args])
    return code, capsys.readouterr().out


def test_features_in_use_and_every_change_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _run(tmp_path, capsys, "--scenario", "a", "--targets", "chat-sqlite", "--features")
    assert code == 0, out
    found = re.search(
        r"integrity: ok \(([\d,]+) messages.*features: ([\d,]+) of the messages replies, "
        r"([\d,]+) reactions.*typing from every sender \(([\d,]+) notices",
        out,
    )
    assert found, out
    messages, replies, reactions, typing = (int(g.replace(",", "")) for g in found.groups())
    assert messages > 0
    # Every 4th message of a sender is a reply, a reaction follows every 10th (at most
    # one per seq), and the server lets one `typing` per sender through every 2 s.
    assert messages // 4 - 2 <= replies <= messages // 4
    assert 0 < reactions <= messages // 10
    assert typing > 0
    assert re.search(rf"store: {found.group(1)} messages committed", out), out


def test_without_the_flag_no_feature_is_used(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _run(tmp_path, capsys, "--scenario", "a", "--targets", "chat-mem")
    assert code == 0, out
    assert "integrity: ok" in out
    assert "features" not in out


def test_a_refused_reaction_fails_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Reactions on seqs that do not exist: the server answers `no_such_message`, and
    # the reactions never reach the receivers. The workers are forked, so they see this.
    wrong = bench.load_clients.REACT_LINE.replace(b'"seq":%d', b'"seq":9999%d')
    monkeypatch.setattr(bench.load_clients, "REACT_LINE", wrong)
    code, out = _run(tmp_path, capsys, "--scenario", "a", "--targets", "chat-mem", "--features")
    assert code == 1
    assert "no_such_message" in out
    assert re.search(r"0 of [\d,]+ reactions", out), out


def test_a_subset_uses_only_those(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(
        tmp_path, capsys, "--scenario", "a", "--targets", "chat-mem", "--features", "reply,react"
    )
    assert code == 0, out
    found = re.search(r"features: ([\d,]+) of the messages replies, ([\d,]+) reactions", out)
    assert found, out
    assert all(int(g.replace(",", "")) > 0 for g in found.groups())
    assert "typing from" not in out
    assert "logged in as an account" not in out


def test_an_unknown_use_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--features", "typing,emoji"]) == 2
    assert "bad --features ['emoji']" in capsys.readouterr().err
