from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chat_server.server import ChatServer
from tests.support import make_config

StartServer = Callable[..., Awaitable[ChatServer]]

HOME_VARIABLES = ("HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME")


@pytest.fixture(autouse=True, scope="session")
def hermetic_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Point HOME and the XDG directories at a temp dir, for this process and its children.

    So no test (nor a `chat-server` or `chat-client` it starts) reads or writes the user's
    own settings, history or certificates, and `make test` passes while a real server runs.
    """
    home = tmp_path_factory.mktemp("home")
    saved = {name: os.environ.get(name) for name in HOME_VARIABLES}
    os.environ["HOME"] = str(home)
    for name, sub in zip(
        HOME_VARIABLES[1:], (".config", ".local/share", ".cache", ".local/state"), strict=True
    ):
        os.environ[name] = str(home / sub)
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(autouse=True, scope="session")
def no_system_keyring() -> Iterator[None]:
    """No test reaches the user's keyring: the `fail` backend, for this process and its
    children, unless a test installs the in-memory one (tests/client/memory_keyring.py)."""
    import keyring
    import keyring.backends.fail

    saved = os.environ.get("PYTHON_KEYRING_BACKEND")
    os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    keyring.set_keyring(keyring.backends.fail.Keyring())  # type: ignore[no-untyped-call]
    yield
    if saved is None:
        os.environ.pop("PYTHON_KEYRING_BACKEND", None)
    else:
        os.environ["PYTHON_KEYRING_BACKEND"] = saved


@pytest.fixture(autouse=True)
def known_servers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test its own pinned certificates: a pin for 127.0.0.1 in one test would refuse
    every later plain-text connection to 127.0.0.1 (a host once reached over TLS)."""
    path = tmp_path / "known_servers"
    monkeypatch.setenv("CHAT_CLIENT_KNOWN_SERVERS", str(path))
    return path


@pytest.fixture
async def start_server() -> AsyncIterator[StartServer]:
    """Start servers on 127.0.0.1:0 with config overrides; all are closed at the end."""
    servers: list[ChatServer] = []

    async def start(**overrides: Any) -> ChatServer:
        server = ChatServer(make_config(**overrides))
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close()


@pytest.fixture
async def server(start_server: StartServer) -> ChatServer:
    """A server with the contract's defaults but no disk and no flood control."""
    return await start_server()
