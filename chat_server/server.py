"""ChatServer: listens, owns the connections, runs liveness checks, shuts down in order.

Usage (tests use port 0 and read `server.port`)::

    async with ChatServer(ServerConfig(host="127.0.0.1", port=0)) as server:
        await server.serve_forever()

It listens in plain text on `port` and, given `tls_port`, over TLS beside it
(`tls_only` drops the plain listener); both lead to the same `ClientConnection`.
With `announce` it is announced on the LAN (`discovery.Announcer`).

Shutdown order: withdraw the announcement; stop accepting; `bye shutdown` to
everyone; wait (bounded by `shutdown_grace`) for their output to flush; abort
what is left; close the store.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import ssl
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Literal

from protocol import Announcement

from .config import MEMORY_DB, ServerConfig
from .connection import ClientConnection
from .context import ServerContext
from .discovery import Announcer, lan_addresses, load_or_create_server_id
from .files.config import FilesConfig
from .store import MemoryStore, Store
from .tls import (
    ServerCertificate,
    TlsSetupError,
    load_certificate,
    load_or_create_certificate,
    server_ssl_context,
)
from .tls_listener import TlsListener

if TYPE_CHECKING:
    from .cluster import ClusterNode
    from .files.http import FilesListener
    from .files.index import FileIndex

__all__ = ["ChatServer", "FilesListenError", "ListenError", "Listener", "ServerContext"]

Kind = Literal["plain", "tls"]
Listener = tuple[str, int, Kind]  # host, port, kind

log = logging.getLogger("chat_server")


class FilesListenError(OSError):
    """The files listener could not listen (its port is taken, ...); `port` says which."""

    def __init__(self, port: int, error: OSError) -> None:
        super().__init__(error.errno, error.strerror)
        self.port = port


class ListenError(OSError):
    """A listener could not be opened; says which one (`kind`, `port`)."""

    def __init__(self, kind: Kind, port: int, cause: OSError) -> None:
        super().__init__(cause.errno, cause.strerror or str(cause))
        self.kind = kind
        self.port = port


class ChatServer:
    """A chat server on one host and port."""

    def __init__(
        self,
        config: ServerConfig,
        store: Store | None = None,
        files_ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if config.tls_only and config.tls_port is None:
            raise ValueError("tls_only needs a tls_port")
        files = config.files
        if config.redis_url is not None and files is not None and files.directory is None:
            # The bytes must be where every node finds them: without one directory given
            # to all, a node does not offer `files` at all (docs/ARCHITECTURE.md).
            log.warning(
                "files: off on this node: with --redis, give every node the same --files-dir"
            )
            config = replace(config, files=None)
        self.config = config
        self._store = store
        # The files port serves HTTPS with the chat certificate when TLS is on; a context
        # given here takes its place (tests, embedders).
        self._files_ssl_context = files_ssl_context
        self._files: FilesListener | None = None
        self._files_tmp: tempfile.TemporaryDirectory[str] | None = None
        self._servers: list[tuple[Kind, asyncio.Server | TlsListener]] = []
        self._context: ServerContext | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._announcer: Announcer | None = None
        self.certificate: ServerCertificate | None = None
        self._closed = asyncio.Event()
        self._node: ClusterNode | None = None
        self.fatal: str | None = None  # why the server stopped by itself (Redis lost data)

    @property
    def context(self) -> ServerContext:
        if self._context is None:
            raise RuntimeError("the server is not started")
        return self._context

    @property
    def port(self) -> int:
        """The bound plain port (useful with port 0); the TLS one with `tls_only`."""
        return self.addresses[0][1]

    @property
    def tls_port(self) -> int | None:
        """The bound TLS port, or None without TLS."""
        return next((port for _, port, kind in self.listeners if kind == "tls"), None)

    @property
    def fingerprint(self) -> str | None:
        return self.certificate.fingerprint if self.certificate is not None else None

    @property
    def announcer(self) -> Announcer | None:
        return self._announcer

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """Where the plain listener is (the TLS one with `tls_only`)."""
        plain = [(h, p) for h, p, kind in self.listeners if kind == "plain"]
        return plain or [(h, p) for h, p, _ in self.listeners]

    @property
    def listeners(self) -> list[Listener]:
        """Every bound socket as (host, port, kind), the plain ones first."""
        if not self._servers:
            raise RuntimeError("the server is not started")
        return [
            (str(sock.getsockname()[0]), int(sock.getsockname()[1]), kind)
            for kind, server in self._servers
            for sock in server.sockets
        ]

    @property
    def files_addresses(self) -> list[tuple[str, int]]:
        """Where the files listener listens; empty when files are off."""
        return self._files.addresses() if self._files is not None else []

    @property
    def files_port(self) -> int | None:
        return self._files.port if self._files is not None else None

    async def start(self) -> None:
        """Open the store and start listening. Raises StoreError, TlsSetupError or OSError."""
        loop = asyncio.get_running_loop()
        ssl_context = self._tls_context()
        server_id = self._server_id() if self.config.announce else ""
        if self.config.redis_url is not None:
            context = await self._start_node(loop, self.config.redis_url)
            store = context.hub.store
            server_id = self._store_chat_id()
        else:
            store = self._store or _open_store(self.config.db_path, self.config.fsync)
            self._store = store
            records = await store.open()
            context = self._context = ServerContext(self.config, store, loop)
            context.hub.rooms.load(records.values())
            await context.hub.accounts.load()
            await context.hub.moderator.load()
        try:
            await self._listen(loop, context, ssl_context)
            if self._node is not None:
                await self._node.start(context.hub)
        except BaseException:
            for _, server in self._servers:
                server.close()
            self._servers.clear()
            if self._node is not None:
                await self._node.close()
            await store.close()
            raise
        if self.config.files is not None:
            try:
                await self._start_files(context, self.config.files, ssl_context)
            except BaseException:
                for _, server in self._servers:
                    server.close()
                self._servers.clear()
                await store.close()
                raise
        self._sweeper = loop.create_task(self._sweep_liveness())
        if self.config.announce:
            self._announcer = self._make_announcer(context, server_id)
            await self._announcer.start()

    async def _start_node(self, loop: asyncio.AbstractEventLoop, url: str) -> ServerContext:
        """One node of a chat kept in Redis (chat_server/cluster.py)."""
        from .cluster import ClusterNode

        node = self._node = ClusterNode(url, on_fatal=self._fail)
        await node.prepare()
        self._store = node.store
        records = await node.store.open()
        db = self.config.db_path
        await node.open_search(None if db == MEMORY_DB else db)  # `--db`: the search index
        context = self._context = ServerContext(
            self.config, node.store, loop, log=node.log, presence=node.presence
        )
        context.hub.rooms.load(records.values())
        await context.hub.accounts.load()
        from .redis_moderation import RedisModeration

        context.hub.moderator.share(RedisModeration(node.store, node.node))
        await context.hub.moderator.load()
        return context

    def _store_chat_id(self) -> str:
        """Every node of one chat announces the id kept in Redis: one server to discovery."""
        assert self._node is not None
        return self._node.store.chat_id

    def _fail(self, reason: str) -> None:
        self.fatal = reason
        asyncio.get_running_loop().create_task(self.close())

    def _tls_context(self) -> ssl.SSLContext | None:
        config = self.config
        if config.tls_port is None:
            return None
        if config.cert_path or config.key_path:
            if not (config.cert_path and config.key_path):
                raise TlsSetupError("--cert and --key go together")
            self.certificate = load_certificate(Path(config.cert_path), Path(config.key_path))
        elif config.data_dir is None:
            raise TlsSetupError("TLS needs a data directory for its certificate, or --cert/--key")
        else:
            addresses = lan_addresses(config.announce_interfaces)
            self.certificate = load_or_create_certificate(Path(config.data_dir), None, addresses)
        return server_ssl_context(self.certificate)

    async def _listen(
        self, loop: asyncio.AbstractEventLoop, context: ServerContext, tls: ssl.SSLContext | None
    ) -> None:
        config = self.config
        if not config.tls_only:
            plain = await _open_listener(
                loop, "plain", lambda: ClientConnection(context), config.host, config.port
            )
            self._servers.append(("plain", plain))
        if tls is not None:
            port = config.tls_port or 0
            try:
                secure = TlsListener(context, tls, config.host, port)
            except OSError as exc:
                raise ListenError("tls", port, exc) from exc
            self._servers.append(("tls", secure))
        context.set_tls(self.tls_port, self.fingerprint)  # the greeting names the bound port
        for _, server in self._servers:
            await server.start_serving()

    def _server_id(self) -> str:
        if self.config.data_dir is None:
            return secrets.token_hex(4)  # no data directory: a new id every start
        return load_or_create_server_id(Path(self.config.data_dir))

    def _make_announcer(self, context: ServerContext, server_id: str) -> Announcer:
        config = self.config
        record = Announcement(
            server_id=server_id,
            port=self.port,
            tls_port=self.tls_port,
            fingerprint=self.fingerprint,
            password_required=config.password is not None,
            users=0,
        )
        return Announcer(config.name, record, context.online_users, config.announce_interfaces)

    async def _start_files(
        self, context: ServerContext, config: FilesConfig, chat_tls: ssl.SSLContext | None
    ) -> None:
        from .files.http import FilesListener  # aiohttp: loaded only when files are on
        from .files.service import FileService
        from .files.sharing import FileSharing

        index: FileIndex
        if self._node is not None:  # one index for every node, in Redis; the bytes in
            from .files.redis_index import RedisFileIndex  # the directory they share

            assert config.directory is not None  # ChatServer.__init__ turned files off
            index = RedisFileIndex(self._node.url, self._node.node)
        else:
            if config.directory is None:  # nothing is kept: files live as long as the process
                self._files_tmp = tempfile.TemporaryDirectory(prefix="lanchat-files-")
                config = replace(config, directory=Path(self._files_tmp.name))
            persistent = self.config.db_path != MEMORY_DB and self._files_tmp is None
            index = FileService.open_index(config, persistent)
        service = FileService(config, index, shared=self._node is not None)
        files_tls = self._files_ssl_context or chat_tls
        listener = FilesListener(service, self.config.host, config.port, files_tls)
        try:
            await listener.start()
        except OSError as exc:
            await service.close()
            raise FilesListenError(config.port, exc) from exc
        except BaseException:
            await service.close()
            raise
        sharing = FileSharing(service, config.public_host)
        sharing.chat = context.hub
        context.hub.files = sharing
        self._files = listener

    async def serve_forever(self) -> None:
        """Wait until `close()`; cancelling this closes the server."""
        try:
            await self._closed.wait()
        except asyncio.CancelledError:
            await self.close()
            raise

    async def __aenter__(self) -> ChatServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Shut down in order; safe to call twice."""
        if self._closed.is_set() or self._context is None or not self._servers:
            return
        context = self._context
        if self._announcer is not None:
            await self._announcer.close()
            self._announcer = None
        context.accepting = False
        for _, server in self._servers:
            server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._files is not None:
            await self._files.close()
            self._files = None
            context.hub.files = None
        for connection in list(context.connections):
            connection.close_with_bye("shutdown")
        await self._wait_for_connections(context)
        for _, server in self._servers:
            await server.wait_closed()
        if self._node is not None:
            await self._node.close()
        if self._store is not None:
            await self._store.close()
        if self._files_tmp is not None:
            self._files_tmp.cleanup()
        self._closed.set()
        log.info("server closed")

    async def _wait_for_connections(self, context: ServerContext) -> None:
        if context.connections:
            try:
                await asyncio.wait_for(context.all_closed.wait(), self.config.shutdown_grace)
            except TimeoutError:
                log.warning("%d connections did not close in time", len(context.connections))
        for connection in list(context.connections):
            connection.abort()
        await asyncio.sleep(0)

    async def _sweep_liveness(self) -> None:
        config = self.context.config
        shortest = min(
            config.ping_interval, config.idle_timeout, config.register_timeout, config.room_expiry
        )
        step = min(max(shortest / 4, 0.02), 1.0)
        while True:
            await asyncio.sleep(step)
            self._check_liveness()
            self.context.hub.expire_rooms()
            self.context.hub.forget_held_nicks()

    def _check_liveness(self) -> None:
        context = self.context
        now = context.loop.time()
        idle_limit = self.config.idle_timeout
        register_by = now - self.config.register_timeout
        for connection in list(context.connections):
            if connection.closed:
                continue
            if not connection.registered and connection.opened_at <= register_by:
                connection.close_with_bye("timeout")  # text mode too: a prompt never answered
                continue
            if not connection.is_json():
                continue
            if now - connection.last_heard >= idle_limit:
                connection.close_with_bye("timeout")
            elif now >= connection.next_ping:
                connection.next_ping = now + self.config.ping_interval
                connection.ping()


async def _open_listener(
    loop: asyncio.AbstractEventLoop,
    kind: Kind,
    factory: Callable[[], asyncio.Protocol],
    host: str | None,
    port: int,
) -> asyncio.Server:
    try:
        return await loop.create_server(
            factory, host=host, port=port, reuse_address=True, backlog=4096, start_serving=False
        )
    except OSError as exc:
        raise ListenError(kind, port, exc) from exc


def _open_store(db_path: str, fsync: bool) -> Store:
    if db_path == MEMORY_DB:
        return MemoryStore()
    from .sqlite_store import SqliteStore

    return SqliteStore(db_path, fsync=fsync)
