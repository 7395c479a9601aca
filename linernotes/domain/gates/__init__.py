"""Per-row gates for generated liner notes: grounding, style and safety.

Every gate returns a `GateResult(passed, reasons, score)`; `run_gates` returns
`{"grounding": ..., "style": ..., "safety": ...}`. Gates never drop a row: a
failed gate only records why, and curation decides. An explanation of None (the
teacher answer did not parse) fails all three with "no explanation parsed".

Grounding rule
--------------
Every artist/author/title/album/year/genre the sentence names must be a fact
of the recommended item or of the listener's context:

* allowed names: the item's title, creator, collection (album) and publisher;
  the people of a creator or composer list ("Angus Young, Malcolm Young" allows
  each person; composers come from a "Composed by ..." item description); the
  listener's history titles and creators; the listener's country. A title also
  allows its main part (before "(", ":" or " - "), any contiguous run of two or
  more of its words ("Harry Potter" for "Harry Potter and the Sorcerer's
  Stone"), and single words of allowed names (a surname: "Tolkien").
* names are compared after normalisation: accents folded (Antônio = Antonio),
  case and punctuation ignored ("AC/DC" = "ac dc"), "the"/"and"/"&" dropped,
  possessive "'s" dropped; a small edit distance is tolerated for typos
  (0 edits up to 4 characters, 1 up to 10, 2 beyond).
* names are found as (1) quoted spans ("...", “...”, '...') that contain a
  capitalised word: each is a title claim; (2) runs of capitalised words
  (initials, "&", "/", "of", "the", ... may join them; punctuation ends them),
  matched greedily left to right (longest first, up to 8 words) against allowed
  names, then against the catalog (`CatalogIndex`). A single capitalised word
  is checked against catalog creators ("Metallica") and, when not the first word
  of a sentence, against catalog titles/albums ("Queen's Warning"). Words from
  `data/grounding_common_words.txt` (days, months, countries, nationalities,
  cities, eras, religions, sentence starters like "Perfect"/"Fans", awards) and
  genre words are never looked up on their own; a span made only of them is no
  name ("Sunday Morning", "Brazilian Rock").
* verdicts for a name that is not allowed:
  - in the catalog -> wrong entity: '"Metallica" is a catalog creator but not of
    this item or the listener's history' (or title, album, title/album,
    publisher);
  - quoted and not in the catalog -> invented: '"Midnight Velvet" (quoted
    title) not in catalog';
  - two or more capitalised words, one of them neither common, genre, allowed
    nor sentence-initial, that match nothing -> invented: '"Neon Harbor
    Sessions" is not a name from this item, the listener's history or the
    catalog'. A catalog name glued to such words ("Velvet Thunder Revival") is
    reported as the whole unknown name.
  Without an index the gate cannot tell wrong from invented: unknown names read
  '... not a name from this item or the listener's history' and quoted ones
  '(quoted title) not in item/listener facts'.
* years: 4-digit numbers 1100-2099 (and decades "1990s", "'80s", "the
  eighties", 2-digit "'94") must match the item year: 'year 1987 not supported
  (item year: 1994)' / '(item has no year)'; a decade must contain it: 'decade
  1990s not supported (...)'. Years inside an allowed name ("1984", "Summer of
  '69") or written in the item's own title ("... Pandemic of 1918") are
  supported; counts ("1200 pages", "2000 copies") are not years.
* genres: phrases from `data/genre_vocab.txt` plus the catalog's own genre
  labels. Ambiguous words (rock, pop, country, soul, comedy, history, ...) only
  count before a cue noun ("rock anthem", "comedy podcast", "pop-punk fans") or
  when capitalised mid-sentence, and never after a possessive ("your history").
  A genre is supported when it, or a broader genre it belongs to ("heavy metal"
  > "metal", "punk rock" > "punk"|"rock"), is among the item genres, the
  listener's history genres or taste, or a broader genre of one of them:
  'genre "jazz" not in item genres [\'Rock\'] or listener taste'.
* facts_used: each entry ("Metallica", "Jazz", "duration_min: 8.6", "year",
  "creator: AC/DC") must match an item or listener fact value (same
  normalisation and typo tolerance, or one contains the other), a number must
  equal the item year or duration, and a bare key must name a present fact:
  'facts_used entry "..." not found in item/listener facts'.

score = supported claims / all claims found (1.0 when the sentence names
nothing checkable). passed = no reasons.

Known blind spots (measured with synth/planted.py and hand-written rows):
invented or wrong names that are a single word ("by Zorblax", or an unquoted
one-word title at the start of a sentence), made only of common/genre words
("Short Story Long", "Midnight Velvet" when "Velvet" is an allowed word),
lower-cased or non-English lower-case words ("Der schwarze Kelch"), or split by
punctuation ("Past, Present and Future"); catalog creators that are common words
("by Portugal", "hosted by French"); paraphrased facts ("eight-minute", "debut
album", "Grammy-winning"); wrong country/age claims; wrong relations between
allowed names ("Tolkien's Harry Potter" when both are in the context); ambiguous
genre words without a cue noun ("a pure rock rush"). The other way round: a
capitalised common phrase mid-sentence that happens to be a catalog title ("a
Road Trip pick", "a Heaven-sent riff") is flagged as a wrong title unless its
words are in the common-words file.

Style thresholds are the module constants below (MAX_WORDS, ...); the safety
blocklist lives in `data/safety_blocklist.txt` (its header documents the
syntax), PII patterns are the *_RE constants.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from linernotes.records import GateResult, Item, Listener

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
NO_EXPLANATION = "no explanation parsed"

# ============================================================================ normalisation

_SPECIAL = str.maketrans({"ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ß": "ss",
                          "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "þ": "th", "ı": "i",
                          "’": "'", "‘": "'", "`": "'", "´": "'"})
TOKEN_RE = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
# Dropped from name keys so "The Beatles" = "Beatles", "Simon & Garfunkel" = "Simon and Garfunkel".
_KEY_STOP = frozenset({"the", "and"})
# Words a multi-word name never ends with.
_END_STOP = frozenset({"the", "and", "a", "an", "of"})
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


def _tkey(folded_token: str) -> str:
    if folded_token.endswith("'s") and len(folded_token) > 2:
        folded_token = folded_token[:-2]
    return folded_token.replace("'", "")


_POSSESSIVE = re.compile(r"(?<=[^\W_])'s(?![^\W_])")
_WORD = re.compile(r"[^\W_]+")


def name_tokens(text: str) -> list[str]:
    """Token keys of a name; the same keys `_tkey` gives tokens of a sentence."""
    f = fold(text)
    if "'" in f:
        f = _POSSESSIVE.sub("", f).replace("'", "")
    return _WORD.findall(f)


def _join_key(toks: Iterable[str]) -> str:
    toks = list(toks)
    kept = [t for t in toks if t not in _KEY_STOP]
    return " ".join(kept or toks)


def name_key(text: str) -> str:
    """Normalised lookup key of a name: 'The AC/DC's' -> 'ac dc'."""
    return _join_key(name_tokens(text))


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


