"""Claims about the listener: age, place, ratings and habits. The listener record
holds only a country, an age band, a history (titles, creators, genres, ratings)
and a taste, so "as a 29-year-old", "in London", "you gave it five stars" (no
such rating) and "your road trip" are unsupported. Cue words live in
data/grounding_listener_cues.txt and data/grounding_places.txt."""

from __future__ import annotations

import re
from functools import lru_cache

from linernotes.domain.gates.normalize import fold, name_tokens
from linernotes.domain.gates.tokens import Tok, quote
from linernotes.domain.gates.vocab import builtin_genre_words, phrase_pattern, read_sections

_NUM_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
              "nine": 9, "ten": 10}
_DECADE_AGE = {"teens": (13, 19), "twenties": (20, 29), "thirties": (30, 39), "forties": (40, 49),
               "fifties": (50, 59), "sixties": (60, 69), "seventies": (70, 79), "eighties": (80, 89)}
_AGE_WORD = (r"(?:(?:twenty|thirty|forty|fifty|sixty|seventy|eighty)(?:[\s-]+(?:one|two|three|four|five|six|seven|"
             r"eight|nine))?|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|eleven|twelve|ten)")
# "a 22-year-old", "aged 30", "at fifteen, ...": an exact age the record never holds
_EXACT_AGE = re.compile(r"\b(\d{1,3}|" + _AGE_WORD + r")[\s-]*(?:years?|yrs?)[\s-]*old\b"
                        r"|\b(?:aged?|at age)\s+(\d{1,3}|" + _AGE_WORD + r")\b(?![\s-]*[-–]\s*\d)"
                        r"|\bat\s+(\d{2}|" + _AGE_WORD + r")\s*(?=,|;|\s+you\b)", re.IGNORECASE)
_AGE_RANGE = re.compile(r"\b(?:in|into)\s+(?:your|their|his|her)\s+(?:(?:early|mid|late)[\s-]+)?"
                        r"(teens|twenties|thirties|forties|fifties|sixties|seventies|eighties|[2-8]0s)\b"
                        r"|\b(twenty|thirty|forty|fifty|sixty)[\s-]*somethings?\b"
                        r"|\b(teen(?:ager|agers|age)?|millennials?|boomers?|gen[\s-]?[xz]|zoomers?)\b",
                        re.IGNORECASE)
_BAND_RE = re.compile(r"\b(\d{2})\s*(?:-|–|to)\s*(\d{2})\b|\b(\d{2})\s*\+")
# "Doctorow's novel for readers aged 35-44", "a show aimed at 25-34s": the listener's band made
# the item's intended audience
_AUDIENCE = re.compile(r"\b(?:novel|book|read|show|podcast|track|song|album|written|aimed|made|pitched|targeted|"
                       r"geared|designed|meant)\s+(?:at|for|to)\s+(?:(?:readers|listeners|fans|people|those|adults|"
                       r"audiences)\s+)?(?:aged\s+|in\s+the\s+)?$", re.IGNORECASE)
_N = r"(\d+(?:\.\d+)?|one|two|three|four|five|six|seven|eight|nine|ten)"
_RATING_NUM = re.compile(r"\b" + _N + r"\s*(?:/|out\s+of)\s*" + _N + r"\b", re.IGNORECASE)
_STARS = re.compile(r"\b(\d+(?:\.\d)?|one|two|three|four|five|six|seven|eight|nine|ten)[\s-]*stars?\b",
                    re.IGNORECASE)
_RATING_WORD = re.compile(r"(?<!-)\b(?:rated|rating|ratings|rate|scored|score|gave\s+(?:it|them)|top\s+marks|"
                          r"full\s+marks|perfect\s+(?:ten|10|score))\b", re.IGNORECASE)
_GAVE = re.compile(r"\b(?:gave|give|given|scored|rated)\s+(?:[^\s,;.]+\s+){0,6}?(?:(?:a|an)\s+)?(?:(perfect|full|top)\s+)?"
                   r"(\d+(?:\.\d)?|one|two|three|four|five|six|seven|eight|nine|ten|marks|score)\b"
                   r"(?!\s*(?:/|out\s+of|stars?|[\s-]*star|minutes?|pages?|years?|times))", re.IGNORECASE)
