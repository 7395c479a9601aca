"""Claim types a catalog row never states (awards, charts, sales, tours and live
shows, recording places, guest musicians and producers, networks, adaptations,
narrators, lengths, career steps such as "debut"): unsupported unless the item's
own texts say so. The cue words are data (data/grounding_claim_cues.txt)."""

from __future__ import annotations

import re
from functools import lru_cache

from linernotes.domain.gates.normalize import name_tokens
from linernotes.domain.gates.tokens import quote
from linernotes.domain.gates.vocab import phrase_pattern, read_sections


@lru_cache(maxsize=1)
def _patterns() -> list[tuple[str, re.Pattern]]:
    out = []
    for cat, phrases in read_sections("grounding_claim_cues.txt").items():
        rx = phrase_pattern(phrases)
        if rx is not None:
            out.append((cat, rx))
    return out


def check_claim_types(text: str, free: str, allowed, claims) -> None:
    """One reason per cue found in `free` (names blanked) that the item's texts lack."""
    seen: set[tuple[int, int]] = set()
    for cat, rx in _patterns():
        for m in rx.finditer(free):
            if any(s < m.end() and m.start() < e for s, e in seen):
                continue
            seen.add(m.span())
            if _not_of_item(free, m.start()):
                continue
            # function words ("live at") carry no claim; the content words must be the item's
            words = [w for w in name_tokens(m.group(0)) if len(w) > 1 and w not in _FUNCTION]
            support = allowed.item_words | {w for g in allowed.item_genres for w in g.split()}
            if words and all(_stem_in(w, support) for w in words):
                claims.ok()
                continue
            claims.bad(f'unsupported {cat} claim "{quote(text, *m.span())}" (not in the item\'s facts)')


_FUNCTION = frozenset("at in on of by to for from with into the an its their his her before after".split())


def _stem_in(word: str, item_words: set[str]) -> bool:
    if word in item_words:
        return True
    stem = word[:5]
    return len(stem) >= 4 and any(w.startswith(stem) for w in item_words)


# "your beloved Grisham", "you like big choruses": the cue describes the listener's
# things (not "you'll love the piano": "the" points at the item). "swaps the riffs for ...", "instead of strings", "without the horns": the cue
# names what the item does not have (or another item has), so it claims nothing of it.
_OF_LISTENER = re.compile(r"\b(?:your|yours)\s+(?:[\w-]+\s+){0,1}$|\byou\s+(?:(?!(?:the|its|this|that|their|his|her)\b)[\w'-]+\s+){0,3}$",
                          re.IGNORECASE)
_CONTRAST = re.compile(r"\b(?:swaps?|swapping|swapped|trades?|trading|traded|ditch(?:es|ing|ed)?|drops?|dropping|"
                       r"dropped|sheds?|shedding|leaves?\s+behind|leaving\s+behind|instead\s+of|rather\s+than|"
                       r"in\s+place\s+of|without|no|minus|away\s+from|less)\s+(?:the\s+|a\s+|an\s+|its\s+|"
                       r"their\s+|those\s+|that\s+|any\s+)?(?:[\w-]+\s+){0,2}$", re.IGNORECASE)


def _not_of_item(free: str, start: int) -> bool:
    before = free[max(0, start - 48):start]
    before = re.split(r"[,;:.!?()\x00]", before)[-1]
    return bool(_OF_LISTENER.search(before) or _CONTRAST.search(before))
