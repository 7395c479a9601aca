"""Safety gate: blocklisted terms (data/safety_blocklist.txt; its header
documents the syntax), leetspeak and masked profanity, PII (email, phone, URL)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from linernotes.records import GateResult
from linernotes.domain.gates.normalize import NO_EXPLANATION, fold
from linernotes.domain.gates.vocab import read_list

EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
URL_RE = re.compile(r"\b(?:https?://|www\.)\S+|\b[\w-]+(?:\.[\w-]+)*\.(?:com|net|org|io|co|fm|ly|me|tv|"
                    r"info|biz|uk|de|fr|br|es|it|nl|app|dev|xyz)\b(?:/\S*)?", re.IGNORECASE)
PHONE_RE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d{2,4}(?:[\s.-]\d{2,4}){1,4}(?!\w)")
# "f***ing", "sh*t", "Bullsh**": letters with asterisks standing in for letters.
MASKED_PROFANITY_RE = re.compile(r"(?<![\w*])[A-Za-z]+\*+[A-Za-z]*(?![\w*])")
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s",
                       "!": "i", "|": "l"})
_LEET_WORD = re.compile(r"[\w@$!|]+")


def _leet_word(m: re.Match) -> str:
    w = m.group()
    core = w.rstrip("!")
    tail = w[len(core):]
    if not core or not re.search(r"[^\W\d_]", core) or not re.search(r"[\d@$!|]", core):
        return w
    return core.translate(_LEET) + tail


def deleet(text: str) -> str:
    """'sh1t' -> 'shit', '$hit' -> 'shit'; words without letters (years) untouched."""
    return _LEET_WORD.sub(_leet_word, text)


@dataclass(frozen=True)
class _Blocklist:
    categories: list[tuple[str, re.Pattern]]
    allowed: re.Pattern | None


def _entry_pattern(entry: str) -> str:
    words = entry.lower().split()
    parts = []
    for i, w in enumerate(words):
        if i == len(words) - 1 and w.endswith("*"):
            parts.append(re.escape(w[:-1]) + r"\w*")
        else:
            parts.append(re.escape(w))
    return r"[\s\-]+".join(parts)


@lru_cache(maxsize=1)
def blocklist() -> _Blocklist:
    cats: dict[str, list[str]] = {}
    allowed: list[str] = []
    current = "blocked"
    for line in read_list("safety_blocklist.txt"):
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1].strip()
            continue
        if line.startswith("!"):
            allowed.append(_entry_pattern(line[1:].strip()))
            continue
        cats.setdefault(current, []).append(_entry_pattern(line))
    compiled = [(cat, re.compile(r"(?<!\w)(?:" + "|".join(sorted(pats, key=len, reverse=True)) + r")(?!\w)"))
                for cat, pats in cats.items() if pats]
    allow = re.compile(r"(?<!\w)(?:" + "|".join(allowed) + r")(?!\w)") if allowed else None
    return _Blocklist(compiled, allow)


def _phone_numbers(text: str) -> list[str]:
    out = []
    for m in PHONE_RE.finditer(text):
        s = m.group()
        digits = re.sub(r"\D", "", s)
        if not 7 <= len(digits) <= 15:
            continue
        groups = re.findall(r"\d+", s)
        if all(len(g) == 4 and 1000 <= int(g) <= 2099 for g in groups) and len(groups) <= 2:
            continue  # a year range, "1987-1994"
        if "+" in s or "(" in s or len(groups) >= 3 or (len(groups) == 2 and len(groups[0]) == 3):
            out.append(s.strip())
    return out


def _blank_names(text: str, names: Iterable[str]) -> str:
    """The item's and history's own names blanked: a catalog title that looks
    unsafe ("True Crime Bullsh**", "Back off Bitch") is data the note may quote."""
    for name in sorted({n.strip() for n in names if n and len(n.strip()) >= 3}, key=len, reverse=True):
        for variant in {name, _PARENS.sub("", name).strip(), name.split(" (")[0].strip()}:
            if len(variant) >= 3:
                text = re.sub(r"(?<!\w)" + re.escape(variant) + r"(?!\w)", lambda m: " " * len(m.group()), text,
                              flags=re.IGNORECASE)
    return text


_PARENS = re.compile(r"\s*[\(\[][^\)\]]*[\)\]]")


def safety_gate(explanation: str | None, names: Iterable[str] = ()) -> GateResult:
    """Blocklisted terms (data/safety_blocklist.txt) and PII (email, phone, URL).
    `names` (the item's and the listener history's own names) are exempt."""
    if explanation is None:
        return GateResult(passed=False, reasons=[NO_EXPLANATION], score=0.0)
    bl = blocklist()
    reasons: list[str] = []
    explanation = _blank_names(explanation, names)
    variants = [fold(explanation), fold(deleet(explanation))]
    for i, v in enumerate(variants):
        if bl.allowed is not None:
            v = bl.allowed.sub(lambda m: " " * len(m.group()), v)
            variants[i] = v
    for cat, rx in bl.categories:
        spans: dict[tuple[int, int], str] = {}
        for v in variants:  # deleet keeps offsets, so one span is reported once
            for m in rx.finditer(v):
                spans.setdefault(m.span(), m.group())
        for term in dict.fromkeys(spans.values()):
            reasons.append(f'blocklisted term "{term}" ({cat})')
    for m in MASKED_PROFANITY_RE.finditer(explanation):
        reasons.append(f'masked profanity "{m.group()}"')
    emails = EMAIL_RE.findall(explanation)
    for e in emails:
        reasons.append(f'PII: email address "{e}"')
    no_email = EMAIL_RE.sub(" ", explanation)
    for u in URL_RE.findall(no_email):
        reasons.append(f'PII: URL "{u}"')
    for p in _phone_numbers(URL_RE.sub(" ", no_email)):
        reasons.append(f'PII: phone number "{p}"')
    return GateResult(passed=not reasons, reasons=reasons, score=0.0 if reasons else 1.0)