def _title_variants(title: str) -> set[str]:
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


def _max_edits(n: int) -> int:
    return 0 if n <= 4 else 1 if n <= 10 else 2


def _within_edits(a: str, b: str, k: int) -> bool:
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


# ============================================================================ word lists


def _read_list(name: str) -> list[str]:
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
    for line in _read_list("grounding_common_words.txt"):
        words.update(name_tokens(line))
    return frozenset(words)


@dataclass(frozen=True)
class GenreEntry:
    canonical: str
    parents: frozenset[str] = frozenset()
    ambiguous: bool = False


# Nouns after an ambiguous genre word that make it a genre claim ("rock anthem").
GENRE_CUES = frozenset("""
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
""".split())
_POSSESSIVES = frozenset({"your", "my", "his", "her", "their", "its", "our", "whose"})
_MAX_GENRE_TOKENS = 4


def _phrase(text: str) -> str:
    return " ".join(name_tokens(text))


@lru_cache(maxsize=1)
def builtin_genres() -> dict[str, GenreEntry]:
    """Phrase key -> entry, from data/genre_vocab.txt (aliases resolved)."""
    raw: dict[str, tuple[frozenset[str], bool]] = {}
    aliases: dict[str, tuple[str, bool]] = {}
    for line in _read_list("genre_vocab.txt"):
        ambiguous = line.startswith("~")
        line = line.lstrip("~").strip()
        if "=" in line:
            left, right = (s.strip() for s in line.split("=", 1))
            aliases[_phrase(left)] = (_phrase(right), ambiguous)
            continue
        parents: frozenset[str] = frozenset()
        if ">" in line:
            line, rhs = (s.strip() for s in line.split(">", 1))
            parents = frozenset(_phrase(p) for p in rhs.split("|") if p.strip())
        raw[_phrase(line)] = (parents, ambiguous)
    vocab = {k: GenreEntry(k, parents, amb) for k, (parents, amb) in raw.items()}
    for k, (target, amb) in aliases.items():
        tgt = vocab.get(target)
        vocab[k] = GenreEntry(target, tgt.parents if tgt else frozenset(), amb)
        if target not in vocab:
            vocab[target] = GenreEntry(target, frozenset(), amb)
    return vocab


def _longest_genre_matches(keys: list[str], vocab: Mapping[str, GenreEntry]) -> list[tuple[int, int, str]]:
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


def _catalog_genre_entry(phrase: str, builtin: Mapping[str, GenreEntry]) -> GenreEntry:
    """A catalog label not in the built-in vocabulary: its broader genres are the
    built-in phrases inside it ('sci fi fantasy' > science fiction | fantasy); it
    is ambiguous unless it contains an unambiguous genre or ends with a cue noun."""
    toks = phrase.split()
    subs = [builtin[p] for s, e, p in _longest_genre_matches(toks, builtin) if (s, e) != (0, len(toks))]
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
    for _, _, p in _longest_genre_matches(toks, vocab):
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


# ============================================================================ catalog index

