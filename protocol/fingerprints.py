"""Certificate fingerprints in the contract's one format.

SHA-256 of the DER certificate as upper-case hex pairs joined by `:`, which is
what `openssl x509 -noout -fingerprint -sha256` prints after the `=`. People
compare these by eye and type them on the command line, so `normalize`
accepts the same value in any case, with or without the colons.
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["FINGERPRINT_RE", "InvalidFingerprint", "fingerprint_of", "normalize_fingerprint"]

FINGERPRINT_RE = re.compile(r"[0-9A-F]{2}(?::[0-9A-F]{2}){31}")
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


class InvalidFingerprint(ValueError):
    """Text that is not a SHA-256 fingerprint."""


def fingerprint_of(der: bytes) -> str:
    """The fingerprint of a DER-encoded certificate."""
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def normalize_fingerprint(text: str) -> str:
    """`text` in the contract's format; accepts any case, `:` or no separator, `SHA256:` prefix.

    Raises:
        InvalidFingerprint: `text` is not 32 bytes of hex.
    """
    bare = text.strip()
    if "=" in bare:  # `openssl x509 -fingerprint` output pasted whole
        bare = bare.split("=", 1)[1]
    if bare.lower().startswith("sha256:"):
        bare = bare[len("sha256:") :]
    bare = bare.replace(":", "").replace(" ", "")
    if _HEX64.fullmatch(bare) is None:
        raise InvalidFingerprint(
            f"{text!r} is not a SHA-256 fingerprint (64 hex digits, pairs joined by ':')"
        )
    upper = bare.upper()
    return ":".join(upper[i : i + 2] for i in range(0, 64, 2))
