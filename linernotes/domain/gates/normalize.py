"""Name normalisation shared by every gate: accent/case folding, name keys,
splitting creator lists into people, title variants, a banded edit distance."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

# The reason every gate gives when the teacher answer did not parse.
NO_EXPLANATION = "no explanation parsed"

_SPECIAL = str.maketrans({"ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ß": "ss",
                          "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "þ": "th", "ı": "i",
                          "’": "'", "‘": "'", "`": "'", "´": "'"})
TOKEN_RE = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
# Dropped from name keys so "The Beatles" = "Beatles", "Simon & Garfunkel" = "Simon and Garfunkel".
KEY_STOP = frozenset({"the", "and"})
# Words a multi-word name never ends with.
END_STOP = frozenset({"the", "and", "a", "an", "of"})
# Lower-case words that may join capitalised words into one name.
CONNECTORS = frozenset({"of", "the", "a", "an", "and", "in", "on", "at", "to", "for", "from", "de",
                        "del", "la", "le", "les", "van", "von", "der", "den", "da", "do", "dos",
                        "y", "n", "et", "du", "des", "el", "los", "las", "di", "e", "vs", "with",
                        "or", "by", "is", "me", "my", "we", "you", "it", "no"})
# Tokens ending with "." that do not end a sentence.
ABBREVIATIONS = frozenset({"mr", "mrs", "ms", "dr", "st", "jr", "sr", "vs", "vol", "feat", "ft", "no",
                           "op", "inc", "ltd", "co", "etc", "approx", "mt", "prof", "rev", "gen",
                           "lt", "sgt", "capt", "col", "pt", "ed", "eds", "pp", "ca", "nr", "orig"})


def fold(text: str) -> str:
    """Accent-folded, case-folded text (apostrophe variants unified)."""
    if text.isascii():
        return (text.replace("`", "'") if "`" in text else text).lower()
    text = unicodedata.normalize("NFKD", text.translate(_SPECIAL))
    return "".join(c for c in text if not unicodedata.combining(c)).casefold()


def token_key(folded_token: str) -> str:
    if folded_token.endswith("'s") and len(folded_token) > 2:
        folded_token = folded_token[:-2]
    return folded_token.replace("'", "")


_POSSESSIVE = re.compile(r"(?<=[^\W_])'s(?![^\W_])")
_WORD = re.compile(r"[^\W_]+")


def name_tokens(text: str) -> list[str]:
    """Token keys of a name; the same keys `token_key` gives tokens of a sentence."""
    f = fold(text)
    if "'" in f:
        f = _POSSESSIVE.sub("", f).replace("'", "")
    return _WORD.findall(f)


def join_key(toks: Iterable[str]) -> str:
    toks = list(toks)
    kept = [t for t in toks if t not in KEY_STOP]
    return " ".join(kept or toks)


def name_key(text: str) -> str:
    """Normalised lookup key of a name: 'The AC/DC's' -> 'ac dc'."""
    return join_key(name_tokens(text))


_PERSON_SPLIT = re.compile(r"\s*(?:,|;|&|\+|\band\b|\bfeat\.?|\bft\.|\bfeaturing\b|\bwith\b|"
                           r"\bvs\.?(?=\s))\s*", re.IGNORECASE)


def split_people(creator: str) -> list[str]:
    """'Angus Young, Malcolm Young & Brian Johnson' -> the three people.
    '/' splits only between long parts ('Audioslave/Chris Cornell', not 'AC/DC')."""
    out = []
    for part in _PERSON_SPLIT.split(creator):
        part = part.strip(" .")
        if not part:
            continue
        slash = [p.strip() for p in part.split("/")]
        if len(slash) > 1 and all(len(p) >= 4 for p in slash):
            out.extend(slash)
        else:
            out.append(part)
    return out


def title_variants(title: str) -> set[str]:
    """Keys of a title and its main part ('Flu: The Story of ...' -> 'flu' too)."""
    keys = {name_key(title)}
    if "(" in title or "[" in title:
        no_paren = _PARENS.sub(" ", title).strip()
        if no_paren and no_paren != title:
            keys.add(name_key(no_paren))
    for sep in (":", " - ", " / ", "("):
        if sep in title:
            head = title.split(sep, 1)[0].strip()
            if len(head) >= 3:
                keys.add(name_key(head))
    keys.discard("")
    return keys


_PARENS = re.compile(r"\s*[\(\[][^\)\]]*[\)\]]")


_COMPOSER_RE = re.compile(r"\b(?:composed|written|hosted|narrated|performed|read)\s+by\s+(.+)$|"
                          r"\b(?:composers?|writers?|authors?|hosts?|narrators?)\s*:\s*(.+)$",
                          re.IGNORECASE | re.MULTILINE)


def description_people(description: str | None) -> list[str]:
    """People named by 'Composed by X, Y.' / 'Host: X' in an item description."""
    if not description:
        return []
    out: list[str] = []
    for m in _COMPOSER_RE.finditer(description):
        text = (m.group(1) or m.group(2) or "").strip().rstrip(".")
        if text:
            out.append(text)
            out.extend(split_people(text))
    return out


def max_edits(n: int) -> int:
    return 0 if n <= 4 else 1 if n <= 10 else 2


def within_edits(a: str, b: str, k: int) -> bool:
    """Levenshtein(a, b) <= k (banded, early exit)."""
    if abs(len(a) - len(b)) > k:
        return False
    if k == 0:
        return a == b
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        lo = max(1, i - k)
        hi = min(len(b), i + k)
        if lo > 1:
            cur[lo - 1] = k + 1
        for j in range(lo, hi + 1):
            cost = 0 if ca == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
        if hi < len(b):
            cur[hi + 1:] = [k + 1] * (len(b) - hi)
        if min(cur) > k:
            return False
        prev = cur
    return prev[-1] <= k
