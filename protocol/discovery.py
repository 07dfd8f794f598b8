"""What a server announces over mDNS / DNS-SD, as pure data (no sockets here).

Service type `_lanchat._tcp.local.`; the instance name is the server's name
plus its short id, so two servers never share one. The TXT record keys are the
contract's: `txtvers=1`, `id`, `proto`, `tls` (absent when TLS is off), `fp`
(absent without TLS), `pw=1|0`, `users`. The SRV port is the plain port, or
the TLS port when there is no plain listener.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from .fingerprints import FINGERPRINT_RE
from .limits import PROTOCOL_VERSION

__all__ = [
    "SERVICE_TYPE",
    "TXT_VERSION",
    "Announcement",
    "instance_name",
    "parse_txt",
    "server_name_of",
]

SERVICE_TYPE = "_lanchat._tcp.local."
TXT_VERSION = "1"
SERVER_ID_RE = re.compile(r"[0-9a-z]{4,16}")
_MAX_INSTANCE_BYTES = 63  # a DNS label


@dataclass(frozen=True, slots=True)
class Announcement:
    """One server's TXT record, typed.

    `port` is the SRV port: the plain listener's, or the TLS one's when it is alone.
    """

    server_id: str
    port: int
    tls_port: int | None
    fingerprint: str | None
    password_required: bool
    users: int
    protocol: int = PROTOCOL_VERSION

    @property
    def plain_port(self) -> int | None:
        """The plain-text port, or None when the server listens only for TLS."""
        return None if self.tls_port == self.port else self.port

    def txt(self) -> dict[str, str]:
        """The TXT properties, in the contract's key order."""
        props = {"txtvers": TXT_VERSION, "id": self.server_id, "proto": str(self.protocol)}
        if self.tls_port is not None:
            props["tls"] = str(self.tls_port)
        if self.fingerprint is not None:
            props["fp"] = self.fingerprint
        props["pw"] = "1" if self.password_required else "0"
        props["users"] = str(self.users)
        return props


def instance_name(name: str, server_id: str) -> str:
    """`NAME-ID`, the name cut so the whole stays one DNS label (63 bytes)."""
    suffix = f"-{server_id}"
    room = _MAX_INSTANCE_BYTES - len(suffix.encode())
    cut = name.encode()[:room].decode("utf-8", "ignore").rstrip(".") or "lanchat"
    return cut + suffix


def server_name_of(instance: str, server_id: str) -> str:
    """The server's own name back from an instance name (`instance_name` undone)."""
    return instance.removesuffix(f"-{server_id}") or instance


def parse_txt(properties: Mapping[bytes, bytes | None], port: int) -> Announcement | None:
    """Read a TXT record; None when it is not one of ours (wrong `txtvers`, no valid `id`).

    Unknown keys are ignored and a malformed optional value reads as absent, so a
    newer server's record still gives what this version understands.
    """
    text = {
        key.decode("ascii", "replace").lower(): (value or b"").decode("utf-8", "replace")
        for key, value in properties.items()
    }
    server_id = text.get("id", "")
    if text.get("txtvers") != TXT_VERSION or SERVER_ID_RE.fullmatch(server_id) is None:
        return None
    fingerprint = text.get("fp")
    return Announcement(
        server_id=server_id,
        port=port,
        tls_port=_port(text.get("tls")),
        fingerprint=fingerprint if fingerprint and FINGERPRINT_RE.fullmatch(fingerprint) else None,
        password_required=text.get("pw") == "1",
        users=_count(text.get("users")),
        protocol=_count(text.get("proto")),
    )


_NUMBER = re.compile(r"[0-9]{1,9}")


def _port(value: str | None) -> int | None:
    if value is None or _NUMBER.fullmatch(value) is None or not 0 < int(value) < 65536:
        return None
    return int(value)


def _count(value: str | None) -> int:
    return int(value) if value is not None and _NUMBER.fullmatch(value) else 0
