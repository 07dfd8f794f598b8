"""JSON Schema of both message unions, for people writing bots in other languages."""

from __future__ import annotations

from typing import Any

from .codec import CLIENT_ADAPTER, SERVER_ADAPTER

__all__ = ["json_schema"]


def json_schema() -> dict[str, Any]:
    """Return `{"client": schema, "server": schema}`: what each side may send."""
    return {
        "$comment": "chat wire protocol: one JSON object per line, discriminated on 'type'",
        "client": _type_required(CLIENT_ADAPTER.json_schema(by_alias=True)),
        "server": _named_nested_unions(_type_required(SERVER_ADAPTER.json_schema(by_alias=True))),
    }


def _named_nested_unions(schema: dict[str, Any]) -> dict[str, Any]:
    # Both `history` replies share the type (a `with` field tells them apart); give that
    # inner union a name, so every discriminator mapping value is a `$ref`, as JSON Schema
    # tools expect.
    mapping = schema.get("discriminator", {}).get("mapping", {})
    for kind, target in list(mapping.items()):
        if isinstance(target, dict):
            name = "Any" + "".join(part.title() for part in kind.split("_")) + "Reply"
            schema.setdefault("$defs", {})[name] = target
            ref = f"#/$defs/{name}"
            mapping[kind] = ref
            schema["oneOf"] = [{"$ref": ref} if b == target else b for b in schema["oneOf"]]
    return schema


def _type_required(schema: dict[str, Any]) -> dict[str, Any]:
    # The models default `type` (so Python callers need not repeat it); on the wire it is required.
    for definition in schema.get("$defs", {}).values():
        if "type" in definition.get("properties", {}):
            required = definition.setdefault("required", [])
            if "type" not in required:
                required.insert(0, "type")
    return schema
