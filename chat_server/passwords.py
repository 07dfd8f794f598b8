"""Account password hashing: argon2id with a per-account salt (argon2-cffi).

Hashing and checking are deliberately slow and memory-hard, so they run on a
worker thread (`asyncio.to_thread`), never on the event loop: one login never
stalls other users. argon2-cffi compares in constant time. A password is never
logged and never kept after the call.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = ["DEFAULT_MEMORY_KIB", "hash_password", "verify_password"]

DEFAULT_MEMORY_KIB = 65_536  # argon2-cffi's default (RFC 9106 "low memory"): 64 MiB, t=3, p=4
_HASHER = PasswordHasher()  # argon2id, a random 16-byte salt per hash


def hash_password(password: str, memory_kib: int = DEFAULT_MEMORY_KIB) -> str:
    """The encoded argon2id hash (parameters and salt included) of `password`.

    `memory_kib` below the default is for tests only; a check reads the
    parameters from the hash, so hashes of any cost verify.
    """
    if memory_kib == DEFAULT_MEMORY_KIB:
        return _HASHER.hash(password)
    return PasswordHasher(time_cost=1, memory_cost=memory_kib, parallelism=1).hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether `password` matches `password_hash` (constant-time comparison)."""
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
