"""Every client message type has a handler; a type without one is refused, not a crash."""

from __future__ import annotations

import typing

import pytest
from pydantic import BaseModel

from chat_server import json_session
from chat_server.json_session import HANDLERS, NOT_YET_HANDLED
from chat_server.server import ChatServer
from protocol.client_messages import ClientMessage, Ping
from tests.server.helpers import Clients


def client_message_types() -> set[type]:
    union = typing.get_args(ClientMessage)[0]
    return set(typing.get_args(union))


def test_every_client_message_type_has_a_handler() -> None:
    types = client_message_types()
    assert len(types) >= 13
    assert set(HANDLERS) | NOT_YET_HANDLED == types
    assert not set(HANDLERS) & NOT_YET_HANDLED


def test_each_type_is_handled_by_one_feature_group() -> None:
    groups = [
        json_session.SESSION_HANDLERS,
        json_session.ROOM_HANDLERS,
        json_session.CHAT_HANDLERS,
        json_session.HISTORY_HANDLERS,
        json_session.TYPING_HANDLERS,
        json_session.ACCOUNT_HANDLERS,
        json_session.FILES_HANDLERS,
        json_session.SEARCH_HANDLERS,
        json_session.MODERATION_HANDLERS,
    ]
    assert sum(len(group) for group in groups) == len(HANDLERS)


async def test_a_type_without_a_handler_is_refused_not_a_crash(
    server: ChatServer, clients: Clients, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = await clients.registered(server.port, "alice")
    unhandled: type[BaseModel] = Ping
    monkeypatch.delitem(HANDLERS, unhandled)
    refused = await alice.request({"type": "ping", "id": "p"})
    assert (refused["type"], refused["code"], refused["re"]) == ("error", "invalid_message", "p")
    monkeypatch.undo()
    assert (await alice.request({"type": "ping"}))["type"] == "pong"
