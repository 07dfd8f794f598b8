"""Where file sharing meets the chat: the `upload` request, and the message a file becomes.

`FileSharing` turns an `upload` line into a ticket (after the chat side has said the
sender may share there), and when the service has a checked file, posts it through the
chat core's normal committed-message path (`ChatPoster.post_file`): a room `message`
is broadcast only once stored, and the HTTP 201 waits for that. A corrupt upload is
told to the uploader's connection as `error` `file_corrupt` without `re`.

"The same upload" belongs to an owner: for a logged-in account, the account (so an
upload resumes from another connection or after the client restarted, until its ticket
expires); for a guest, its connection (so its unfinished uploads go when it does).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from pydantic import BaseModel

from protocol import ErrorCode, ErrorReply, FileInfo, Upload, UploadReady, file_message_text

from ..errors import ChatError
from ..store import StoredMessage
from .index import FileRecord
from .service import FileError, FileService
from .uploads import UploadAsk, UploadTicket

__all__ = ["ChatPoster", "FileSharing", "UploadOwner", "Uploader"]

PostDone = Callable[[int | None, BaseException | None], None]
"""Called once the message sharing a file is stored and sent: (its room seq, error)."""


class UploadOwner(Protocol):
    """Who a connection's uploads belong to: its nick, and whether that is an account."""

    nick: str
    account: bool


class Uploader(UploadOwner, Protocol):
    """The chat connection an `upload` came from."""

    closed: bool

    @property
    def local_host(self) -> str | None:
        """The address this connection reached the server at (for URLs it can reach)."""
        ...

    def send_message(self, message: BaseModel) -> None: ...


class ChatPoster(Protocol):
    """What file sharing needs of the chat core."""

    def post_file(
        self,
        sender: str,
        room: str | None,
        to: str | None,
        text: str,
        file: FileInfo,
        done: PostDone,
    ) -> None:
        """Post the message sharing `file`; raise `ChatError` if it cannot go out now."""
        ...


class FileSharing:
    """The files feature of one chat server.

    Args:
        service: the file service behind the files listener.
        public_host: put this host into URLs instead of the address each uploader used.
    """

    def __init__(self, service: FileService, public_host: str | None = None) -> None:
        self.service = service
        self._public_host = public_host
        self._uploaders: dict[str, Uploader] = {}
        self.chat: ChatPoster | None = None
        service.on_shared = self._shared
        service.on_corrupt = self._corrupt

    async def request(self, peer: Uploader, message: Upload) -> UploadReady:
        """Answer an `upload` line the chat core allowed; raises `ChatError` for a refusal.

        On nodes an account's upload is kept in the index too, so a client that lost its
        node resumes it through another one."""
        owner = owner_of(peer)
        service = self.service
        ask = UploadAsk(
            owner=owner,
            sender=peer.nick,
            room=message.room,
            to=message.to,
            name=message.name,
            size=message.size,
            sha256=message.sha256,
            host=self._public_host or peer.local_host or "127.0.0.1",
        )
        try:
            if peer.account:
                await service.resume_elsewhere(ask)
            ticket = service.request_upload(ask)
        except FileError as error:
            raise ChatError(error.code, error.message) from None
        if peer.account:
            await service.keep_resumable(ticket)
        self._uploaders[owner] = peer
        url = self.service.upload_url(ticket)
        return UploadReady(file=ticket.id, url=url, offset=ticket.received, re=message.id)

    def forget(self, peer: UploadOwner) -> None:
        """The connection closed: a guest's unfinished uploads can never be resumed.

        An account's stay until their tickets expire: its next session resumes them.
        """
        owner = owner_of(peer)
        if self._uploaders.get(owner) is not peer:
            return
        del self._uploaders[owner]
        if not peer.account:
            self.service.drop_owner(owner)

    def with_files(self, messages: list[StoredMessage]) -> list[StoredMessage]:
        """Stored room messages with their `file` attached as it stands now (`expired`),
        its URL on this server.

        One server's store keeps no `file` (the index does); a node's messages carry the
        one the sharing node made, so the view's record, or else that one re-based here.
        """
        index = self.service.index
        if not index.has_messages() and all(message.file is None for message in messages):
            return messages
        result = []
        for message in messages:
            record = index.by_message(message.room, message.seq)
            if record is None and message.file is not None:
                record = index.by_id(message.file.id)
            if record is not None:
                result.append(replace(message, file=self.service.wire(record)))
            elif message.file is not None:
                result.append(replace(message, file=self.service.localize(message.file)))
            else:
                result.append(message)
        return result

    def localized(self, message: StoredMessage) -> StoredMessage:
        """A message about to be broadcast here (perhaps from another node): its file's
        URL on this server, so every client gets a URL of the node it is connected to."""
        if message.file is None:
            return message
        file = self.service.localize(message.file)
        return message if file is message.file else replace(message, file=file)

    def from_elsewhere(self, fields: dict[str, str]) -> None:
        """A `file` event of another node: keep the view of the index current."""
        self.service.index.apply(fields)

    async def _shared(self, ticket: UploadTicket, record: FileRecord) -> int | None:
        assert self.chat is not None
        posted: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()

        def done(seq: int | None, error: BaseException | None) -> None:
            if posted.done():
                return
            if error is not None:
                posted.set_exception(error)
                return
            if seq is not None:
                self.service.index.set_seq(record.id, seq)  # before anyone sees the message
            posted.set_result(seq)

        text = file_message_text(record.name, record.size)
        try:
            shared = self.service.wire(record)
            self.chat.post_file(ticket.sender, ticket.room, ticket.to, text, shared, done)
        except ChatError as error:
            raise FileError(error.code, error.message) from None
        return await posted

    def _corrupt(self, ticket: UploadTicket) -> None:
        peer = self._uploaders.get(ticket.owner)
        if peer is not None and not peer.closed:
            peer.send_message(
                ErrorReply(
                    code=ErrorCode.FILE_CORRUPT,
                    message=f"{ticket.name} arrived with another SHA-256; upload it again",
                )
            )


def owner_of(peer: UploadOwner) -> str:
    """Whose uploads these are: an account's own, a guest's its connection's."""
    if peer.account:
        return f"account:{peer.nick.lower()}"
    return f"connection:{id(peer):x}"