_HIGH = re.compile(r"\b(?:highly|high|top\s+marks|full\s+marks|perfect|glowing|five[\s-]*stars?)\b",
                   re.IGNORECASE)


@lru_cache(maxsize=1)
def _cues() -> dict[str, tuple[str, ...]]:
    return read_sections("grounding_listener_cues.txt")


@lru_cache(maxsize=1)
def listener_words() -> frozenset[str]:
    return frozenset(w for line in _cues().get("listener", ()) for w in name_tokens(line.rstrip("*")))


@lru_cache(maxsize=1)
def _habit_re() -> re.Pattern | None:
    return phrase_pattern(_cues().get("habit", ()))


@lru_cache(maxsize=1)
def _your_noun_re() -> re.Pattern | None:
    """"your <up to two words> business": a life fact the record cannot hold."""
    nouns = [re.escape(n.lower()) for n in _cues().get("your_noun", ())]
    if not nouns:
        return None
    return re.compile(r"\byour\s+(?:[\w-]+\s+){0,2}?(?:" + "|".join(nouns) + r")\b", re.IGNORECASE)


@lru_cache(maxsize=1)
def _places() -> tuple[dict[str, str], frozenset[str], frozenset[str], re.Pattern | None]:
    """alias key -> canonical country key, city keys, one regex for all."""
    sec = read_sections("grounding_places.txt")
    alias: dict[str, str] = {}
    for line in sec.get("country", ()):
        names = [n.strip() for n in line.split("=") if n.strip()]
        canon = " ".join(name_tokens(names[0]))
        for n in names:
            alias[" ".join(name_tokens(n))] = canon
    cities = frozenset(" ".join(name_tokens(c)) for c in sec.get("city", ()))
    phrases = [n.strip() for line in sec.get("country", ()) for n in line.split("=")] + list(sec.get("city", ()))
    phrases += [fold(p) for p in phrases if fold(p) != p.lower()]
    demonyms = frozenset(" ".join(name_tokens(d)) for d in sec.get("demonym", ()))
    return alias, cities, demonyms, phrase_pattern(phrases)


_LISTENER_AFTER = re.compile(r"^[\s-]+(?:[\w-]+\s+){0,1}(?:listener|listeners|reader|readers|fan|fans|ears?|roots|"
                             r"heritage|upbringing|audience|you|household|home)\b", re.IGNORECASE)
_LISTENER_BEFORE = re.compile(r"\b(?:your|you|as\s+an?|fellow)\s+(?:[\w-]+\s+){0,1}$", re.IGNORECASE)


_LANGUAGE_AFTER = re.compile(r"^[\s-]+(?:language|speaking|translation|translated|edition|original)\b", re.IGNORECASE)


# "a Portuguese band", "a British novelist": an origin the catalog never states
_ORIGIN_AFTER = re.compile(r"^[\s-]+(?:[a-z-]+\s+){0,1}(?:band|artist|author|writer|novelist|singer|songwriter|"
                           r"group|act|rocker|crooner|poet|host|hosts|podcaster|composer|classic|novel|book|"
                           r"track|song|album|record|podcast|show|favourite|favorite|crossover|collection|hit|"
                           r"staple|release|production|import|export|gem|treasure|sensation|star|icon|legend|"
                           r"bestseller|story|stories|tale|memoir|thriller|mystery|romance|saga|paperback|edition|"
                           r"take|sound|flavou?r|style|tradition|school|voice|pick|listen|read|series|programme)s?\b")


# "straight from Brazil", "made in Portugal": the item's origin, which the catalog never
# states, even when it is the listener's country ("a listener from Brazil" is fine)
_ORIGIN_BEFORE = re.compile(r"(?:^|\W)(?:(\w+)\s+)?(?:straight\s+from|from|out\s+of|made\s+in|born\s+in|hails\s+from|"
                            r"recorded\s+in)\s+(?:the\s+)?$", re.IGNORECASE)
