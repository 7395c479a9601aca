"""The grounding claim checks, one module per concern: names.py (quoted titles,
capitalised names, allowed names masked), genre_claims.py (genres), and here years
and decades and `facts_used` entries. Each check adds supported claims and reasons
to a `Claims` tally (tally.py); the rule they implement is documented in grounding.py.
This module keeps the public names of all of them."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from linernotes.domain.gates.allowed import Allowed
from linernotes.domain.gates.genre_claims import check_genres
from linernotes.domain.gates.names import check_names, check_quotes, mask_allowed
from linernotes.domain.gates.normalize import fold, max_edits, name_key, within_edits
from linernotes.domain.gates.tally import Claims
from linernotes.domain.gates.tokens import Tok

_YEAR_RE = re.compile(r"(?<![\w$£€#.])(['’])?(\d{4}|\d{2})(s)?(?!\w|[.,]\d|%)")
# "<number> pages" is a count, not a year ("2003 track" stays a year).
_YEAR_UNIT_RE = re.compile(r"\s*-?\s*(?:pages|copies|tracks|songs|episodes|minutes|mins|seconds|"
                           r"hours|km|miles|bpm|kbps|people|listeners|readers|ratings|reviews|words|"
                           r"plays|streams|times|votes|fans|sold)\b", re.IGNORECASE)
_DECADE_WORDS = {"twenties": 1920, "thirties": 1930, "forties": 1940, "fifties": 1950, "sixties": 1960,
                 "seventies": 1970, "eighties": 1980, "nineties": 1990, "noughties": 2000}
_DECADE_WORD_RE = re.compile(r"\b(?:the\s+)?(" + "|".join(_DECADE_WORDS) + r")\b", re.IGNORECASE)


def _year_covered(toks: list[Tok], start: int, end: int) -> bool:
    return any(t.masked and t.start <= start and end <= t.end + 1 for t in toks)


def check_years(text: str, toks: list[Tok], allowed: Allowed, claims: Claims) -> None:
    year = allowed.year
    have = f"item year: {year}" if year else "item has no year"
    for m in _YEAR_RE.finditer(text):
        apostrophe, digits, plural = m.group(1), m.group(2), m.group(3)
        if _year_covered(toks, m.start(2), m.end(2)):
            continue
        if len(digits) == 4:
            value = int(digits)
            if not 1100 <= value <= 2099 or _YEAR_UNIT_RE.match(text, m.end()):
                continue
        else:
            if not (apostrophe or plural):
                continue
            two = int(digits)
            value = (2000 if two < 30 else 1900) + two
        if plural:
            decade = value - value % 10
            if year and year - year % 10 == decade:
                claims.ok()
            else:
                claims.bad(f"decade {m.group(0).strip()} not supported ({have})")
        elif year == value or value in allowed.name_years:
            claims.ok()
        else:
            claims.bad(f"year {m.group(0).strip()} not supported ({have})")
    for m in _DECADE_WORD_RE.finditer(text):
        if _year_covered(toks, m.start(1), m.end(1)):
            continue
        decade = _DECADE_WORDS[m.group(1).lower()]
        if year and year - year % 10 == decade:
            claims.ok()
        else:
            claims.bad(f'decade "{m.group(0)}" not supported ({have})')


_FACT_KEYS = {
    "title": "title", "name": "title", "track": "title", "song": "title", "book": "title",
    "show": "title", "podcast": "title",
    "creator": "creator", "artist": "creator", "author": "creator", "host": "creator",
    "composer": "creator", "composers": "creator", "band": "creator",
    "collection": "collection", "album": "collection",
    "publisher": "publisher",
    "year": "year", "release year": "year", "published": "year",
    "genre": "genres", "genres": "genres", "category": "genres", "categories": "genres",
    "duration": "duration", "duration min": "duration", "length": "duration",
    "type": "type", "item type": "type",
    "country": "country", "listener country": "country",
    "age band": "age_band", "age": "age_band", "listener age band": "age_band",
    "history": "history", "recent history": "history", "listener history": "history",
    "taste": "taste", "listener taste": "taste",
}


_DURATION_WITH_UNIT = re.compile(r"(\d+(?:\.\d+)?)\s*(?:min|mins|minutes?|m)\.?", re.IGNORECASE)


def check_facts_used(facts_used: Iterable[Any], allowed: Allowed, claims: Claims) -> None:
    all_values = set().union(*allowed.facts.values())
    value_tokens = [v.split() for v in all_values if v]
    for entry in facts_used or ():
        if entry is None:
            continue
        raw = str(entry).strip()
        if not raw:
            continue
        label = fold(raw).replace("_", " ").strip()
        m = re.match(r"^([a-z][a-z _]{1,30}?)\s*[:=]\s*(.+)$", label)
        group = None
        value = raw
        if m and m.group(1).strip() in _FACT_KEYS:
            group = _FACT_KEYS[m.group(1).strip()]
            value = re.split(r"[:=]", raw, maxsplit=1)[1].strip()
        elif label in _FACT_KEYS:
            if allowed.facts.get(_FACT_KEYS[label]):
                claims.ok()
            else:
                claims.bad(f'facts_used entry "{raw}" not found in item/listener facts')
            continue
        if _fact_value_ok(value, group, allowed, all_values, value_tokens) or \
                _fact_parts_ok(value, group, allowed, all_values, value_tokens):
            claims.ok()
        else:
            claims.bad(f'facts_used entry "{raw}" not found in item/listener facts')


def _fact_value_ok(value: str, group: str | None, allowed: Allowed, all_values: set[str],
                   value_tokens: list[list[str]]) -> bool:
    v = value.strip()
    # "3.8 min", "4.2 minutes": a duration written the way people write it, not as the
    # catalog's bare number; checked against the duration like "duration_min: 3.8"
    with_unit = _DURATION_WITH_UNIT.fullmatch(v)
    if with_unit and group in (None, "duration"):
        return any(abs(float(with_unit.group(1)) - float(d)) <= 0.15 for d in allowed.facts["duration"])
    num = re.fullmatch(r"\d+(?:\.\d+)?", v)
    if num and name_key(v) in all_values and group not in ("year", "duration"):
        return True  # a numeric title, "5.15"
    if num:
        if group in (None, "year") and v in allowed.facts["year"]:
            return True
        if group in (None, "duration"):
            return any(abs(float(v) - float(d)) <= 0.15 for d in allowed.facts["duration"])
        return v in allowed.facts.get(group or "", set())
    key = name_key(v)
    if not key:
        return False
    pool = allowed.facts.get(group, set()) if group else all_values
    if group and not pool:
        return False
    if key in pool:
        return True
    k = max_edits(len(key))
    if k and len(key) >= 5 and any(within_edits(key, c, k) for c in pool):
        return True
    years = re.findall(r"\b(1[1-9]\d\d|20\d\d)\b", v)
    if years and any(y not in allowed.facts["year"] for y in years):
        return False  # "AC/DC 1987" names a fact but claims a wrong year
    key_toks = key.split()
    for cand in pool:
        ct = cand.split()
        if not ct:
            continue
        if _contains(key_toks, ct) or (len(key_toks) >= 2 and _contains(ct, key_toks)):
            return True
    return False


# "Harlequin Historical / Temptation / Presents titles": one entry listing several
# history titles by a shared word, with a generic noun for what they are
_GENERIC_TAIL = re.compile(r"\s+(?:titles?|books?|novels?|tracks?|songs?|shows?|podcasts?|entries|episodes?|"
                           r"series|albums?)\s*$", re.IGNORECASE)


def _fact_parts_ok(value: str, group: str | None, allowed: Allowed, all_values: set[str],
                   value_tokens: list[list[str]]) -> bool:
    """Each part of a list-valued entry names a fact: a whole value, or words all in one value."""
    parts = [p.strip() for p in re.split(r"\s*/\s*|\s*;\s*|,\s*", _GENERIC_TAIL.sub("", value.strip())) if p.strip()]
    if len(parts) < 2:
        return False
    pool = allowed.facts.get(group, set()) if group else all_values
    pool_tokens = [set(c.split()) for c in pool if c]
    for part in parts:
        part = _GENERIC_TAIL.sub("", part)
        if _fact_value_ok(part, group, allowed, all_values, value_tokens):
            continue
        key = name_key(part).split()
        if not key or not any(set(key) <= ct for ct in pool_tokens):
            return False
    return True


def _contains(hay: list[str], needle: list[str]) -> bool:
    n = len(needle)
    return any(hay[i:i + n] == needle for i in range(len(hay) - n + 1))


__all__ = ["Claims", "check_quotes", "mask_allowed", "check_names", "check_years", "check_genres", "check_facts_used"]
