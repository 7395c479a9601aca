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
