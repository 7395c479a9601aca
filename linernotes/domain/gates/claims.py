"""The grounding claim checks: quoted titles, capitalised names, years and
decades, genres and `facts_used` entries. Each check adds supported claims
and reasons to a `Claims` tally; the rule they implement is documented in grounding.py."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from linernotes.domain.gates.allowed import Allowed, is_allowed_name
from linernotes.domain.gates.index import KIND_COLLECTION, KIND_CREATOR, KIND_PUBLISHER, KIND_TITLE, CatalogIndex, kind_word
from linernotes.domain.gates.normalize import (
    CONNECTORS, END_STOP, KEY_STOP, fold, join_key, max_edits, name_key, title_variants, within_edits,
)
from linernotes.domain.gates.listener_claims import listener_context
from linernotes.domain.gates.tokens import Tok, joinable
from linernotes.domain.gates.vocab import GENRE_CUES, POSSESSIVES, GenreEntry, common_words, genre_supported, longest_genre_matches

# Quoted spans hug their text ("Title", not " by X picks up where "), so a title
# that itself contains quotes ('The Word "Desire"') does not pair quotes wrongly.
_QUOTE_RE = re.compile(r'"(?=\S)([^"\n]{1,200}?)(?<=\S)"|“(?=\S)([^”\n]{1,200}?)(?<=\S)”|'
                       r"‘(?=\S)(.{1,200}?)(?<=\S)’(?!\w)|(?<![\w])'(?=\S)([^'\n]{1,200}?)(?<=\S)'(?!\w)")
_YEAR_RE = re.compile(r"(?<![\w$£€#.])(['’])?(\d{4}|\d{2})(s)?(?!\w|[.,]\d|%)")
# "<number> pages" is a count, not a year ("2003 track" stays a year).
_YEAR_UNIT_RE = re.compile(r"\s*-?\s*(?:pages|copies|tracks|songs|episodes|minutes|mins|seconds|"
                           r"hours|km|miles|bpm|kbps|people|listeners|readers|ratings|reviews|words|"
                           r"plays|streams|times|votes|fans|sold)\b", re.IGNORECASE)
_DECADE_WORDS = {"twenties": 1920, "thirties": 1930, "forties": 1940, "fifties": 1950, "sixties": 1960,
                 "seventies": 1970, "eighties": 1980, "nineties": 1990, "noughties": 2000}
_DECADE_WORD_RE = re.compile(r"\b(?:the\s+)?(" + "|".join(_DECADE_WORDS) + r")\b", re.IGNORECASE)


class Claims:
    def __init__(self) -> None:
        self.total = 0
        self.reasons: list[str] = []
        # supported name mentions: (first token index, end token index, name key), for
        # the relation, listener and usefulness checks that run after the name checks
        self.mentions: list[tuple[int, int, str]] = []

    def ok(self) -> None:
        self.total += 1

    def bad(self, reason: str) -> None:
        self.total += 1
        if reason not in self.reasons:
            self.reasons.append(reason)


def _span_text(text: str, toks: list[Tok]) -> str:
    shown = text[toks[0].start:toks[-1].end]
    return re.sub(r"['’]s$", "", shown)


def _wrong_entity(shown: str, flags: int) -> str:
    word = kind_word(flags)
    if flags & KIND_CREATOR:
        return f'"{shown}" is a catalog creator but not of this item or the listener\'s history'
    if flags & KIND_PUBLISHER and not flags & (KIND_TITLE | KIND_COLLECTION):
        return f'"{shown}" is a catalog publisher but not of this item'
    return f'"{shown}" is a catalog {word} but not this item or one in the listener\'s history'


def check_quotes(text: str, toks: list[Tok], allowed: Allowed, index: CatalogIndex | None,
                  vocab: Mapping[str, GenreEntry], genre_words: frozenset[str], claims: Claims) -> None:
    plain = common_words() | genre_words | CONNECTORS
    for m in _QUOTE_RE.finditer(text):
        g = next(i for i in range(1, 5) if m.group(i) is not None)
        start, end = m.start(g), m.end(g)
        inside = [t for t in toks if t.start >= start and t.end <= end]
        if not inside or not any(t.cap for t in inside):
            continue  # scare quotes ("feel-good"), left to the genre check
        if all(t.masked for t in inside):
            continue
        keys = [t.key for t in inside]
        phrase = " ".join(keys)
        if phrase in vocab:
            continue  # a quoted genre: judged by the genre check
        key = join_key(keys)
        if all(k in plain or k.isdigit() for k in keys) and (index is None or key not in index.names):
            continue  # 'that "Saturday Night" feeling': no name in it
        shown = m.group(g).strip()
        for t in inside:
            t.used = True
        variants = title_variants(shown) | {key}
        hit = next((v for v in variants if is_allowed_name(v, len(v.split()), allowed, index)), None)
        if hit is not None:
            claims.ok()
            claims.mentions.append((toks.index(inside[0]), toks.index(inside[-1]) + 1, hit))
        elif index is not None and key in index.names:
            claims.bad(_wrong_entity(shown, index.names[key]))
        elif index is not None:
            claims.bad(f'"{shown}" (quoted title) not in catalog')
        else:
            claims.bad(f'"{shown}" (quoted title) not in item/listener facts')


def _inside_catalog_name(text: str, toks: list[Tok], i: int, n: int, allowed: Allowed,
                         index: CatalogIndex | None) -> bool:
    """An allowed name glued to capitalised words that make another catalog name
    ("Serial" in "Serial Killers", a spin-off): not masked, left to the name check."""
    if index is None:
        return False
    for before in range(0, 3):
        for after in range(0, 4):
            if not before and not after:
                continue
            s, e = i - before, i + n + after
            if s < 0 or e > len(toks):
                continue
            seg = toks[s:e]
            if not seg[0].cap or not seg[-1].cap or seg[-1].key in END_STOP:
                continue
            if any(t.sent_start for t in seg[1:]) or not all(joinable(text, a, b) for a, b in zip(seg, seg[1:])):
                continue
            key = join_key(t.key for t in seg)
            if key in index.names and not is_allowed_name(key, len(seg), allowed, index):
                return True
    return False


def mask_allowed(toks: list[Tok], allowed: Allowed, claims: Claims, text: str = "",
                 index: CatalogIndex | None = None) -> None:
    i = 0
    while i < len(toks):
        for n in range(min(allowed.max_tokens, len(toks) - i), 0, -1):
            if n > 1 and (toks[i + n - 1].key in END_STOP or toks[i].key == "and"):
                continue  # never swallow a following "The" ("Germain's The Canopy")
            key = join_key(t.key for t in toks[i:i + n])
            if key in allowed.keys and key not in CONNECTORS and key not in KEY_STOP:
                if text and _inside_catalog_name(text, toks, i, n, allowed, index):
                    continue
                for t in toks[i:i + n]:
                    t.masked = True
                claims.ok()
                claims.mentions.append((i, i + n, key))
                i += n
                break
        else:
            i += 1


def _runs(text: str, toks: list[Tok]) -> list[list[Tok]]:
    runs: list[list[Tok]] = []
    cur: list[Tok] = []

    def flush() -> None:
        while cur and not cur[-1].cap:
            cur.pop()
        if cur:
            runs.append(list(cur))
        cur.clear()

    for t in toks:
        if t.masked or t.used:
            flush()
            continue
        if cur and (not joinable(text, cur[-1], t) or t.sent_start):
            flush()
        if t.cap or (cur and (t.text[0].isdigit() or t.key in CONNECTORS)):
            cur.append(t)
        else:
            flush()
    flush()
    return runs


def check_names(text: str, toks: list[Tok], allowed: Allowed, index: CatalogIndex | None,
                 genre_words: frozenset[str], claims: Claims) -> None:
    common = common_words()
    plain = common | genre_words | CONNECTORS

    def unknown_word(t: Tok) -> bool:
        return t.cap and not t.sent_start and t.key not in plain and not t.key.isdigit() and len(t.key) >= 2

    for run in _runs(text, toks):
        # 1. greedy longest matches, left to right: allowed names, then catalog names
        matches: list[tuple[int, int, str, int]] = []  # (start, n, "allowed"|"catalog", flags)
        leftover: list[int] = []
        i = 0
        while i < len(run):
            found = None
            for n in range(min(8, len(run) - i), 0, -1):
                seg = run[i:i + n]
                if not seg[0].cap or not seg[-1].cap or (n > 1 and seg[-1].key in END_STOP):
                    continue
                key = join_key(t.key for t in seg)
                if not key:
                    continue
                if n >= 2 and is_allowed_name(key, n, allowed, index):
                    found = (i, n, "allowed", 0)
                elif n >= 2 and " " not in key and _short_creator(key, allowed) and key not in plain \
                        and not (index is not None and index.names.get(key, 0) & KIND_CREATOR):
                    found = (i, n, "allowed", 0)  # "The Stones" for The Rolling Stones (not "The Police")
                elif n == 1 and (key in allowed.tokens or key in allowed.keys):
                    found = (i, n, "allowed", 0)
                elif n >= 2 and _shortened_creator(seg, allowed):
                    # "Dean Koontz" for Dean R. Koontz: the same person without the middle
                    # initial, even when the catalog also spells them that way
                    found = (i, n, "allowed", 0)
                elif index is not None and not all(t.key in plain or t.key.isdigit() for t in seg):
                    flags = index.names.get(key, 0)
                    if n == 1:
                        # one word: a catalog creator ("Metallica"), or mid-sentence a
                        # catalog title/album ("Queen's Warning", "like Thriller")
                        mask = KIND_CREATOR
                        if not seg[0].sent_start and len(key) >= 4:
                            mask |= KIND_TITLE | KIND_COLLECTION
                        flags &= mask
                        if len(key) < 3 or key in common:
                            flags = 0
                    if flags:
                        found = (i, n, "catalog", flags)
                if found:
                    break
            if found:
                matches.append(found)
                i += found[1]
            else:
                leftover.append(i)
                i += 1
        left = set(leftover)
        # 2. a catalog name glued to unknown capitalised words is part of a longer
        #    unknown name ("Velvet Thunder Revival", "Firefly Junction")
        glued = any(kind == "catalog" and any(unknown_word(t) for j, t in enumerate(run)
                                              if not s <= j < s + n and not _in_allowed(j, matches))
                    for s, n, kind, _ in matches)
        if glued and not any(kind == "allowed" for _, _, kind, _ in matches):
            whole = run[1:] if run[0].sent_start and len(run) > 1 else run
            for t in run:
                t.used = True
            claims.bad(_unknown_name(_span_text(text, whole), index))
            continue
        for s, n, kind, flags in matches:
            seg = run[s:s + n]
            for t in seg:
                t.used = True
            if kind == "allowed":
                if n >= 2:
                    claims.ok()
                    claims.mentions.append((toks.index(seg[0]), toks.index(seg[-1]) + 1,
                                            join_key(t.key for t in seg)))
            else:
                claims.bad(_wrong_entity(_span_text(text, seg), flags))
        # 3. leftover runs of capitalised words: an unknown name when two or more
        #    capitalised words (not sentence-initial) include one that is not a common word
        # (a single word of an allowed name does not split a group: "Michael Perkins"
        #  is unknown even when the item's author is Michael Malone)
        single_allowed = {s for s, n, kind, _ in matches if kind == "allowed" and n == 1}
        group: list[Tok] = []
        for j in range(len(run) + 1):
            if j < len(run) and (j in left or j in single_allowed):
                group.append(run[j])
                continue
            if group:
                # a sentence-initial word counts as capitalised but never as the unknown one:
                # "Jimi Hendrix wrote..." is a name, "Dreamy Bossa Nova..." is not
                while len(group) > 1 and group[0].sent_start and group[0].key in plain:
                    group = group[1:]  # "After Hemingway's ...": the sentence starter is no part of the name
                caps = [t for t in group if t.cap and not t.key.isdigit()]
                short = _shortened_name(group, allowed)
                if short:
                    claims.ok()  # "John Toole" for John Kennedy Toole: a middle name dropped
                    claims.mentions.append((toks.index(group[0]), toks.index(group[-1]) + 1, short))
                elif len(caps) >= 2 and any(unknown_word(t) for t in caps) and not _allowed_list(group, allowed) \
                        and not _clause_gap(group, unknown_word):
                    claims.bad(_unknown_name(_span_text(text, group), index))
                else:
                    for t in group:
                        if t.key in allowed.tokens:
                            ti = toks.index(t)
                            claims.mentions.append((ti, ti + 1, t.key))
                group = []


def _short_creator(word: str, allowed: Allowed) -> bool:
    """`word` is the last word of a creator's name of two or more words."""
    return any(k.endswith(" " + word) and any(s.endswith(":creator") for s in allowed.sources.get(k, ()))
               for k in allowed.keys)