KIND_TITLE, KIND_CREATOR, KIND_COLLECTION, KIND_PUBLISHER = 1, 2, 4, 8


def _kind_word(flags: int) -> str:
    if flags & KIND_CREATOR:
        return "creator"
    if flags & KIND_TITLE and flags & KIND_COLLECTION:
        return "title/album"
    if flags & KIND_TITLE:
        return "title"
    if flags & KIND_COLLECTION:
        return "album"
    if flags & KIND_PUBLISHER:
        return "publisher"
    return "name"


@dataclass
class CatalogIndex:
    """Normalised names and genre labels of a whole catalog, for telling a
    wrong entity (a real name, but of another item) from an invented one.

    `names` maps `name_key(...)` -> bit flags of KIND_TITLE / KIND_CREATOR /
    KIND_COLLECTION / KIND_PUBLISHER. Creator lists are indexed whole and per
    person. ~280k items build in a few seconds."""

    names: dict[str, int] = field(default_factory=dict)
    genre_labels: dict[str, str] = field(default_factory=dict)  # phrase key -> label as written
    n_items: int = 0
    _vocab: dict[str, GenreEntry] | None = field(default=None, repr=False, compare=False)
    _words: frozenset[str] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_items(cls, items: Iterable[Item] | Mapping[str, Item],
                   listeners: Iterable[Listener] | None = None) -> "CatalogIndex":
        if isinstance(items, Mapping):
            items = items.values()
        names: dict[str, int] = {}
        get = names.get
        person_cache: dict[str, list[str]] = {}
        title_cache: dict[str, set[str]] = {}
        genres: dict[str, str] = {}

        def add_people(text: str) -> None:
            keys = person_cache.get(text)
            if keys is None:
                keys = list({name_key(text), *(name_key(p) for p in split_people(text))} - {""})
                person_cache[text] = keys
            for k in keys:
                names[k] = get(k, 0) | KIND_CREATOR

        def add_title(text: str, kind: int, cache: bool) -> None:
            keys = title_cache.get(text) if cache else None
            if keys is None:
                keys = _title_variants(text)
                if cache:
                    title_cache[text] = keys
            for k in keys:
                names[k] = get(k, 0) | kind

        n = 0
        for it in items:
            n += 1
            add_title(it.title, KIND_TITLE, False)
            if it.creator:
                add_people(it.creator)
            if it.collection:
                add_title(it.collection, KIND_COLLECTION, True)
            if it.publisher:
                add_title(it.publisher, KIND_PUBLISHER, True)
            for g in it.genres:
                if g not in genres:
                    genres[g] = _phrase(g)
            if it.description and "by" in it.description:
                for person in description_people(it.description):
                    add_people(person)
        for lst in listeners or ():
            for h in lst.history:
                add_title(h.title, KIND_TITLE, True)
                if h.creator:
                    add_people(h.creator)
                for g in h.genres:
                    if g not in genres:
                        genres[g] = _phrase(g)
            for g in lst.taste:
                if g not in genres:
                    genres[g] = _phrase(g)
        names.pop("", None)
        labels = {p: g for g, p in genres.items() if p}
        return cls(names=names, genre_labels=labels, n_items=n)

    def kind(self, name: str) -> int:
        """Kind flags of a raw name (0 when not in the catalog)."""
        return self.names.get(name_key(name), 0)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.kind(name) != 0

    def genre_words(self) -> frozenset[str]:
        if self._words is None:
            self._words = _genre_words(self.genre_vocab())
        return self._words

    def genre_vocab(self) -> dict[str, GenreEntry]:
        """Built-in genre vocabulary plus this catalog's genre labels."""
        if self._vocab is None:
            base = builtin_genres()
            vocab = dict(base)
            for phrase in self.genre_labels:
                if phrase in GENRE_CUES:
                    continue  # a label like "music" is too common a word to read as a genre claim
                if phrase not in vocab:
                    vocab[phrase] = _catalog_genre_entry(phrase, base)
            self._vocab = vocab
        return self._vocab


# ============================================================================ grounding


@dataclass
class _Tok:
    text: str
    start: int
    end: int
    key: str
    cap: bool
    sent_start: bool
    masked: bool = False  # inside an allowed name (a supported mention)
    used: bool = False    # already judged as a name


_JOIN_GAP = re.compile(r"['’]?\s*(?:[&/+\-–]\s*)?['’]?")


def _sentence_break(gap: str, prev: _Tok | None) -> bool:
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


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    prev_end = 0
    for m in TOKEN_RE.finditer(text):
        raw = m.group()
        gap = text[prev_end:m.start()]
        toks.append(_Tok(raw, m.start(), m.end(), _tkey(fold(raw)), raw[0].isupper(),
                         _sentence_break(gap, toks[-1] if toks else None)))
        prev_end = m.end()
    return toks


def _joinable(text: str, a: _Tok, b: _Tok) -> bool:
    gap = text[a.end:b.start]
    if _JOIN_GAP.fullmatch(gap):
        return True
    if re.fullmatch(r"\.\s*", gap) and ((len(a.text) == 1 and a.text.isupper()) or a.key in ABBREVIATIONS):
        return True
    return False


