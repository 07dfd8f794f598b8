"""`chat-client --list`: the servers on the LAN as a table, or JSON for scripts.

Names and addresses come from the network (anyone on the LAN can announce
anything), so control characters are replaced before they reach a terminal.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, TextIO

from .discovery import (
    LIST_TIMEOUT,
    DiscoveredServer,
    DiscoveryUnavailable,
    discover,
    nothing_found_help,
)

__all__ = ["as_json", "as_table", "print_servers"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_COLUMNS = ("NAME", "ADDRESS", "USERS", "TLS", "PASSWORD", "FINGERPRINT")


def _shown(text: str) -> str:
    return _CONTROL.sub("\N{REPLACEMENT CHARACTER}", text)


def _short(fingerprint: str | None) -> str:
    if fingerprint is None:
        return "-"
    return f"{fingerprint[:11]}…{fingerprint[-11:]}"


def _address(server: DiscoveredServer) -> str:
    host = server.host
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{server.plain_port if server.plain_port is not None else server.port}"


def _row(server: DiscoveredServer) -> tuple[str, ...]:
    return (
        _shown(server.name),
        _shown(_address(server)),
        str(server.users),
        f"yes :{server.tls_port}" if server.tls_port is not None else "no",
        "yes" if server.password_required else "no",
        _short(server.fingerprint),
    )


def as_table(servers: Sequence[DiscoveredServer]) -> str:
    """Aligned columns, one server a line, with a header."""
    rows = [_COLUMNS, *(_row(server) for server in servers)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    return "".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        + "\n"
        for row in rows
    )


def as_json(servers: Sequence[DiscoveredServer]) -> str:
    """A JSON array: every field of every server, addresses in full (one line)."""
    return json.dumps([_record(server) for server in servers], ensure_ascii=True) + "\n"


def _record(server: DiscoveredServer) -> dict[str, Any]:
    return {
        "name": server.name,
        "id": server.server_id,
        "addresses": list(server.addresses),
        "port": server.plain_port,
        "tls_port": server.tls_port,
        "fingerprint": server.fingerprint,
        "password_required": server.password_required,
        "users": server.users,
        "protocol": server.protocol,
    }


async def print_servers(
    out: TextIO,
    err: TextIO,
    *,
    json_output: bool = False,
    interfaces: Sequence[str] | None = None,
    wait: float = LIST_TIMEOUT,
) -> int:
    """List what answers within `wait` seconds; return the exit code.

    1 when none answered (the table form) or multicast is unusable; `--json`
    prints `[]` and exits 0 when none answered, so scripts need not special-case it.
    """
    try:
        servers = await discover(wait, interfaces)
    except DiscoveryUnavailable as exc:
        print(f"chat-client: {exc}", file=err)
        print("Connect by address instead: chat-client HOST[:PORT]", file=err)
        return 1
    if json_output:
        out.write(as_json(servers))
    elif servers:
        out.write(as_table(servers))
        out.write("Join one with: chat-client NAME\n")
    if not servers:
        print(nothing_found_help(interfaces, wait), file=err)
        return 0 if json_output else 1
    return 0
