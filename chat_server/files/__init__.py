"""File sharing (feature `files`): bytes over HTTP on their own port, never on the chat line.

`FileService` (service.py) holds the rules, `FilesListener` (http.py) serves them with
aiohttp; `index.py` keeps the records, `blobs.py` the bytes, `uploads.py` the tickets of
unfinished uploads. See docs/PROTOCOL.md, "Files".
"""

from __future__ import annotations

from .config import DEFAULT_FILES_PORT, FilesConfig, parse_size
from .http import FilesListener
from .index import FileIndex, FileRecord, MemoryFileIndex, SqliteFileIndex
from .service import FileError, FileService, UploadCorrupt
from .uploads import UploadTicket

__all__ = [
    "DEFAULT_FILES_PORT",
    "FileError",
    "FileIndex",
    "FileRecord",
    "FileService",
    "FilesConfig",
    "FilesListener",
    "MemoryFileIndex",
    "SqliteFileIndex",
    "UploadCorrupt",
    "UploadTicket",
    "parse_size",
]
