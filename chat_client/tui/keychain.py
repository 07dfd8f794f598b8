"""Account passwords in the system keyring, only for users who ask for it.

Uses the optional `keyring` package (`pip install 'lanchat[keyring]'`). When it
is missing, or has no usable backend (a server without a desktop session),
`save` raises `KeychainUnavailable` with a sentence to show, and `load` finds
nothing: the client then asks for the password as usual. The entry is named by
server and nick, the same key as the settings file's profile.
"""

from __future__ import annotations

import logging

__all__ = ["SERVICE", "KeychainUnavailable", "entry_name", "forget", "load", "save"]

log = logging.getLogger(__name__)

SERVICE = "lanchat"


class KeychainUnavailable(Exception):
    """No keyring to keep the password in; the message says why, in plain words."""


def entry_name(host: str, port: int, nick: str) -> str:
    return f"{nick.lower()}@{host}:{port}"


def _backend() -> object:
    try:
        import keyring
        import keyring.backends.fail
    except ImportError:
        raise KeychainUnavailable(
            "the keyring package is not installed (pip install 'lanchat[keyring]')"
        ) from None
    backend = keyring.get_keyring()
    if isinstance(backend, keyring.backends.fail.Keyring):
        raise KeychainUnavailable("no system keyring is available here")
    return backend


def save(host: str, port: int, nick: str, password: str) -> None:
    """Keep `password` for this account; raises KeychainUnavailable."""
    _backend()
    import keyring.errors

    try:
        keyring.set_password(SERVICE, entry_name(host, port, nick), password)
    except keyring.errors.KeyringError as exc:
        raise KeychainUnavailable(f"the system keyring refused: {type(exc).__name__}") from None


def load(host: str, port: int, nick: str) -> str | None:
    """The password kept for this account, or None (none kept, or no keyring)."""
    try:
        _backend()
        import keyring.errors

        try:
            return keyring.get_password(SERVICE, entry_name(host, port, nick))
        except keyring.errors.KeyringError as exc:
            log.warning("could not read the system keyring: %s", type(exc).__name__)
            return None
    except KeychainUnavailable:
        return None


def forget(host: str, port: int, nick: str) -> None:
    """Remove the kept password, if any."""
    try:
        _backend()
        import keyring.errors

        try:
            keyring.delete_password(SERVICE, entry_name(host, port, nick))
        except keyring.errors.KeyringError:
            pass  # nothing kept
    except KeychainUnavailable:
        pass
