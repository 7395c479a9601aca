"""What a note claims, as a comparable signature, for the semantic dedupe stage.

Two notes about the same item can be close in embedding space and still say
different things ("since you rated Emma a 9 ..." vs "since you rated A Christmas
Carol a 9 ..."), and two paraphrases of one note can sit well below the plain
cosine threshold. The signature is the set of checkable claims a note makes
against its own item and listener:

  history    which of the listener's history entries it ties to (a history title,
             or a history creator that is not the item's creator)
  numbers    numbers, years, ratings, durations (number words and "3.5" alike;
             seconds turned into minutes; "9/10", "9 out of 10" = 9)
  country    whether it names the listener's country (demonyms included)
  genres     the parts of the item's / listener's genre labels it names
  collection whether it names the item's album (collection)
  item       whether it names the item's title / creator (not compared by default:
             a paraphrase often drops them, and every note is about the item anyway)

Names are found by token sequence against the item and listener fields (the same
accent/case folding as the gates: `linernotes.domain.gates.fold`); numbers inside a
matched name ("Garage Inc. (Disc 2)", "14 Years") are not claims. Catalog and note
text are data only: nothing here interprets them beyond matching tokens.

  descriptors the content-word stems left after names, numbers and stock words
             (compared by Jaccard, not equality: paraphrases swap some synonyms)

  claim_types the grounding gate's claim-type categories (award, chart, live, personnel,
             instrumentation, ...) and listener-habit cues, found outside the names

Genre words are matched (`genres`) but are not descriptors: every note about an item
shares them. Descriptors are light stems (`stem`: "darkly" = "dark", "heavier" = "heavy")
with a small synonym table ("witty" = "funny" = "humour").

Decision (`curation.claim_compare.claim_duplicate`), same item only:
  cosine >= CERTAIN_COSINE                      duplicate (only the wording differs) unless a
                                                number differs (`numbers_conflict`)
  high <= cosine < CERTAIN_COSINE               duplicate unless `claims_conflict`: one note
                                                makes a checkable claim or claim type the
                                                other lacks, or both make descriptive claims
                                                (>= 3 stems each) sharing < VETO_JACCARD
  low <= cosine < high                          duplicate when the signatures match on
                                                MATCH_FIELDS, the pair makes at least one such
                                                claim, and descriptor Jaccard >= DESCRIPTOR_MIN
The MinHash stage's same-item pairs (shared wording) are kept apart by `edit_conflict`:
a claims conflict, a number, or the one swapped descriptive phrase sharing nothing; below
CERTAIN_COSINE the semantic stage's plain cosine does not merge them again (that cosine
comes from the shared wording), while the claim band still may.

Second round (holdout2's errors, 2026-12-04), each a cause rather than a pair: demonyms the
prefix rule misses (Spain/Spanish), a count of the history ties ("two Metallica songs you
play") read as a number claim, "for" read as a genre ("stories-for-kids"), stock adverbs
("usually", "tend") as descriptors, the contrast with the history worded many ways ("a
break from", "instead of"), a genre one note names against the other's descriptor
("comedy" vs "comic"), a number dropped above CERTAIN_COSINE, and near-identical wording
with a swapped claim merged by MinHash before any claim check.
"""

from __future__ import annotations

import dataclasses
import re
from functools import lru_cache
from typing import Any, Iterable, Mapping

from linernotes.domain.gates import common_words, fold, split_people

# The fields two notes' claims must agree on (curation.claim_compare holds the thresholds).
MATCH_FIELDS = ("history", "numbers", "country", "collection")
FIELDS = ("history", "numbers", "country", "genres", "collection", "item", "descriptors", "claim_types")

# Function words and the stock words of any recommendation ("fan", "try", "track"):
# what is left of a note after these and the names is what it says about the item.
STOPWORDS = frozenset("""
a an the and or but so if of in on at to for from by with as is are was were be been being it its this
that these those you your youre yours yourself i me my we our they their them he she his her him who whom
which what when where how than then there here do does did done have has had will would should could can
may might must shall just only also too very more most much many some any all same such other another one
into out up down over under about after before again off not no nor own get gets got
like likes liked love loves loved enjoy enjoys enjoyed try give gives go next pick picks choice fit fits
suit suits fan fans listener listeners reader readers track tracks song songs book books show shows
podcast podcasts read listen listens play plays played playing already keep keeps good great natural
strong worth make makes made way well
gave give rated rate rating ratings scored score scores star stars perfect marks
list history rotation shelf coming back regular regulars already since because after
nearly close about around roughly little long runs run running lasting lasts last wraps
published publisher edition editions paperback hardcover version
someone anyone people person whose top genre genres include includes including aged age
youve youll youd its spin spins picking pickup check note know knows
number numbers tune tunes piece pieces less
tend tends usually usual included something somewhere still goes otherwise almost both each
novel novels album albums record records episode episodes
""".split())

