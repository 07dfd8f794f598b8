"""`protocol` is pure: importing it (every module of it) pulls in no I/O or UI package."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = ["asyncio", "socket", "sqlite3", "textual", "chat_server", "chat_client"]

_PROBE = """
import importlib, json, pkgutil, sys
import protocol
names = [info.name for info in pkgutil.walk_packages(protocol.__path__, "protocol.")]
for name in names:
    importlib.import_module(name)
forbidden = json.loads(sys.argv[1])
loaded = sorted(
    module
    for module in sys.modules
    if any(module == bad or module.startswith(bad + ".") for bad in forbidden)
)
print(json.dumps({"imported": names, "forbidden": loaded}))
"""


def test_importing_protocol_loads_no_io_or_ui_module() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(FORBIDDEN)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert "protocol.codec" in report["imported"]
    assert "protocol.framing" in report["imported"]
    assert report["forbidden"] == [], f"protocol imported {report['forbidden']}"
