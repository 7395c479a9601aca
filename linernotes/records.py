"""The record types that flow through every stage.

`Item` and `Listener` are the catalog side (one schema for music, books and
podcasts); `ExplanationRecord` is the row that synth writes and that curation,
labeling and fine-tuning read. Validation lives here so every source gets the
same rules and the same error wording.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

ItemType = Literal["music", "book", "podcast"]

# Bounds for catalog text: a title longer than this is a broken row, not a title.
MAX_TITLE_CHARS = 300
MAX_TEXT_CHARS = 2000
MIN_YEAR, MAX_YEAR = 1000, 2026


class Item(BaseModel):
    """One recommendable thing: a track, an audiobook, a podcast show."""

    model_config = ConfigDict(extra="forbid")

    item_id: str = Field(min_length=1, description="stable id: '<type>:<source id>'")
    item_type: ItemType
    title: str = Field(min_length=1, max_length=MAX_TITLE_CHARS)
    creator: str | None = Field(default=None, max_length=MAX_TITLE_CHARS,
                                description="artist / author / podcast host or publisher")
    collection: str | None = Field(default=None, max_length=MAX_TITLE_CHARS,
                                   description="album (music); None elsewhere")
    year: int | None = Field(default=None, ge=MIN_YEAR, le=MAX_YEAR)
    genres: list[str] = Field(default_factory=list)
    publisher: str | None = Field(default=None, max_length=MAX_TITLE_CHARS)
    description: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    duration_s: float | None = Field(default=None, ge=0)
    popularity: float | None = Field(default=None, description="ratings/purchases count, source-specific")
    source: str = Field(description="catalog package the row came from")
    source_row: str = Field(description="where in the source: file + row/pk")

    @field_validator("title")
    @classmethod
    def _title_not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("title is blank")
        return v.strip()

    def facts(self) -> dict[str, Any]:
        """The catalog facts a prompt may show and an explanation may use."""
        out: dict[str, Any] = {"type": self.item_type, "title": self.title}
        for key in ("creator", "collection", "year", "publisher"):
            value = getattr(self, key)
            if value not in (None, ""):
                out[key] = value
        if self.genres:
            out["genres"] = list(self.genres)
        if self.duration_s:
            out["duration_min"] = round(self.duration_s / 60, 1)
        return out


class HistoryEntry(BaseModel):
    """Something the listener played, bought or rated (denormalised for prompts)."""

    model_config = ConfigDict(extra="forbid")

    item_id: str
    title: str
    creator: str | None = None
    genres: list[str] = Field(default_factory=list)
    rating: float | None = None


class Listener(BaseModel):
    """Context for personalisation: history, country, age band, taste."""

    model_config = ConfigDict(extra="forbid")

    listener_id: str = Field(min_length=1)
    source: str
    country: str | None = None
    age_band: str | None = Field(default=None, description="e.g. '25-34'")
    history: list[HistoryEntry] = Field(default_factory=list)
    taste: list[str] = Field(default_factory=list, description="top genres/categories")
    source_row: str = ""


def age_band(age: float | int | None) -> str | None:
    if age is None:
        return None
    age = int(age)
    if age < 13 or age > 100:
        return None
    for lo, hi in ((13, 17), (18, 24), (25, 34), (35, 44), (45, 54), (55, 64)):
        if lo <= age <= hi:
            return f"{lo}-{hi}"
    return "65+"


class GateResult(BaseModel):
    passed: bool
    reasons: list[str] = Field(default_factory=list)
    score: float = 1.0


class ExplanationRecord(BaseModel):
    """One generated explanation and everything known about how it came to be."""

    record_id: str
    item: Item
    listener: Listener
    prompt_version: str
    messages: list[dict[str, str]]
    backend: str
    model: str
    sampling: dict[str, Any] = Field(default_factory=dict)
    raw_output: str | None = None
    parsed: bool = False
    parse_error: str | None = None
    explanation: str | None = None
    facts_used: list[str] = Field(default_factory=list)
    gates: dict[str, GateResult] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @property
    def passed_all(self) -> bool:
        return self.parsed and all(g.passed for g in self.gates.values())

    def to_row(self) -> dict[str, Any]:
        """Flat row for a `datasets` table: nested models become JSON strings
        where their shape varies, so parquet schemas stay stable across runs."""
        return {
            "record_id": self.record_id,
            "item_id": self.item.item_id,
            "item_type": self.item.item_type,
            "listener_id": self.listener.listener_id,
            "item": self.item.model_dump_json(),
            "listener": self.listener.model_dump_json(),
            "prompt_version": self.prompt_version,
            "messages": json.dumps(self.messages, ensure_ascii=False),
            "backend": self.backend,
            "model": self.model,
            "sampling": json.dumps(self.sampling, sort_keys=True),
            "raw_output": self.raw_output,
            "parsed": self.parsed,
            "parse_error": self.parse_error,
            "explanation": self.explanation,
            "facts_used": list(self.facts_used),
            "gate_grounding": self.gates.get("grounding", GateResult(passed=False)).passed,
            "gate_style": self.gates.get("style", GateResult(passed=False)).passed,
            "gate_safety": self.gates.get("safety", GateResult(passed=False)).passed,
            "gate_reasons": json.dumps({k: g.reasons for k, g in self.gates.items()}, ensure_ascii=False),
            "gates": json.dumps({k: g.model_dump() for k, g in self.gates.items()}, ensure_ascii=False),
            "passed_all": self.passed_all,
            "metadata": json.dumps(self.metadata, sort_keys=True, default=str),
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "ExplanationRecord":
        gates = {k: GateResult(**v) for k, v in json.loads(row["gates"]).items()}
        return cls(
            record_id=row["record_id"],
            item=Item.model_validate_json(row["item"]),
            listener=Listener.model_validate_json(row["listener"]),
            prompt_version=row["prompt_version"],
            messages=json.loads(row["messages"]),
            backend=row["backend"],
            model=row["model"],
            sampling=json.loads(row["sampling"]),
            raw_output=row["raw_output"],
            parsed=row["parsed"],
            parse_error=row["parse_error"],
            explanation=row["explanation"],
            facts_used=list(row["facts_used"] or []),
            gates=gates,
            metadata=json.loads(row["metadata"]),
        )


def content_hash(*parts: Any, length: int = 16) -> str:
    """Stable hash of JSON-serialisable parts (sorted keys)."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:length]
