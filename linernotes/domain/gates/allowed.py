"""What one item and its listener allow a sentence to name: name keys and their
sub-runs, single words, genres, the year and the fact values for `facts_used`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from linernotes.records import Item, Listener
from linernotes.domain.gates.normalize import (
    CONNECTORS, TOKEN_RE, description_people, max_edits, name_key, split_people, title_variants,
    within_edits,
)
from linernotes.domain.gates.vocab import GenreEntry, genre_keys


@dataclass
class Allowed:
    keys: dict[str, str]        # name key -> what it is ("item creator", ...)
    subgrams: set[str]          # contiguous runs (>= 2 words) of allowed names
    tokens: set[str]            # single words of allowed names
    by_len: dict[int, list[str]]
    max_tokens: int
    genres: set[str]
    genre_labels: list[str]
    year: int | None
    name_years: set[int]        # years written in the item's own names ("... Pandemic of 1918")
    facts: dict[str, set[str]]  # fact group -> value keys (facts_used check)


def allowed_for(item: Item, listener: Listener | None, vocab: Mapping[str, GenreEntry]) -> Allowed:
    keys: dict[str, str] = {}
    raw_len: list[int] = []
    name_years: set[int] = set()

    def add(text: str | None, what: str, title: bool = False, people: bool = False) -> None:
        if not text:
            return
        raw_len.append(len(TOKEN_RE.findall(text)))
        if what.startswith("item"):
            name_years.update(int(y) for y in re.findall(r"(?<!\d)(1[1-9]\d\d|20\d\d)(?!\d)", text))
        found = title_variants(text) if title else {name_key(text)}
        if people:
            for p in split_people(text):
                found.add(name_key(p))
        for k in found:
            if k and k not in keys:
                keys[k] = what

    add(item.title, "item title", title=True)
    add(item.creator, "item creator", people=True)
    add(item.collection, "item collection", title=True)
    add(item.publisher, "item publisher", title=True)
    composers = description_people(item.description)
    for person in composers:
        add(person, "item composer", people=True)
    genre_labels = list(item.genres)
    facts: dict[str, set[str]] = {
        "title": {name_key(item.title)}, "creator": set(), "collection": set(), "publisher": set(),
        "genres": set(), "year": set(), "duration": set(), "type": {item.item_type},
        "country": set(), "age_band": set(), "history": set(), "taste": set(),
    }
    if item.creator:
        facts["creator"] |= {name_key(item.creator), *(name_key(p) for p in split_people(item.creator))}
    facts["creator"] |= {name_key(p) for p in composers}
    if item.collection:
        facts["collection"].add(name_key(item.collection))
    if item.publisher:
        facts["publisher"].add(name_key(item.publisher))
    if item.year:
        facts["year"].add(str(item.year))
    f = item.facts()
    if "duration_min" in f:
        facts["duration"].add(str(f["duration_min"]))
    if listener is not None:
        for h in listener.history:
            add(h.title, "listener history title", title=True)
            add(h.creator, "listener history creator", people=True)
            facts["history"] |= title_variants(h.title)
            if h.creator:
                facts["history"] |= {name_key(h.creator), *(name_key(p) for p in split_people(h.creator))}
            genre_labels.extend(h.genres)
        genre_labels.extend(listener.taste)
        facts["taste"] |= {name_key(t) for t in listener.taste}
        if listener.country:
            add(listener.country, "listener country")
            facts["country"].add(name_key(listener.country))
        if listener.age_band:
            facts["age_band"].add(name_key(listener.age_band))
    genres: set[str] = set()
    for g in genre_labels:
        genres |= genre_keys(g, vocab)
        facts["genres"].add(name_key(g))
    subgrams: set[str] = set()
    tokens: set[str] = set()
    by_len: dict[int, list[str]] = {}
    for k in keys:
        toks = k.split()
        by_len.setdefault(len(k), []).append(k)
        tokens.update(t for t in toks if len(t) >= 2 and t not in CONNECTORS)
        for i in range(len(toks)):
            for j in range(i + 2, len(toks) + 1):
                subgrams.add(" ".join(toks[i:j]))
    max_tokens = max(raw_len, default=1) + 1
    return Allowed(keys, subgrams, tokens, by_len, max_tokens, genres, list(item.genres),
                    item.year, name_years, facts)


def _fuzzy_allowed(key: str, allowed: Allowed) -> bool:
    k = max_edits(len(key))
    if k == 0:
        return False
    for n in range(len(key) - k, len(key) + k + 1):
        for cand in allowed.by_len.get(n, ()):
            if within_edits(key, cand, k):
                return True
    return False


def is_allowed_name(key: str, n_tokens: int, allowed: Allowed) -> bool:
    if key in allowed.keys:
        return True
    if n_tokens >= 2 and key in allowed.subgrams:
        return True
    return len(key) >= 5 and _fuzzy_allowed(key, allowed)
