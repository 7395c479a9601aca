"""JSON-string columns: the one way to read and write them.

Generated rows keep nested values whose shape varies (item, listener, gates,
gate_reasons, metadata, messages) as JSON strings so parquet schemas stay
stable (see `linernotes.rows`). Frames read back hold those strings, or
already-decoded values (dicts, lists, numpy arrays), or None/NaN for a missing
cell; `loads_json` accepts all of them.
"""

from __future__ import annotations

import json
from typing import Any


def is_missing(value: Any) -> bool:
    """None, a float NaN or pandas.NA (how frames show an empty cell)."""
    return (value is None or (isinstance(value, float) and value != value)
            or type(value).__name__ == "NAType")


def loads_json(value: Any, default: Any = None, *, expect: type | tuple[type, ...] | None = None) -> Any:
    """A JSON column's cell -> its value; `default` when the cell is missing, blank or not JSON,
    or (with `expect`) when the value is not of that type. Decoded values pass through
    (numpy arrays become lists)."""
    if is_missing(value):
        return default
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()
    if isinstance(value, (str, bytes, bytearray)):
        if not value.strip():
            return default
        try:
            value = json.loads(value)
        except ValueError:
            return default
    if expect is not None and not isinstance(value, expect):
        return default
    return value


def loads_obj(value: Any) -> dict:
    """A JSON object cell -> dict ({} when missing, not JSON, or not an object)."""
    return loads_json(value, {}, expect=dict)


def dumps_json(value: Any, *, sort_keys: bool = False) -> str:
    """The writing side: UTF-8 kept as is, non-JSON values (dates, paths) as their str()."""
    return json.dumps(value, ensure_ascii=False, sort_keys=sort_keys, default=str)