_TOKEN = re.compile(r"\d+\.\d+|[^\W_]+")
_POSSESSIVE = re.compile(r"(?<=[^\W_])'s(?![^\W_])")
# "9/10", "9 out of 10", "7 out of ten": the denominator is not a claim
_OUT_OF = re.compile(r"(\d)\s*(?:/\s*10|out\s+of\s+(?:10|ten))\b")
_PERFECT = re.compile(r"\bperfect\s+(?:score|marks|rating)\b")
_UNITS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
          "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
          "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
          "nineteen": 19}
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
         "eighty": 80, "ninety": 90}
# ordinals that rarely mean anything else in a note ("first"/"second" do)
_ORDINALS = {"third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
             "ninth": 9, "tenth": 10}
_SERIES_TAIL = re.compile(r"\s+and\s+the\s+", re.IGNORECASE)
# units after "one" that make it a count, not a pronoun
_COUNTED = frozenset("""minute minutes min mins hour hours hr second seconds sec star stars point points page
pages episode episodes song songs track tracks chapter chapters book books season seasons year years""".split())
_NAME_CUT = {"pt", "part", "vol", "volume", "disc", "cd", "feat", "ft"}
_SKIP_CREATORS = {"various artists", "various", "unknown", "anonymous"}
_COUNTRY_ALIASES = {
    "usa": ("usa", "us", "u s", "united states", "america", "american", "americans"),
    "united states": ("usa", "us", "united states", "america", "american"),
    "united kingdom": ("uk", "united kingdom", "britain", "british", "england", "english"),
    "uk": ("uk", "united kingdom", "britain", "british"),
    "netherlands": ("netherlands", "holland", "dutch"),
    "czech republic": ("czech republic", "czech", "czechia"),
}
# demonyms the prefix rule (`_country_variants`) cannot reach, for the catalog's listener countries
_DEMONYMS = {
    "spain": ("spanish", "spaniard"), "france": ("french",), "portugal": ("portuguese",),
    "switzerland": ("swiss",), "new zealand": ("new zealander", "kiwi"), "ireland": ("irish",),
    "finland": ("finnish", "finn"), "philippines": ("filipino", "filipina", "philippine"),
    "sweden": ("swedish", "swede"), "china": ("chinese",), "denmark": ("danish", "dane"),
    "greece": ("greek",), "poland": ("polish", "pole"), "norway": ("norwegian",),
    "turkey": ("turkish",), "wales": ("welsh",), "england": ("english",), "scotland": ("scottish", "scot"),
    "belgium": ("belgian",), "mexico": ("mexican",), "bahamas": ("bahamian",), "peru": ("peruvian",),
    "netherlands": ("dutch",), "south korea": ("korean", "south korean"), "hong kong": ("hong konger",),
    "iceland": ("icelandic", "icelander"), "israel": ("israeli",), "united kingdom": ("british", "briton"),
    "uk": ("british", "briton"), "usa": ("american",), "united states": ("american",),
    "south africa": ("south african",), "dominican republic": ("dominican",), "costa rica": ("costa rican",),
    "saudi arabia": ("saudi",), "euskal herria": ("basque",), "czech republic": ("czech",),
}


def tokens(text: str) -> list[str]:
    """Folded word tokens; possessive 's and apostrophes dropped, '3.5' one token."""
    f = fold(text or "")
    f = _POSSESSIVE.sub("", f).replace("'", "")
    return _TOKEN.findall(f)


def _name_variants(name: str, person: bool = False) -> list[tuple[str, ...]]:
    """Token sequences a note may use for a name: the whole name, its main part
    (before ':', '(' or '['), without a leading 'the', without a trailing
    'Pt.1' / '(Disc 2)'; for a person also the surname."""
    if not name:
        return []
    out: list[tuple[str, ...]] = []
    heads = {name}
    for sep in (":", "(", "[", " - "):
        if sep in name:
            head = name.split(sep, 1)[0].strip()
            if len(head) >= 3:
                heads.add(head)
    for h in list(heads):
        # a series title is often shortened to its own part: "Harry Potter and the Order of the
        # Phoenix" -> "Order of the Phoenix"
        m = _SERIES_TAIL.search(h)
        if m and len(tokens(h[m.end():])) >= 2:
            heads.add(h[m.end():].strip())
    for h in heads:
        full = tokens(h)
        cut = next((full[:k] for k, t in enumerate(full) if k >= 2 and t in _NAME_CUT), full)
        for toks in {tuple(full), tuple(cut)}:
            if toks:
                out.append(toks)
                if toks[0] == "the" and len(toks) > 1:
                    out.append(toks[1:])
    if person:
        toks = tokens(name)
        if len(toks) >= 2 and len(toks[-1]) >= 4 and toks[-1] not in common_words():
            out.append((toks[-1],))
    return sorted(set(out), key=len, reverse=True)


