"""Name claims: quoted titles, the allowed names masked first, then runs of
capitalised words matched against allowed names and the catalog (wrong entity,
invented name, a shortened or re-cased allowed name). The rule is documented in
grounding.py."""

from __future__ import annotations

import re
from collections.abc import Mapping

from linernotes.domain.gates.allowed import Allowed, is_allowed_name
from linernotes.domain.gates.index import KIND_COLLECTION, KIND_CREATOR, KIND_PUBLISHER, KIND_TITLE, CatalogIndex, kind_word
from linernotes.domain.gates.normalize import CONNECTORS, END_STOP, KEY_STOP, join_key, title_variants
from linernotes.domain.gates.tally import Claims, span_text as _span_text
from linernotes.domain.gates.tokens import Tok, joinable
from linernotes.domain.gates.vocab import GenreEntry, common_words

# Quoted spans hug their text ("Title", not " by X picks up where "), so a title
# that itself contains quotes ('The Word "Desire"') does not pair quotes wrongly.
_QUOTE_RE = re.compile(r'"(?=\S)([^"\n]{1,200}?)(?<=\S)"|“(?=\S)([^”\n]{1,200}?)(?<=\S)”|'
                       r"‘(?=\S)(.{1,200}?)(?<=\S)’(?!\w)|(?<![\w])'(?=\S)([^'\n]{1,200}?)(?<=\S)'(?!\w)")


def _wrong_entity(shown: str, flags: int) -> str:
    word = kind_word(flags)
    if flags & KIND_CREATOR:
        return f'"{shown}" is a catalog creator but not of this item or the listener\'s history'
    if flags & KIND_PUBLISHER and not flags & (KIND_TITLE | KIND_COLLECTION):
        return f'"{shown}" is a catalog publisher but not of this item'
    return f'"{shown}" is a catalog {word} but not this item or one in the listener\'s history'


def check_quotes(text: str, toks: list[Tok], allowed: Allowed, index: CatalogIndex | None,
                  vocab: Mapping[str, GenreEntry], genre_words: frozenset[str], claims: Claims) -> None:
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
        key = join_key(keys)
        if all(k in plain or k.isdigit() for k in keys) and (index is None or key not in index.names):
            continue  # 'that "Saturday Night" feeling': no name in it
        shown = m.group(g).strip()
        for t in inside:
            t.used = True
        variants = title_variants(shown) | {key}
        hit = next((v for v in variants if is_allowed_name(v, len(v.split()), allowed, index)), None)
        if hit is not None:
            claims.ok()
            claims.mentions.append((toks.index(inside[0]), toks.index(inside[-1]) + 1, hit))
        elif index is not None and key in index.names:
            claims.bad(_wrong_entity(shown, index.names[key]))
        elif index is not None:
            claims.bad(f'"{shown}" (quoted title) not in catalog')
        else:
            claims.bad(f'"{shown}" (quoted title) not in item/listener facts')


def _inside_catalog_name(text: str, toks: list[Tok], i: int, n: int, allowed: Allowed,
                         index: CatalogIndex | None) -> bool:
    """An allowed name glued to capitalised words that make another catalog name
    ("Serial" in "Serial Killers", a spin-off): not masked, left to the name check."""
    if index is None:
        return False
    for before in range(0, 3):
        for after in range(0, 4):
            if not before and not after:
                continue
            s, e = i - before, i + n + after
            if s < 0 or e > len(toks):
                continue
            seg = toks[s:e]
            if not seg[0].cap or not seg[-1].cap or seg[-1].key in END_STOP:
                continue
            if any(t.sent_start for t in seg[1:]) or not all(joinable(text, a, b) for a, b in zip(seg, seg[1:])):
                continue
            key = join_key(t.key for t in seg)
            if key in index.names and not is_allowed_name(key, len(seg), allowed, index):
                return True
    return False


def mask_allowed(toks: list[Tok], allowed: Allowed, claims: Claims, text: str = "",
                 index: CatalogIndex | None = None) -> None:
    i = 0
    while i < len(toks):
        for n in range(min(allowed.max_tokens, len(toks) - i), 0, -1):
            if n > 1 and (toks[i + n - 1].key in END_STOP or toks[i].key == "and"):
                continue  # never swallow a following "The" ("Germain's The Canopy")
            key = join_key(t.key for t in toks[i:i + n])
            if key in allowed.keys and key not in CONNECTORS and key not in KEY_STOP:
                if text and _inside_catalog_name(text, toks, i, n, allowed, index):
                    continue
                for t in toks[i:i + n]:
                    t.masked = True
                claims.ok()
                claims.mentions.append((i, i + n, key))
                i += n
                break
        else:
            i += 1


