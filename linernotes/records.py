"""The record types that flow through every stage.

`Item` and `Listener` are the catalog side (one schema for music, books and
podcasts); `ExplanationRecord` is the row that synth writes and that curation,
labeling and fine-tuning read. Validation lives here so every source gets the
same rules and the same error wording.

Every text field of `Item`, `HistoryEntry` and `Listener` is cleaned on the way
in, whatever path it came by (catalog ingest, a stored run, an inline
/v1/explain body): control characters (NUL, ESC sequences, BEL, ...), bidi
overrides/isolates and zero-width characters are removed, and anything shaped
like a chat-template control token (`<|im_start|>`, `<|fim_prefix|>`,
`<tool_call>`, `<filename>`, ...) is broken with a visible space (`< |im_start| >`,
`< tool_call>`) so no tokenizer in use maps it to a special id. Strings and lists
have upper bounds (a 100k-character "country" is a broken row, not a country).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

ItemType = Literal["music", "book", "podcast"]

# Bounds for catalog text: a title longer than this is a broken row, not a title.
MAX_TITLE_CHARS = 300
MAX_TEXT_CHARS = 2000
MIN_YEAR, MAX_YEAR = 1000, 2026
MAX_ID_CHARS = 200          # item_id, listener_id
MAX_SOURCE_CHARS = 200      # package name
MAX_COUNTRY_CHARS = 64      # longest real name ("... Great Britain and Northern Ireland") is 56
MAX_TAG_CHARS = 100         # one genre / category / taste entry
MAX_GENRES = 20             # per item or history entry (podcasts have at most ~10 categories)
MAX_TASTE = 20
MAX_HISTORY_ENTRIES = 50    # readers keep 10; prompts show 5
MAX_RATING = 10             # Book-Crossing's scale is the widest (1-10)
AGE_BANDS = ("13-17", "18-24", "25-34", "35-44", "45-54", "55-64", "65+")

# ESC sequences first (so "ESC[31m" leaves no "[31m"), then single control chars.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
_SPACE_LIKE = re.compile("[\t\n\r\x0b\x0c\x85\u2028\u2029]+")
_INVISIBLE = re.compile(
    "[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f"  # C0/C1 controls (whitespace ones handled above)
    "\u00ad\u061c\u180e"                            # soft hyphen, Arabic letter mark, Mongolian vowel sep.
    "\u200b-\u200f"                                  # zero-width space/non-joiner/joiner, LRM, RLM
    "\u202a-\u202e"                                  # bidi embeddings and overrides
    "\u2060-\u2064\u2066-\u2069"                   # word joiner, invisible operators, bidi isolates
    "\ufeff\ufff9-\ufffb]")                         # BOM / zero-width no-break space, annotations
# '<|anything|>' (SmolLM2, Qwen2.5: im_start, fim_*, vision_*, endoftext...) and tag-shaped
# added tokens ('<tool_call>', '</tool_call>', '<filename>', '<jupyter_code>', '<s>'...).
_TOKEN_OPEN = re.compile(r"<(?=\||/?[A-Za-z_][\w.-]*>)")
_TOKEN_CLOSE = re.compile(r"\|>")
_NEEDS_CLEANING = re.compile(
    _INVISIBLE.pattern[:-1] + "\t\n\r\x0b\x0c\x85\u2028\u2029\x1b]|<|\\|>")


def neutralise_tokens(text: str) -> str:
    """Break chat-template control tokens with a visible space: '<|im_end|>' -> '< |im_end| >'."""
    return _TOKEN_CLOSE.sub("| >", _TOKEN_OPEN.sub("< ", text))


def clean_field_text(value: Any) -> Any:
    """Control/bidi/zero-width characters removed, whitespace controls -> one space,
    control-token look-alikes broken, ends stripped. Non-strings pass through."""
    if not isinstance(value, str) or not _NEEDS_CLEANING.search(value):
        return value.strip() if isinstance(value, str) else value
    value = _ANSI.sub("", value)
    value = _SPACE_LIKE.sub(" ", value)
    value = _INVISIBLE.sub("", value)
    return neutralise_tokens(value).strip()


def _clean_all(value: Any) -> Any:
    if isinstance(value, list):
        return [clean_field_text(v) for v in value]
    return clean_field_text(value)


class Item(BaseModel):
    """One recommendable thing: a track, an audiobook, a podcast show."""

    model_config = ConfigDict(extra="forbid")

    item_id: str = Field(min_length=1, max_length=MAX_ID_CHARS, description="stable id: '<type>:<source id>'")
    item_type: ItemType
    title: str = Field(min_length=1, max_length=MAX_TITLE_CHARS)
    creator: str | None = Field(default=None, max_length=MAX_TITLE_CHARS,
                                description="artist / author / podcast host or publisher")
    collection: str | None = Field(default=None, max_length=MAX_TITLE_CHARS,
                                   description="album (music); None elsewhere")
    year: int | None = Field(default=None, ge=MIN_YEAR, le=MAX_YEAR)
    genres: list[str] = Field(default_factory=list, max_length=MAX_GENRES)
    publisher: str | None = Field(default=None, max_length=MAX_TITLE_CHARS)
    description: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    duration_s: float | None = Field(default=None, ge=0)
    popularity: float | None = Field(default=None, description="ratings/purchases count, source-specific")
    source: str = Field(max_length=MAX_SOURCE_CHARS, description="catalog package the row came from")
    source_row: str = Field(max_length=MAX_TEXT_CHARS, description="where in the source: file + row/pk")

    _clean = field_validator("item_id", "title", "creator", "collection", "genres", "publisher",
                             "description", "source", "source_row", mode="before")(_clean_all)
    _genres = field_validator("genres")(lambda v: _check_tags(v))

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


def _check_tags(values: list[str]) -> list[str]:
    for v in values:
        if len(v) > MAX_TAG_CHARS:
            raise ValueError(f"entry of {len(v)} chars, over the {MAX_TAG_CHARS} limit")
    return [v for v in values if v]


class HistoryEntry(BaseModel):
    """Something the listener played, bought or rated (denormalised for prompts)."""

    model_config = ConfigDict(extra="forbid")

    item_id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    title: str = Field(min_length=1, max_length=MAX_TITLE_CHARS)
    creator: str | None = Field(default=None, max_length=MAX_TITLE_CHARS)
    genres: list[str] = Field(default_factory=list, max_length=MAX_GENRES)
    rating: float | None = Field(default=None, ge=0, le=MAX_RATING)

    _clean = field_validator("item_id", "title", "creator", "genres", mode="before")(_clean_all)
    _genres = field_validator("genres")(lambda v: _check_tags(v))


class Listener(BaseModel):
    """Context for personalisation: history, country, age band, taste."""

    model_config = ConfigDict(extra="forbid")

    listener_id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    source: str = Field(max_length=MAX_SOURCE_CHARS)
    country: str | None = Field(default=None, max_length=MAX_COUNTRY_CHARS)
    age_band: str | None = Field(default=None, description="one of AGE_BANDS, e.g. '25-34'")
    history: list[HistoryEntry] = Field(default_factory=list, max_length=MAX_HISTORY_ENTRIES)
    taste: list[str] = Field(default_factory=list, max_length=MAX_TASTE, description="top genres/categories")
    source_row: str = Field(default="", max_length=MAX_TEXT_CHARS)

    _clean = field_validator("listener_id", "source", "country", "age_band", "taste", "source_row",
                             mode="before")(_clean_all)
    _taste = field_validator("taste")(lambda v: _check_tags(v))

    @field_validator("country")
    @classmethod
    def _country_or_none(cls, v: str | None) -> str | None:
        return v or None  # blank after cleaning = unknown

    @field_validator("age_band")
    @classmethod
    def _known_band(cls, v: str | None) -> str | None:
        if v in (None, ""):
            return None
        if v not in AGE_BANDS:
            raise ValueError(f"{v[:40]!r} is not one of {', '.join(AGE_BANDS)}")
        return v


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
    task: str = Field(default="explain", description="what the row is for: explain (today), commentary, recommend")
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
            "task": self.task,
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
            # None for records gated before the usefulness gate existed
            "gate_usefulness": self.gates["usefulness"].passed if "usefulness" in self.gates else None,
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
            task=row.get("task") or "explain",  # runs written before the field: explain
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
