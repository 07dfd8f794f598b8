"""How server events read in plain-text mode (a person with netcat).

Examples::

    [15:04] #lobby [12] <alice> hi
    [15:04] #lobby [13] * alice waves
    [15:05] #lobby [14] (reply to [#12]) (edited) <bob> yes
    * alice edited [#12]: new text
    * alice deleted [#12]
    * bob reacted 👍 to [#12]
    * bob took back 👍 from [#12]
    [15:04] (dm) <bob -> alice> psst
    [15:04] #lobby * alice shared report.pdf (2.1 MB) http://192.168.1.10:7779/f/.../report.pdf
    * bob joined #lobby
    * alice kicked bob from #lobby (spam)
    * alice made carol an op of #lobby
    ! you are not in #games (not_in_room)

Continuation lines of a multi-line message are indented by four spaces. A shared file's
line ends with its download URL, so `curl -O URL` fetches it.
Text was validated on the way in, so it holds no control characters but
newline and tab.
"""

from __future__ import annotations

from pydantic import BaseModel

from protocol import (
    Banned,
    Bye,
    ChatMessage,
    DirectMessage,
    ErrorReply,
    FileInfo,
    Joined,
    Kicked,
    Left,
    MessageDeleted,
    MessageEdited,
    ModeChanged,
    NickChanged,
    ReactionChanged,
    TopicChanged,
    parse_ts,
)

__all__ = ["clock", "render", "render_message"]


def clock(ts: str) -> str:
    """`HH:MM` in the server's local time."""
    return parse_ts(ts).astimezone().strftime("%H:%M")


def _body(text: str) -> str:
    return text.replace("\n", "\n    ")


def _file(text: str, file: FileInfo) -> str:
    # `text` is "name (size)", one line: the name was checked for control characters.
    return f"{_body(text)} (expired)" if file.expired else f"{_body(text)} {file.url}"


def render_message(message: ChatMessage) -> str:
    """One room message as a readable line (without the newline), with its seq to refer to."""
    head = f"[{clock(message.ts)}] #{message.room} [{message.seq}]"
    if message.deleted:
        return f"{head} <{message.sender}> (deleted)"
    if message.reply_to is not None:
        head += f" (reply to [#{message.reply_to}])"
    if message.edited is not None:
        head += " (edited)"
    if message.reactions:
        text = " ".join(f"{emoji} {len(nicks)}" for emoji, nicks in message.reactions.items())
        return f"{_plain(message, head)}\n    [{text}]"
    return _plain(message, head)


def _plain(message: ChatMessage, head: str) -> str:
    if message.file is not None:
        return f"{head} * {message.sender} shared {_file(message.text, message.file)}"
    if message.action:
        return f"{head} * {message.sender} {_body(message.text)}"
    return f"{head} <{message.sender}> {_body(message.text)}"


def render(message: BaseModel) -> str:
    """The text-mode form of a broadcast or event, newline included; "" if not shown."""
    match message:
        case ChatMessage():
            line = render_message(message)
        case DirectMessage() if message.file is not None:
            line = f"[{clock(message.ts)}] (dm) * {message.sender} -> {message.to} shared "
            line += _file(message.text, message.file)
        case DirectMessage():
            line = f"[{clock(message.ts)}] (dm) <{message.sender} -> {message.to}> "
            line += _body(message.text)
        case Joined():
            line = f"* {message.nick} joined #{message.room}"
        case Left():
            reason = f" ({message.reason})" if message.reason else ""
            line = f"* {message.nick} left #{message.room}{reason}"
        case NickChanged():
            line = f"* {message.old} is now known as {message.new}"
        case MessageEdited():
            line = f"* {message.by} edited [#{message.seq}]: {_body(message.text)}"
        case MessageDeleted():
            line = f"* {message.by} deleted [#{message.seq}]"
        case ReactionChanged() if message.removed:
            line = f"* {message.nick} took back {message.emoji} from [#{message.seq}]"
        case ReactionChanged():
            line = f"* {message.nick} reacted {message.emoji} to [#{message.seq}]"
        case TopicChanged():
            shown = message.topic or "(cleared)"
            line = f"* {message.by} set the topic of #{message.room}: {shown}"
        case ModeChanged():
            what = "made" if message.op else "took op from"
            line = f"* {message.by} {what} {message.nick}" + (
                f" an op of #{message.room}" if message.op else f" in #{message.room}"
            )
        case Kicked():
            reason = f" ({message.reason})" if message.reason else ""
            line = f"* {message.by} kicked {message.nick} from #{message.room}{reason}"
        case Banned() if message.removed:
            line = f"* {message.by} lifted the ban of {message.nick} from #{message.room}"
        case Banned():
            reason = f" ({message.reason})" if message.reason else ""
            line = f"* {message.by} banned {message.nick} from #{message.room}{reason}"
        case ErrorReply():
            line = f"! {message.message} ({message.code})"
        case Bye():
            line = f"* bye ({message.reason})"
        case _:
            return ""
    return line + "\n"