def _shortened_creator(group: list[Tok], allowed: Allowed) -> bool:
    short = _shortened_name(group, allowed)
    return short is not None and any(src.endswith((":creator", ":composer"))
                                     for src in allowed.sources.get(short, ()))


def _shortened_name(group: list[Tok], allowed: Allowed) -> str | None:
    """The allowed key that these words abbreviate (same first and last word, the
    rest in order: a middle name or initial dropped), or None."""
    keys = [t.key for t in group if t.key not in CONNECTORS]
    if len(keys) < 2 or not all(k in allowed.tokens for k in keys):
        return None
    for cand in allowed.keys:
        ct = cand.split()
        if len(ct) <= len(keys) or ct[0] != keys[0] or ct[-1] != keys[-1]:
            continue
        it = iter(ct)
        if all(k in it for k in keys):
            return cand
    return None


_CLAUSE_WORDS = frozenset({"is", "you", "it", "we", "me", "my"})


def _clause_gap(group: list[Tok], unknown_word) -> bool:
    """"Veloso is a Latin song": a lower-case verb or pronoun between capitalised
    words ends a name (a title capitalises it: "Love Is a Battlefield"); no part
    then holds two capitalised words with an unknown one."""
    parts: list[list[Tok]] = [[]]
    for t in group:
        if not t.cap and t.key in _CLAUSE_WORDS and t.text[:1].islower():
            parts.append([])
        else:
            parts[-1].append(t)
    if len(parts) < 2:
        return False
    return not any(len([t for t in p if t.cap]) >= 2 and any(unknown_word(t) for t in p if t.cap) for p in parts)


