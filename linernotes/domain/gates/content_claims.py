"""Claims about what an item is about or how its creator sounds on it, read by
structure rather than by a fixed word list:

* subject and plot: "about <words>", "follows <words>", "tells the story of
  <words>", "centres on <words>" ... The catalog row holds a title, creator,
  album or publisher, a year and genre labels, never a plot, a setting or an
  episode's topic, so such a phrase is unsupported unless one of its content
  words is the item's own (a word of its texts or genres: "about online
  business" for a business show) or it is said of the listener ("for someone who
  reads about ...") or it is an approximate number ("about four minutes").
* a creator's peak: "X at their heaviest", "Koontz at his best", "at her most
  reflective": a judgement of the creator's career the catalog never holds.
* listener words moved onto the item, in derived forms the genre check does not
  read: "a Christian true-crime show" for a listener whose taste is
  christianity, "political news" for a news-politics listener. Said of the
  listener ("your political picks") it passes; a word of the item's own texts or
  genres also passes. Only the head word of a genre label counts ("christianity",
  "politics"), not its modifiers ("natural" of natural-sciences).
"""

from __future__ import annotations

import re

from linernotes.domain.gates.listener_claims import FORMAT_WORDS, listener_context, listener_words
from linernotes.domain.gates.normalize import name_tokens
from linernotes.domain.gates.tally import Claims
from linernotes.domain.gates.tokens import Tok, quote

# Verbs and phrases that introduce what a work is about. Each is followed by the
# subject; the subject words are judged, not the verb.
_SUBJECT_LEAD = re.compile(
    r"\b(?:(?<!talk\s)(?<!talks\s)about|follows|following|tells\s+(?:the\s+)?(?:story|tale)\s+of|"
    r"(?:the\s+)?(?:story|tale|saga|chronicle)\s+of|centr?es\s+on|cent(?:er|re)d\s+on|revolves\s+around|"
    r"chronicles|recounts|depicts|portrays|dramati[sz]es|traces\s+(?:the\s+)?|explores|tackles|"
    r"digs\s+into|dives\s+into|delves\s+into|focuses\s+on|focused\s+on|deals\s+with|whose\s+(?:hero|heroine|"
    r"narrator|protagonist)|starring|stars\s+a|features\s+(?:a|an)|featuring\s+(?:a|an)|"
    r"teaches|coaches|walks\s+(?:you|listeners)\s+through|breaks\s+down|shares|reviews|answers|covers|"
    # plot verbs: what happens in a story or an episode
    r"pits|sends|traps|strands|imagines|unfolds|unravels|investigates|hunts|battles|fights|rescues|survives|"
    r"escapes|falls\s+for|falls\s+in\s+love\s+with|introduces|reveals|uncovers|confronts|chases|"
    r"visits|profiles|interviews|spotlights|celebrates|mourns|remembers|recalls|laments|honou?rs)\b",
    re.IGNORECASE)
# Words that end the subject phrase: punctuation (checked separately) and clause words.
_SUBJECT_END = frozenset("""for that which who where while when as after before since because so but if than
like is are was were will would can could should it its this these those you your yours to from by""".split())
# "about four minutes", "about an hour": an approximate number, judged by numbers.py
_APPROX = re.compile(r"^\s*(?:\d|a\s+(?:minute|hour|decade|year|week|half|third|quarter|dozen)\b|an\s+hour\b|half\b|"
                     r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|"
                     r"forty|fifty|sixty|hundred)\b)", re.IGNORECASE)
_DETERMINERS = frozenset("""a an the its their his her some one two many all every each any of and or
how what why where whom whose new own more most just""".split())

# "at their heaviest", "at his best", "at her most reflective", "at its peak"
_PEAK = re.compile(r"\bat\s+(?:their|his|her|its)\s+(?:very\s+)?(?:best|worst|peak|prime|finest|height|most\b|"
                   r"least\b|[a-z]{3,}iest\b|[a-z]{3,}est\b)", re.IGNORECASE)