def _runs(text: str, toks: list[Tok]) -> list[list[Tok]]:
    runs: list[list[Tok]] = []
    cur: list[Tok] = []

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
        if cur and (not joinable(text, cur[-1], t) or t.sent_start):
            flush()
        if t.cap or (cur and (t.text[0].isdigit() or t.key in CONNECTORS)):
            cur.append(t)
        else:
            flush()
    flush()
    return runs


def check_names(text: str, toks: list[Tok], allowed: Allowed, index: CatalogIndex | None,
                 genre_words: frozenset[str], claims: Claims) -> None:
    common = common_words()
    plain = common | genre_words | CONNECTORS

    def unknown_word(t: Tok) -> bool:
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
                if not seg[0].cap or not seg[-1].cap or (n > 1 and seg[-1].key in END_STOP):
                    continue
                key = join_key(t.key for t in seg)
                if not key:
                    continue
                if n >= 2 and is_allowed_name(key, n, allowed, index):
                    found = (i, n, "allowed", 0)
                elif n >= 2 and " " not in key and _short_creator(key, allowed) and key not in plain \
                        and not (index is not None and index.names.get(key, 0) & KIND_CREATOR):
                    found = (i, n, "allowed", 0)  # "The Stones" for The Rolling Stones (not "The Police")
                elif n == 1 and (key in allowed.tokens or key in allowed.keys):
                    found = (i, n, "allowed", 0)
                elif n >= 2 and _shortened_creator(seg, allowed):
                    # "Dean Koontz" for Dean R. Koontz: the same person without the middle
                    # initial, even when the catalog also spells them that way
                    found = (i, n, "allowed", 0)
                elif index is not None and not all(t.key in plain or t.key.isdigit() for t in seg):
                    flags = index.names.get(key, 0)
                    if n == 1:
                        # one word: a catalog creator ("Metallica"), or mid-sentence a
                        # catalog title/album ("Queen's Warning", "like Thriller")
                        mask = KIND_CREATOR
                        owned = _after_allowed_possessive(text, toks, seg[0])
                        if not seg[0].sent_start and (len(key) >= 4 or owned):
                            mask |= KIND_TITLE | KIND_COLLECTION
                        if _publisher_slot(text, toks, seg[0]):
                            mask |= KIND_PUBLISHER  # "a 1996 Bantam paperback", "published by Putnam"
                        flags &= mask
                        if (len(key) < 3 and not owned) or (key in common and not owned):
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
                    claims.mentions.append((toks.index(seg[0]), toks.index(seg[-1]) + 1,
                                            join_key(t.key for t in seg)))
            else:
                claims.bad(_wrong_entity(_span_text(text, seg), flags))
        # 3. leftover runs of capitalised words: an unknown name when two or more
        #    capitalised words (not sentence-initial) include one that is not a common word
        # (a single word of an allowed name does not split a group: "Michael Perkins"
        #  is unknown even when the item's author is Michael Malone)
        single_allowed = {s for s, n, kind, _ in matches if kind == "allowed" and n == 1}
        group: list[Tok] = []
        for j in range(len(run) + 1):
            if j < len(run) and (j in left or j in single_allowed):
                group.append(run[j])
                continue
            if group:
                # a sentence-initial word counts as capitalised but never as the unknown one:
                # "Jimi Hendrix wrote..." is a name, "Dreamy Bossa Nova..." is not
                while len(group) > 1 and group[0].sent_start and group[0].key in plain:
                    group = group[1:]  # "After Hemingway's ...": the sentence starter is no part of the name
                caps = [t for t in group if t.cap and not t.key.isdigit()]
                short = _shortened_name(group, allowed)
                if short:
                    claims.ok()  # "John Toole" for John Kennedy Toole: a middle name dropped
                    claims.mentions.append((toks.index(group[0]), toks.index(group[-1]) + 1, short))
                elif len(caps) >= 2 and any(unknown_word(t) for t in caps) and not _allowed_list(group, allowed, text) \
                        and not _clause_gap(group, unknown_word) and not _genre_and_allowed(caps, allowed, plain):
                    claims.bad(_unknown_name(_span_text(text, group), index))
                else:
                    for t in group:
                        if t.key in allowed.tokens:
                            ti = toks.index(t)
                            claims.mentions.append((ti, ti + 1, t.key))
                group = []


_EDITION_NOUNS = frozenset("""paperback paperbacks hardcover hardcovers hardback edition editions imprint
printing reprint title titles book books novel release""".split())