def _allowed_list(group: list[Tok], allowed: Allowed) -> bool:
    """"Borges and Maupassant": a list of allowed names (each part made of allowed
    words), not one unknown name."""
    parts: list[list[str]] = [[]]
    for t in group:
        if t.key in ("and", "or", "&", "nor"):
            parts.append([])
        else:
            parts[-1].append(t.key)
    return len(parts) >= 2 and all(p and all(k in allowed.tokens for k in p) for p in parts)


def _in_allowed(j: int, matches: list[tuple[int, int, str, int]]) -> bool:
    return any(kind == "allowed" and s <= j < s + n for s, n, kind, _ in matches)


def _unknown_name(shown: str, index: CatalogIndex | None) -> str:
    if index is not None:
        return f'"{shown}" is not a name from this item, the listener\'s history or the catalog'
    return f'"{shown}" is not a name from this item or the listener\'s history'


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


def check_genres(text: str, toks: list[Tok], allowed: Allowed, vocab: Mapping[str, GenreEntry],
                  claims: Claims) -> None:
    free = [t for t in toks if not t.masked and not t.used]
    keys = [t.key for t in free]
    seen: set[str] = set()
    for s, e, phrase in longest_genre_matches(keys, vocab):
        # contiguous in the text? (a masked name in between breaks the phrase)
        if any(free[j + 1].start - free[j].end > 3 for j in range(s, e - 1)):
            continue
        entry = vocab[phrase]
        first = free[s]
        prev_idx = toks.index(first) - 1
        prev = toks[prev_idx] if prev_idx >= 0 else None
        if entry.ambiguous:
            if prev is not None and prev.key in POSSESSIVES:
                continue
            last_i = toks.index(free[e - 1])
            nxt = toks[last_i + 1] if last_i + 1 < len(toks) else None
            # "fans of Rock" counts; "World War" (followed by another capital) does not
            capitalised_mid = first.cap and not first.sent_start and not (nxt is not None and nxt.cap)
            if not capitalised_mid and not _has_cue(toks, last_i, vocab) \
                    and not _article_noun(text, toks, prev_idx + 1, last_i) \
                    and not _verb_genre(text, toks, prev_idx, last_i):
                continue
        shown = _span_text(text, free[s:e]).lower()
        # each mention is judged: "since you love Latin, Vida Boa is a Latin gem" says it twice,
        # once of the listener and once of the item
        seen.add(phrase)
        canonical = entry.canonical
        words = phrase.split()
        item_exact = phrase in allowed.item_genres or canonical in allowed.item_genres or all(
            w in allowed.item_words for w in words) or all(w in allowed.item_genres for w in words)
        listener_exact = phrase in allowed.genres or canonical in allowed.genres
        if item_exact:
            claims.ok()  # the item's genre, or words of its own title ("memoir" for "Dry: A Memoir")
        elif not listener_exact and genre_supported(phrase, allowed.item_genres, vocab):
            claims.ok()  # a narrower genre of the item's ("heavy metal" for Metal)
        elif genre_supported(phrase, allowed.genres, vocab):
            # a genre of the listener only: fine when said of the listener ("your Latin
            # favourites"), not when said of the item ("the Who's Latin classics")
            if listener_context(text, toks, toks.index(first)):
                claims.ok()
            else:
                claims.bad(f'genre "{shown}" is the listener\'s, not the item\'s (item genres '
                           f'{allowed.genre_labels}): "{_clause(text, first.start, free[e - 1].end)}"')
        else:
            claims.bad(f'genre "{shown}" not in item genres {allowed.genre_labels} or listener taste')


