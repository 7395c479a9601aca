"""One fingerprint rule for configs and data: sha256 of sorted-key JSON, first 10 hex digits.

Run names are `<stage>-<fingerprint>`: the rule must not change, or every
finished run would be redone under a new name (tests/test_config_cache.py
pins known values).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any, Iterable

LENGTH = 10


def fingerprint(data: Any, *, drop: Iterable[str] = (), length: int = LENGTH) -> str:
    """Hash of a config (dataclass or mapping) without the keys in `drop` (where a run is
    written, how it is resumed: not what it computes)."""
    if dataclasses.is_dataclass(data) and not isinstance(data, type):
        data = dataclasses.asdict(data)
    if isinstance(data, dict):
        dropped = set(drop)
        data = {k: v for k, v in data.items() if k not in dropped}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:length]


def items_fingerprint(items: Iterable[Any], *, length: int = LENGTH, sep: bytes = b"",
                      ensure_ascii: bool = False) -> str:
    """Hash of a sequence (order matters), each item as sorted-key JSON followed by `sep`.
    (`sep`/`ensure_ascii` keep the SFT and preference data hashes of earlier runs.)"""
    h = hashlib.sha256()
    for item in items:
        h.update(json.dumps(item, ensure_ascii=ensure_ascii, sort_keys=True).encode())
        h.update(sep)
    return h.hexdigest()[:length]
