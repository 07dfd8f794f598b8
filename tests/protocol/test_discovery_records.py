"""The mDNS TXT record, instance names, fingerprints and feature grants (pure, no sockets)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import (
    Announcement,
    Feature,
    InvalidFingerprint,
    fingerprint_of,
    grant,
    instance_name,
    normalize_fingerprint,
    parse_txt,
    server_name_of,
)
from protocol.fingerprints import FINGERPRINT_RE

FP = fingerprint_of(b"certificate")

announcements = st.builds(
    Announcement,
    server_id=st.text("0123456789abcdef", min_size=8, max_size=8),
    port=st.integers(1, 65535),
    tls_port=st.none() | st.integers(1, 65535),
    fingerprint=st.none() | st.binary(max_size=40).map(fingerprint_of),
    password_required=st.booleans(),
    users=st.integers(0, 10**6),
    protocol=st.integers(1, 9),
)


def _as_zeroconf_gives_it(props: dict[str, str]) -> dict[bytes, bytes | None]:
    return {key.encode(): value.encode() for key, value in props.items()}


@settings(max_examples=200, deadline=None)
@given(announcements)
def test_txt_round_trips(announcement: Announcement) -> None:
    txt = announcement.txt()
    assert parse_txt(_as_zeroconf_gives_it(txt), announcement.port) == announcement
    assert sum(len(k) + len(v) + 2 for k, v in txt.items()) <= 200


def test_txt_has_exactly_the_contract_keys() -> None:
    on = Announcement("a1b2c3d4", 7777, 7778, FP, True, 3)
    assert on.txt() == {
        "txtvers": "1",
        "id": "a1b2c3d4",
        "proto": "2",
        "tls": "7778",
        "fp": FP,
        "pw": "1",
        "users": "3",
    }
    off = Announcement("a1b2c3d4", 7777, None, None, False, 0)
    assert off.txt() == {"txtvers": "1", "id": "a1b2c3d4", "proto": "2", "pw": "0", "users": "0"}
    assert off.plain_port == 7777
    assert Announcement("a1b2c3d4", 7778, 7778, FP, False, 0).plain_port is None


@pytest.mark.parametrize(
    "props",
    [
        {},
        {b"txtvers": b"2", b"id": b"a1b2c3d4"},
        {b"txtvers": b"1"},
        {b"txtvers": b"1", b"id": b"NOT VALID"},
        {b"txtvers": b"1", b"id": None},
    ],
)
def test_records_that_are_not_ours_are_ignored(props: dict[bytes, bytes | None]) -> None:
    assert parse_txt(props, 7777) is None


def test_malformed_optional_values_read_as_absent() -> None:
    props = {
        b"txtvers": b"1",
        b"id": b"a1b2c3d4",
        b"tls": b"99999",
        b"fp": b"\x1b[31m",
        b"users": "²".encode(),
        b"extra": b"ignored",
    }
    record = parse_txt(props, 7777)
    assert record is not None
    assert (record.tls_port, record.fingerprint, record.users, record.protocol) == (
        None,
        None,
        0,
        0,
    )


@given(st.text(min_size=1, max_size=100), st.text("0123456789abcdef", min_size=8, max_size=8))
def test_instance_names_are_one_label_and_give_the_name_back(name: str, server_id: str) -> None:
    instance = instance_name(name, server_id)
    assert len(instance.encode()) <= 63
    assert instance.endswith(f"-{server_id}")
    if len(name.encode()) + 9 <= 63 and not name.endswith("."):
        assert server_name_of(instance, server_id) == name


def test_fingerprint_format() -> None:
    der = b"\x30\x82 some der"
    fp = fingerprint_of(der)
    assert FINGERPRINT_RE.fullmatch(fp)
    assert fp.replace(":", "") == hashlib.sha256(der).hexdigest().upper()


@pytest.mark.parametrize(
    "text",
    [
        FP,
        FP.lower(),
        FP.replace(":", ""),
        f"sha256:{FP}",
        f"SHA256 Fingerprint={FP}",
        f"  {FP.lower()}\n",
    ],
)
def test_normalize_accepts_what_people_paste(text: str) -> None:
    assert normalize_fingerprint(text) == FP


@pytest.mark.parametrize("text", ["", "AB:CD", FP + ":00", FP.replace("A", "G", 1), "x" * 64])
def test_normalize_refuses_what_is_no_fingerprint(text: str) -> None:
    with pytest.raises(InvalidFingerprint):
        normalize_fingerprint(text)


def test_grant_is_requested_and_supported_in_server_order() -> None:
    supported = [Feature.REPLY, Feature.EDIT, Feature.TYPING]
    assert grant(["typing", "teleport", "reply", "reply"], supported) == ["reply", "typing"]
    assert grant(None, supported) == []
    assert grant([], supported) == []
