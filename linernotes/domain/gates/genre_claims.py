"""Genre claims: a genre phrase the note says of the item must be the item's (or a
narrower one of its genres, or words of its own title); a genre only the listener
has passes only when said of the listener. Ambiguous words (rock, country, ...)
count only with a cue noun, an article, a style verb or a mid-sentence capital."""

from __future__ import annotations

import re
from collections.abc import Mapping

from linernotes.domain.gates.allowed import Allowed
from linernotes.domain.gates.listener_claims import listener_context
from linernotes.domain.gates.tally import Claims, clause as _clause, span_text as _span_text
from linernotes.domain.gates.tokens import Tok
from linernotes.domain.gates.vocab import GENRE_CUES, POSSESSIVES, GenreEntry, genre_supported, longest_genre_matches


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
                    and not _verb_genre(text, toks, prev_idx, last_i):
                if not _article_noun(text, toks, prev_idx + 1, last_i):
                    continue
                # "a big rock swing": an ambiguous word read only as the article's noun, right
                # after the item's own genre, is that genre's head noun (a swing, a house, a
                # soul), not a second genre
                if prev is not None and not prev.masked and prev.key in vocab \
                        and genre_supported(prev.key, allowed.item_genres, vocab):
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
        elif _of_history_name(prev, words, allowed):
            claims.ok()  # "the Lawrence Block Matthew Scudder crime novel": a word of that history title
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


def _of_history_name(prev: Tok | None, words: list[str], allowed: Allowed) -> bool:
    """A genre word right after a history name, and a word of a history title itself
    ("Hope to Die: A Matthew Scudder Crime Novel" -> "the Matthew Scudder crime novel"):
    said of that history entry, not of the item."""
    return prev is not None and (prev.masked or prev.cap) and prev.key in allowed.history_words \
        and prev.key not in allowed.item_words and all(w in allowed.history_words for w in words)


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

