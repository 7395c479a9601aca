"""Relations between allowed names. Each name may be a fact on its own (the
listener's history artist, the item's title) while the pair is false: "X's Y",
"Y by X", "Y from Z", "hosted by X", "X's latest", "a classic Austen novel" must
hold for one and the same item (the recommended one, or one history entry).

Mentions come from the name checks as (first token, end token, sources); a
source is "item:title", "item:creator", "item:collection", "item:composer",
"hist3:title", "hist3:creator", "country" (allowed.py)."""

from __future__ import annotations

import re

from linernotes.domain.gates.listener_claims import listener_context
from linernotes.domain.gates.tokens import Tok, quote

_CREATOR = ("creator", "composer")
# "X's" or a plural's bare apostrophe ("Smashing Pumpkins' Over And Out")
_POSS_AFTER = re.compile(r"['’](?:s\b|(?=\s))")
_WORK = ("title", "collection")
# words that may sit between "X's" and the title it owns ("Led Zeppelin's classic The Rover")
_FILLER = frozenset("""
a an the classic new latest early late own signature famous beloved haunting gorgeous moody bright dark
track song tune cut single number album record lp ep novel book read story tale memoir podcast show
series epic ballad anthem gem opus debut hit standout masterpiece title take version
""".split())
_ITEM_NOUN = re.compile(r"^[\s-]*(?:[\w-]+\s+){0,1}(novel|book|read|memoir|story|tale|track|song|tune|cut|"
                        r"single|record|album|lp|ep|ballad|anthem|classic|podcast|show|episode|thriller|"
                        r"mystery|romance|saga|release|offering|title|number|jam|epic|comedy|satire|romp|caper|"
                        r"drama|page-turner|yarn|adventure|fantasy|whodunit|listen|pick|outing|effort|work|"
                        r"favourite|favorite|stomp|groove|rocker|banger|production|special|collection|"
                        r"paperback|hardback|audiobook|entry|instalment|installment|sequel)s?\b", re.IGNORECASE)
# "is pure Ben Elton", "vintage Ozzy Osbourne", "more Ben Elton for you": the item said to be theirs
_PURE_BEFORE = re.compile(r"(?:^|\W)(?:pure|vintage|peak|prime|quintessential|typical|trademark|more|quite\s+the)"
                          r"\s*$", re.IGNORECASE)
_ARTICLE_BEFORE = re.compile(r"(?:^|\W)(?:a|an|this|another|one\s+more|the\s+(?:new|latest))"
                             r"(?:\s+[\w-]+){0,2}\s*$", re.IGNORECASE)
_LATEST = re.compile(r"^\s*(?:latest|newest|new|next|most\s+recent|recent|brand[\s-]new)\b", re.IGNORECASE)
_BY = re.compile(r"^[\s,\"“”'‘’(]*(?:(?:a|an|the|another)\s+)?(?:[\w-]+\s+){0,3}?"
                 r"(written|hosted|performed|sung|composed|penned|recorded|co-hosted|by)(?:\s+by)?\s*[\"“‘']?$",
                 re.IGNORECASE)
_FROM = re.compile(r"^[\s,\"“”'‘’)]*(?:(?:taken|lifted|pulled|culled)\s+)?(?:from|off|on)\s+"
                   r"(?:the\s+|their\s+|his\s+|her\s+|its\s+)?(?:[\w-]+\s+){0,1}?"
                   r"(?:(?:album|record|lp|ep|disc|compilation|collection|set|release)\s+)?[\"“‘']?$", re.IGNORECASE)
# "Iron Maiden cut You Got Me Rocking", "Austen wrote Emma": a creator making a work
_MADE = re.compile(r"^(?:-(?:hosted|penned|written|fronted|led|produced|narrated|sung|authored)\s+[\"“‘']?|"
                   r"\s+(?:also\s+|first\s+|once\s+)?(?:cut|recorded|wrote|penned|sang|sings|released|"
                   r"made|delivered|put\s+out|gave\s+us|dropped|authored|hosts|hosted|created|composed|"
                   r"co-wrote|writes)\s+[\"“‘']?)$", re.IGNORECASE)
