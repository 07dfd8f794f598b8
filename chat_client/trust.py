"""Which servers this user trusts: pinned certificate fingerprints (TOFU, like SSH).

The known-servers file (`known_servers` in the user's config directory) has one
line per server, `HOST:PORT FINGERPRINT`, and can be read and edited by hand
(delete a line to forget a server). Rules, checked in this order:

1. A fingerprint given for this connection (`--fingerprint`, or from
   discovery) must equal the one the server presents, else `FingerprintMismatch`.
2. A server already pinned must present the pinned fingerprint, else
   `FingerprintChanged` with both shown, until the user trusts the new one
   (`trust()`; a fingerprint the user typed counts as that, one learnt from
   discovery does not: mDNS is unauthenticated).
3. A server not pinned yet is pinned now (first use).
4. A host with any pin was reached over TLS before: reaching it in plain text
   raises `PlainTextRefused` unless the user explicitly said `--insecure`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import platformdirs

from protocol import InvalidFingerprint, normalize_fingerprint

from .events import ChatClientError

__all__ = [
    "FingerprintChanged",
    "FingerprintMismatch",
    "KnownServers",
    "PlainTextRefused",
    "TrustError",
    "Verdict",
    "known_servers_path",
    "server_key",
]

log = logging.getLogger("chat_client.trust")

KNOWN_SERVERS_ENV = "CHAT_CLIENT_KNOWN_SERVERS"
_HEADER = (
    "# lanchat known servers: HOST:PORT SHA256-FINGERPRINT, one per line.\n"
    "# A server is pinned the first time it is reached over TLS; delete its line to forget it.\n"
)


def known_servers_path() -> Path:
    """`$CHAT_CLIENT_KNOWN_SERVERS`, else `<user config dir>/lanchat/known_servers`."""
    override = os.environ.get(KNOWN_SERVERS_ENV)
    if override:
        return Path(override)
    return platformdirs.user_config_path("lanchat") / "known_servers"


def server_key(host: str, port: int) -> str:
    """`host:port` as the file writes it (IPv6 in brackets, names in lower case)."""
    bare = host.strip().strip("[]").lower()
    return f"[{bare}]:{port}" if ":" in bare else f"{bare}:{port}"


def _host_of(key: str) -> str:
    return key.rsplit(":", 1)[0].strip("[]")


class TrustError(ChatClientError):
    """The server cannot be trusted on this connection; nothing was sent to it."""


class FingerprintChanged(TrustError):
    """The server presents another certificate than the one pinned for it."""

    def __init__(self, address: str, pinned: str, presented: str) -> None:
        super().__init__(
            f"the certificate of {address} has CHANGED.\n"
            f"  pinned:    {pinned}\n"
            f"  presented: {presented}\n"
            "Someone may be impersonating the server, or its host made a new certificate. "
            "Ask the host which fingerprint the server shows at start-up; if it is the "
            "presented one, trust it explicitly (chat-client --fingerprint NEW ...)."
        )
        self.address = address
        self.pinned = pinned
        self.presented = presented


class FingerprintMismatch(TrustError):
    """The server presents another fingerprint than the one given for this connection."""

    def __init__(self, address: str, expected: str, presented: str, source: str) -> None:
        super().__init__(
            f"the certificate of {address} does not match the fingerprint {source}.\n"
            f"  expected:  {expected}\n"
            f"  presented: {presented}"
        )
        self.address = address
        self.expected = expected
        self.presented = presented


class PlainTextRefused(TrustError):
    """A host that was reached over TLS before would now be reached in plain text."""

    def __init__(self, host: str) -> None:
        super().__init__(
            f"{host} was reached over TLS before; refusing to talk to it in plain text, "
            "where anyone on the network can read and change what you send. Use its TLS "
            "port, or --insecure if you really mean it."
        )
        self.host = host


class Verdict(StrEnum):
    """How a presented fingerprint was accepted."""

    KNOWN = "known"  # equal to the pin
    PINNED = "pinned"  # first use: pinned now
    TRUSTED = "trusted"  # the user's own fingerprint replaced or made the pin


@dataclass(frozen=True, slots=True)
class Expected:
    """A fingerprint given for one connection, and whether the user typed it."""

    fingerprint: str
    from_user: bool

    @property
    def source(self) -> str:
        return "you gave" if self.from_user else "the server announced on the LAN"


class KnownServers:
    """The known-servers file. Every call re-reads it, so several clients share it safely.

    Args:
        path: the file (default `known_servers_path()`); it need not exist yet.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or known_servers_path()

    def pinned(self, host: str, port: int) -> str | None:
        """The fingerprint pinned for `host:port`, or None."""
        return self._read().get(server_key(host, port))

    def check(
        self,
        host: str,
        port: int,
        presented: str,
        expected: str | None = None,
        *,
        from_user: bool = False,
    ) -> Verdict:
        """Accept the server's fingerprint or raise why not (the module's rules 1-3).

        Args:
            presented: the fingerprint of the certificate the server sent.
            expected: a fingerprint given for this connection, if any.
            from_user: `expected` was typed by the user (it may then replace a pin).

        Raises:
            FingerprintMismatch, FingerprintChanged: do not go on with this connection.
            InvalidFingerprint: `expected` is not a fingerprint.
        """
        presented = normalize_fingerprint(presented)
        address = server_key(host, port)
        if expected is not None:
            given = Expected(normalize_fingerprint(expected), from_user)
            if given.fingerprint != presented:
                raise FingerprintMismatch(address, given.fingerprint, presented, given.source)
        pinned = self.pinned(host, port)
        if pinned == presented:
            return Verdict.KNOWN
        if expected is not None and from_user:
            self.trust(host, port, presented)
            return Verdict.TRUSTED
        if pinned is not None:
            raise FingerprintChanged(address, pinned, presented)
        self._write_pin(address, presented)
        log.info("pinned %s for %s (first use)", presented, address)
        return Verdict.PINNED

    def trust(self, host: str, port: int, fingerprint: str) -> None:
        """Pin `fingerprint` for `host:port`, replacing any pin (the user said so)."""
        address = server_key(host, port)
        self._write_pin(address, normalize_fingerprint(fingerprint))
        log.info("trusted %s for %s", fingerprint, address)

    def reached_over_tls(self, host: str) -> bool:
        """True when any port of `host` has a pin."""
        bare = host.strip().strip("[]").lower()
        return any(_host_of(key) == bare for key in self._read())

    def check_plain(self, host: str, *, insecure: bool = False) -> None:
        """Call before a plain-text connection: refuses a host once reached over TLS."""
        if not insecure and self.reached_over_tls(host):
            raise PlainTextRefused(host)

    # -- the file -------------------------------------------------------------------

    def _read(self) -> dict[str, str]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError) as exc:
            log.warning("cannot read %s: %s", self.path, exc)
            return {}
        pins: dict[str, str] = {}
        for number, line in enumerate(text.splitlines(), 1):
            parts = line.split()
            if not parts or parts[0].startswith("#"):
                continue
            try:
                if len(parts) != 2:
                    raise InvalidFingerprint(line)
                pins[parts[0].lower()] = normalize_fingerprint(parts[1])
            except InvalidFingerprint:
                log.warning("%s:%d: not HOST:PORT FINGERPRINT, ignored", self.path, number)
        return pins

    def _write_pin(self, address: str, fingerprint: str) -> None:
        pins = self._read()
        pins[address] = fingerprint
        body = _HEADER + "".join(f"{key} {value}\n" for key, value in sorted(pins.items()))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        temporary.write_text(body, encoding="utf-8")
        os.replace(temporary, self.path)