def _clause(text: str, start: int, end: int, width: int = 30) -> str:
    """The words around a span, for quoting a failing claim in a reason."""
    lo = max(0, start - width)
    hi = min(len(text), end + width)
    left = text[lo:start].split(None, 1)[-1] if lo > 0 and " " in text[lo:start] else text[lo:start]
    right = text[end:hi].rsplit(None, 1)[0] if hi < len(text) and " " in text[end:hi] else text[end:hi]
    return (left + text[start:end] + right).strip(" ,;")


_NOUN_END = frozenset({"for", "that", "from", "by", "with", "about", "set", "in", "of", "and", "to", "which",
                       "who", "where", "than", "like", "after", "on", "at"})


def _article_noun(text: str, toks: list[Tok], first: int, last: int) -> bool:
    """An ambiguous genre word used as the noun of "a/an/this ..." ("a gripping
    mystery.", "a sharp satire for ..."): a genre claim about what the article names."""
    j, hops = first - 1, 0
    while j >= 0 and hops < 3:
        t = toks[j]
        hyphened = text[t.end:toks[j + 1].start] == "-"  # "a Bible-inspired fantasy"
        if t.masked or t.used or (t.cap and not hyphened) or toks[j + 1].sent_start:
            return False
        if t.key in ("a", "an", "this", "another"):
            break
        if "," in text[t.end:toks[j + 1].start]:
            return False
        j, hops = j - 1, hops + 1
    else:
        return False
    if j < 0:
        return False
    if last + 1 >= len(toks) or toks[last + 1].sent_start:
        return True
    gap = text[toks[last].end:toks[last + 1].start]
    return bool(re.search(r"[,;:.!?()]", gap)) or toks[last + 1].key in _NOUN_END


