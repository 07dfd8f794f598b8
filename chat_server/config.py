"""Server settings: one frozen value built from the command line (or by tests)."""

from __future__ import annotations

from dataclasses import dataclass

from protocol.features import Feature, grant
from protocol.files import FEATURE_FILES
from protocol.limits import MAX_LINE_BYTES, MAX_TEXT_CHARS

from .files.config import FilesConfig

FEATURE_TYPING = "typing"

__all__ = [
    "DEFAULT_PORT",
    "DEFAULT_TLS_PORT",
    "FEATURE_TYPING",
    "MEMORY_DB",
    "ServerConfig",
    "feature_set",
    "granted_features",
    "supported_features",
]

DEFAULT_PORT = 7777
DEFAULT_TLS_PORT = 7778
MEMORY_DB = ":memory:"


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Everything a `ChatServer` needs to know; defaults are the contract's.

    Except two, which `chat-server` turns on: a `ChatServer` built in code
    listens for TLS only when given `tls_port`, and announces itself on the LAN
    only with `announce=True` (so tests and embedders never do by accident).
    """

    host: str | None = None  # None: every interface
    port: int = DEFAULT_PORT
    db_path: str = MEMORY_DB
    fsync: bool = False  # SQLite synchronous=FULL: survive a power cut, at some throughput
    name: str = "chat-server"
    motd: str = "Welcome! With netcat? Type your nick and press Enter."
    password: str | None = None
    rate: float = 10.0  # lines per second per client; 0 turns flood control off
    burst: int = 30
    max_line: int = MAX_LINE_BYTES
    max_text: int = MAX_TEXT_CHARS
    byte_rate: float = 64 * 1024  # bytes per second per client (burst: 4 s of it); 0: off
    address_byte_rate: float = 256 * 1024  # the same for all clients of one address
    send_buffer: int = 1 << 20  # unsent broadcast bytes a client may have for...
    slow_timeout: float = 5.0  # ...this many seconds before it is a slow consumer
    ping_interval: float = 30.0
    idle_timeout: float = 90.0
    register_timeout: float = 60.0  # seconds a connection may take to register
    max_per_ip: int = 50
    max_rooms: int = 1_000  # rooms on the server; 0: unlimited
    max_rooms_per_client: int = 20  # rooms one connection may create; 0: unlimited
    presence_limit: int = 1_000  # above this many members, joined/left go to their session only
    room_expiry: float = 300.0  # seconds an empty room without history or topic is kept
    tail_bytes: int = 32 << 20  # recent messages kept in memory, all rooms together
    nick_grace: float = 60.0  # a dropped user's nick is held this long against other addresses
    auth_delay: float = 0.5  # first delay after a wrong password; doubles per failure
    max_sessions: int = 10  # sessions one account may have at once
    hash_memory_kib: int = 65_536  # argon2id memory per new password hash (tests lower it)
    auth_failures: int = 3  # wrong passwords before the connection is closed
    shutdown_grace: float = 5.0
    tls_port: int | None = None  # None: no TLS listener; 0: a free port
    tls_only: bool = False  # no plain listener
    cert_path: str | None = None  # PEM; None: the data directory's self-signed one
    key_path: str | None = None
    data_dir: str | None = None  # certificate, key, server id; needed for TLS without cert
    announce: bool = False  # mDNS announcement
    announce_interfaces: tuple[str, ...] | None = None  # None: every LAN interface
    typing_interval: float = 2.0  # at most one `typing` `active` per sender and target this often
    files: FilesConfig | None = None  # None: no files listener (the CLI turns it on)
    redis_url: str | None = None  # one chat over several nodes kept in this Redis (cluster.py)
    admins: tuple[str, ...] = ()  # `--admin NICK`: accounts that are op in every room


def supported_features(config: ServerConfig) -> tuple[str, ...]:
    """The version-2 features this server offers in its `hello`, in the contract's order."""
    files = (FEATURE_FILES,) if config.files is not None else ()
    # Every feature is offered on a Redis node too: edits, deletes and reactions are kept
    # in Redis (redis_changes.py), ops and bans too (redis_moderation.py), and each node
    # searches a copy of the logs of its own (redis_search.py).
    return (
        Feature.ACCOUNTS,
        Feature.REPLY,
        Feature.EDIT,
        Feature.REACT,
        FEATURE_TYPING,
        Feature.READ,
        Feature.SEARCH,
        Feature.MODERATION,
        *files,
        Feature.AWAY,
    )


def granted_features(requested: list[str] | None, supported: tuple[str, ...]) -> list[str]:
    """What `welcome` grants: requested and supported, in the server's order."""
    return grant(requested, supported)


_FEATURE_SETS: dict[frozenset[str], frozenset[str]] = {}


def feature_set(granted: list[str]) -> frozenset[str]:
    """`granted` as a frozenset shared by every connection granted the same features.

    A frozenset is 216 bytes; thousands of idle connections need only a handful of them.
    Granted features are a subset of the supported ones, so the cache stays small.
    """
    features = frozenset(granted)
    return _FEATURE_SETS.setdefault(features, features)