def _find(seq: tuple[str, ...], toks: list[str], used: list[bool]) -> bool:
    """Mark every free occurrence of seq in toks; True if any."""
    n = len(seq)
    hit = False
    for i in range(len(toks) - n + 1):
        if tuple(toks[i:i + n]) == seq and not any(used[i:i + n]):
            for k in range(i, i + n):
                used[k] = True
            hit = True
    return hit


def _people(creator: str | None) -> list[str]:
    if not creator or fold(creator).strip() in _SKIP_CREATORS:
        return []
    people = split_people(creator)
    return [creator] + [p for p in people if p != creator]


def _numbers(toks: list[str], used: list[bool]) -> frozenset[float]:
    vals: list[float] = []
    i = 0
    while i < len(toks):
        if used[i]:
            i += 1
            continue
        t = toks[i]
        v: float | None = None
        j = i + 1
        if re.fullmatch(r"\d+(?:\.\d+)?", t):
            v = float(t)
        elif t in _TENS:
            v = float(_TENS[t])
            if j < len(toks) and toks[j] in _UNITS and 0 < _UNITS[toks[j]] < 10:
                v += _UNITS[toks[j]]
                j += 1
        elif t in _UNITS and (t != "one" or (j < len(toks) and toks[j] in _COUNTED)):
            # "one" is mostly a pronoun ("one of the ..."); "one minute" / "one star" is the 1 a
            # surface edit writes as a digit
            v = float(_UNITS[t])
        elif t == "dozen":
            v = 12.0
        elif t in _ORDINALS:
            v = float(_ORDINALS[t])
        elif t == "minute" and i > 0 and toks[i - 1] == "a":
            v = 1.0  # "a minute and a half"
            j = i  # the unit is read below
        if v is None:
            i += 1
            continue
        # "three and a half", "a minute and a half"
        rest = toks[j:j + 4]
        if rest[:3] == ["and", "a", "half"]:
            v += 0.5
            j += 3
        elif len(rest) >= 4 and rest[0] in ("minute", "minutes") and rest[1:4] == ["and", "a", "half"]:
            v += 0.5
            j += 4
            vals.append(round(v, 2))
            i = j
            continue
        if j < len(toks) and toks[j] in ("second", "seconds") and v >= 10:
            v = v / 60.0  # durations compared in minutes
        vals.append(round(v, 2))
        i = j
    return frozenset(vals)


@dataclasses.dataclass(frozen=True)
class ClaimSignature:
    history: frozenset[str] = frozenset()
    numbers: frozenset[float] = frozenset()
    country: bool = False
    genres: frozenset[str] = frozenset()
    collection: bool = False
    item: frozenset[str] = frozenset()
    # content-word stems left after names, numbers and STOPWORDS: the descriptive claim
    descriptors: frozenset[str] = frozenset()
    # the grounding gate's claim types (awards, live, personnel, instrumentation, ...) and
    # listener-habit cues the note invokes (linernotes/domain/data/grounding_*_cues.txt)
    claim_types: frozenset[str] = frozenset()

    @property
    def genre_named(self) -> bool:
        """Does the note name a genre at all (a genre claim one note makes and the other drops)?"""
        return bool(self.genres)

    def n_claims(self, fields: Iterable[str] = MATCH_FIELDS) -> int:
        """Checkable claims on `fields` (whether a genre is named is compared, never counted)."""
        n = 0
        for f in fields:
            if f == "genre_named":
                continue
            v = getattr(self, f)
            n += int(v) if isinstance(v, bool) else len(v)
        return n


def _get(obj: Any, field: str, default: Any = None) -> Any:
    if obj is None:
        return default
    if isinstance(obj, Mapping):
        return obj.get(field, default)
    return getattr(obj, field, default)


def _genre_parts(label: str) -> list[tuple[str, ...]]:
    # "kids-family-stories-for-kids": the parts are content words ("for" names no genre)
    parts = re.split(r"\s*(?:&|/|,|\band\b|-)\s*", fold(label))
    out = [tuple(tokens(p)) for p in parts if tokens(p)]
    return [p for p in out if not (len(p) == 1 and p[0] in STOPWORDS)]