_PEOPLE = frozenset({"listener", "listeners", "reader", "readers", "fan", "fans", "someone", "anyone", "people",
                     "you", "yourself", "audience", "listening", "reading"})


def _origin_before(free: str, start: int) -> bool:
    m = _ORIGIN_BEFORE.search(free[max(0, start - 40):start])
    return bool(m) and (m.group(1) or "").lower() not in _PEOPLE


def _said_of_listener(free: str, start: int, end: int) -> bool:
    return bool(_LISTENER_AFTER.match(free[end:]) or _LISTENER_BEFORE.search(free[max(0, start - 30):start]))


# cue words that speak of the listener only after a person: "you're into jazz", "fans
# who love soul", but "Metallica leaning into jazz", "Pearl Jam loves the blues"
_AFTER_PERSON = frozenset({"into", "love", "loves", "loved", "enjoy", "enjoys", "enjoyed", "like", "liked"})
_PERSONS = frozenset({"you", "youre", "re", "ve", "ll", "d", "i", "we", "fans", "fan", "listener", "listeners",
                      "reader", "readers", "who", "someone", "anyone", "people", "lovers", "already", "really",
                      "also", "still", "always", "so", "if", "since", "because", "as", "when", "and", "or",
                      "your", "those", "many", "most", "all", "audience"})


def _person_before(toks: list[Tok], j: int) -> bool:
    return any(toks[k].key in _PERSONS for k in range(max(0, j - 3), j))


def listener_context(text: str, toks: list[Tok], i: int) -> bool:
    """Whether the words just before token i (same sentence, back to a comma) or
    right after it speak of the listener: "your Latin picks", "fans of reggae",
    "since you love jazz", "jazz lovers"."""
    words = listener_words()
    j = i - 1
    hops = 0
    genre_list = builtin_genre_words()
    while j >= 0 and hops < 6:
        gap = text[toks[j].end:toks[j + 1].start]
        # a comma inside a list of genres ("your taste lists rock, Latin and metal") does
        # not end the listener's clause
        if toks[j + 1].sent_start or ";" in gap or ("," in gap and toks[j].key not in genre_list):
            break
        if toks[j].key in words and not (toks[j].masked or toks[j].used) \
                and (toks[j].key not in _AFTER_PERSON or _person_before(toks, j)):
            return True  # a cue inside a title ("Your Virtual Upline Podcast") does not count
        j -= 1
        hops += 1
    # "a metal and jazz listener": a list of genres before the cue widens the window
    reach = 3 + (2 if any(t.key in ("and", "or", "n") for t in toks[i + 1:i + 3]) else 0)
    for k in range(i + 1, min(i + reach, len(toks))):
        if toks[k].sent_start:
            break
        if toks[k].key in words and not (toks[k].masked or toks[k].used) \
                and toks[k].key not in ("since", "after", "who", "you", "your", "like", "as"):
            return True  # not "like"/"as": "a careers show like The $100 MBA Show" compares
    return False


def _in_item(words: list[str], item_words: set[str]) -> bool:
    return bool(words) and all(w in item_words for w in words)


