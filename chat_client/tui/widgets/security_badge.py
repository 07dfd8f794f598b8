"""How the connection is protected, in a few words for the status bar."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from ...secure import Security
from ...trust import Verdict

__all__ = ["SecurityBadge", "security_text"]


def security_text(security: Security | None, password_sent: bool) -> Content:
    """`🔒 TLS, pinned` and the like; a plain connection that carried a password is flagged."""
    if security is None:
        return Content("")
    if security.encrypted:
        how = {
            Verdict.KNOWN: "pinned",
            Verdict.PINNED: "pinned now (first visit)",
            Verdict.TRUSTED: "pinned (as you gave it)",
        }.get(security.verdict or Verdict.KNOWN, "")
        return Content.assemble(("🔒 TLS", "bold $success"), f", {how}")
    if password_sent:
        return Content.styled("⚠ plain text: password sent in clear", "bold $error")
    return Content.assemble(("plain text", "$warning"), " (not encrypted)")


class SecurityBadge(Static):
    """Shows `security_text` for the current connection."""

    DEFAULT_CSS = "SecurityBadge { width: auto; height: 1; }"

    def show(self, security: Security | None, password_sent: bool) -> None:
        self.update(security_text(security, password_sent))
