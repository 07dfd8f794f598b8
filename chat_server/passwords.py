"""Account password hashing: argon2id with a per-account salt (argon2-cffi).

Hashing and checking are deliberately slow and memory-hard, so they run on a
worker thread (`asyncio.to_thread`), never on the event loop: one login never
stalls other users. argon2-cffi compares in constant time. A password is never
logged and never kept after the call.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = ["hash_password", "verify_password"]

_HASHER = PasswordHasher()  # argon2id, a random 16-byte salt per hash, RFC 9106 low-memory


def hash_password(password: str) -> str:
    """The encoded argon2id hash (parameters and salt included) of `password`."""
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether `password` matches `password_hash` (constant-time comparison)."""
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
