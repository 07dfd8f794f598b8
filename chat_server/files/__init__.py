"""File sharing (feature `files`): bytes over HTTP on their own port, never on the chat line.

`FileService` (service.py) holds the rules, `FilesListener` (http.py) serves them with
aiohttp; `index.py` keeps the records, `blobs.py` the bytes, `uploads.py` the tickets of
unfinished uploads. See docs/PROTOCOL.md, "Files".

Import from the modules themselves: importing this package loads nothing, so aiohttp is
loaded only by a server that shares files.
"""