@dataclass
class _Allowed:
    keys: dict[str, str]        # name key -> what it is ("item creator", ...)
    subgrams: set[str]          # contiguous runs (>= 2 words) of allowed names
    tokens: set[str]            # single words of allowed names
    by_len: dict[int, list[str]]
    max_tokens: int
    genres: set[str]
    genre_labels: list[str]
    year: int | None
    name_years: set[int]        # years written in the item's own names ("... Pandemic of 1918")
    facts: dict[str, set[str]]  # fact group -> value keys (facts_used check)


def _allowed(item: Item, listener: Listener | None, vocab: Mapping[str, GenreEntry]) -> _Allowed:
    keys: dict[str, str] = {}
    raw_len: list[int] = []
    name_years: set[int] = set()

    def add(text: str | None, what: str, title: bool = False, people: bool = False) -> None:
        if not text:
            return
        raw_len.append(len(TOKEN_RE.findall(text)))
        if what.startswith("item"):
            name_years.update(int(y) for y in re.findall(r"(?<!\d)(1[1-9]\d\d|20\d\d)(?!\d)", text))
        found = _title_variants(text) if title else {name_key(text)}
        if people:
            for p in split_people(text):
                found.add(name_key(p))
        for k in found:
            if k and k not in keys:
                keys[k] = what

    add(item.title, "item title", title=True)
    add(item.creator, "item creator", people=True)
    add(item.collection, "item collection", title=True)
    add(item.publisher, "item publisher", title=True)
    composers = description_people(item.description)
    for person in composers:
        add(person, "item composer", people=True)
    genre_labels = list(item.genres)
    facts: dict[str, set[str]] = {
        "title": {name_key(item.title)}, "creator": set(), "collection": set(), "publisher": set(),
        "genres": set(), "year": set(), "duration": set(), "type": {item.item_type},
        "country": set(), "age_band": set(), "history": set(), "taste": set(),
    }
    if item.creator:
        facts["creator"] |= {name_key(item.creator), *(name_key(p) for p in split_people(item.creator))}
    facts["creator"] |= {name_key(p) for p in composers}
    if item.collection:
        facts["collection"].add(name_key(item.collection))
    if item.publisher:
        facts["publisher"].add(name_key(item.publisher))
    if item.year:
        facts["year"].add(str(item.year))
    f = item.facts()
    if "duration_min" in f:
        facts["duration"].add(str(f["duration_min"]))
    if listener is not None:
        for h in listener.history:
            add(h.title, "listener history title", title=True)
            add(h.creator, "listener history creator", people=True)
            facts["history"] |= _title_variants(h.title)
            if h.creator:
                facts["history"] |= {name_key(h.creator), *(name_key(p) for p in split_people(h.creator))}
            genre_labels.extend(h.genres)
        genre_labels.extend(listener.taste)
        facts["taste"] |= {name_key(t) for t in listener.taste}
        if listener.country:
            add(listener.country, "listener country")
            facts["country"].add(name_key(listener.country))
        if listener.age_band:
            facts["age_band"].add(name_key(listener.age_band))
    genres: set[str] = set()
    for g in genre_labels:
        genres |= genre_keys(g, vocab)
        facts["genres"].add(name_key(g))
    subgrams: set[str] = set()
    tokens: set[str] = set()
    by_len: dict[int, list[str]] = {}
    for k in keys:
        toks = k.split()
        by_len.setdefault(len(k), []).append(k)
        tokens.update(t for t in toks if len(t) >= 2 and t not in CONNECTORS)
        for i in range(len(toks)):
            for j in range(i + 2, len(toks) + 1):
                subgrams.add(" ".join(toks[i:j]))
    max_tokens = max(raw_len, default=1) + 1
    return _Allowed(keys, subgrams, tokens, by_len, max_tokens, genres, list(item.genres),
                    item.year, name_years, facts)


def _fuzzy_allowed(key: str, allowed: _Allowed) -> bool:
    k = _max_edits(len(key))
    if k == 0:
        return False
    for n in range(len(key) - k, len(key) + k + 1):
        for cand in allowed.by_len.get(n, ()):
            if _within_edits(key, cand, k):
                return True
    return False


def _is_allowed_name(key: str, n_tokens: int, allowed: _Allowed) -> bool:
    if key in allowed.keys:
        return True
    if n_tokens >= 2 and key in allowed.subgrams:
        return True
    return len(key) >= 5 and _fuzzy_allowed(key, allowed)


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


class _Claims:
    def __init__(self) -> None:
        self.total = 0
        self.reasons: list[str] = []

    def ok(self) -> None:
        self.total += 1

    def bad(self, reason: str) -> None:
        self.total += 1
        if reason not in self.reasons:
            self.reasons.append(reason)


def _span_text(text: str, toks: list[_Tok]) -> str:
    shown = text[toks[0].start:toks[-1].end]
    return re.sub(r"['’]s$", "", shown)


