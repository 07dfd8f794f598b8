"""What the client remembers between runs (never the password).

One JSON file per machine and user, in the platform's config directory
(`~/.config/lanchat/client.json` on Linux; `CHAT_CLIENT_CONFIG` overrides it):
the last server and nick for the connect screen, the theme, the bell, logging, and per
server and nick the rooms you were in when you quit and how far you had read, and
for an account its DM partners and whether its password is in the system keyring.
The file is validated by a pydantic model; an unreadable one is ignored.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = ["DEFAULT_PORT", "ClientConfig", "Profile", "load_config", "save_config", "settings_path"]

log = logging.getLogger(__name__)

DEFAULT_PORT = 7777


class Profile(BaseModel):
    """One server and nick: where you were and what you had read."""

    model_config = ConfigDict(extra="ignore")

    rooms: list[str] = Field(default_factory=lambda: ["lobby"])
    read: dict[str, int] = Field(default_factory=dict)  # room -> last seq seen
    # Version 2, for an account: the partners of its stored DM conversations (their
    # history is fetched at start), how far each was read here, and whether the user
    # chose to keep the account password in the system keyring (the password itself
    # is never in this file).
    dms: list[str] = Field(default_factory=list)
    dm_read: dict[str, int] = Field(default_factory=dict)  # partner (lower case) -> seq
    keyring: bool = False


class ClientConfig(BaseModel):
    model_config = ConfigDict(extra="ignore")

    host: str = "localhost"
    port: int = Field(DEFAULT_PORT, ge=1, le=65535)
    nick: str = ""
    theme: str | None = None
    bell: bool = True
    log: bool = False  # keep conversation logs on disk
    send_typing: bool = True  # tell others while typing ("alice is typing…")
    profiles: dict[str, Profile] = Field(default_factory=dict)

    @staticmethod
    def profile_key(host: str, port: int, nick: str) -> str:
        return f"{nick.lower()}@{host}:{port}"

    def profile(self, host: str, port: int, nick: str) -> Profile:
        return self.profiles.get(self.profile_key(host, port, nick)) or Profile()

    def set_profile(self, host: str, port: int, nick: str, profile: Profile) -> None:
        self.profiles[self.profile_key(host, port, nick)] = profile


def settings_path() -> Path:
    override = os.environ.get("CHAT_CLIENT_CONFIG")
    if override:
        return Path(override)
    return platformdirs.user_config_path("lanchat") / "client.json"


def load_config() -> ClientConfig:
    path = settings_path()
    try:
        return ClientConfig.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return ClientConfig()
    except (OSError, ValidationError) as exc:
        log.warning("ignoring unreadable %s: %s", path, exc)
        return ClientConfig()


def save_config(config: ClientConfig) -> None:
    path = settings_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(config.model_dump_json(indent=2) + "\n", encoding="utf-8")
        temporary.replace(path)
    except OSError as exc:
        log.warning("could not save %s: %s", path, exc)
