"""`python -m protocol schema`: the JSON Schema bot writers get, checked against real lines.

`jsonschema` is not a project dependency, so the instances are checked by a small
validator below that knows only the keywords this schema uses and refuses any other
(so a new keyword cannot make the check pass silently). If `jsonschema` happens to be
installed, the schema is also checked against the Draft 2020-12 meta-schema.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from functools import cache
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pydantic import BaseModel

from protocol import encode
from tests.protocol.wire_samples import CLIENT_SAMPLES, CLIENT_TYPES, SERVER_SAMPLES, SERVER_TYPES

_ANNOTATIONS = {"title", "description", "default", "discriminator", "$comment"}


@cache
def printed_schema() -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "protocol", "schema"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    schema = json.loads(done.stdout)
    assert isinstance(schema, dict)
    return schema


def errors_of(instance: Any, schema: dict[str, Any], root: dict[str, Any]) -> list[str]:
    """Why `instance` does not match `schema` (empty when it does), for a subset of 2020-12."""
    problems: list[str] = []
    for key, want in schema.items():
        if key in _ANNOTATIONS:
            continue
        if key == "$ref":
            assert want.startswith("#/$defs/"), want
            problems += errors_of(instance, root["$defs"][want.removeprefix("#/$defs/")], root)
        elif key == "$defs":
            continue
        elif key == "oneOf":
            matches = sum(not errors_of(instance, branch, root) for branch in want)
            if matches != 1:
                problems.append(f"oneOf: {matches} branches match")
        elif key == "anyOf":
            if all(errors_of(instance, branch, root) for branch in want):
                problems.append("anyOf: no branch matches")
        elif key == "type":
            if not _has_type(instance, want):
                problems.append(f"not of type {want}: {instance!r}")
        elif key == "const":
            if instance != want or type(instance) is not type(want):
                problems.append(f"not {want!r}: {instance!r}")
        elif key == "enum":
            if instance not in want:
                problems.append(f"not one of {want!r}")
        elif key == "properties":
            if isinstance(instance, dict):
                for name, sub in want.items():
                    if name in instance:
                        problems += errors_of(instance[name], sub, root)
        elif key == "additionalProperties":
            if isinstance(instance, dict):
                known = schema.get("properties", {})
                for name, value in instance.items():
                    if name not in known:
                        problems += errors_of(value, want, root)
        elif key == "required":
            if isinstance(instance, dict):
                problems += [f"missing {name!r}" for name in want if name not in instance]
        elif key == "items":
            if isinstance(instance, list):
                for item in instance:
                    problems += errors_of(item, want, root)
        elif key in ("minLength", "maxLength"):
            if isinstance(instance, str):
                short = len(instance) < want if key == "minLength" else len(instance) > want
                if short:
                    problems.append(f"{key} {want}: {len(instance)}")
        elif key in ("minItems", "maxItems"):
            if isinstance(instance, list):
                few = len(instance) < want if key == "minItems" else len(instance) > want
                if few:
                    problems.append(f"{key} {want}: {len(instance)}")
        elif key == "pattern":
            if isinstance(instance, str) and re.search(want, instance) is None:
                problems.append(f"does not match {want}")
        elif key in ("minimum", "maximum"):
            if isinstance(instance, int | float) and not isinstance(instance, bool):
                if (instance < want) if key == "minimum" else (instance > want):
                    problems.append(f"{key} {want}: {instance}")
        else:
            pytest.fail(f"the test validator does not know the keyword {key!r}")
    return problems


def _has_type(instance: Any, name: str) -> bool:
    if name == "object":
        return isinstance(instance, dict)
    if name == "array":
        return isinstance(instance, list)
    if name == "string":
        return isinstance(instance, str)
    if name == "integer":
        return isinstance(instance, int) and not isinstance(instance, bool)
    if name == "number":
        return isinstance(instance, int | float) and not isinstance(instance, bool)
    if name == "boolean":
        return isinstance(instance, bool)
    if name == "null":
        return instance is None
    pytest.fail(f"unknown JSON type {name!r}")


def _wire(message: BaseModel) -> Any:
    return json.loads(encode(message))


def test_schema_has_both_sides() -> None:
    schema = printed_schema()
    assert {"client", "server"} <= schema.keys()
    for side in ("client", "server"):
        assert schema[side]["discriminator"]["propertyName"] == "type"
        assert len(schema[side]["oneOf"]) == len(schema[side]["discriminator"]["mapping"])


@pytest.mark.parametrize(("side", "types"), [("client", CLIENT_TYPES), ("server", SERVER_TYPES)])
def test_discriminator_names_every_type(side: str, types: list[str]) -> None:
    schema = printed_schema()[side]
    mapping = schema["discriminator"]["mapping"]
    assert sorted(mapping) == sorted(set(types))
    branches = {branch["$ref"] for branch in schema["oneOf"]}
    for kind, ref in mapping.items():
        assert ref in branches
        definition = schema["$defs"][ref.removeprefix("#/$defs/")]
        inner = [
            schema["$defs"][b["$ref"].removeprefix("#/$defs/")] for b in definition.get("oneOf", [])
        ]
        for model in inner or [definition]:  # a nested union: every branch has this type
            assert model["properties"]["type"]["const"] == kind


@pytest.mark.parametrize("message", CLIENT_SAMPLES, ids=lambda m: type(m).__name__)
def test_encoded_client_messages_match_the_schema(message: BaseModel) -> None:
    schema = printed_schema()["client"]
    assert errors_of(_wire(message), schema, schema) == []


@pytest.mark.parametrize("message", SERVER_SAMPLES, ids=lambda m: type(m).__name__)
def test_encoded_server_messages_match_the_schema(message: BaseModel) -> None:
    schema = printed_schema()["server"]
    assert errors_of(_wire(message), schema, schema) == []


@pytest.mark.parametrize(
    "instance",
    [
        {"type": "join", "room": "Lobby"},
        {"type": "join", "room": "lobby", "since": -1},
        {"type": "join", "room": "lobby", "since": "5"},
        {"type": "say", "room": "lobby"},
        {"type": "say", "room": "lobby", "text": ""},
        {"type": "say", "room": "lobby", "text": "x" * 4001},
        {"type": "say", "room": "lobby", "text": "x", "action": 1},
        {"type": "history", "room": "lobby", "limit": 501},
        {"type": "hello", "nick": "no spaces"},
        {"type": "hello", "nick": "n" * 33},
        {"type": "rooms", "id": "x" * 65},
        {"type": "shout"},
        ["not", "an", "object"],
    ],
)
def test_schema_refuses_invalid_client_messages(instance: Any) -> None:
    schema = printed_schema()["client"]
    assert errors_of(instance, schema, schema) != []


def test_schema_accepts_room_with_hash() -> None:
    schema = printed_schema()["client"]
    assert errors_of({"type": "join", "room": "#lobby", "since": 0}, schema, schema) == []


def test_usage_error_without_the_schema_argument() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "protocol"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    assert "usage" in done.stderr
    assert done.stdout == ""


def test_schema_is_valid_draft_2020_12() -> None:
    for side in ("client", "server"):
        Draft202012Validator.check_schema(printed_schema()[side])
