"""`python -m protocol schema`: print the JSON Schema of the wire protocol."""

from __future__ import annotations

import json
import sys

from .schema import json_schema


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args != ["schema"]:
        print("usage: python -m protocol schema", file=sys.stderr)
        return 2
    json.dump(json_schema(), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