def check_listener(text: str, free: str, allowed, mentions, claims) -> None:
    """Age, place, rating and habit claims (on `free`: the text with names blanked)."""
    band = allowed.age_band
    lo_hi = None
    if band:
        m = re.fullmatch(r"(\d+)-(\d+)", band)
        lo_hi = (int(m.group(1)), int(m.group(2))) if m else (int(band.rstrip("+")), 120)
    have = f"listener age band: {band}" if band else "listener has no age band"
    for m in _EXACT_AGE.finditer(free):
        claims.bad(f'exact age "{quote(text, *m.span())}" not supported ({have})')
    for m in _AGE_RANGE.finditer(free):
        word = (m.group(1) or m.group(2) or m.group(3)).lower()
        rng = _age_range(word)
        # true for every listener of the band: the range inside the band, or the band
        # inside the range ("a teenage reader" for 13-17)
        if lo_hi and rng and (lo_hi[0] <= rng[0] and rng[1] <= lo_hi[1] or rng[0] <= lo_hi[0] and lo_hi[1] <= rng[1]):
            claims.ok()
        else:
            claims.bad(f'age claim "{quote(text, *m.span())}" not supported ({have})')
    for m in _BAND_RE.finditer(free):
        if not re.search(r"\b(?:aged?|ages|readers|listeners|fans|band|year[\s-]*olds?)\b",
                         free[max(0, m.start() - 20):m.end() + 12], re.IGNORECASE):
            continue
        lo, hi = int(m.group(1) or m.group(3)), int(m.group(2) or 120)
        if _AUDIENCE.search(free[max(0, m.start() - 45):m.start()]):
            claims.bad(f'age band "{quote(text, *m.span())}" said as the item\'s audience (the listener\'s band, '
                       "not a fact of the item)")
            continue
        if lo_hi and (lo, hi) == lo_hi:
            claims.ok()
        else:
            claims.bad(f'age band "{m.group(0)}" not supported ({have})')
    _check_places(text, free, allowed, claims)
    _check_ratings(text, free, allowed, mentions, claims)
    spans: list[tuple[int, int]] = []
    for rx in (_habit_re(), _your_noun_re(), _FREQUENCY, _LIKE_YOU):
        if rx is None:
            continue
        for m in rx.finditer(free):
            if any(s < m.end() and m.start() < e for s, e in spans):
                continue
            spans.append(m.span())
            if _in_item(name_tokens(m.group(0)), allowed.item_words):
                continue
            if _GENRE_USE.match(free[m.end():]) \
                    and name_tokens(m.group(0))[-1] in _genre_words(allowed):
                continue  # "your business listening": the listener's genre, not their business
            claims.bad(f'invented listener habit or event "{quote(text, *m.span())}" '
                           "(the listener record has no such fact)")


# "a romance a week", "two books a month": a routine the record cannot hold
_FREQUENCY = re.compile(r"\b(?:a|an|one|two|three|four|five|several|\d+)\s+(?:[\w-]+\s+){1,2}?(?:a|per|each|every)\s+"
                        r"(?:week|month|day|night|year)\b", re.IGNORECASE)
# "a nurse like you", "a fellow guitarist like you": a job or trait the record cannot hold
_LIKE_YOU = re.compile(r"\b(?:a|an)\s+(?:fellow\s+)?(?!(?:reader|listener|fan|lover|person|someone|music|book|"
                       r"podcast|true|real|big|huge|devoted|curious|keen|avid|loyal|new|seasoned)s?\b)"
                       r"[a-z-]+\s+like\s+you\b")
_GENRE_USE = re.compile(r"^(?:[\s-]+[\w]+){0,2}?[\s-]+(?:listening|listens|taste|tastes|shows?|podcasts?|picks?|reads?|reading|"
                        r"queue|feed|shelf|rotation|history|favou?rites?|side|habit|diet|fix|streak)\b", re.IGNORECASE)


def _genre_words(allowed) -> set[str]:
    return {w for g in allowed.genres for w in name_tokens(g)}


def _age_range(word: str) -> tuple[int, int] | None:
    if word in _DECADE_AGE:
        return _DECADE_AGE[word]
    if re.fullmatch(r"[2-8]0s", word):
        d = int(word[0]) * 10
        return d, d + 9
    if word in ("twenty", "thirty", "forty", "fifty", "sixty"):
        d = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60}[word]
        return d, d + 9
    if word.startswith("teen"):
        return 13, 19
    return None  # generations: never a fact of the record


def country_named(text: str, country: str) -> bool:
    """Whether the note names the listener's country (or a nationality of it, or "US")."""
    alias, _, _, rx = _places()
    mine = " ".join(name_tokens(country))
    mine = alias.get(mine, mine)
    if mine == "usa" and re.search(r"\bU\.?S\.?A?\b", text):
        return True
    if rx is None:
        return False
    return any(alias.get(" ".join(name_tokens(m.group(0)))) == mine for m in rx.finditer(fold(text)))


