"""Version-2 feature names this server supports, and what a client is granted."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["SUPPORTED", "grant", "granted_list"]

# In the contract's order. A feature is listed only once this server does all of it.
SUPPORTED: tuple[str, ...] = ("typing",)


def grant(requested: Iterable[str] | None) -> frozenset[str]:
    """The requested features this server supports (unknown names are ignored)."""
    if requested is None:
        return frozenset()
    return frozenset(requested).intersection(SUPPORTED)


def granted_list(granted: frozenset[str]) -> list[str]:
    """`welcome`'s `features`: the granted ones in the server's order."""
    return [name for name in SUPPORTED if name in granted]
