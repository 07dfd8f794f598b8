"""What every connection of one server shares: config, hub, flusher, per-address state.

Connections get a `ServerContext` and never see the `ChatServer` that made them, so
the server can import the connection module and not the other way round.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from collections import Counter
from typing import Protocol

from protocol import ServerHello, encode

from .config import ServerConfig, supported_features
from .eventlog import MessageLog
from .hub import ChatHub
from .outbox import Flusher
from .presence import Presence
from .ratelimit import TokenBucket
from .store import Store

# `typing` lines get a bucket of their own: a client that follows the contract sends
# one `active` per 3 s and a `done` per message sent, well within this.
TYPING_RATE = 2.0
TYPING_BURST = 10

__all__ = ["Connection", "ServerContext", "greeting_motd"]

log = logging.getLogger("chat_server")

PASSWORD_HINT = "This server has a password: type it first, then your nick."
FD_RESERVE = 32  # descriptors kept free for the store, logs and accepting itself
FD_WARNING_INTERVAL = 60.0  # seconds between two "out of descriptors" warnings


class Connection(Protocol):
    """A connection, as the server's bookkeeping sees it."""

    ip: str
    closed: bool
    registered: bool
    opened_at: float
    last_heard: float
    next_ping: float

    def close_with_bye(
        self, reason: str, left_reason: str | None = None, *, bye: bool = True
    ) -> None: ...

    def abort(self) -> None: ...

    def is_json(self) -> bool: ...

    def ping(self) -> None: ...


def greeting_motd(config: ServerConfig) -> str:
    """The MOTD of `hello`; with a password it tells a netcat user to type that first."""
    if config.password is None:
        return config.motd
    if config.motd == ServerConfig().motd:
        return "Welcome! With netcat? Type the password and press Enter, then your nick."
    return f"{config.motd} {PASSWORD_HINT}"


class ServerContext:
    """What every connection of one server shares."""

    def __init__(
        self,
        config: ServerConfig,
        store: Store,
        loop: asyncio.AbstractEventLoop,
        log: MessageLog | None = None,
        presence: Presence | None = None,
    ) -> None:
        self.config = config
        self.loop = loop
        self.flusher = Flusher(loop)
        self.hub = ChatHub(config, store, self.flusher, log, presence)
        store.after_commits = self.flusher.flush_all
        self.connections: set[Connection] = set()
        self.hello_line = b""
        self.set_tls(None, None)
        self._per_ip: Counter[str] = Counter()
        self._address_buckets: dict[str, TokenBucket] = {}
        self.max_connections = resource.getrlimit(resource.RLIMIT_NOFILE)[0] - FD_RESERVE
        self._next_fd_warning = 0.0
        self.accepting = True
        self.all_closed = asyncio.Event()

    def set_tls(self, tls_port: int | None, fingerprint: str | None) -> None:
        """Build the greeting once the TLS port is bound (it may have been 0)."""
        config = self.config
        self.hello_line = encode(
            ServerHello(
                server=config.name,
                motd=greeting_motd(config),
                password_required=config.password is not None,
                features=list(supported_features(config)),
                tls_port=tls_port,
                fingerprint=fingerprint,
            )
        )

    def online_users(self) -> int:
        """Registered connections (what discovery announces as `users`)."""
        return sum(1 for connection in self.connections if connection.registered)

    def admit(self, connection: Connection) -> bool:
        """Count a new connection; False if it must be refused."""
        if not self.accepting:
            return False
        limit = self.config.max_per_ip
        if limit and self._per_ip[connection.ip] >= limit:
            log.info("refused a connection: too many from %s", connection.ip)
            return False
        if len(self.connections) >= self.max_connections:
            self._warn_descriptors()
            return False
        self._per_ip[connection.ip] += 1
        self.connections.add(connection)
        return True

    def _warn_descriptors(self) -> None:
        """Log running out of descriptors once per interval, not once per refusal."""
        now = self.loop.time()
        if now >= self._next_fd_warning:
            self._next_fd_warning = now + FD_WARNING_INTERVAL
            log.warning(
                "refusing new connections: %d open, the most file descriptors allow "
                "(raise the limit with ulimit -n)",
                len(self.connections),
            )

    def forget(self, connection: Connection) -> None:
        self.connections.discard(connection)
        self._per_ip[connection.ip] -= 1
        if self._per_ip[connection.ip] <= 0:
            del self._per_ip[connection.ip]
            self._address_buckets.pop(connection.ip, None)
        if not self.connections and not self.accepting:
            self.all_closed.set()

    def new_bucket(self) -> TokenBucket | None:
        """A client's line bucket (None: flood control is off)."""
        if self.config.rate <= 0:
            return None
        return TokenBucket(self.config.rate, self.config.burst, self.loop.time())

    def new_typing_bucket(self) -> TokenBucket | None:
        """A client's bucket for `typing` lines, which do not use its line bucket."""
        if self.config.rate <= 0:
            return None
        return TokenBucket(TYPING_RATE, TYPING_BURST, self.loop.time())

    def new_byte_bucket(self) -> TokenBucket | None:
        """A client's byte bucket: `byte_rate` per second, a burst of 4 s of it."""
        rate = self.config.byte_rate
        if rate <= 0 or self.config.rate <= 0:  # --rate 0: no flood control at all
            return None
        return TokenBucket(rate, self._byte_burst(rate), self.loop.time())

    def _byte_burst(self, rate: float) -> int:
        return max(int(rate * 4), self.config.max_line)  # a longest line always fits

    def address_bucket(self, ip: str) -> TokenBucket | None:
        """The byte bucket all clients of `ip` share."""
        rate = self.config.address_byte_rate
        if rate <= 0 or self.config.rate <= 0:
            return None
        bucket = self._address_buckets.get(ip)
        if bucket is None:
            bucket = self._address_buckets[ip] = TokenBucket(
                rate, self._byte_burst(rate), self.loop.time()
            )
        return bucket
