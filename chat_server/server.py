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
from types import TracebackType

from .config import MEMORY_DB, ServerConfig
from .connection import ClientConnection
from .context import ServerContext
from .store import MemoryStore, Store

__all__ = ["ChatServer", "ServerContext"]

log = logging.getLogger("chat_server")


class ChatServer:
    """A chat server on one host and port."""

    def __init__(self, config: ServerConfig, store: Store | None = None) -> None:
        self.config = config
        self._store = store
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

    async def start(self) -> None:
        """Open the store and start listening. Raises StoreError or OSError."""
        loop = asyncio.get_running_loop()
        store = self._store or _open_store(self.config.db_path, self.config.fsync)
        self._store = store
        records = await store.open()
        context = self._context = ServerContext(self.config, store, loop)
        context.hub.rooms.load(records.values())
        await context.hub.accounts.load()
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
        self._sweeper = loop.create_task(self._sweep_liveness())

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
        for connection in list(context.connections):
            connection.close_with_bye("shutdown")
        await self._wait_for_connections(context)
        await self._server.wait_closed()
        if self._store is not None:
            await self._store.close()
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
