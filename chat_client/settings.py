"""What the connect screen remembers between runs (never the password)."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import platformdirs

__all__ = ["DEFAULT_PORT", "LastConnection", "load_last", "save_last", "settings_path"]

log = logging.getLogger(__name__)

DEFAULT_PORT = 7777


@dataclass(slots=True)
class LastConnection:
    host: str = "localhost"
    port: int = DEFAULT_PORT
    nick: str = ""
    rooms: list[str] = field(default_factory=lambda: ["lobby"])


def settings_path() -> Path:
    override = os.environ.get("CHAT_CLIENT_CONFIG")
    if override:
        return Path(override)
    return platformdirs.user_config_path("lanchat") / "client.json"


def load_last() -> LastConnection:
    path = settings_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return LastConnection(
            host=str(data.get("host") or "localhost"),
            port=int(data.get("port") or DEFAULT_PORT),
            nick=str(data.get("nick") or ""),
            rooms=[str(room) for room in data.get("rooms") or ["lobby"]],
        )
    except FileNotFoundError:
        return LastConnection()
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        log.warning("ignoring unreadable %s: %s", path, exc)
        return LastConnection()


def save_last(last: LastConnection) -> None:
    path = settings_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(last), indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        log.warning("could not save %s: %s", path, exc)