def _wrong_entity(shown: str, flags: int) -> str:
    word = _kind_word(flags)
    if flags & KIND_CREATOR:
        return f'"{shown}" is a catalog creator but not of this item or the listener\'s history'
    if flags & KIND_PUBLISHER and not flags & (KIND_TITLE | KIND_COLLECTION):
        return f'"{shown}" is a catalog publisher but not of this item'
    return f'"{shown}" is a catalog {word} but not this item or one in the listener\'s history'


def _check_quotes(text: str, toks: list[_Tok], allowed: _Allowed, index: CatalogIndex | None,
                  vocab: Mapping[str, GenreEntry], genre_words: frozenset[str], claims: _Claims) -> None:
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
        key = _join_key(keys)
        if all(k in plain or k.isdigit() for k in keys) and (index is None or key not in index.names):
            continue  # 'that "Saturday Night" feeling': no name in it
        shown = m.group(g).strip()
        for t in inside:
            t.used = True
        variants = _title_variants(shown) | {key}
        if any(_is_allowed_name(v, len(v.split()), allowed) for v in variants):
            claims.ok()
        elif index is not None and key in index.names:
            claims.bad(_wrong_entity(shown, index.names[key]))
        elif index is not None:
            claims.bad(f'"{shown}" (quoted title) not in catalog')
        else:
            claims.bad(f'"{shown}" (quoted title) not in item/listener facts')


def _mask_allowed(toks: list[_Tok], allowed: _Allowed, claims: _Claims) -> None:
    i = 0
    while i < len(toks):
        for n in range(min(allowed.max_tokens, len(toks) - i), 0, -1):
            if n > 1 and (toks[i + n - 1].key in _END_STOP or toks[i].key == "and"):
                continue  # never swallow a following "The" ("Germain's The Canopy")
            key = _join_key(t.key for t in toks[i:i + n])
            if key in allowed.keys and key not in CONNECTORS and key not in _KEY_STOP:
                for t in toks[i:i + n]:
                    t.masked = True
                claims.ok()
                i += n
                break
        else:
            i += 1


def _runs(text: str, toks: list[_Tok]) -> list[list[_Tok]]:
    runs: list[list[_Tok]] = []
    cur: list[_Tok] = []

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
        if cur and (not _joinable(text, cur[-1], t) or t.sent_start):
            flush()
        if t.cap or (cur and (t.text[0].isdigit() or t.key in CONNECTORS)):
            cur.append(t)
        else:
            flush()
    flush()
    return runs


def _check_names(text: str, toks: list[_Tok], allowed: _Allowed, index: CatalogIndex | None,
                 genre_words: frozenset[str], claims: _Claims) -> None:
    common = common_words()
    plain = common | genre_words | CONNECTORS

    def unknown_word(t: _Tok) -> bool:
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
                if not seg[0].cap or not seg[-1].cap or (n > 1 and seg[-1].key in _END_STOP):
                    continue
                key = _join_key(t.key for t in seg)
                if not key:
                    continue
                if n >= 2 and _is_allowed_name(key, n, allowed):
                    found = (i, n, "allowed", 0)
                elif n == 1 and (key in allowed.tokens or key in allowed.keys):
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
            else:
                claims.bad(_wrong_entity(_span_text(text, seg), flags))
        # 3. leftover runs of capitalised words: an unknown name when two or more
        #    capitalised words (not sentence-initial) include one that is not a common word
        # (a single word of an allowed name does not split a group: "Michael Perkins"
        #  is unknown even when the item's author is Michael Malone)
        single_allowed = {s for s, n, kind, _ in matches if kind == "allowed" and n == 1}
        group: list[_Tok] = []
        for j in range(len(run) + 1):
            if j < len(run) and (j in left or j in single_allowed):
                group.append(run[j])
                continue
            if group:
                # a sentence-initial word counts as capitalised but never as the unknown one:
                # "Jimi Hendrix wrote..." is a name, "Dreamy Bossa Nova..." is not
                caps = [t for t in group if t.cap and not t.key.isdigit()]
                if len(caps) >= 2 and any(unknown_word(t) for t in caps):
                    claims.bad(_unknown_name(_span_text(text, group), index))
                group = []


def _in_allowed(j: int, matches: list[tuple[int, int, str, int]]) -> bool:
    return any(kind == "allowed" and s <= j < s + n for s, n, kind, _ in matches)


def _unknown_name(shown: str, index: CatalogIndex | None) -> str:
    if index is not None:
        return f'"{shown}" is not a name from this item, the listener\'s history or the catalog'
    return f'"{shown}" is not a name from this item or the listener\'s history'


def _year_covered(toks: list[_Tok], start: int, end: int) -> bool:
    return any(t.masked and t.start <= start and end <= t.end + 1 for t in toks)


def _check_years(text: str, toks: list[_Tok], allowed: _Allowed, claims: _Claims) -> None:
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


