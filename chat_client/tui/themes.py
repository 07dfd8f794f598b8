"""The names `--theme` accepts (Textual's built-in themes)."""

from __future__ import annotations

from textual.theme import BUILTIN_THEMES

__all__ = ["theme_names"]


def theme_names() -> list[str]:
    return sorted(BUILTIN_THEMES)
