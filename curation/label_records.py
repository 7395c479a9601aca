"""What a reviewer sees in Argilla: record cards, honest gate suggestions, pair records.

Plain dicts only (no SDK, no server), so every rule here is unit-tested:

* `item_card_md` / `listener_md`: markdown cards; a field the row does not have is
  left out (no "age None", no "by None").
* `gate_suggestions(row)`: a suggestion only where a gate judged *this* note
  against *this* item and gave a clear verdict (see its docstring).
* `to_records(df)`: one review record per sample row (no ranking question there);
  `to_pair_records(df)`: one record per (item, listener) with exactly two
  candidates, for the separate pairs dataset (`pairs_dataset_name`), the only
  place the ranking question is asked.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import defaultdict
from typing import Any, Sequence

import numpy as np
import pandas as pd

from linernotes.jsoncol import loads_json

GROUNDED_LABELS = {"grounded": "Grounded in the item card",
                   "unsupported_fact": "States an unsupported fact",
                   "wrong_entity": "Wrong entity (title, creator, ...)"}
TONE_LABELS = {"yes": "Yes", "no": "No"}
PAIR_VALUES = {"a": "Candidate A", "b": "Candidate B"}
GATES = ("gate_grounding", "gate_style", "gate_safety")
PAIRS_SUFFIX = "-pairs"
# The grounding gate's wording for a name that belongs to another catalog item
# (linernotes.domain.gates._wrong_entity); anything else it reports is unsupported.
_WRONG_ENTITY = "but not of this item"
_FACTS_PREFIX = "facts_used entry"


def pairs_dataset_name(dataset_name: str) -> str:
    return f"{dataset_name}{PAIRS_SUFFIX}"


def _missing(value: Any) -> bool:
    return (value is None or (isinstance(value, float) and np.isnan(value))
            or (isinstance(value, str) and not value.strip()) or value is pd.NA)


loads = loads_json  # the one JSON-column helper (linernotes.jsoncol)


def as_list(value) -> list:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, str):
        v = loads(value, None)
        return v if isinstance(v, list) else [value]
    return list(value)


def _verdict(value: Any) -> bool | None:
    """A gate column -> True / False, or None when the gate did not run (NaN, None, missing)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "pass", "yes", "1"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "fail", "no", "0"):
        return False
    if isinstance(value, (int, np.integer)) and value in (0, 1):
        return bool(value)
    return None


# ---------------------------------------------------------------- cards

def _duration(item: dict) -> str | None:
    if not _missing(item.get("duration_min")):
        return f"{item['duration_min']} min"
    if isinstance(item.get("duration_s"), (int, float)) and item["duration_s"] > 0:
        return f"{round(item['duration_s'] / 60, 1)} min"
    return None


def item_card_md(item: dict, facts_used: Sequence[str] = ()) -> str:
    lines = [f"### {item['title']}" if not _missing(item.get("title")) else "### (untitled item)"]
    for key in ("creator", "collection", "publisher", "year", "item_type"):
        if not _missing(item.get(key)) and item.get(key) != []:
            lines.append(f"- **{key.replace('_', ' ')}**: {item[key]}")
    if _duration(item):
        lines.append(f"- **duration**: {_duration(item)}")
    for key in ("genres", "tags", "moods"):
        vals = [v for v in as_list(item.get(key)) if not _missing(v)]
        if vals:
            lines.append(f"- **{key}**: {', '.join(map(str, vals))}")
    if not _missing(item.get("description")):
        lines.append(f"\n{item['description']}")
    facts = [f for f in facts_used if not _missing(f)]
    if facts:
        lines.append("\n*Facts the teacher says it used:* " + "; ".join(map(str, facts)))
    return "\n".join(lines)


def listener_md(listener: dict) -> str:
    """Listener card; fields the row lacks are left out (no 'age None')."""
    about = [str(listener[k]) for k in ("country",) if not _missing(listener.get(k))]
    if not _missing(listener.get("age_band")):
        about.append(f"age {listener['age_band']}")
    head = f"**{listener.get('listener_id') or 'listener'}**"
    lines = [head + (f" - {', '.join(about)}" if about else "")]
    taste = [t for t in as_list(listener.get("taste")) if not _missing(t)]
    if taste:
        lines.append(f"- **taste**: {', '.join(map(str, taste))}")
    hist = [h for h in (listener.get("history") or []) if isinstance(h, dict) and not _missing(h.get("title"))]
    if hist:
        lines.append("- **recent history**:")
        for h in hist[:8]:
            genres = [g for g in as_list(h.get("genres")) if not _missing(g)]
            lines.append(f"  - {h['title']}" + (f" - {h['creator']}" if not _missing(h.get("creator")) else "")
                         + (f" ({', '.join(map(str, genres))})" if genres else ""))
    return "\n".join(lines)


# ---------------------------------------------------------------- suggestions

def _words(text: str) -> str:
    text = unicodedata.normalize("NFKD", str(text))
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    return " " + " ".join(re.findall(r"[^\W_]+", text)) + " "


def mentions_item(text: Any, item: dict) -> bool:
    """Does the note name this item: its title (or the part before '(' / ':' / ' - '), its
    creator (or a person of it, or a surname of 4+ letters) or its collection?"""
    if _missing(text) or not item:
        return False
    body = _words(text)
    names = []
    if not _missing(item.get("title")):
        title = str(item["title"])
        names += [title, re.split(r"\s*[(:]|\s+-\s+", title)[0]]
    for key in ("creator", "collection"):
        if not _missing(item.get(key)):
            people = [p for p in re.split(r",|&| and ", str(item[key])) if p.strip()]
            names += [str(item[key]), *people]
            names += [p.split()[-1] for p in people if len(p.split()) > 1 and len(p.split()[-1]) >= 4]
    return any(_words(n).strip() and _words(n) in body for n in names)


