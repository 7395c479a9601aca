"""Per-row gates for generated liner notes: grounding, style, safety and usefulness.

Every gate returns a `GateResult(passed, reasons, score)`; `run_gates` returns
`{"grounding": ..., "style": ..., "safety": ..., "usefulness": ...}` (GATE_NAMES;
read them generically: "passed all gates" = every value passed). Gates never
drop a row: a failed gate only records why, and curation decides. An explanation
of None (the teacher answer did not parse) fails all of them with "no
explanation parsed".

One module per concern:

* normalize.py: folding, name keys, creator lists split into people, edit distance;
* vocab.py: the word lists in data/ (common words, genre vocabulary and matching);
* index.py: `CatalogIndex`, every name and genre label of a catalog;
* grounding.py: the grounding rule (documented there), `grounding_gate` and
  `analyse` (the verdict plus the reading it used), built from tokens.py
  (sentence tokens, names blanked for cue matching), allowed.py (what an item and
  listener allow, and which fact each name is), claims.py (year and facts_used
  checks; the public names of every claim check) with names.py (quoted and
  capitalised names), genre_claims.py (genres) and tally.py (the `Claims`
  tally), relations.py (pairs of names that must hold together),
  claim_types.py (awards, charts, tours, ... from data/grounding_claim_cues.txt),
  listener_claims.py (age, place, ratings, habits, history words moved onto the
  item; data/grounding_listener_cues.txt, data/grounding_places.txt) and
  numbers.py (durations, counts, ordinals, bare numbers);
* usefulness.py: `usefulness_gate` (names the item, ties it to the listener, no
  repetition), reading the note through grounding.analyse;
* style.py: `style_gate` and its thresholds (MAX_WORDS, ...);
* safety.py: `safety_gate`, the blocklist (data/safety_blocklist.txt) and PII
  patterns; the item's and history's own names are exempt.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from linernotes.records import GateResult, Item, Listener
from linernotes.domain.gates.grounding import analyse, context_supports_genre, context_supports_name, grounding_gate
from linernotes.domain.gates.index import (
    KIND_COLLECTION, KIND_CREATOR, KIND_PUBLISHER, KIND_TITLE, CatalogIndex,
)
from linernotes.domain.gates.normalize import (
    ABBREVIATIONS, CONNECTORS, NO_EXPLANATION, TOKEN_RE, description_people, fold, name_key, name_tokens,
    split_people,
)
from linernotes.domain.gates.safety import (
    EMAIL_RE, MASKED_PROFANITY_RE, PHONE_RE, URL_RE, blocklist, deleet, safety_gate,
)
from linernotes.domain.gates.style import (
    EMOJI_RE, KNOWN_ACRONYMS, MAX_ACRONYM_LETTERS, MAX_EMOJI, MAX_SECOND_PERSON, MAX_SENTENCES,
    MAX_UNKNOWN_ACRONYMS, MAX_WORDS, REQUIRE_END_PUNCTUATION, count_sentences, count_words, style_gate,
)
from linernotes.domain.gates.usefulness import usefulness_gate
from linernotes.domain.gates.vocab import (
    DATA_DIR, GENRE_CUES, GenreEntry, builtin_genres, common_words, genre_keys, genre_supported,
)


def names_of(item: Item, listener: Listener | None) -> list[str]:
    """Item and listener names (for the style gate's all-caps exemption)."""
    out = [item.title, item.creator or "", item.collection or "", item.publisher or ""]
    out += description_people(item.description)
    if listener is not None:
        for h in listener.history:
            out += [h.title, h.creator or ""]
        out.append(listener.country or "")
    return [n for n in out if n]


# Every key run_gates returns; consumers should treat them generically ("passed all
# gates" = every value passed).
GATE_NAMES = ("grounding", "style", "safety", "usefulness")


def run_gates(explanation: str | None, facts_used: Iterable[Any] | None, item: Item,
              listener: Listener | None, index: CatalogIndex | None = None) -> dict[str, GateResult]:
    """{"grounding", "style", "safety", "usefulness"} verdicts for one generated row."""
    if explanation is None:
        fail = GateResult(passed=False, reasons=[NO_EXPLANATION], score=0.0)
        return {name: fail.model_copy(deep=True) for name in GATE_NAMES}
    grounding, analysis = analyse(explanation, facts_used, item, listener, index)
    names = names_of(item, listener)
    return {
        "grounding": grounding,
        "style": style_gate(explanation, names),
        "safety": safety_gate(explanation, names),
        "usefulness": usefulness_gate(explanation, item, listener, index, analysis),
    }


__all__ = [
    "CatalogIndex", "GenreEntry", "grounding_gate", "style_gate", "safety_gate", "usefulness_gate", "run_gates",
    "names_of", "GATE_NAMES",
    "context_supports_name", "context_supports_genre",
    "fold", "name_key", "name_tokens", "split_people", "description_people",
    "genre_keys", "genre_supported", "builtin_genres", "common_words", "blocklist",
    "count_words", "count_sentences", "deleet", "MAX_WORDS", "MAX_SENTENCES", "MAX_EMOJI",
    "MAX_SECOND_PERSON", "MAX_ACRONYM_LETTERS", "MAX_UNKNOWN_ACRONYMS", "REQUIRE_END_PUNCTUATION",
    "KNOWN_ACRONYMS", "NO_EXPLANATION", "KIND_TITLE", "KIND_CREATOR", "KIND_COLLECTION", "KIND_PUBLISHER",
    "ABBREVIATIONS", "CONNECTORS", "TOKEN_RE", "GENRE_CUES", "DATA_DIR",
    "EMAIL_RE", "URL_RE", "PHONE_RE", "MASKED_PROFANITY_RE", "EMOJI_RE",
]
