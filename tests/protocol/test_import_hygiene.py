"""`protocol` is pure: importing it (every module of it) pulls in no I/O or UI package.

One exception is measured, not assumed: pydantic itself loads `socket` as soon as a model
class is defined (its plugin loader imports `importlib.metadata`, which imports `email`,
which imports `socket`). So the sys.modules check exempts exactly the forbidden modules a
bare pydantic model already loads, and a second test reads protocol's own sources to be
sure none of them imports a forbidden module directly.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import protocol

FORBIDDEN = ["asyncio", "socket", "sqlite3", "textual", "chat_server", "chat_client"]

_PROTOCOL_PROBE = """
import importlib, pkgutil
import protocol
names = [info.name for info in pkgutil.walk_packages(protocol.__path__, "protocol.")]
for name in names:
    importlib.import_module(name)
"""

_PYDANTIC_PROBE = """
from pydantic import BaseModel, TypeAdapter
class Model(BaseModel):
    x: int
TypeAdapter(Model).validate_json('{"x": 1}')
names = []
"""

_REPORT = """
import json, sys
forbidden = json.loads(sys.argv[1])
loaded = sorted(
    module
    for module in sys.modules
    if any(module == bad or module.startswith(bad + ".") for bad in forbidden)
)
print(json.dumps({"imported": names, "forbidden": loaded}))
"""


def _probe(code: str) -> dict[str, list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", code + _REPORT, json.dumps(FORBIDDEN)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, list[str]] = json.loads(done.stdout)
    return report


def test_importing_protocol_loads_no_io_or_ui_module() -> None:
    report = _probe(_PROTOCOL_PROBE)
    assert "protocol.codec" in report["imported"]
    assert "protocol.framing" in report["imported"]
    baseline = set(_probe(_PYDANTIC_PROBE)["forbidden"])
    assert baseline <= {"socket"}, f"pydantic alone now loads {sorted(baseline)}"
    extra = sorted(set(report["forbidden"]) - baseline)
    assert extra == [], f"protocol imported {extra}"


def _imported_names(code: str) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_protocol_sources_import_no_io_or_ui_module() -> None:
    sources = sorted(Path(protocol.__file__).parent.glob("*.py"))
    assert len(sources) > 5
    found = {
        f"{source.name}: {name}"
        for source in sources
        for name in _imported_names(source.read_text(encoding="utf-8"))
        if name.split(".")[0] in FORBIDDEN
    }
    assert not found, f"protocol imports {sorted(found)}"


def test_import_scanner_sees_imports() -> None:
    code = "import asyncio\nfrom socket.x import y\nimport json as j\nfrom . import z\n"
    assert _imported_names(code) == {"asyncio", "socket.x", "json"}
