"""The engine's wire form of values: signatures, protobuf Structs as plain Python, durations.

What the SDK sends the resource monitor, and what the engine sends an
analyzer, is a protobuf Struct in which secrets, resource references and
outputs are objects tagged with a signature key.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from google.protobuf import struct_pb2  # type: ignore[import-untyped]

SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e"
OUTPUT_SIG = "d0e6a833031e9bbcd3f4e8bde6ca49a4"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


def digest(*parts: str) -> str:
    """sha256 hex of the parts: the seed of every value preflight makes up (ids, keys, names)."""
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def normalize_numbers(value: Any) -> Any:
    """Protobuf Struct numbers are doubles; show integral ones as ints."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, list):
        return [normalize_numbers(v) for v in value]
    if isinstance(value, dict):
        return {k: normalize_numbers(v) for k, v in value.items()}
    return value


def struct_to_dict(struct: struct_pb2.Struct) -> dict[str, Any]:
    """A protobuf Struct as plain Python (what ``json_format.MessageToDict`` gives, a few times faster)."""
    return {key: _value_to_python(value) for key, value in struct.fields.items()}


def _value_to_python(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "struct_value":
        return {k: _value_to_python(v) for k, v in value.struct_value.fields.items()}
    if kind == "list_value":
        return [_value_to_python(v) for v in value.list_value.values]
    if kind == "number_value":
        return value.number_value
    if kind == "bool_value":
        return value.bool_value
    return None


def downgrade_refs(value: Any) -> Any:
    """Replace resource references by their id (custom) or URN (component).

    The engine does this when it marshals properties for analyzers, which do not
    accept resource references; output values are reduced to their plain value.
    """
    if isinstance(value, list):
        return [downgrade_refs(v) for v in value]
    if isinstance(value, dict):
        sig = value.get(SIG_KEY)
        if sig == RESOURCE_SIG:
            return value.get("id") or value.get("urn", "")
        if sig == OUTPUT_SIG:
            inner = downgrade_refs(value.get("value", UNKNOWN))
            if value.get("secret"):
                return {SIG_KEY: SECRET_SIG, "value": inner}
            return inner
        return {k: downgrade_refs(v) for k, v in value.items()}
    return value


def mask_secrets(value: Any, mask: str) -> Any:
    """Replace every secret-wrapped value by `mask` (for output meant for people)."""
    if isinstance(value, list):
        return [mask_secrets(v, mask) for v in value]
    if isinstance(value, dict):
        if value.get(SIG_KEY) == SECRET_SIG:
            return mask
        return {k: mask_secrets(v, mask) for k, v in value.items()}
    return value


def _parse_duration(text: str) -> float:
    """Go-style duration ("5m", "1h30m", "90s") to seconds, as the engine sends analyzers."""
    if not text:
        return 0.0
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    total = 0.0
    for number, unit in re.findall(r"([0-9.]+)(ns|us|µs|ms|s|m|h)", text):
        total += float(number) * units[unit]
    return total


def parse_timeouts(options: dict[str, Any]) -> dict[str, float]:
    """customTimeouts strings to seconds, for the analyzer."""
    return {k: _parse_duration(v) for k, v in options.get("customTimeouts", {}).items()}