def _check_genres(text: str, toks: list[_Tok], allowed: _Allowed, vocab: Mapping[str, GenreEntry],
                  claims: _Claims) -> None:
    free = [t for t in toks if not t.masked and not t.used]
    keys = [t.key for t in free]
    seen: set[str] = set()
    for s, e, phrase in _longest_genre_matches(keys, vocab):
        # contiguous in the text? (a masked name in between breaks the phrase)
        if any(free[j + 1].start - free[j].end > 3 for j in range(s, e - 1)):
            continue
        entry = vocab[phrase]
        first = free[s]
        prev_idx = toks.index(first) - 1
        prev = toks[prev_idx] if prev_idx >= 0 else None
        if entry.ambiguous:
            if prev is not None and prev.key in _POSSESSIVES:
                continue
            last_i = toks.index(free[e - 1])
            nxt = toks[last_i + 1] if last_i + 1 < len(toks) else None
            # "fans of Rock" counts; "World War" (followed by another capital) does not
            capitalised_mid = first.cap and not first.sent_start and not (nxt is not None and nxt.cap)
            if not capitalised_mid and not _has_cue(toks, last_i, vocab):
                continue
        shown = _span_text(text, free[s:e]).lower()
        if phrase in seen:
            continue
        seen.add(phrase)
        if genre_supported(phrase, allowed.genres, vocab):
            claims.ok()
        else:
            claims.bad(f'genre "{shown}" not in item genres {allowed.genre_labels} or listener taste')


def _has_cue(toks: list[_Tok], last: int, vocab: Mapping[str, GenreEntry]) -> bool:
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


def _check_facts_used(facts_used: Iterable[Any], allowed: _Allowed, claims: _Claims) -> None:
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