def _check_places(text: str, free: str, allowed, claims) -> None:
    alias, cities, demonyms, rx = _places()
    if rx is None:
        return
    mine = alias.get(" ".join(name_tokens(allowed.country or "")), " ".join(name_tokens(allowed.country or "")))
    if mine:
        # the listener's own country is an allowed name (blanked in `free`); said as the
        # item's origin it is still unsupported
        for m in rx.finditer(text):
            key = " ".join(name_tokens(m.group(0)))
            if alias.get(key) != mine or not m.group(0)[:1].isupper() or _in_item(key.split(), allowed.item_words):
                continue
            if key not in demonyms and _origin_before(text, m.start()):
                claims.bad(f'place "{quote(text, *m.span())}": the listener\'s country, not a fact of the item')
            elif key in demonyms and free[m.start():m.end()] != text[m.start():m.end()] \
                    and not _said_of_listener(text, m.start(), m.end()) \
                    and (_ORIGIN_AFTER.match(text[m.end():]) or _LANGUAGE_AFTER.match(text[m.end():])):
                # "a Czech favourite" for a listener in the Czech Republic (the word is
                # blanked in `free` as part of the allowed country name)
                claims.bad(f'place "{quote(text, *m.span())}": the listener\'s nationality, not a fact of the item')
    folded = fold(free)
    if len(folded) != len(free):
        folded, free = free, free
    for m in rx.finditer(folded):
        shown = text[m.start():m.end()] if len(text) == len(free) else m.group(0)
        if not shown[:1].isupper():
            continue  # "english" lower-case: a language, a word; proper nouns are capitalised
        key = " ".join(name_tokens(shown))
        if key in demonyms and not _said_of_listener(free, m.start(), m.end()) \
                and not _LANGUAGE_AFTER.match(free[m.end():]) and not _ORIGIN_AFTER.match(free[m.end():]):
            continue  # "Brazilian Latin sounds": a description of music, not of the listener
        if _in_item(key.split(), allowed.item_words):
            claims.ok()
            continue
        if key in cities:
            claims.bad(f'place "{shown}" not supported (a city; the listener record has only a country'
                       f'{": " + allowed.country if allowed.country else ", and none here"})')
            continue
        if mine and alias.get(key) == mine and key in demonyms and not _said_of_listener(free, m.start(), m.end()) \
                and (_ORIGIN_AFTER.match(free[m.end():]) or _LANGUAGE_AFTER.match(free[m.end():])):
            # "Ed Motta's American crossover" for a US listener: the listener's nationality
            # made the item's origin or language, which the catalog never states
            claims.bad(f'place "{quote(text, *m.span())}": the listener\'s nationality, not a fact of the item')
            continue
        if mine and alias.get(key) == mine and not (key not in demonyms and _origin_before(free, m.start())):
            claims.ok()
            continue
        have = f"listener country: {allowed.country}" if allowed.country else "listener has no country"
        claims.bad(f'place "{quote(text, *m.span())}" not supported ({have})')