def gate_suggestions(row: dict) -> dict[str, str]:
    """Suggested answers from the automatic gates: {'grounded': ..., 'tone_ok': ...}, each only
    when honest:

    * no suggestion at all for a row without an explanation;
    * `grounded`: 'grounded' only if the grounding gate passed AND the note names this item
      (a note about a history item or another record's item passes the gate, which allows
      history names, yet it is not about this item); a failed gate suggests 'wrong_entity'
      when it named another catalog item's title/creator, 'unsupported_fact' when a claim of
      the sentence was unsupported; nothing when the gate did not run or failed only on the
      teacher's facts_used list (not on the sentence shown);
    * `tone_ok`: 'no' if style or safety failed, 'yes' only if both ran and passed.
    """
    if _missing(row.get("explanation")):
        return {}
    out: dict[str, str] = {}
    reasons = (loads(row.get("gate_reasons"), {}) or {}).get("grounding") or []
    reasons = [str(r) for r in reasons]
    grounding = _verdict(row.get("gate_grounding"))
    item = loads(row.get("item"), {}) or {}
    if grounding is True and mentions_item(row.get("explanation"), item):
        out["grounded"] = "grounded"
    elif grounding is False:
        sentence = [r for r in reasons if not r.startswith(_FACTS_PREFIX)]
        if any(_WRONG_ENTITY in r for r in sentence):
            out["grounded"] = "wrong_entity"
        elif sentence:
            out["grounded"] = "unsupported_fact"
    style, safety = _verdict(row.get("gate_style")), _verdict(row.get("gate_safety"))
    if style is False or safety is False:
        out["tone_ok"] = "no"
    elif style is True and safety is True:
        out["tone_ok"] = "yes"
    return out


# ---------------------------------------------------------------- records

def _listener_id(value: Any) -> str:
    return str((loads(value, {}) or {}).get("listener_id", ""))


def pair_index(sample_df: pd.DataFrame) -> dict[str, str]:
    """record_id -> the other candidate's record_id, where a (item, listener) has exactly two."""
    lid = sample_df["listener"].map(_listener_id)
    groups = defaultdict(list)
    for rid, item_id, listener in zip(sample_df["record_id"], sample_df["item_id"], lid):
        groups[(str(item_id), listener)].append(str(rid))
    other = {}
    for rids in groups.values():
        if len(rids) == 2:
            a, b = sorted(rids)
            other[a], other[b] = b, a
    return other


def _gate_meta(row: dict) -> dict[str, str]:
    verdicts = {g: _verdict(row.get(g)) for g in GATES}
    meta = {g: {True: "pass", False: "fail", None: "not run"}[v] for g, v in verdicts.items()}
    # usefulness counts when it ran (rows gated before it existed have None there)
    useful = _verdict(row.get("gate_usefulness"))
    meta["gates_passed"] = "yes" if all(v is True for v in verdicts.values()) and useful is not False else "no"
    return meta


def to_records(sample_df: pd.DataFrame) -> list[dict]:
    """Review records: plain dicts (id, fields, metadata, suggestions) for `push`."""
    other = pair_index(sample_df)
    out = []
    for row in sample_df.to_dict("records"):
        rid = str(row["record_id"])
        item = loads(row.get("item"), {}) or {}
        listener = loads(row.get("listener"), {}) or {}
        out.append({
            "id": rid,
            "fields": {
                "item_card": item_card_md(item, as_list(row.get("facts_used"))),
                "listener": listener_md(listener),
                "explanation": "" if _missing(row.get("explanation")) else str(row["explanation"]),
            },
            "metadata": {
                "cluster": int(row["cluster"]) if not _missing(row.get("cluster")) else -1,
                "cluster_label": str(row.get("cluster_label") or ""),
                "item_type": str(row.get("item_type") or ""),
                **_gate_meta(row),
                "on_item": "yes" if mentions_item(row.get("explanation"), item) else "no",
                "teacher": str(row.get("model") or ""),
                "prompt_version": str(row.get("prompt_version") or ""),
                "sample_reason": str(row.get("sample_reason") or ""),
                "item_id": str(row.get("item_id") or ""),
                "listener_id": str(listener.get("listener_id", "")),
                "has_pair": "yes" if rid in other else "no",
            },
            "suggestions": gate_suggestions(row),
        })
    return out


def pair_record_id(a: str, b: str) -> str:
    return f"{a}__vs__{b}"


def to_pair_records(sample_df: pd.DataFrame) -> list[dict]:
    """One record per (item, listener) with exactly two candidates: fields candidate_a /
    candidate_b (record ids in sorted order), metadata record_a / record_b. Empty when the
    sample has no such pair: then no pairs dataset (and no ranking question) is created."""
    other = pair_index(sample_df)
    rows = {str(r["record_id"]): r for r in sample_df.to_dict("records")}
    out = []
    for a in sorted(other):
        b = other[a]
        if a > b:
            continue
        ra, rb = rows[a], rows[b]
        item = loads(ra.get("item"), {}) or {}
        listener = loads(ra.get("listener"), {}) or {}
        out.append({
            "id": pair_record_id(a, b),
            "fields": {"item_card": item_card_md(item), "listener": listener_md(listener),
                       "candidate_a": str(ra.get("explanation") or ""),
                       "candidate_b": str(rb.get("explanation") or "")},
            "metadata": {"record_a": a, "record_b": b, "item_id": str(ra.get("item_id") or ""),
                         "listener_id": str(listener.get("listener_id", "")),
                         "item_type": str(ra.get("item_type") or ""), "teacher": str(ra.get("model") or "")},
            "suggestions": {},
        })
    return out
