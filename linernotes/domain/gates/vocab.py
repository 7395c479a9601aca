"""Word lists the grounding gate reads: common words that are never a name on
their own (data/grounding_common_words.txt) and the genre vocabulary
(data/genre_vocab.txt) with broader-genre links and ambiguity flags."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from linernotes.domain.gates.normalize import CONNECTORS, name_tokens

DATA_DIR = Path(__file__).resolve().parents[1] / "data"


def read_list(name: str) -> list[str]:
    path = DATA_DIR / name
    lines = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


@lru_cache(maxsize=1)
def common_words() -> frozenset[str]:
    """Token keys that never make a name on their own (data/grounding_common_words.txt)."""
    words: set[str] = set()
    for line in read_list("grounding_common_words.txt"):
        words.update(name_tokens(line))
    return frozenset(words)


@dataclass(frozen=True)
class GenreEntry:
    canonical: str
    parents: frozenset[str] = frozenset()
    ambiguous: bool = False


# Nouns after an ambiguous genre word that make it a genre claim ("rock anthem").
GENRE_CUES = frozenset("""
lens lenses angle slant bent perspective viewpoint framing
music musician musicians song songs track tracks tune tunes album albums record records lp ep single
singles band bands group groups outfit act acts artist artists singer singers anthem anthems ballad
ballads classic classics staple staples standard standards sound sounds vibe vibes energy edge feel
flavor flavour roots influence influences influenced infused tinged flavored flavoured leaning leanings
inspired driven tradition traditions scene legend legends icon icons giant giants heavyweight
heavyweights fan fans lover lovers listener listeners playlist playlists radio station gem gems number
numbers piece pieces cut cuts jam jams groove grooves riff riffs riffing hit hits favourite favourites
favorite favorites novel novels book books read reads story stories storytelling tale tales title
titles writer writers author authors saga sagas series podcast podcasts show shows episode episodes
programme program pick picks listen listens fare genre genres style styles lineage revival era
offering release collection chops sensibility mood spirit swagger heritage bent credentials touch
twist chronicle reader readers audiobook audiobooks buffs enthusiasts aficionados devotees purists pages
fix crowd veteran veterans royalty opus epic set mix mixtape compilation
tips advice talk insights lessons strategies coverage chat conversations interviews commentary discussion
""".split())
POSSESSIVES = frozenset({"your", "my", "his", "her", "their", "its", "our", "whose"})
_MAX_GENRE_TOKENS = 4


def phrase_key(text: str) -> str:
    return " ".join(name_tokens(text))


@lru_cache(maxsize=1)
def builtin_genres() -> dict[str, GenreEntry]:
    """Phrase key -> entry, from data/genre_vocab.txt (aliases resolved)."""
    raw: dict[str, tuple[frozenset[str], bool]] = {}
    aliases: dict[str, tuple[str, bool]] = {}
    for line in read_list("genre_vocab.txt"):
        ambiguous = line.startswith("~")
        line = line.lstrip("~").strip()
        if "=" in line:
            left, right = (s.strip() for s in line.split("=", 1))
            aliases[phrase_key(left)] = (phrase_key(right), ambiguous)
            continue
        parents: frozenset[str] = frozenset()
        if ">" in line:
            line, rhs = (s.strip() for s in line.split(">", 1))
            parents = frozenset(phrase_key(p) for p in rhs.split("|") if p.strip())
        raw[phrase_key(line)] = (parents, ambiguous)
    vocab = {k: GenreEntry(k, parents, amb) for k, (parents, amb) in raw.items()}
    for k, (target, amb) in aliases.items():
        tgt = vocab.get(target)
        vocab[k] = GenreEntry(target, tgt.parents if tgt else frozenset(), amb)
        if target not in vocab:
            vocab[target] = GenreEntry(target, frozenset(), amb)
    return vocab


def longest_genre_matches(keys: list[str], vocab: Mapping[str, GenreEntry]) -> list[tuple[int, int, str]]:
    """(start, end, phrase) of longest vocab phrases in a token-key list."""
    out, i = [], 0
    while i < len(keys):
        for n in range(min(_MAX_GENRE_TOKENS, len(keys) - i), 0, -1):
            p = " ".join(keys[i:i + n])
            if p in vocab:
                out.append((i, i + n, p))
                i += n
                break
        else:
            i += 1
    return out


def catalog_genre_entry(phrase: str, builtin: Mapping[str, GenreEntry]) -> GenreEntry:
    """A catalog label not in the built-in vocabulary: its broader genres are the
    built-in phrases inside it ('sci fi fantasy' > science fiction | fantasy); it
    is ambiguous unless it contains an unambiguous genre or ends with a cue noun."""
    toks = phrase.split()
    subs = [builtin[p] for s, e, p in longest_genre_matches(toks, builtin) if (s, e) != (0, len(toks))]
    parents = frozenset(e.canonical for e in subs)
    ambiguous = not any(not e.ambiguous for e in subs) and (not toks or toks[-1] not in GENRE_CUES)
    return GenreEntry(phrase, parents, ambiguous)


def _ancestors(key: str, vocab: Mapping[str, GenreEntry]) -> set[str]:
    out: set[str] = set()
    todo = [key]
    while todo:
        k = todo.pop()
        entry = vocab.get(k)
        if not entry:
            continue
        for p in (entry.canonical, *entry.parents):
            if p not in out:
                out.add(p)
                todo.append(p)
    return out


def genre_keys(label: str, vocab: Mapping[str, GenreEntry]) -> set[str]:
    """Everything a genre label supports: itself, its words, the vocab phrases in
    it and all their broader genres ('Alternative & Punk' -> alternative, punk...)."""
    toks = name_tokens(label)
    if not toks:
        return set()
    keys = {" ".join(toks), *toks}
    for _, _, p in longest_genre_matches(toks, vocab):
        keys.add(p)
    for k in list(keys):
        keys |= _ancestors(k, vocab)
    return keys


def genre_supported(phrase: str, allowed: set[str], vocab: Mapping[str, GenreEntry]) -> bool:
    """True when a mentioned genre phrase (or a broader genre of it) is allowed."""
    entry = vocab.get(phrase)
    canonical = entry.canonical if entry else phrase
    if phrase in allowed or canonical in allowed:
        return True
    return bool(_ancestors(phrase, vocab) & allowed)


def genre_words_of(vocab: Mapping[str, GenreEntry]) -> frozenset[str]:
    """Single words of the genre phrases (never a name on their own)."""
    return frozenset(w for p in vocab for w in p.split() if w not in CONNECTORS)


@lru_cache(maxsize=1)
def builtin_genre_words() -> frozenset[str]:
    return genre_words_of(builtin_genres())


@lru_cache(maxsize=None)
def read_sections(name: str) -> dict[str, tuple[str, ...]]:
    """A data file of `[section]` headers, each followed by phrases one a line."""
    out: dict[str, list[str]] = {}
    current = ""
    for line in read_list(name):
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1].strip()
            out.setdefault(current, [])
            continue
        out.setdefault(current, []).append(line)
    return {k: tuple(v) for k, v in out.items()}


def phrase_pattern(phrases: Iterable[str]) -> re.Pattern | None:
    """One regex for cue phrases: case-insensitive, whole words, spaces or hyphens
    between words, a trailing "*" for a word prefix ("tour*": tour, touring)."""
    parts = []
    for p in phrases:
        words = p.lower().split()
        pat = []
        for i, w in enumerate(words):
            if w.endswith("*"):
                pat.append(re.escape(w[:-1]) + r"\w*")
            else:
                pat.append(re.escape(w))
        parts.append(r"[\s\-]+".join(pat))
    if not parts:
        return None
    parts.sort(key=len, reverse=True)
    return re.compile(r"(?<![\w])(?:" + "|".join(parts) + r")(?![\w])", re.IGNORECASE)