# "Iron Maiden playing soul", "goes pop", "turns country": a style the item is said to have
_STYLE_VERBS = frozenset("""playing plays play played goes go going went turns turn turned turning toward towards
veers veering leans leaning tilts tilting""".split())


def _verb_genre(text: str, toks: list[Tok], prev: int, last: int) -> bool:
    if prev < 0 or toks[prev].key not in _STYLE_VERBS or toks[prev].masked or toks[prev].used:
        return False
    if prev >= 1 and toks[prev - 1].key in ("you", "youre", "re", "i", "we", "fans", "who"):
        return False  # "you play rock": the listener's habit, judged as a listener genre elsewhere
    if last + 1 >= len(toks) or toks[last + 1].sent_start:
        return True
    gap = text[toks[last].end:toks[last + 1].start]
    return bool(re.search(r"[,;:.!?()]", gap)) or toks[last + 1].key in _NOUN_END


def _has_cue(toks: list[Tok], last: int, vocab: Mapping[str, GenreEntry]) -> bool:
    j = last + 1
    hops = 0
    while j < len(toks) and hops < 4:
        k = toks[j].key
        if k in GENRE_CUES:
            return True
        if k in ("and", "or", "n", "&") or k in vocab:
            j += 1
            hops += 1
            continue
        return False
    return False


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
        if _fact_value_ok(value, group, allowed, all_values, value_tokens):
            claims.ok()
        else:
            claims.bad(f'facts_used entry "{raw}" not found in item/listener facts')


def _fact_value_ok(value: str, group: str | None, allowed: Allowed, all_values: set[str],
                   value_tokens: list[list[str]]) -> bool:
    v = value.strip()
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


def _contains(hay: list[str], needle: list[str]) -> bool:
    n = len(needle)
    return any(hay[i:i + n] == needle for i in range(len(hay) - n + 1))
