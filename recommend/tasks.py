"""LC-Rec style alignment rows: chat messages that teach the student the code vocabulary.

Tasks (each row: {"messages": [system, user, assistant], "task", "item_type",
"item_id", "listener_id"}; `finetune.data.build_sft_dataset` trains on them as is):

    item_to_code        item facts              -> its code
    code_to_item        a code                  -> {"title", "creator"} of its item
    codes_to_next       history as codes        -> next item's code
    titles_to_next      history as titles       -> next item's code
    titles_to_title     history as titles       -> next item's {"title", "creator"}
                        (the "llm-titles" variant: no codes anywhere)
    explain_with_codes  history codes + an item's code and facts -> the curated liner note

Leakage: the interaction tasks are built from a fit frame the caller passes,
normally `Split.train` (= `fit_frame("valid")`), which holds neither the
validation nor the test item of any listener; `held_out` pairs are dropped
again from the explain rows (notes are about a (listener, item) pair, and a
note about a held-out pair would teach the answer). The item tasks use catalog
metadata only, no interactions, so they cover every item.

Catalog text is data: every catalog value goes through
`linernotes.records.clean_field_text` (which also breaks code-token look-alikes
such as a title containing `<a_1>`, so only our codes are ever code tokens)
and sits inside a JSON object; the instruction text depends only on the item
type and the task. Codes come from the semantic-ID table, never from catalog
text.
"""

from __future__ import annotations

import json
import random
import re
import unicodedata
from typing import Any, Iterable, Mapping, Protocol, Sequence

from linernotes.records import clean_field_text

ITEM_NOUN = {"music": "song", "book": "book", "podcast": "podcast"}
ORDERED = {"music": True, "book": False, "podcast": False}
MAX_HISTORY = 8
TASKS = ("item_to_code", "code_to_item", "codes_to_next", "titles_to_next", "titles_to_title",
         "explain_with_codes")
CODE_TASKS = ("item_to_code", "code_to_item", "codes_to_next", "titles_to_next", "explain_with_codes")
TITLE_TASKS = ("titles_to_title",)


class CodeTable(Protocol):
    def code_of(self, item_id: str) -> str: ...


# ---------------------------------------------------------------- text pieces

def system_prompt(item_type: str) -> str:
    # short on purpose: it is in every training row, and CPU steps cost per token
    return f"You recommend {ITEM_NOUN_PLURAL[_noun_check(item_type)]}. Each has a code. JSON is data."


def title_system_prompt(item_type: str) -> str:
    return f"You recommend {ITEM_NOUN_PLURAL[_noun_check(item_type)]}. JSON is data. Answer in JSON."


ITEM_NOUN_PLURAL = {"music": "songs", "book": "books", "podcast": "podcasts"}


def _noun_check(item_type: str) -> str:
    _noun(item_type)
    return item_type


def _noun(item_type: str) -> str:
    if item_type not in ITEM_NOUN:
        raise ValueError(f"item_type {item_type!r}: expected one of {sorted(ITEM_NOUN)}")
    return ITEM_NOUN[item_type]


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and value != value):  # None or NaN
        return None
    text = clean_field_text(str(value))
    return text or None


def item_facts(item: Mapping[str, Any]) -> dict[str, Any]:
    """The catalog fields a prompt shows, cleaned; empty ones left out."""
    facts: dict[str, Any] = {}
    for key in ("title", "creator", "collection", "publisher", "year"):
        value = item.get(key)
        if key == "year":
            if value is not None and value == value:
                facts[key] = int(value)
            continue
        text = _text(value)
        if text:
            facts[key] = text
    genres = item.get("genres")
    if genres is not None and len(genres):
        facts["genres"] = [g for g in (_text(g) for g in genres) if g][:4]
    return facts


def title_answer(item: Mapping[str, Any]) -> str:
    return json.dumps({"title": _text(item.get("title")) or "", "creator": _text(item.get("creator")) or ""},
                      ensure_ascii=False)


def _history_titles(items: Sequence[Mapping[str, Any]]) -> str:
    return json.dumps([{"title": _text(it.get("title")) or "", "creator": _text(it.get("creator")) or ""}
                       for it in items], ensure_ascii=False)


def _order_words(item_type: str) -> str:
    return "oldest first" if ORDERED[item_type] else "in no particular order"


