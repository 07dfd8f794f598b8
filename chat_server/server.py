"""ChatServer: listens, owns the connections, runs liveness checks, shuts down in order.

Usage (tests use port 0 and read `server.port`)::

    async with ChatServer(ServerConfig(host="127.0.0.1", port=0)) as server:
        await server.serve_forever()

Shutdown order: stop accepting; `bye shutdown` to everyone; wait (bounded by
`shutdown_grace`) for their output to flush; abort what is left; close the store.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import tempfile
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from .config import MEMORY_DB, ServerConfig
from .connection import ClientConnection
from .context import ServerContext
from .files.config import FilesConfig
from .store import MemoryStore, Store

if TYPE_CHECKING:
    from .files.http import FilesListener

__all__ = ["ChatServer", "FilesListenError", "ServerContext"]

log = logging.getLogger("chat_server")


class FilesListenError(OSError):
    """The files listener could not listen (its port is taken, ...); `port` says which."""

    def __init__(self, port: int, error: OSError) -> None:
        super().__init__(error.errno, error.strerror)
        self.port = port


class ChatServer:
    """A chat server on one host and port."""

    def __init__(
        self,
        config: ServerConfig,
        store: Store | None = None,
        files_ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.config = config
        self._store = store
        # TLS hook: with an ssl context the files port serves HTTPS (the chat certificate).
        self._files_ssl_context = files_ssl_context
        self._files: FilesListener | None = None
        self._files_tmp: tempfile.TemporaryDirectory[str] | None = None
        self._server: asyncio.Server | None = None
        self._context: ServerContext | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._closed = asyncio.Event()

    @property
    def context(self) -> ServerContext:
        if self._context is None:
            raise RuntimeError("the server is not started")
        return self._context

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        return self.addresses[0][1]

    @property
    def addresses(self) -> list[tuple[str, int]]:
        if self._server is None:
            raise RuntimeError("the server is not started")
        return [(str(s.getsockname()[0]), int(s.getsockname()[1])) for s in self._server.sockets]

    @property
    def files_addresses(self) -> list[tuple[str, int]]:
        """Where the files listener listens; empty when files are off."""
        return self._files.addresses() if self._files is not None else []

    @property
    def files_port(self) -> int | None:
        return self._files.port if self._files is not None else None

    async def start(self) -> None:
        """Open the store and start listening. Raises StoreError or OSError."""
        loop = asyncio.get_running_loop()
        store = self._store or _open_store(self.config.db_path, self.config.fsync)
        self._store = store
        records = await store.open()
        context = self._context = ServerContext(self.config, store, loop)
        context.hub.rooms.load(records.values())
        try:
            self._server = await loop.create_server(
                lambda: ClientConnection(context),
                host=self.config.host,
                port=self.config.port,
                reuse_address=True,
                backlog=4096,
            )
        except BaseException:
            await store.close()
            raise
        if self.config.files is not None:
            try:
                await self._start_files(context, self.config.files)
            except BaseException:
                self._server.close()
                await store.close()
                raise
        self._sweeper = loop.create_task(self._sweep_liveness())

    async def _start_files(self, context: ServerContext, config: FilesConfig) -> None:
        from .files.http import FilesListener  # aiohttp: loaded only when files are on
        from .files.service import FileService
        from .files.sharing import FileSharing

        if config.directory is None:  # nothing is kept: files live as long as the process
            self._files_tmp = tempfile.TemporaryDirectory(prefix="lanchat-files-")
            config = replace(config, directory=Path(self._files_tmp.name))
        persistent = self.config.db_path != MEMORY_DB and self._files_tmp is None
        service = FileService(config, FileService.open_index(config, persistent))
        listener = FilesListener(service, self.config.host, config.port, self._files_ssl_context)
        try:
            await listener.start()
        except OSError as exc:
            service.close()
            raise FilesListenError(config.port, exc) from exc
        except BaseException:
            service.close()
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
        if self._closed.is_set() or self._context is None or self._server is None:
            return
        context = self._context
        context.accepting = False
        self._server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._files is not None:
            await self._files.close()
            self._files = None
            context.hub.files = None
        for connection in list(context.connections):
            connection.close_with_bye("shutdown")
        await self._wait_for_connections(context)
        await self._server.wait_closed()
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


def _open_store(db_path: str, fsync: bool) -> Store:
    if db_path == MEMORY_DB:
        return MemoryStore()
    from .sqlite_store import SqliteStore

    return SqliteStore(db_path, fsync=fsync)