_SERIES_BEFORE = re.compile(r"\b(?:in|of|from|to|joins|continues)\s+(?:the\s+)?[\"“]?$", re.IGNORECASE)
_SERIES_AFTER = re.compile(r"^[\"”]?\s*(?:series|saga|trilogy|sequence|cycle|universe|franchise|books|novels|"
                           r"editions?|imprint|printing|line)\b",
                           re.IGNORECASE)
# "a step away from the Silver Brumby books", "a change from the X novels": the history named as
# what the item differs from, not the item's own series
_CONTRAST_FROM = re.compile(r"\b(?:away|change|break|departure|shift|switch|detour|respite|rest|pivot|turn|"
                            r"swerve|leap|jump|move|way|far\s+cry|different|differs)\s+(?:of\s+pace\s+)?from\s+"
                            r"(?:the\s+|your\s+|those\s+)?[\"“]?$", re.IGNORECASE)
# "Bachelor Happy Hour with Tim Dillon", "X featuring Y": the person named as the item's host or guest
_WITH = re.compile(r"^\s+(?:with|featuring|feat\.?|ft\.?|starring|alongside)\s+[\"“]?$", re.IGNORECASE)
# "pairs Vida Boa with War Pigs", "mix X with Y": two works set side by side, no host claim
_PAIRING = re.compile(r"\b(?:pair|pairs|paired|pairing|mix|mixes|mixed|match|matches|matched|compare|compares|"
                      r"compared|combine|combines|blend|blends|follow|follows|put|puts|line\s+up|lines\s+up|"
                      r"stack|stacks|sandwich|bookend|bookends|alternate|swap|swaps|replace|replaces)\b[^.;!?]{0,60}$",
                      re.IGNORECASE)
_HOSTED = re.compile(r"\b(hosted|co-hosted|narrated|presented|read)\s+by\s*[\"“]?$", re.IGNORECASE)


def _entities(srcs: set[str], roles: tuple[str, ...]) -> set[str]:
    return {s.split(":")[0] for s in srcs if ":" in s and s.split(":")[1] in roles}