def _fact_value_ok(value: str, group: str | None, allowed: _Allowed, all_values: set[str],
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
    k = _max_edits(len(key))
    if k and len(key) >= 5 and any(_within_edits(key, c, k) for c in pool):
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


def context_supports_name(name: str, item: Item, listener: Listener | None) -> bool:
    """Whether the grounding gate would accept `name` for this item and listener
    (an allowed name, a run of its words, a typo of one, or only allowed words)."""
    allowed = _allowed(item, listener, builtin_genres())
    key = name_key(name)
    toks = key.split()
    if not key:
        return False
    return _is_allowed_name(key, len(toks), allowed) or all(t in allowed.tokens for t in toks)


def context_supports_genre(label: str, item: Item, listener: Listener | None,
                           index: CatalogIndex | None = None) -> bool | None:
    """Whether naming genre `label` is supported for this item and listener:
    True / False, or None when the gate would not read `label` as a genre."""
    vocab = index.genre_vocab() if index is not None else builtin_genres()
    allowed = _allowed(item, listener, vocab)
    phrase = " ".join(name_tokens(label))
    keys = genre_keys(label, vocab)
    read = [k for k in {phrase, *keys} if k in vocab]
    if not read:
        return None
    return any(genre_supported(k, allowed.genres, vocab) for k in read)


def grounding_gate(explanation: str | None, facts_used: Iterable[Any] | None, item: Item,
                   listener: Listener | None, index: CatalogIndex | None = None) -> GateResult:
    """Check that every name, year and genre in `explanation` is a fact of the
    item or the listener (see the module docstring for the rule)."""
    if explanation is None:
        return GateResult(passed=False, reasons=[NO_EXPLANATION], score=0.0)
    vocab = index.genre_vocab() if index is not None else builtin_genres()
    allowed = _allowed(item, listener, vocab)
    genre_words = index.genre_words() if index is not None else _builtin_genre_words()
    claims = _Claims()
    toks = _tokenize(explanation)
    _mask_allowed(toks, allowed, claims)
    _check_quotes(explanation, toks, allowed, index, vocab, genre_words, claims)
    _check_names(explanation, toks, allowed, index, genre_words, claims)
    _check_years(explanation, toks, allowed, claims)
    _check_genres(explanation, toks, allowed, vocab, claims)
    _check_facts_used(facts_used or [], allowed, claims)
    bad = len(claims.reasons)
    score = 1.0 if claims.total == 0 else max(0.0, 1.0 - bad / claims.total)
    return GateResult(passed=not claims.reasons, reasons=claims.reasons, score=round(score, 4))


def _genre_words(vocab: Mapping[str, GenreEntry]) -> frozenset[str]:
    """Single words of the genre phrases (never a name on their own)."""
    return frozenset(w for p in vocab for w in p.split() if w not in CONNECTORS)


@lru_cache(maxsize=1)
def _builtin_genre_words() -> frozenset[str]:
    return _genre_words(builtin_genres())


# ============================================================================ style

MAX_WORDS = 30              # words = runs of letters/digits ("AC/DC", "eight-minute" count once)
MAX_SENTENCES = 1           # exactly one sentence
REQUIRE_END_PUNCTUATION = True  # the sentence ends with . ! ? or … (before closing quotes/emoji)
MAX_EMOJI = 1               # more is "emoji spam"
MAX_SECOND_PERSON = 2       # you / your / you're / yours / yourself ...
MAX_ACRONYM_LETTERS = 4     # an all-caps word up to 4 letters is an acronym (UK, USA, INXS)
MAX_UNKNOWN_ACRONYMS = 1    # two or more all-caps words that are neither known acronyms nor
                            # item/listener names count as shouting ("LOVE THIS")

KNOWN_ACRONYMS = frozenset("""
UK US USA EU UN AC DC BBC NPR MTV VH TV DJ DJS MC LP EP CD CDS DVD FM AM PM NYC LA NBA NFL MLB NHL
PBS CNN HBO ABC NBC CBS ESPN REM KRS UB RB OK ID YA AI LGBT LGBTQ ASMR BPM VIP II III IV VI VII
VIII IX XI XII NASA FBI CIA JFK MLK RNB EDM EP ATL UFO
""".split())
_SECOND_PERSON = frozenset({"you", "your", "yours", "yourself", "yourselves", "you're", "youre",
                            "you've", "youve", "you'll", "youll", "you'd", "youd", "ya", "y'all",
                            "yall", "thee", "thou", "thy"})
_WORD_RE = re.compile(r"[^\W_]+(?:['’\-./&][^\W_]+)*\.?")
EMOJI_RE = re.compile(
    "[\U0001F1E6-\U0001F1FF]{2}"
    "|[\U0001F300-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF\u2300-\u23FF\u3030\u303D\u3297\u3299"
    "\u203C\u2049\u2139\u24C2\u25AA-\u25FE]\uFE0F?[\U0001F3FB-\U0001F3FF]?"
    "(?:\u200D[\U0001F300-\U0001FAFF\u2600-\u27BF]\uFE0F?[\U0001F3FB-\U0001F3FF]?)*")
_MARKUP = [
    (re.compile(r"[{}]"), "leftover JSON/markup: braces"),
    (re.compile(r'"\s*\w+\s*"\s*:'), "leftover JSON/markup: a JSON key"),
    (re.compile(r"<\|[^|>]*\|>|</?[A-Za-z][\w-]*(?:\s[^<>]*)?/?>"), "leftover JSON/markup: a tag"),
    (re.compile(r"`"), "leftover JSON/markup: backticks"),
    (re.compile(r"\*\*|__|~~"), "leftover JSON/markup: markdown emphasis"),
    (re.compile(r"^\s*(?:#{1,6}\s|[-*•]\s|\d+[.)]\s)"), "leftover JSON/markup: heading or list marker"),
    (re.compile(r"\[(?:artist|title|album|author|genre|year|name|listener|user|song|book|podcast|"
                r"creator|insert)[^\]]*\]", re.IGNORECASE), "leftover JSON/markup: a [placeholder]"),
    (re.compile(r"\\[nt\"]"), "leftover JSON/markup: an escape sequence"),
    (re.compile(r"\b(?:facts_used|explanation)\b\s*[:=]", re.IGNORECASE), "leftover JSON/markup: a field label"),
]
_META = [
    re.compile(r"\bas an ai\b", re.IGNORECASE),
    re.compile(r"\b(?:large )?language model\b", re.IGNORECASE),
    re.compile(r"^\W*(?:sure|certainly|of course|okay|ok|absolutely)\b\s*[,!.:]", re.IGNORECASE),
    re.compile(r"^\W*here(?:'s|’s| is| are)\b", re.IGNORECASE),
    re.compile(r"\bhere(?:'s|’s| is) (?:a|an|the|your|my) (?:one-sentence |short |brief |personali[sz]ed )?"
               r"(?:recommendation|explanation|sentence|liner note|response|answer|note)\b", re.IGNORECASE),
    re.compile(r"^\W*(?:liner note|explanation|recommendation|answer|output)\s*:", re.IGNORECASE),
    re.compile(r"\bi hope (?:this|that) helps\b", re.IGNORECASE),
    re.compile(r"\blet me know\b", re.IGNORECASE),
    re.compile(r"\bi(?:'m| am) (?:sorry|unable|not able)\b", re.IGNORECASE),
    re.compile(r"\bi (?:cannot|can't|can not)\b", re.IGNORECASE),
    re.compile(r"\b(?:the |based on the )?(?:provided|given) (?:facts|metadata|context|data|information|catalog)\b",
               re.IGNORECASE),
    re.compile(r"\bcatalog[_ ]data\b", re.IGNORECASE),
]


def count_words(text: str) -> int:
    return len(_WORD_RE.findall(text))


def count_sentences(text: str) -> int:
    """Sentences by terminal punctuation, not counting initials ("P. O."),
    abbreviations ("Vol.", "feat."), dotted acronyms ("R.E.M.") or an ellipsis
    followed by a lower-case word."""
    if not text.strip():
        return 0
    count, last = 1, 0
    for m in re.finditer(r"[.!?…]+[\"'”’)\]]*(?=\s)", text):
        rest = text[m.end():].strip()
        if not rest:
            break
        punct = m.group()
        before = text[last:m.start()]
        wm = re.search(r"([^\W_][\w.'’\-]*)$", before)
        word = wm.group(1) if wm else ""
        if punct.startswith(".") and not punct.startswith(".."):
            if (len(word) == 1 and word.isalpha()) or word.lower() in ABBREVIATIONS or "." in word:
                continue
        if (punct.startswith("..") or punct.startswith("…")) and rest[:1].islower():
            continue
        count += 1
        last = m.end()
    return count


def style_gate(explanation: str | None, allowed_names: Iterable[str] = ()) -> GateResult:
    """Length, one sentence, emoji, second person, shouting, markup, meta talk.
    `allowed_names` (item/listener names) may be all-caps without counting as shouting."""
    if explanation is None:
        return GateResult(passed=False, reasons=[NO_EXPLANATION], score=0.0)
    text = explanation
    reasons: list[str] = []
    if not text.strip():
        return GateResult(passed=False, reasons=["empty explanation"], score=0.0)
    n_words = count_words(text)
    if n_words > MAX_WORDS:
        reasons.append(f"{n_words} words (max {MAX_WORDS})")
    if "\n" in text.strip():
        reasons.append("contains a line break")
    n_sent = count_sentences(text)
    if n_sent > MAX_SENTENCES:
        reasons.append(f"{n_sent} sentences (must be exactly {MAX_SENTENCES})")
    if REQUIRE_END_PUNCTUATION:
        tail = re.sub(r"[\s\"'”’)\]]+$", "", EMOJI_RE.sub("", text).rstrip())
        if tail and tail[-1] not in ".!?…":
            reasons.append("does not end with sentence punctuation (. ! ?)")
    n_emoji = len(EMOJI_RE.findall(text))
    if n_emoji > MAX_EMOJI:
        reasons.append(f"{n_emoji} emoji (max {MAX_EMOJI})")
    words = [w.lower().replace("’", "'").rstrip(".") for w in _WORD_RE.findall(text)]
    n_you = sum(1 for w in words if w in _SECOND_PERSON)
    if n_you > MAX_SECOND_PERSON:
        reasons.append(f"second person used {n_you} times (max {MAX_SECOND_PERSON})")
    exempt = {w for name in allowed_names if name for w in re.findall(r"[^\W\d_]+", name) if w.isupper()}
    shouting, unknown = [], []
    for w in re.findall(r"[^\W\d_]{2,}", text):
        if not w.isupper() or w in exempt or w in KNOWN_ACRONYMS:
            continue
        if len(w) > MAX_ACRONYM_LETTERS:
            shouting.append(w)
        else:
            unknown.append(w)
    if shouting or len(unknown) > MAX_UNKNOWN_ACRONYMS:
        reasons.append(f"ALL-CAPS shouting: {' '.join((shouting + unknown)[:5])}")
    for rx, reason in _MARKUP:
        if rx.search(text) and reason not in reasons:
            reasons.append(reason)
    for rx in _META:
        m = rx.search(text)
        if m:
            reasons.append(f'meta talk: "{m.group(0).strip()}"')
            break
    score = max(0.0, 1.0 - 0.25 * len(reasons))
    return GateResult(passed=not reasons, reasons=reasons, score=score)


# ============================================================================ safety

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
    for line in _read_list("safety_blocklist.txt"):
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


def safety_gate(explanation: str | None) -> GateResult:
    """Blocklisted terms (data/safety_blocklist.txt) and PII (email, phone, URL)."""
    if explanation is None:
        return GateResult(passed=False, reasons=[NO_EXPLANATION], score=0.0)
    bl = blocklist()
    reasons: list[str] = []
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


# ============================================================================ all gates


def names_of(item: Item, listener: Listener | None) -> list[str]:
    """Item and listener names (for the style gate's all-caps exemption)."""
    out = [item.title, item.creator or "", item.collection or "", item.publisher or ""]
    out += description_people(item.description)
    if listener is not None:
        for h in listener.history:
            out += [h.title, h.creator or ""]
        out.append(listener.country or "")
    return [n for n in out if n]


def run_gates(explanation: str | None, facts_used: Iterable[Any] | None, item: Item,
              listener: Listener | None, index: CatalogIndex | None = None) -> dict[str, GateResult]:
    """{"grounding", "style", "safety"} verdicts for one generated row."""
    if explanation is None:
        fail = GateResult(passed=False, reasons=[NO_EXPLANATION], score=0.0)
        return {"grounding": fail, "style": fail.model_copy(deep=True), "safety": fail.model_copy(deep=True)}
    return {
        "grounding": grounding_gate(explanation, facts_used, item, listener, index),
        "style": style_gate(explanation, names_of(item, listener)),
        "safety": safety_gate(explanation),
    }


__all__ = [
    "CatalogIndex", "GenreEntry", "grounding_gate", "style_gate", "safety_gate", "run_gates",
    "context_supports_name", "context_supports_genre",
    "name_key", "split_people", "genre_keys", "genre_supported", "builtin_genres", "common_words",
    "count_words", "count_sentences", "deleet", "MAX_WORDS", "MAX_SENTENCES", "MAX_EMOJI",
    "MAX_SECOND_PERSON", "MAX_ACRONYM_LETTERS", "NO_EXPLANATION",
]
