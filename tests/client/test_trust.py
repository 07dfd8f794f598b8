"""Pinning: first use, unchanged, changed (refused), explicit trust, downgrade refused."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from chat_client.trust import (
    FingerprintChanged,
    FingerprintMismatch,
    KnownServers,
    PlainTextRefused,
    Verdict,
    known_servers_path,
    server_key,
)
from protocol import InvalidFingerprint, fingerprint_of

OLD = fingerprint_of(b"old certificate")
NEW = fingerprint_of(b"new certificate")


@pytest.fixture
def known(tmp_path: Path) -> KnownServers:
    return KnownServers(tmp_path / "cfg" / "known_servers")


def test_first_use_pins_and_writes_a_readable_line(known: KnownServers) -> None:
    assert known.pinned("Chat.Example", 7778) is None
    assert known.check("Chat.Example", 7778, OLD.lower()) is Verdict.PINNED
    assert known.pinned("chat.example", 7778) == OLD
    lines = [ln for ln in known.path.read_text().splitlines() if not ln.startswith("#")]
    assert lines == [f"chat.example:7778 {OLD}"]
    assert not stat.S_IMODE(known.path.stat().st_mode) & 0o022


def test_unchanged_fingerprint_is_known(known: KnownServers) -> None:
    known.check("10.0.0.5", 7778, OLD)
    before = known.path.read_bytes()
    assert known.check("10.0.0.5", 7778, OLD) is Verdict.KNOWN
    assert known.path.read_bytes() == before


def test_changed_fingerprint_is_refused_showing_both(known: KnownServers) -> None:
    known.check("10.0.0.5", 7778, OLD)
    with pytest.raises(FingerprintChanged) as caught:
        known.check("10.0.0.5", 7778, NEW)
    assert (caught.value.pinned, caught.value.presented) == (OLD, NEW)
    assert OLD in str(caught.value)
    assert NEW in str(caught.value)
    assert known.pinned("10.0.0.5", 7778) == OLD  # refusing changes nothing


def test_explicit_trust_replaces_the_pin(known: KnownServers) -> None:
    known.check("10.0.0.5", 7778, OLD)
    known.trust("10.0.0.5", 7778, NEW)
    assert known.check("10.0.0.5", 7778, NEW) is Verdict.KNOWN
    with pytest.raises(FingerprintChanged):
        known.check("10.0.0.5", 7778, OLD)


def test_a_fingerprint_the_user_typed_is_checked_then_trusted(known: KnownServers) -> None:
    known.check("10.0.0.5", 7778, OLD)
    with pytest.raises(FingerprintMismatch) as caught:
        known.check("10.0.0.5", 7778, NEW, OLD.replace("A", "B"), from_user=True)
    assert caught.value.presented == NEW
    typed = NEW.replace(":", "").lower()
    assert known.check("10.0.0.5", 7778, NEW, typed, from_user=True) is Verdict.TRUSTED
    assert known.pinned("10.0.0.5", 7778) == NEW


def test_a_fingerprint_from_discovery_never_overrides_a_pin(known: KnownServers) -> None:
    known.check("10.0.0.5", 7778, OLD)
    with pytest.raises(FingerprintChanged):
        known.check("10.0.0.5", 7778, NEW, NEW, from_user=False)
    with pytest.raises(FingerprintMismatch, match="announced"):
        known.check("10.0.0.9", 7778, NEW, OLD, from_user=False)
    assert known.pinned("10.0.0.9", 7778) is None
    assert known.check("10.0.0.9", 7778, NEW, NEW) is Verdict.PINNED


def test_a_bad_typed_fingerprint_is_refused(known: KnownServers) -> None:
    with pytest.raises(InvalidFingerprint):
        known.check("10.0.0.5", 7778, OLD, "AB:CD", from_user=True)


def test_plain_text_to_a_host_once_reached_over_tls_is_refused(known: KnownServers) -> None:
    known.check_plain("10.0.0.5")  # never reached over TLS: fine
    known.check("10.0.0.5", 7778, OLD)
    with pytest.raises(PlainTextRefused, match="--insecure"):
        known.check_plain("10.0.0.5")
    known.check_plain("10.0.0.5", insecure=True)
    known.check_plain("10.0.0.6")


def test_ipv6_keys_and_hand_edits(known: KnownServers) -> None:
    assert server_key("::1", 7778) == "[::1]:7778"
    assert server_key("[::1]", 7778) == "[::1]:7778"
    known.check("::1", 7778, OLD)
    assert known.reached_over_tls("[::1]")
    with known.path.open("a") as out:
        out.write("garbage line\nother:1 not-a-fingerprint\n\n# comment\n")
    assert known.pinned("::1", 7778) == OLD
    known.check("other", 1, NEW)  # the bad line is skipped, then replaced by a good pin
    assert known.pinned("other", 1) == NEW


def test_several_clients_keep_each_others_pins(tmp_path: Path) -> None:
    path = tmp_path / "known_servers"
    one, two = KnownServers(path), KnownServers(path)
    one.check("a", 1, OLD)
    two.check("b", 2, NEW)
    assert (one.pinned("b", 2), two.pinned("a", 1)) == (NEW, OLD)


def test_default_path_is_in_the_config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHAT_CLIENT_KNOWN_SERVERS", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert known_servers_path() == tmp_path / "lanchat" / "known_servers"
    monkeypatch.setenv("CHAT_CLIENT_KNOWN_SERVERS", str(tmp_path / "x"))
    assert known_servers_path() == tmp_path / "x"