def check_relations(text: str, toks: list[Tok], mentions: list[tuple[int, int, set[str]]], claims) -> None:
    ms = sorted({(s, e): srcs for s, e, srcs in mentions}.items())
    for idx, ((s, e), srcs) in enumerate(ms):
        a_start, a_end = toks[s].start, toks[e - 1].end
        before = text[:a_start]
        after = text[a_end:]
        possessive = bool(re.search(r"['’]s?$", toks[e - 1].text)) or (
            bool(re.match(_POSS_AFTER, re.sub(r"^\.(?=['’])", "", after))) and not re.search(r"['‘]$", before))  # 'War Pigs' is a quote
        nxt = ms[idx + 1] if idx + 1 < len(ms) else None
        # "hosted by X", "narrated by X": X must be the item's own host/creator
        hb = _HOSTED.search(before)
        if hb and not _entities(srcs, _CREATOR) & {"item"}:
            claims.bad(f'relation "{quote(text, hb.start(), a_end, 0)}" does not hold: not this item\'s '
                       f'{"host" if "host" in hb.group(1).lower() else "creator"}')
            continue
        if nxt is not None:
            (s2, e2), srcs2 = nxt
            gap = text[a_end:toks[s2].start]
            span = f'"{text[a_start:toks[e2 - 1].end]}"'
            # "X's Y": a creator owning a work
            if possessive and _entities(srcs, _CREATOR) and _entities(srcs2, _WORK) and _filler_gap(gap):
                if not _entities(srcs, _CREATOR) & _entities(srcs2, _WORK):
                    claims.bad(f"relation {span} does not hold: {_who(srcs)} is not the creator of {_what(srcs2)}")
                else:
                    claims.ok()
                continue
            # "Fafá de Belém's Chão De Estrelas": words of a history title owning the item's work
            if possessive and srcs and not _entities(srcs, ("title", "collection", "creator", "composer")) & {"item"} \
                    and "country" not in srcs and _entities(srcs, _WORK) and not _entities(srcs, _CREATOR) \
                    and "item" in _entities(srcs2, _WORK) and _filler_gap(gap):
                claims.bad(f"relation {span} does not hold: {_what(srcs)} is not the creator of {_what(srcs2)}")
                continue
            # "Bachelor Happy Hour with Tim Dillon": a history name as the item's host or guest
            if _WITH.match(gap) and "item" in _entities(srcs, _WORK) and "country" not in srcs2 \
                    and not _entities(srcs2, _WORK + _CREATOR) & {"item"} and not _PAIRING.search(before) \
                    and _entities(srcs2, _CREATOR + ("title",)) \
                    and not re.match(r"^(?:['’]|\s+(?:fans?|listeners?|readers?|lovers?|devotees?)\b)",
                                     text[toks[e2 - 1].end:], re.IGNORECASE) \
                    and _person_like(text[toks[s2].start:toks[e2 - 1].end], srcs2):
                claims.bad(f"relation {span} does not hold: {_who(srcs2) if _entities(srcs2, _CREATOR) else 'a history name'}"
                           f" is not this item's host or guest")
                continue
            # "Vida Boa, Ozzy Osbourne's ...": a work then its owner
            poss2 = bool(re.search(r"['’]s?$", toks[e2 - 1].text)) or bool(
                re.match(_POSS_AFTER, text[toks[e2 - 1].end:]))
            owns_next = idx + 2 < len(ms) and _entities(ms[idx + 2][1], _WORK) and _filler_gap(
                text[toks[e2 - 1].end:toks[ms[idx + 2][0][0]].start])  # "After X, Y's Z": Y owns Z
            owned2 = _OWNED.match(re.sub(r"^['’]s?", "", text[toks[e2 - 1].end:]))
            if poss2 and owned2 and not owns_next and re.fullmatch(r"\s*[,(–—-]\s*(?:the\s+|a\s+)?", gap) \
                    and _entities(srcs, _WORK) and _entities(srcs2, _CREATOR):
                if not _entities(srcs, _WORK) & _entities(srcs2, _CREATOR):
                    claims.bad(f"relation {span} does not hold: {_what(srcs)} is not by {_who(srcs2)}")
                else:
                    claims.ok()
                continue
            # "X cut Y", "X wrote Y"
            if _MADE.match(gap) and _entities(srcs, _CREATOR) and _entities(srcs2, _WORK):
                if not _entities(srcs, _CREATOR) & _entities(srcs2, _WORK):
                    claims.bad(f"relation {span} does not hold: {_who(srcs)} is not the creator of {_what(srcs2)}")
                else:
                    claims.ok()
                continue
            # "Y by X"
            if _BY.match(gap) and _entities(srcs, _WORK) and _entities(srcs2, _CREATOR):
                if not _entities(srcs, _WORK) & _entities(srcs2, _CREATOR):
                    claims.bad(f"relation {span} does not hold: {_what(srcs)} is not by {_who(srcs2)}")
                else:
                    claims.ok()
                continue
            # "Y from Z": a track and its album
            if _FROM.match(gap) and _entities(srcs, ("title",)) and "country" not in srcs2 \
                    and _entities(srcs2, _WORK + _CREATOR):
                titles = _entities(srcs, ("title",))
                if _entities(srcs2, ("collection",) + _CREATOR) & titles:
                    claims.ok()
                else:
                    claims.bad(f"relation {span} does not hold: {_what(srcs)} is not on or by {_what(srcs2)}")
                continue
        # "an entry in the Green Mile series": the item placed in a history title's series
        works = _entities(srcs, _WORK)
        if works and "item" not in works and _SERIES_BEFORE.search(before) and _SERIES_AFTER.match(after) \
                and not _CONTRAST_FROM.search(before):
            claims.bad(f'relation "{quote(text, a_start, a_end + _SERIES_AFTER.match(after).end(), 16)}" '
                       f"does not hold: the series is {_what(srcs)}, not this item's")
            continue
        creators = _entities(srcs, _CREATOR)
        if not creators or "item" in creators:
            continue
        # "X's latest", "X's new album": said of the recommended item
        rest = re.sub(r"^['’]s?", "", after)
        owned = _OWNED.match(rest) if possessive else None
        if owned and (nxt is None or toks[nxt[0][0]].start - a_end > owned.end() + 2) \
                and not listener_context(text, toks, s):
            claims.bad(f'relation "{quote(text, a_start, a_end + owned.end(), 0)}" does not hold: '
                       f"{_who(srcs)} is not the creator of this item")
            continue
        if possessive and _LATEST.match(rest):
            claims.bad(f'relation "{quote(text, a_start, a_end + 10, 0)}" does not hold: '
                       f"{_who(srcs)} is not the creator of this item")
            continue
        # "a classic Austen novel", "another Ben Elton read": the item is said to be theirs
        if not possessive and _ARTICLE_BEFORE.search(before) and _ITEM_NOUN.match(after) \
                and (nxt is None or toks[nxt[0][0]].start - a_end > 25):
            m = _ITEM_NOUN.match(after)
            claims.bad(f'relation "{quote(text, a_start, a_end + m.end(), 12)}" does not hold: '
                       f"{_who(srcs)} is not the creator of this item")
            continue
        if not possessive and _PURE_BEFORE.search(before) and not listener_context(text, toks, s) \
                and not re.match(r"^[\s-]*(?:fans?|readers?|listeners?|lovers?)\b", after, re.IGNORECASE):
            claims.bad(f'relation "{quote(text, a_start, a_end, 12)}" does not hold: '
                       f"{_who(srcs)} is not the creator of this item")