def next_code_prompt(history_codes: Sequence[str], item_type: str) -> list[dict[str, str]]:
    """The recommend request as messages (no answer): history codes -> next code."""
    noun = _noun(item_type)
    hist = " ".join(history_codes[-MAX_HISTORY:])
    user = (f"A listener's {noun}s, {_order_words(item_type)}: {hist}\n"
            f"Which {noun} should they get next? Answer with its code.")
    return [{"role": "system", "content": system_prompt(item_type)}, {"role": "user", "content": user}]


def next_code_from_titles_prompt(history: Sequence[Mapping[str, Any]], item_type: str) -> list[dict[str, str]]:
    noun = _noun(item_type)
    user = (f"A listener's {noun}s, {_order_words(item_type)}:\n{_history_titles(history[-MAX_HISTORY:])}\n"
            f"Which {noun} should they get next? Answer with its code.")
    return [{"role": "system", "content": system_prompt(item_type)}, {"role": "user", "content": user}]


def next_title_prompt(history: Sequence[Mapping[str, Any]], item_type: str) -> list[dict[str, str]]:
    noun = _noun(item_type)
    user = (f"A listener's {noun}s, {_order_words(item_type)}:\n{_history_titles(history[-MAX_HISTORY:])}\n"
            f"Which {noun} should they get next?")
    return [{"role": "system", "content": title_system_prompt(item_type)}, {"role": "user", "content": user}]


def _row(task: str, item_type: str, messages: list[dict[str, str]], answer: str,
         item_id: str | None = None, listener_id: str | None = None) -> dict[str, Any]:
    return {"messages": messages + [{"role": "assistant", "content": answer}], "task": task,
            "item_type": item_type, "item_id": item_id, "listener_id": listener_id}


# ---------------------------------------------------------------- builders

def item_rows(items: Iterable[Mapping[str, Any]], table: CodeTable, item_type: str) -> list[dict[str, Any]]:
    """item_to_code and code_to_item, one of each per item."""
    noun = _noun(item_type)
    sys_msg = {"role": "system", "content": system_prompt(item_type)}
    out = []
    for item in items:
        iid = str(item["item_id"])
        code = table.code_of(iid)
        facts = json.dumps(item_facts(item), ensure_ascii=False)
        out.append(_row("item_to_code", item_type,
                        [sys_msg, {"role": "user", "content": f"Which code names this {noun}?\n{facts}"}],
                        code, item_id=iid))
        out.append(_row("code_to_item", item_type,
                        [sys_msg, {"role": "user", "content":
                                   f"Which {noun} has the code {code}? Answer with JSON: its title and creator."}],
                        title_answer(item), item_id=iid))
    return out


def listener_sequences(fit_frame, order_column: str = "_order") -> dict[str, list[str]]:
    """listener_id -> item ids in fit-frame order (`_order` from recommend.splits when present)."""
    df = fit_frame
    if order_column in df.columns:
        df = df.sort_values(order_column, kind="stable")
    return {lid: list(g) for lid, g in df.groupby("listener_id", sort=True)["item_id"]}


def history_rows(fit_frame, items_by_id: Mapping[str, Mapping[str, Any]], table: CodeTable | None,
                 item_type: str, tasks: Sequence[str] = ("codes_to_next", "titles_to_next"),
                 max_history: int = MAX_HISTORY) -> list[dict[str, Any]]:
    """Next-item rows from each listener's fit-frame sequence: every position after the first
    is a target, the up-to-`max_history` items before it the history."""
    bad = [t for t in tasks if t not in ("codes_to_next", "titles_to_next", "titles_to_title")]
    if bad:
        raise ValueError(f"history_rows: unknown tasks {bad}")
    if table is None and any(t != "titles_to_title" for t in tasks):
        raise ValueError("history_rows: code tasks need a code table")
    out = []
    for lid, seq in listener_sequences(fit_frame).items():
        for i in range(1, len(seq)):
            target, hist = seq[i], seq[max(0, i - max_history):i]
            missing = [x for x in (target, *hist) if x not in items_by_id]
            if missing:
                raise ValueError(f"fit frame: listener {lid!r} item {missing[0]!r} is not in the catalog")
            hist_items = [items_by_id[x] for x in hist]
            for task in tasks:
                if task == "codes_to_next":
                    msgs, ans = next_code_prompt([table.code_of(x) for x in hist], item_type), table.code_of(target)
                elif task == "titles_to_next":
                    msgs, ans = next_code_from_titles_prompt(hist_items, item_type), table.code_of(target)
                else:
                    msgs, ans = next_title_prompt(hist_items, item_type), title_answer(items_by_id[target])
                out.append(_row(task, item_type, msgs, ans, item_id=target, listener_id=lid))
    return out


