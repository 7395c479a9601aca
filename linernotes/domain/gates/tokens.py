"""Sentence tokens for the grounding checks: folded keys, capitalisation and
sentence starts (initials and abbreviations do not end a sentence)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from linernotes.domain.gates.normalize import ABBREVIATIONS, TOKEN_RE, fold, token_key


@dataclass
class Tok:
    text: str
    start: int
    end: int
    key: str
    cap: bool
    sent_start: bool
    masked: bool = False  # inside an allowed name (a supported mention)
    used: bool = False    # already judged as a name


_JOIN_GAP = re.compile(r"['’]?\s*(?:[&/+\-–]\s*)?['’]?")


def _sentence_break(gap: str, prev: Tok | None) -> bool:
    if prev is None:
        return True
    if "\n" in gap:
        return True
    if re.search(r"[.!?…][\s\"'”’)\]]*[,;:]", gap):
        return False  # "... Success The Easy Way !, Rusted Halo": punctuation inside a title
    if re.search(r"[!?][\"'”’)\]]*\s", gap):
        return True  # not "Gei?ler" (a lost byte inside a name)
    if "." in gap or "…" in gap:
        if len(prev.text) == 1 and prev.text.isupper():
            return False  # an initial: "Mark P. O. Morford"
        if prev.key in ABBREVIATIONS:
            return False
        return True
    return False


def tokenize(text: str) -> list[Tok]:
    toks: list[Tok] = []
    prev_end = 0
    for m in TOKEN_RE.finditer(text):
        raw = m.group()
        gap = text[prev_end:m.start()]
        toks.append(Tok(raw, m.start(), m.end(), token_key(fold(raw)), raw[0].isupper(),
                         _sentence_break(gap, toks[-1] if toks else None)))
        prev_end = m.end()
    return toks


def joinable(text: str, a: Tok, b: Tok) -> bool:
    gap = text[a.end:b.start]
    if _JOIN_GAP.fullmatch(gap):
        return True
    if re.fullmatch(r"\.\s*", gap) and ((len(a.text) == 1 and a.text.isupper()) or a.key in ABBREVIATIONS):
        return True
    return False


# Not a word character and not a space: a cue phrase never runs across a blanked name.
BLANK = "\x00"


def free_text(text: str, toks: list[Tok]) -> str:
    """The text with supported or already judged names blanked (same offsets), so
    cue-word checks never fire inside a real title ("Live After Death")."""
    chars = list(text)
    for t in toks:
        if t.masked or t.used:
            chars[t.start:t.end] = BLANK * (t.end - t.start)
    return "".join(chars)


def quote(text: str, start: int, end: int, width: int = 24) -> str:
    """The failing span with a few words around it, for a reason."""
    lo, hi = max(0, start - width), min(len(text), end + width)
    left, right = text[lo:start], text[end:hi]
    if lo > 0 and " " in left:
        left = left.split(" ", 1)[1]
    if hi < len(text) and " " in right:
        right = right.rsplit(" ", 1)[0]
    return (left + text[start:end] + right).strip(" ,;")