# "Pearl Jam's slowest song", "the darkest track on Riot Act", "her most personal novel": a
# ranking of the item among the creator's works, which the catalog never holds
_NOT_SUPERLATIVE = frozenset("""honest modest earnest interest forest harvest manifest protest contest request
quest west rest test chest guest nest arrest digest invest suggest""".split())
_RANKED = re.compile(r"(?:\bthe|['’]s|\x00|\b(?:their|his|her|its))\s+(?:(?:very|single|all-time)\s+)?"
                     r"([a-z]{2,}est|best|worst|most\s+[a-z-]+|least\s+[a-z-]+)\s+(?:[a-z-]+\s+)?"
                     r"(?:songs?|tracks?|cuts?|albums?|records?|singles?|novels?|books?|reads?|shows?|podcasts?|"
                     r"episodes?|works?|releases?|stor(?:y|ies)|hits?|numbers?|pieces?|moments?|entr(?:y|ies))\b",
                     re.IGNORECASE)
# "one of Koontz's scariest", "one of the best": a ranking without a work noun after it
_ONE_OF = re.compile(r"\bone\s+of\s+(?:the|\S*['’]s|\x00+|their|his|her|its)\s+(?:\x00+['’]?s?\s+)?"
                     r"([a-z]{2,}est|best|worst|most\s+[a-z-]+|least\s+[a-z-]+)\b", re.IGNORECASE)
# "in a single afternoon", "in two days", "over one weekend": when or how fast it was made
_MADE_IN = re.compile(r"\b(?:in|over|within|during)\s+(?:just\s+|only\s+)?(?:a\s+single|one|a|two|three|four|five|"
                      r"a\s+few|a\s+couple\s+of)\s+(?:afternoons?|mornings?|nights?|evenings?|days?|weeks?|"
                      r"months?|weekends?|sessions?|takes?)\b", re.IGNORECASE)


def check_subject_claims(text: str, free: str, toks: list[Tok], allowed, plain: frozenset[str],
                         claims: Claims) -> None:
    """Subject and plot phrases, and creators' peaks (see the module docstring)."""
    support = _item_support(allowed)
    for m in _SUBJECT_LEAD.finditer(free):
        rest = free[m.end():]
        if _APPROX.match(rest):
            continue
        i = _token_at(toks, m.start())
        if i is not None and listener_context(text, toks, i):
            continue  # "someone who reads about Xerox Parc": the listener's reading
        words = _subject_words(rest)
        content = [w for w in words if w not in plain and w not in _DETERMINERS and len(w) > 2]
        if not content:
            continue  # a blanked name, a genre word or nothing: judged by the name and genre checks
        if any(_supported(w, support) for w in words if w not in _DETERMINERS):
            claims.ok()
            continue
        span_end = m.end() + len(rest) - len(rest.lstrip()) + len(" ".join(words))
        claims.bad(f'unsupported subject claim "{quote(text, m.start(), min(len(text), span_end), 4)}" '
                   "(the item's facts hold no plot, setting or topic)")
    ranked: list[tuple[int, int]] = []
    for m in (*_RANKED.finditer(free), *_ONE_OF.finditer(free)):
        word = m.group(1).lower()
        if word in _NOT_SUPERLATIVE or _of_listener(free, m.start()) \
                or any(a < m.end() and m.start() < b for a, b in ranked):
            continue
        ranked.append(m.span())
        claims.bad(f'unsupported ranking claim "{quote(text, *m.span())}" (the catalog does not rank an item '
                   "among its creator's works)")
    for m in _MADE_IN.finditer(free):
        if _of_listener(free, m.start()):
            continue  # "you finished it in a weekend": the listener's, judged as a habit elsewhere
        claims.bad(f'unsupported making claim "{quote(text, *m.span())}" (the catalog holds a year at most)')
    for m in _PEAK.finditer(free):
        claims.bad(f'unsupported career claim "{quote(text, *m.span())}" (the catalog holds no judgement '
                   "of the creator's work)")