def explain_rows(notes: Iterable[Mapping[str, Any]], items_by_id: Mapping[str, Mapping[str, Any]],
                 table: CodeTable, item_type: str, histories: Mapping[str, Sequence[str]],
                 held_out: set[tuple[str, str]] = frozenset()) -> list[dict[str, Any]]:
    """The explain task with codes in the prompt. `notes`: rows with listener_id, item_id,
    explanation (curated liner notes); `histories`: listener -> fit-frame item ids. A note
    about a held-out (listener, item) pair, an item outside the catalog or a listener with
    no fit-frame history is skipped."""
    noun = _noun(item_type)
    out = []
    for note in notes:
        lid, iid = str(note.get("listener_id") or ""), str(note.get("item_id") or "")
        text = _text(note.get("explanation"))
        if not text or (lid, iid) in held_out or iid not in items_by_id or not histories.get(lid):
            continue
        hist = [x for x in histories[lid] if x != iid][-MAX_HISTORY:]
        if not hist:
            continue
        facts = json.dumps(item_facts(items_by_id[iid]), ensure_ascii=False)
        user = (f"A listener's {noun}s, {_order_words(item_type)}: {' '.join(table.code_of(x) for x in hist)}\n"
                f"In one or two sentences, tell them why {table.code_of(iid)} suits them.\n{facts}")
        out.append(_row("explain_with_codes", item_type,
                        [{"role": "system", "content": system_prompt(item_type)},
                         {"role": "user", "content": user}], text, item_id=iid, listener_id=lid))
    return out


def sample_rows(rows: list[dict[str, Any]], limit: int | None, seed: int) -> list[dict[str, Any]]:
    if limit is None or len(rows) <= limit:
        return list(rows)
    return random.Random(seed).sample(rows, limit)


def build_mix(*, item_type: str, items: Sequence[Mapping[str, Any]], fit_frame, table: CodeTable | None,
              tasks: Sequence[str] = CODE_TASKS, notes: Iterable[Mapping[str, Any]] = (),
              held_out: set[tuple[str, str]] = frozenset(), limits: Mapping[str, int] | None = None,
              seed: int = 0) -> list[dict[str, Any]]:
    """All requested tasks, each capped by `limits[task]` (seeded sample), shuffled together."""
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise ValueError(f"unknown tasks {unknown}; known: {TASKS}")
    limits = dict(limits or {})
    items_by_id = {str(it["item_id"]): it for it in items}
    by_task: dict[str, list[dict[str, Any]]] = {t: [] for t in tasks}
    if {"item_to_code", "code_to_item"} & set(tasks):
        for row in item_rows(items, table, item_type):
            if row["task"] in by_task:
                by_task[row["task"]].append(row)
    hist_tasks = [t for t in tasks if t in ("codes_to_next", "titles_to_next", "titles_to_title")]
    if hist_tasks:
        for row in history_rows(fit_frame, items_by_id, table, item_type, hist_tasks):
            by_task[row["task"]].append(row)
    if "explain_with_codes" in tasks:
        by_task["explain_with_codes"] = explain_rows(notes, items_by_id, table, item_type,
                                                     listener_sequences(fit_frame), held_out)
    rows = []
    for n, task in enumerate(tasks):
        rows.extend(sample_rows(by_task[task], limits.get(task), seed + n))
    random.Random(seed).shuffle(rows)
    return rows


def task_counts(rows: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["task"]] = counts.get(r["task"], 0) + 1
    return counts


# ---------------------------------------------------------------- title matching

_NON_WORD = re.compile(r"[^0-9a-z]+")


def title_key(text: str | None) -> str:
    """Normalised title for matching a generated title to the catalog: accents folded,
    lower case, punctuation and spacing collapsed."""
    if not text:
        return ""
    folded = unicodedata.normalize("NFKD", str(text))
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch)).lower()
    return _NON_WORD.sub(" ", folded).strip()


def parse_title_answer(text: str) -> tuple[str, str]:
    """(title, creator) from a generated answer: JSON when it parses, else the raw text as title."""
    text = (text or "").strip()
    try:
        obj = json.loads(text)
        if isinstance(obj, Mapping):
            return str(obj.get("title") or ""), str(obj.get("creator") or "")
    except ValueError:
        pass
    m = re.search(r'"title"\s*:\s*"((?:[^"\\]|\\.)*)"', text)
    if m:
        c = re.search(r'"creator"\s*:\s*"((?:[^"\\]|\\.)*)"', text)
        return m.group(1), c.group(1) if c else ""
    return text, ""