def _check_ratings(text: str, free: str, allowed, mentions, claims) -> None:
    scale = allowed.rating_scale or 10
    ratings = allowed.ratings
    near = {src.split(":")[0] for _, _, srcs in mentions for src in srcs if src.startswith("hist")}
    pool = [r for tag, r in ratings if tag in near] or [r for _, r in ratings]
    found = False
    taken = [m.span() for rx in (_RATING_NUM, _STARS) for m in rx.finditer(free)]
    for m in _RATING_NUM.finditer(free):
        n, of = _num(m.group(1)), _num(m.group(2))
        if of <= 0 or n > of:
            continue
        found = True
        if any(abs(n / of * scale - r) < 0.01 for r in pool):
            claims.ok()
        else:
            claims.bad(f'rating "{quote(text, *m.span())}" not in the listener\'s history ratings '
                       f'({_show(ratings, scale)})')
    for m in _STARS.finditer(free):
        raw = m.group(1).lower()
        n = float(_NUM_WORDS.get(raw, raw)) if raw in _NUM_WORDS or re.fullmatch(r"[\d.]+", raw) else None
        if n is None or n > scale:
            continue
        # "five stars" reads on a five-star scale; "ten stars" (more than five) only on the
        # history's own scale
        value = n / 5 * scale if n <= 5 else n
        found = True
        if any(abs(value - r) < 0.01 for r in pool):
            claims.ok()
        else:
            claims.bad(f'rating "{quote(text, *m.span())}" not in the listener\'s history ratings '
                       f'({_show(ratings, scale)})')
    for m in _GAVE.finditer(free):
        if any(a < m.end() and m.start() < b for a, b in taken):
            continue  # "rated it 9 out of 10": read by the scale patterns above
        raw = m.group(2).lower()
        if raw in ("marks", "score"):
            if not m.group(1):
                continue
            n = float(scale)
        else:
            n = _num(raw)
        if m.group(1) and n != scale and raw not in ("marks", "score"):
            continue
        if n > scale or n <= 0:
            continue
        found = True
        if ratings and any(abs(n - r) < 0.01 for r in pool):
            claims.ok()
        else:
            claims.bad(f'rating "{quote(text, *m.span())}" not in the listener\'s history ratings '
                       f'({_show(ratings, scale)})')
    if found:
        return
    for m in _RATING_WORD.finditer(free):
        if not ratings:
            claims.bad(f'rating claim "{quote(text, *m.span())}" but the listener\'s history has no ratings')
            return
        window = free[max(0, m.start() - 30):m.end() + 40]
        if _HIGH.search(window) and max(pool) < 0.7 * scale:
            claims.bad(f'rating claim "{quote(text, *m.span())}" not supported (history ratings '
                       f'{_show(ratings, scale)})')
        else:
            claims.ok()
        return


def _num(raw: str) -> float:
    raw = raw.lower()
    return float(_NUM_WORDS[raw]) if raw in _NUM_WORDS else float(raw)


def _show(ratings, scale: int) -> str:
    if not ratings:
        return "none"
    return ", ".join(f"{r:g}/{scale}" for _, r in ratings[:5])


# Words of a title that carry no subject ("Stuff You Should Know": "should").
_FUNCTION_WORDS = frozenset("""
about above after again against along also always among around away back because been before being below
between both could does doing down during each even ever every few from further have having here into just
less many more most much must never next none once only other over same should since some such than that
their them then there these they this those though through under until upon very were what when where
which while whom whose will with within without would your yours
""".split())


# Words that describe a format or edition, not a subject ("a Berkley paperback" after a
# history title "... (Paperback)").
FORMAT_WORDS = frozenset("""paperback paperbacks hardcover hardcovers hardback hardbacks edition editions
ebook audiobook volume volumes book books novel novels series podcast podcasts show shows episode episodes
track tracks song songs album albums single singles record records collection anthology omnibus""".split())


def check_moved_words(text: str, toks: list[Tok], allowed, plain: frozenset[str], claims) -> None:
    """A subject word of a history title said outside any name ("a Bible-inspired
    fantasy" after "... the King James Bible"; "a novel of sisters" after "My Sister's
    Keeper") describes the listener's book, not this one, unless the item's own
    texts have it too."""
    item = allowed.item_words
    hist = {w for w in allowed.history_words if len(w) >= 4 and w not in plain and w not in _FUNCTION_WORDS
            and w not in FORMAT_WORDS}
    if not hist:
        return
    stems = {_stem(w): w for w in hist}
    item_stems = {_stem(w) for w in item}
    for t in toks:
        if t.masked or t.used or len(t.key) < 4 or t.key in plain:
            continue
        st = _stem(t.key)
        if st in stems and st not in item_stems and t.key not in item \
                and not listener_context(text, toks, toks.index(t)):  # "in your omnibus": said of history
            claims.bad(f'"{quote(text, t.start, t.end, 16)}": "{t.text}" comes from a history title, '
                       "not from this item's facts")


def _stem(word: str) -> str:
    for suffix in ("ies", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word
