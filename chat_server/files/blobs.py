"""File bytes on disk: finished files by content hash, unfinished uploads by upload id.

Layout under the files directory::

    blobs/<first 2 hex digits>/<sha256>   one per distinct content, shared by every record
    partial/<upload id>                   bytes received so far of one upload

No name a person gave is ever part of a path. Everything here is blocking file I/O:
callers run it in a worker thread (`asyncio.to_thread`).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import time
from pathlib import Path
from typing import BinaryIO

from ..store import StoreError

__all__ = ["BlobStore", "PartialFile"]

_HASH_CHUNK = 1 << 20


class BlobStore:
    """The two directories, and moving a finished upload into the content-addressed one."""

    def __init__(self, directory: Path, shared: bool = False) -> None:
        self.blobs = directory / "blobs"
        self.partials = directory / "partial"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.partials.mkdir(parents=True, exist_ok=True)
        # One server per directory: a second one would delete the first one's uploads.
        # Nodes of one chat (`shared`) hold it together, and never with a lone server.
        self._lock = open(directory / "lock", "a+b")
        try:
            fcntl.flock(self._lock, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise StoreError(f"{directory} is in use by another chat-server") from None

    def close(self) -> None:
        """Release the directory."""
        self._lock.close()

    def blob_path(self, sha256: str) -> Path:
        return self.blobs / sha256[:2] / sha256

    def partial_path(self, upload_id: str) -> Path:
        return self.partials / upload_id

    def has(self, sha256: str) -> bool:
        return self.blob_path(sha256).is_file()

    def commit(self, upload_id: str, sha256: str) -> None:
        """Move a complete, checked upload into place (dropping it if the blob exists).

        A rename, so a reader never sees half a blob, and two nodes committing the same
        bytes at once both leave one whole file (the same content either way)."""
        partial = self.partial_path(upload_id)
        target = self.blob_path(sha256)
        if target.is_file():
            partial.unlink(missing_ok=True)
            return
        target.parent.mkdir(exist_ok=True)
        os.replace(partial, target)

    def delete(self, sha256: str) -> None:
        self.blob_path(sha256).unlink(missing_ok=True)

    def drop_partial(self, upload_id: str) -> None:
        self.partial_path(upload_id).unlink(missing_ok=True)

    def clear_partials(self, older_than: float | None = None) -> None:
        """Uploads do not outlive the server process: drop what a previous run left.

        With `older_than` (a directory shared by nodes) only the partial uploads not
        written to for that many seconds: the others may be another node's."""
        if older_than is None:
            shutil.rmtree(self.partials, ignore_errors=True)
            self.partials.mkdir(parents=True, exist_ok=True)
            return
        limit = time.time() - older_than
        for path in self.partials.iterdir():
            try:
                if path.stat().st_mtime < limit:
                    path.unlink()
            except FileNotFoundError:
                continue

    def stored_hashes(self) -> set[str]:
        return {path.name for path in self.blobs.glob("??/*") if path.is_file()}


class PartialFile:
    """An upload being written from `start`: bytes go to disk and into the running SHA-256.

    `hasher` must already hold the hash of bytes `[0, start)`; `prefix_hasher` computes it.
    """

    def __init__(self, path: Path, start: int, hasher: hashlib._Hash) -> None:
        self._file: BinaryIO = open(path, "r+b" if path.exists() else "wb")
        self._file.truncate(start)
        self._file.seek(start)
        self.hasher = hasher
        self.written = start

    def write(self, chunks: list[bytes]) -> None:
        """Append `chunks` (in a worker thread: hashing and writing release the GIL)."""
        for chunk in chunks:
            self.hasher.update(chunk)
            self._file.write(chunk)
            self.written += len(chunk)

    def close(self, sync: bool) -> None:
        """Flush, and with `sync` wait until the disk has it (before it is announced)."""
        self._file.flush()
        if sync:
            os.fsync(self._file.fileno())
        self._file.close()

    @staticmethod
    def prefix_hasher(path: Path, length: int) -> hashlib._Hash:
        """The SHA-256 state after the first `length` bytes of `path` (resuming)."""
        hasher = hashlib.sha256()
        if length == 0:
            return hasher
        with open(path, "rb") as source:
            remaining = length
            while remaining > 0:
                chunk = source.read(min(_HASH_CHUNK, remaining))
                if not chunk:
                    raise ValueError(f"{path} holds fewer than {length} bytes")
                hasher.update(chunk)
                remaining -= len(chunk)
        return hasher
