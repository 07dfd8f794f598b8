"""Helpers for driving the TUI with Pilot against a real server on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from textual.pilot import Pilot

from chat_client import ClientSettings
from chat_client.tui.app import ChatApp, StartOptions
from chat_client.tui.widgets import Composer, MessageLog
from tests.support import TIMEOUT

FAST = ClientSettings(backoff_initial=0.05, backoff_max=0.2, connect_timeout=2.0)
SIZE = (110, 30)


def make_app(port: int, nick: str = "alice", *rooms: str, **options: object) -> ChatApp:
    return ChatApp(
        StartOptions(
            host="127.0.0.1",
            port=port,
            nick=nick,
            rooms=rooms,
            **{"settings": FAST, **options},  # type: ignore[arg-type]
        )
    )


async def until(
    pilot: Pilot[None], condition: Callable[[], bool], what: str, timeout: float = TIMEOUT
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


def log_view(app: ChatApp) -> MessageLog:
    return app.chat.query_one("#log", MessageLog)


def log_text(app: ChatApp) -> str:
    return "\n".join(log_view(app).plain_lines)


def composer(app: ChatApp) -> Composer:
    return app.chat.query_one("#composer", Composer)


def joined(app: ChatApp, *rooms: str) -> Callable[[], bool]:
    def check() -> bool:
        client = app.client
        if client is None or not client.connected or not set(rooms) <= set(client.rooms):
            return False
        conversations = app.presenter.conversations
        return all(
            "#" + room in conversations and conversations.get("#" + room).joined for room in rooms
        )

    return check


async def type_line(pilot: Pilot[None], text: str) -> None:
    """Put `text` in the composer and press Enter."""
    app = pilot.app
    assert isinstance(app, ChatApp)
    box = composer(app)
    box.focus()
    box.load_text(text)
    box.move_cursor(box.document.end)
    await pilot.press("enter")