def _of_listener(free: str, start: int) -> bool:
    """"your best read", "you finished it in a weekend": said of the listener."""
    before = re.split(r"[,;:.!?()]", free[max(0, start - 40):start])[-1]
    return bool(re.search(r"\b(?:you|your|yours|you['’]\w+)\b", before, re.IGNORECASE))


def _subject_words(rest: str) -> list[str]:
    """The subject after a lead phrase: up to seven words, to punctuation, a blanked
    name or a clause word."""
    out: list[str] = []
    for raw in re.finditer(r"[^\s]+", rest):
        w = raw.group()
        if "\x00" in w:
            break
        core = re.sub(r"^[\"'“‘(]+", "", w)
        stop = bool(re.search(r"[,;:.!?)\"”]$", core))
        key = " ".join(name_tokens(core))
        if not key:
            break
        if key in _SUBJECT_END and out:
            break
        out.extend(key.split())
        if stop or len(out) >= 7:
            break
    return out


def _item_support(allowed) -> set[str]:
    words = set(allowed.item_words)
    for g in allowed.item_genres:
        words.update(g.split())
    return words


def _supported(word: str, support: set[str]) -> bool:
    if word in support:
        return True
    stem = _stem(word)
    return len(stem) >= 5 and any(_stem(s) == stem or (len(s) >= 6 and (s.startswith(stem) or stem.startswith(s)))
                                  for s in support)


def _token_at(toks: list[Tok], pos: int) -> int | None:
    for i, t in enumerate(toks):
        if t.start >= pos:
            return i
    return None


# Derived forms only: a listener word must share at least this many leading letters
# with the note's word ("christian" / "christianity", "political" / "politics").
_MIN_SHARED = 6
def check_moved_listener_words(text: str, toks: list[Tok], allowed, genre_vocab, genre_words: frozenset[str],
                               claims: Claims) -> None:
    """The head word of a listener genre said of the item, in a form the genre check does
    not read (see the module docstring). History-title words are check_moved_words'
    (listener_claims.py)."""
    item_genre_words = {w for g in allowed.item_genres for w in g.split()}
    item = set(allowed.item_words) | item_genre_words
    # the head word of each listener genre ("christianity" of religion-spirituality-christianity,
    # "politics" of news-politics); modifiers ("natural" of natural-sciences) are plain adjectives
    listener = {g.split()[-1] for g in allowed.genres if g.split()}
    listener = {w for w in listener if len(w) >= _MIN_SHARED and w not in item and w not in FORMAT_WORDS}
    if not listener:
        return
    cues = listener_words()
    for i, t in enumerate(toks):
        k = t.key
        if t.masked or t.used or len(k) < _MIN_SHARED or k in FORMAT_WORDS or k in cues:
            continue
        if k in genre_vocab:
            continue  # a genre phrase: judged by the genre check
        if _derived_in(k, item):
            continue
        src = k if k in listener else next((w for w in listener if _derived(k, w)), None)
        if src is None or listener_context(text, toks, i):
            continue
        claims.bad(f'"{quote(text, t.start, t.end, 16)}": "{t.text}" is the listener\'s ("{src}"), '
                   "not a fact of this item")


def _derived(a: str, b: str) -> bool:
    """Two forms of one word: a shared start of at least _MIN_SHARED letters that covers
    all but a short ending of each ("christian" / "christianity", "political" / "politics")."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n >= _MIN_SHARED and len(a) - n <= 4 and len(b) - n <= 4


def _derived_in(word: str, pool: set[str]) -> bool:
    return any(_derived(word, w) for w in pool)


def _stem(word: str) -> str:
    for suffix in ("ies", "es", "s", "ing", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word