# the plural kind nouns a note counts the listener's history with ("two Metallica songs you play")
_KIND_PLURALS = frozenset("""songs tracks books novels titles shows podcasts albums records favourites
favorites artists authors bands writers series stories""".split())


def _mask_history_counts(toks: list[str], used: list[bool], n_ties: int) -> None:
    """A count of the history ties the note names ("The Outlaw Torn and Leper Messiah, two
    Metallica songs you play") restates the ties, it is no claim of its own: a number equal
    to the number of ties, followed within three words by a plural kind noun, is masked."""
    if n_ties < 1:
        return
    for k, t in enumerate(toks):
        if used[k]:
            continue
        value = float(t) if t.isdigit() else _UNITS.get(t)
        if value == n_ties and any(x in _KIND_PLURALS for x in toks[k + 1:k + 4]):
            used[k] = True


def _country_variants(country: str | None) -> list[tuple[str, ...]]:
    if not country:
        return []
    key = " ".join(tokens(country))
    names = set(_COUNTRY_ALIASES.get(key, ())) | set(_DEMONYMS.get(key, ())) | {key}
    out = {tuple(tokens(n)) for n in names if tokens(n)}
    toks = tokens(country)
    if len(toks) == 1 and len(toks[0]) >= 5:  # demonyms: Brazil-ian, Canad-ian, German-y
        stem = toks[0][:-1] if toks[0][-1] in "ay" else toks[0]
        out.add(("__prefix__", stem))
    return list(out)


def signature(text: str, item: Any, listener: Any = None) -> ClaimSignature:
    """The claim signature of one note about `item` for `listener` (Item / Listener
    records or their dicts)."""
    folded = _PERFECT.sub("10", _OUT_OF.sub(r"\1", fold(text or "")))
    toks = tokens(folded)
    used = [False] * len(toks)
    title = _get(item, "title") or ""
    creator = _get(item, "creator")
    collection = _get(item, "collection")
    item_keys = {" ".join(tokens(p)) for p in _people(creator)}
    item_title_key = " ".join(tokens(title))
    # longest names first, so "The Lord of the Rings" is not also read as a person
    names: list[tuple[tuple[str, ...], str, str]] = []
    for v in _name_variants(title):
        names.append((v, "item", "title"))
    # an album named after the band or the song ("Pearl Jam", "American Idiot") is read as that
    if collection and fold(collection) != fold(title) and fold(collection) != fold(creator or ""):
        for v in _name_variants(collection):
            names.append((v, "collection", "collection"))
    for p in _people(creator):
        for v in _name_variants(p, person=True):
            names.append((v, "item", "creator"))
    for v in _name_variants(_get(item, "publisher") or ""):
        names.append((v, "item", "publisher"))
    history = list(_get(listener, "history", []) or [])
    for h in history:
        ht, hc = _get(h, "title") or "", _get(h, "creator")
        hkey = " ".join(tokens(ht))
        if hkey and hkey != item_title_key:
            for v in _name_variants(ht):
                names.append((v, "history_title", hkey))
        for p in _people(hc):
            pkey = " ".join(tokens(p))
            if pkey and pkey not in item_keys:
                for v in _name_variants(p, person=True):
                    # key by what was matched ("R.E.M." in "R.E.M. Feat. Kate Pearson"); a surname by its person
                    names.append((v, "history_creator", " ".join(v) if len(v) > 1 else pkey))
    names.sort(key=lambda x: len(x[0]), reverse=True)
    item_hits: set[str] = set()
    coll = False
    titles: set[str] = set()
    creators: set[str] = set()
    for seq, kind, key in names:
        if not _find(seq, toks, used):
            continue
        if kind == "item":
            item_hits.add(key)
        elif kind == "collection":
            coll = True
        elif kind == "history_title":
            titles.add(key)
        else:
            creators.add(key)
    # a history creator named beside one of their own titles adds no claim
    title_creators = {" ".join(v) for h in history if " ".join(tokens(_get(h, "title") or "")) in titles
                      for p in _people(_get(h, "creator")) for v in _name_variants(p, person=True)}
    title_creators |= {" ".join(tokens(p)) for h in history if " ".join(tokens(_get(h, "title") or "")) in titles
                       for p in _people(_get(h, "creator"))}
    hist = frozenset(titles | {"creator:" + c for c in creators if c not in title_creators})
    country = False
    for v in _country_variants(_get(listener, "country")):
        if v[0] == "__prefix__":
            for k, t in enumerate(toks):
                if not used[k] and t.startswith(v[1]):
                    used[k] = country = True
        else:
            country = _find(v, toks, used) or country  # mark every spelling, not only the first
    labels = list(_get(item, "genres", []) or []) + list(_get(listener, "taste", []) or [])
    for h in history:
        labels += list(_get(h, "genres", []) or [])
    genres: set[str] = set()
    genre_used = list(used)
    for label in dict.fromkeys(labels):
        for part in _genre_parts(label):
            if _find(part, toks, list(used)):
                # genres may overlap names ("rock" in a title is masked)
                genres.add(" ".join(part))
                _find(part, toks, genre_used)
    _mask_history_counts(toks, used, len(hist))
    numbers = _numbers(toks, used)
    # genre words are not descriptors: two notes about one item share them whatever they claim
    # (on curation.pairs' other_claim pairs they were the only shared stems)
    desc = frozenset(stem(t) for t, u in zip(toks, genre_used)
                     if not u and len(t) > 2 and t not in STOPWORDS and t not in _NUMBER_WORDS
                     and not t[0].isdigit())
    types = claim_types(" ".join(t if not u else "_" for t, u in zip(toks, used)))
    return ClaimSignature(history=hist, numbers=numbers, country=country, genres=frozenset(genres),
                          collection=coll, item=frozenset(item_hits), descriptors=desc, claim_types=types)