def _publisher_slot(text: str, toks: list[Tok], tok: Tok) -> bool:
    """A single word where a publisher goes: before an edition noun ("a Bantam
    paperback") or after "published by" / "publisher" / "imprint"."""
    i = toks.index(tok)
    nxt = toks[i + 1] if i + 1 < len(toks) else None
    if nxt is not None and nxt.key in _EDITION_NOUNS and not nxt.cap and text[tok.end:nxt.start].isspace():
        return True
    before = text[max(0, tok.start - 24):tok.start].lower()
    return bool(re.search(r"(?:published\s+by|publisher|imprint|issued\s+by)\s+$", before))


def _after_allowed_possessive(text: str, toks: list[Tok], tok: Tok) -> bool:
    """`tok` follows an allowed name's possessive ("from Pearl Jam's Ten"): a short or
    common word there is still a title or album claim of that creator."""
    i = toks.index(tok)
    if i == 0 or not toks[i - 1].masked:
        return False
    prev = toks[i - 1]
    gap = text[prev.end:tok.start]
    return bool(re.fullmatch(r"['’]s?\s+", gap) or (re.search(r"['’]s$", prev.text) and gap.isspace()))


def _short_creator(word: str, allowed: Allowed) -> bool:
    """`word` is the last word of a creator's name of two or more words."""
    return any(k.endswith(" " + word) and any(s.endswith(":creator") for s in allowed.sources.get(k, ()))
               for k in allowed.keys)


def _shortened_creator(group: list[Tok], allowed: Allowed) -> bool:
    short = _shortened_name(group, allowed)
    return short is not None and any(src.endswith((":creator", ":composer"))
                                     for src in allowed.sources.get(short, ()))


def _shortened_name(group: list[Tok], allowed: Allowed) -> str | None:
    """The allowed key that these words abbreviate (same first and last word, the
    rest in order: a middle name or initial dropped), or None."""
    keys = [t.key for t in group if t.key not in CONNECTORS]
    if len(keys) < 2 or not all(k in allowed.tokens for k in keys):
        return None
    for cand in allowed.keys:
        ct = cand.split()
        if len(ct) > len(keys) and len(ct[0]) == 1 and ct[0] != keys[0]:
            ct = ct[1:]  # "Scott Peck" for M. Scott Peck: a leading initial dropped
            if ct == keys:
                return cand
        if len(ct) <= len(keys) or ct[0] != keys[0] or ct[-1] != keys[-1]:
            continue
        it = iter(ct)
        if all(k in it for k in keys):
            return cand
    return None


_CLAUSE_WORDS = frozenset({"is", "you", "it", "we", "me", "my"})


def _clause_gap(group: list[Tok], unknown_word) -> bool:
    """"Veloso is a Latin song": a lower-case verb or pronoun between capitalised
    words ends a name (a title capitalises it: "Love Is a Battlefield"); no part
    then holds two capitalised words with an unknown one."""
    parts: list[list[Tok]] = [[]]
    for t in group:
        if not t.cap and t.key in _CLAUSE_WORDS and t.text[:1].islower():
            parts.append([])
        else:
            parts[-1].append(t)
    if len(parts) < 2:
        return False
    return not any(len([t for t in p if t.cap]) >= 2 and any(unknown_word(t) for t in p if t.cap) for p in parts)


def _allowed_list(group: list[Tok], allowed: Allowed, text: str = "") -> bool:
    """"Borges and Maupassant", "the Paralamas' Arquivo": a list of allowed names, or
    an owner and its work split at a possessive (each part made of allowed words), not
    one unknown name. The pair itself is the relation check's."""
    parts: list[list[str]] = [[]]
    for n, t in enumerate(group):
        if t.key in ("and", "or", "&", "nor"):
            parts.append([])
            continue
        parts[-1].append(t.key)
        nxt = group[n + 1] if n + 1 < len(group) else None
        if text and nxt is not None and (re.search(r"['’]", text[t.end:nxt.start])
                                         or re.search(r"['’]s$", t.text)):
            parts.append([])
    return len(parts) >= 2 and all(p and all(k in allowed.tokens for k in p) for p in parts)


def _genre_and_allowed(caps: list[Tok], allowed: Allowed, plain: frozenset[str]) -> bool:
    """"Latin from the Arquivo collection": a capitalised genre or common word next to
    words of an allowed name is a description of that name, not one unknown name (every
    capitalised word is plain or allowed, and at least one is plain)."""
    return all(t.key in plain or t.key in allowed.tokens for t in caps) and any(t.key in plain for t in caps)


def _in_allowed(j: int, matches: list[tuple[int, int, str, int]]) -> bool:
    return any(kind == "allowed" and s <= j < s + n for s, n, kind, _ in matches)


def _unknown_name(shown: str, index: CatalogIndex | None) -> str:
    if index is not None:
        return f'"{shown}" is not a name from this item, the listener\'s history or the catalog'
    return f'"{shown}" is not a name from this item or the listener\'s history'