# "Dana Perino's Harry Potter podcast", "Ben Elton's latest novel", "Green Day's take on
# alternative": one work owned by X
_OWNED = re.compile(r"^\s+(?:[\w\x00-]+\s+){0,3}?(novel|book|memoir|track|song|tune|single|record|album|"
                    r"podcast|show|ballad|anthem|thriller|mystery|romance|release|take|version|rendition|reworking|"
                    r"effort|offering|outing)\b(?!\s+(?:of|by)\b)",
                    re.IGNORECASE)


def _person_like(name: str, srcs: set[str]) -> bool:
    """A creator, or a run of two or three capitalised words inside a longer history title
    ("Mina Kimes" of "The Mina Kimes Show featuring Lenny"), not a whole title."""
    if _entities(srcs, _CREATOR):
        return True
    words = name.split()
    return 2 <= len(words) <= 3 and all(w[:1].isupper() for w in words) and words[0].lower() not in ("the", "a", "an")


def _filler_gap(gap: str) -> bool:
    gap = re.sub(r"^\.(?=['’])", "", gap)  # "R.E.M.'s": the abbreviation's own full stop
    words = re.findall(r"[\w-]+", re.sub(r"^['’]s?", "", gap).lower())
    rest = re.sub(r"[\w\s\-'’\"“”‘,:]", "", gap)
    return len(words) <= 3 and all(w in _FILLER for w in words) and not rest


def _who(srcs: set[str]) -> str:
    ents = _entities(srcs, _CREATOR)
    return "the item's creator" if "item" in ents else "a history creator" if ents else "that name"


def _what(srcs: set[str]) -> str:
    ents = _entities(srcs, _WORK)
    if "item" in ents:
        return "the item" if any(s == "item:title" for s in srcs) else "the item's album"
    return "a history title" if ents else "that name"