@lru_cache(maxsize=1)
def _cue_patterns() -> tuple[tuple[str, re.Pattern], ...]:
    """The gate's claim-type cues and the listener-habit cues, one regex per category."""
    from linernotes.domain.gates.vocab import phrase_pattern, read_sections

    out = []
    for name, sections in (("grounding_claim_cues.txt", None), ("grounding_listener_cues.txt", ("habit",))):
        for cat, phrases in read_sections(name).items():
            if sections is not None and cat not in sections:
                continue
            rx = phrase_pattern(phrases)
            if rx is not None:
                out.append((cat, rx))
    return tuple(out)


def claim_types(free: str) -> frozenset[str]:
    """Categories of the gate's cue phrases found in `free` (folded tokens, names blanked)."""
    return frozenset(cat for cat, rx in _cue_patterns() if rx.search(free))


_SUFFIXES = ("iest", "ier", "ily", "ness", "ingly", "ing", "edly", "ed", "est", "ly", "ful", "ous",
             "er", "es", "s", "y", "e")


def stem(word: str) -> str:
    """A light suffix-stripping stem, aliases first ("funny" -> "humour"): "darkly" = "dark",
    "heavier" = "heavy" = "heav", "stinging" = "sting"; at most 6 letters, so "alternative"
    and "alt" meet through the alias table, not by accident of a prefix."""
    w = _ALIASES.get(word, word)
    if w != word:
        return w[:6]
    for suf in _SUFFIXES:
        if w.endswith(suf) and len(w) - len(suf) >= 4:
            w = w[: -len(suf)]
            if suf in ("iest", "ier", "ily"):
                w += "i"
            break
    if w.endswith("i") and len(w) > 4:
        w = w[:-1]
    return w[:6]


# spellings a note uses for the same descriptor
# Spellings and near-synonyms a note uses for the same descriptor, by group (the canonical
# word first). Read off how the paraphrase pairs reword (dev + holdout), kept to words
# of one meaning: a group never joins two different descriptive claims ("calm" and
# "dark" stay apart; "brooding" is its own word).
_SYNONYM_GROUPS = (
    "alternative alt",
    "humour humor funny humorous witty comic comedic comedy laughs jokes joke hilarious",
    "dark darkly gloomy bleak grim",
    "short brief",
    "calm gentle mellow soothing unhurried relaxed relaxing easygoing laidback",
    "true real reallife nonfiction",
    "story stories tale tales account",
    "talk talky chat chatty conversation conversations conversational",
    "start starts opens opener opening begins entry",
    "quick fast speedy rapid",
    "mystery mysteries puzzle puzzles whodunit",
    "mix mixes blend blends",
    "favourite favorite",
    "lyrical songlike",
    "reflective thoughtful pensive contemplative introspective",
    "balance counterweight counterbalance offset",
    # the note sets the item against the listener's history: one relation, many words
    "contrast instead break breather pause respite change departure detour",
)
_ALIASES = {w: g.split()[0] for g in _SYNONYM_GROUPS for w in g.split()[1:]}
_NUMBER_WORDS = frozenset(_UNITS) | frozenset(_TENS) | frozenset(_ORDINALS) | {"half", "minute", "minutes", "dozen"}
