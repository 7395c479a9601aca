"""Usefulness gate: a grounded note can still be useless. A useful note names
the item (its title, or its creator where it has one) and ties it to something
true of the listener (a history title or creator, a genre of their history or
taste, their country or age band). Vacuous notes ("Great music for great
listeners"), repetitive ones ("Temptation is Temptation, and Temptation...") and
notes about something else than the item fail.

It reads the note the way the grounding gate does (grounding.analyse), so a
name counts only where the grounding gate accepted it."""

from __future__ import annotations

import re
from collections import Counter

from linernotes.records import GateResult, Item, Listener
from linernotes.domain.gates.grounding import Analysis, analyse
from linernotes.domain.gates.index import CatalogIndex
from linernotes.domain.gates.listener_claims import country_named
from linernotes.domain.gates.normalize import NO_EXPLANATION
from linernotes.domain.gates.vocab import genre_supported, longest_genre_matches

# Function words never count as repetition ("a", "the", "and" recur in any sentence).
_FUNCTION = frozenset("""
a an the and or but of to in on at for from with by as is are was were be been it its this that these
those you your i we our they their he she his her them so if then than there here one ones all any
some more most just also not no into over after before like up out about what which who whom
""".split())
MAX_REPEATS = 2  # a content word (or name) three times or more in one note is repetition


def usefulness_gate(explanation: str | None, item: Item, listener: Listener | None,
                    index: CatalogIndex | None = None, analysis: Analysis | None = None) -> GateResult:
    """Names the item, ties it to the listener, does not repeat itself."""
    if explanation is None:
        return GateResult(passed=False, reasons=[NO_EXPLANATION], score=0.0)
    if analysis is None:
        analysis = analyse(explanation, None, item, listener, index)[1]
    reasons: list[str] = []
    srcs = [s for _, _, ss in analysis.mentions for s in ss]
    names_item = any(s in ("item:title", "item:creator", "item:composer") for s in srcs)
    if not names_item:
        what = "title or creator" if item.creator else "title"
        reasons.append(f"does not name the item (its {what})")
    allowed = analysis.allowed
    if allowed.has_listener and not _ties_to_listener(explanation, analysis, srcs):
        reasons.append("ties the item to nothing true of the listener (history, genres, taste, country)")
    rep = _repetition(explanation, analysis)
    if rep:
        reasons.append(f'repetitive: "{rep}" {MAX_REPEATS + 1}+ times or back to back')
    score = max(0.0, 1.0 - len(reasons) / 3)
    return GateResult(passed=not reasons, reasons=reasons, score=round(score, 4))


def _ties_to_listener(text: str, a: Analysis, srcs: list[str]) -> bool:
    if any(s.startswith("hist") or s == "country" for s in srcs):
        return True
    allowed = a.allowed
    listener_genres = allowed.genres - allowed.item_genres
    keys = [t.key for t in a.toks if not t.masked]
    for _, _, phrase in longest_genre_matches(keys, a.vocab):
        entry = a.vocab[phrase]
        if phrase in allowed.genres or entry.canonical in allowed.genres or \
                genre_supported(phrase, allowed.genres, a.vocab):
            # a genre the listener's history or taste holds (shared with the item or not)
            if phrase in listener_genres or genre_supported(phrase, allowed.genres, a.vocab):
                return True
    if allowed.country and country_named(text, allowed.country):
        return True
    return bool(allowed.age_band and allowed.age_band in text)


def _repetition(text: str, a: Analysis) -> str | None:
    # words inside a name are the name's, not the note's ("The Model Health Show ... health")
    keys = [t.key for t in a.toks if not t.masked and t.key not in _FUNCTION and len(t.key) >= 3]
    stems = Counter(k[:-1] if k.endswith("s") and len(k) > 4 else k for k in keys)
    stem, n = stems.most_common(1)[0] if stems else ("", 0)
    if n > MAX_REPEATS:
        return next(k for k in keys if k == stem or k == stem + "s")
    names = Counter(text[a.toks[s].start:a.toks[e - 1].end].lower() for s, e, _ in a.mentions)
    for name, n in names.items():
        if n >= 2 and re.search(re.escape(name) + r"[\s,;:.&-]+(?:and\s+|&\s+|or\s+)?" + re.escape(name), text,
                                re.IGNORECASE):
            return name  # "Skank, and Skank"
    return None
