"""Paraphrase-aware dedupe: the hand-written pair set, claim signatures, the decision
rule and its wiring into DedupeIndex's semantic stage."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from curation.claim_compare import (
    CERTAIN_COSINE, CLAIM_THRESHOLD, claim_duplicate, claims_conflict, descriptor_overlap, signatures_match,
)
from curation.claim_signature import ClaimSignature, signature, stem
from curation.dedupe import DedupeIndex
from curation.paraphrase_devset import (
    DEVSET_DIR, DISTINCT_CLASSES, DUPLICATE_CLASSES, OTHER_ITEM_CLASSES, REPORTED_SPLITS, SPLITS, TUNING_SPLITS,
    build_all, load_pairs, parse_source, resolve_records,
)
from curation.paraphrase_eval import default_show, sweep_pairs
from linernotes import paths
from linernotes.config import CurateConfig

ITEM = {"item_id": "music:1817", "item_type": "music", "title": "Last Caress/Green Hell", "creator": "Metallica",
        "collection": "Garage Inc. (Disc 2)", "genres": ["Metal"], "duration_s": 209.9}
LISTENER = {"listener_id": "music-customer:36", "country": "Germany", "taste": ["Metal", "Rock"],
            "history": [{"item_id": "music:1", "title": "The Four Horsemen", "creator": "Metallica"},
                        {"item_id": "music:2", "title": "Snowblind", "creator": "Black Sabbath"},
                        {"item_id": "music:3", "title": "Whiplash", "creator": "Metallica"}]}


def sig(text: str) -> ClaimSignature:
    return signature(text, ITEM, LISTENER)


# --------------------------------------------------------------------------- the pair set


@pytest.fixture(scope="module")
def pairs() -> list[dict]:
    # the tuning splits only: the reported split (holdout3) is not read here
    return load_pairs("tuning")


def test_every_row_parses_with_its_label(pairs):
    ids = [p["id"] for p in pairs]
    assert len(ids) == len(set(ids))
    for p in pairs:
        assert set(p) == {"id", "split", "item_id", "item_id_b", "listener_id", "a", "b", "label", "class"}
        assert p["class"] in DUPLICATE_CLASSES + DISTINCT_CLASSES
        assert p["label"] == ("duplicate" if p["class"] in DUPLICATE_CLASSES else "distinct")
        assert (p["item_id"] != p["item_id_b"]) == (p["class"] in OTHER_ITEM_CLASSES)
        assert p["a"].strip() and p["b"].strip() and p["a"] != p["b"]
        # notes are <= 30 words; a little slack for edits (holdout2 has 15 longer second notes,
        # 33-39 words, written before it became a tuning split: left to its owner to trim)
        if p["split"] in ("dev", "holdout"):
            assert len(p["b"].split()) <= 32


def test_sizes_and_balance(pairs):
    for split, least in (("dev", 150), ("holdout", 100), ("holdout2", 150)):
        rows = [p for p in pairs if p["split"] == split]
        assert len(rows) >= least
        dup = sum(p["label"] == "duplicate" for p in rows) / len(rows)
        assert 0.35 <= dup <= 0.65
        assert {p["class"] for p in rows} == set(DUPLICATE_CLASSES + DISTINCT_CLASSES)


def test_splits_share_no_item(pairs):
    items = {s: {i for p in pairs if p["split"] == s for i in (p["item_id"], p["item_id_b"])} for s in TUNING_SPLITS}
    assert items["dev"] and items["holdout"] and not (items["dev"] & items["holdout"])


def test_jsonl_is_the_hand_written_source(pairs):
    for split in TUNING_SPLITS:
        src = parse_source((DEVSET_DIR / f"{split}.txt").read_text(encoding="utf-8"), split)
        assert src == [p for p in pairs if p["split"] == split]


def test_rows_reference_real_catalog_ids(pairs):
    if not (paths.catalog_dir() / "items.parquet").exists():
        pytest.skip("no ingested catalog on this machine")
    items, listeners = resolve_records(pairs)
    assert {i for p in pairs for i in (p["item_id"], p["item_id_b"])} <= set(items)
    assert {p["listener_id"] for p in pairs} <= set(listeners)


def _write_split(folder, split: str, item: str = "music:1") -> None:
    (folder / f"{split}.txt").write_text(f"@ {split} {item} l:1\nA: raw metal\nP: metal, raw\n", encoding="utf-8")


def test_reported_split_is_optional_and_never_tuned_on(tmp_path):
    assert set(TUNING_SPLITS) | set(REPORTED_SPLITS) == set(SPLITS) and "holdout3" in REPORTED_SPLITS
    assert not set(TUNING_SPLITS) & set(REPORTED_SPLITS)
    for s in TUNING_SPLITS:
        _write_split(tmp_path, s)
    assert [p.name for p in build_all(tmp_path)] == ["dev.jsonl", "holdout.jsonl", "holdout2.jsonl"]  # no holdout3.txt: skipped
    assert {p["split"] for p in load_pairs("all", tmp_path)} == set(TUNING_SPLITS)
    with pytest.raises(FileNotFoundError, match="holdout3"):
        load_pairs("holdout3", tmp_path)
    _write_split(tmp_path, "holdout3", "music:2")
    assert "holdout3.jsonl" in [p.name for p in build_all(tmp_path)]
    assert {p["split"] for p in load_pairs("all", tmp_path)} == set(SPLITS)
    assert {p["split"] for p in load_pairs("tuning", tmp_path)} == set(TUNING_SPLITS)
    with pytest.raises(ValueError):
        load_pairs("holdout4", tmp_path)


def test_reported_split_lists_no_errors_by_default():
    assert default_show("holdout3") == 0
    assert default_show("dev") > 0 and default_show("holdout") > 0 and default_show("holdout2") > 0
    assert {p["split"] for p in sweep_pairs()} == set(TUNING_SPLITS)


def test_parse_source_refuses_a_malformed_line():
    with pytest.raises(ValueError):
        parse_source("@ dev music:1 l:1\nP: no A line before me\n", "dev")
    with pytest.raises(ValueError):
        parse_source("@ dev music:1 l:1\nA: x\nD: a different item needs its id\n", "dev")


# --------------------------------------------------------------------------- claim signature


def test_history_tie_and_its_creator():
    s = sig("You already know Metallica's The Four Horsemen; Last Caress/Green Hell is raw metal.")
    assert s.history == frozenset({"the four horsemen"})  # Metallica is the item's creator, not a tie
    assert sig("Black Sabbath fans will like it.").history == frozenset({"creator:black sabbath"})
    # a creator named beside their own title adds nothing
    assert sig("Black Sabbath's Snowblind fans will like it.").history == frozenset({"snowblind"})


def test_numbers_are_read_whatever_the_spelling():
    assert sig("three and a half minutes of raw metal").numbers == frozenset({3.5})
    assert sig("3.5 minutes of raw metal").numbers == frozenset({3.5})
    assert sig("You rated it 9/10").numbers == sig("you gave it a 9 out of 10").numbers == frozenset({9.0})
    assert sig("a ninety-second intro").numbers == sig("a minute and a half intro").numbers == frozenset({1.5})
    # digits for number words (a surface edit): "one" counts only before a unit
    assert sig("a one-minute intro").numbers == sig("a 1-minute intro").numbers == frozenset({1.0})
    assert sig("one of the fastest covers").numbers == frozenset()
    assert sig("a dozen raw covers").numbers == sig("12 raw covers").numbers == frozenset({12.0})
    assert sig("a dozen raw covers").descriptors == sig("12 raw covers").descriptors
    # the number inside the album's name is not a claim
    assert sig("their Misfits medley on Garage Inc. (Disc 2)").numbers == frozenset()
    assert sig("their Misfits medley on Garage Inc. (Disc 2)").collection is True


def test_country_demonym_and_descriptors():
    assert sig("a good pick for a German metal fan").country
    assert sig("a good pick for a listener in Germany").country
    assert not sig("a good pick for a metal fan").country
    a, b = sig("a loud, raw punk cover"), sig("a raw and loud cover of a punk song")
    c = sig("the band laughing between takes")
    assert descriptor_overlap(a, b) > descriptor_overlap(a, c)
    assert descriptor_overlap(a, c) == 0.0


def test_paraphrase_matches_and_other_claims_do_not():
    a = sig("You already know Metallica's The Four Horsemen; Last Caress/Green Hell is three and a half "
            "minutes of raw metal.")
    para = sig("Last Caress/Green Hell is a raw, 3.5-minute Metallica medley, right up the alley of a "
               "Four Horsemen fan.")
    other_tie = sig("If Whiplash is your favourite Metallica speed, Last Caress/Green Hell matches its tempo.")
    other_number = sig("You already know The Four Horsemen; Last Caress/Green Hell lasts 5 minutes.")
    assert signatures_match(a, para)
    assert not signatures_match(a, other_tie)
    assert not signatures_match(a, other_number)


# --------------------------------------------------------------------------- decision rule


def test_decision_rule():
    s = sig("You already know The Four Horsemen; this is raw, fast metal.")
    same = sig("A raw, fast metal cover for a fan of The Four Horsemen.")
    other = sig("Snowblind fans get raw, fast metal here.")
    empty = sig("A raw, fast cover.")
    high, low = 0.85, CLAIM_THRESHOLD
    assert claim_duplicate(CERTAIN_COSINE, True, s, other, high=high)  # near-identical: claims not asked
    assert not claim_duplicate(0.90, True, s, other, high=high)  # above high, but another listener tie
    assert claim_duplicate(0.90, True, s, same, high=high)
    assert claim_duplicate(0.90, True, s, other, high=high, certain=high)  # the veto switched off
    assert claim_duplicate(low + 0.01, True, s, same, high=high)
    assert not claim_duplicate(low + 0.01, True, s, other, high=high)
    assert not claim_duplicate(low - 0.01, True, s, same, high=high)
    assert not claim_duplicate(0.99, False, s, same, high=high)  # other item: never
    assert not claim_duplicate(low + 0.01, True, empty, empty, high=high)  # no checkable claim: cosine only


def test_descriptive_claims_conflict_only_when_disjoint():
    calm = sig("For a Four Horsemen fan, Last Caress/Green Hell is a reflective, calm piece with a slow, steady pulse.")
    lush = sig("For a Four Horsemen fan, Last Caress/Green Hell shows off a lush string arrangement, rarely tried.")
    reworded = sig("Last Caress/Green Hell is thoughtful and mellow over a steady, slow pulse, for a fan of The Four "
                   "Horsemen.")
    assert claims_conflict(calm, lush)  # same tie, nothing descriptive in common
    assert not claims_conflict(calm, reworded)  # synonyms meet through the alias table
    # too few descriptors on one side to call it a different descriptive claim
    assert not claims_conflict(calm, sig("For a Four Horsemen fan, Last Caress/Green Hell is loud."))
    # a number one side states and the other does not is a conflict whatever the descriptors
    assert claims_conflict(calm, sig("For a Four Horsemen fan, Last Caress/Green Hell is a reflective, calm "
                                     "three minutes with a slow, steady pulse."))


def test_claim_types_come_from_the_gate_cues():
    assert "instrumentation" in sig("a lush string section and a sax solo").claim_types
    assert "live" in sig("it was recorded live on tour").claim_types
    assert sig("raw, fast and loud").claim_types == frozenset()
    assert claims_conflict(sig("raw, fast, loud, angry metal for your Four Horsemen plays"),
                           sig("raw, fast, loud, angry metal, recorded live, for your Four Horsemen plays"))


def test_descriptor_stems_and_genre_words():
    assert stem("darkly") == stem("dark") and stem("heavier") == stem("heavy") and stem("stinging") == stem("sting")
    assert stem("witty") == stem("funny") == stem("humour") and stem("calm") != stem("dark")
    # the item's and listener's genre words are matched as genres, not counted as descriptors
    s = sig("raw metal with a rock swagger")
    assert s.genres == frozenset({"metal", "rock"}) and s.descriptors == frozenset({stem("raw"), stem("swagger")})


def test_a_series_title_shortened_to_its_own_part_is_the_item():
    book = {"item_id": "book:1", "item_type": "book", "title": "Harry Potter and the Order of the Phoenix (Book 5)",
            "creator": "J. K. Rowling", "genres": []}
    short = signature("Order of the Phoenix is built on a mystery.", book, None)
    assert short.item == frozenset({"title"}) and "order" not in short.descriptors
    assert signature("Harry Potter and the Order of the Phoenix is built on a mystery.", book, None).item == {"title"}


# --------------------------------------------------------------------------- wiring


def _stand_in_vectors(cosines: list[float]) -> np.ndarray:
    """Hand-made unit vectors (a stand-in for the embedder): row 2k and 2k+1 have cosine cosines[k]."""
    rows = []
    for k, c in enumerate(cosines):
        e0 = np.zeros(2 * len(cosines) + 2, dtype=np.float32)
        e1 = e0.copy()
        e0[2 * k] = 1.0
        e1[2 * k] = c
        e1[2 * k + 1] = np.sqrt(1 - c * c)
        rows += [e0, e1]
    return np.stack(rows)


def _frame(texts: list[str]) -> pd.DataFrame:
    return pd.DataFrame([{"record_id": f"r{i}", "item_id": ITEM["item_id"], "explanation": t,
                          "item": json.dumps(ITEM), "listener": json.dumps(LISTENER), "passed_all": True}
                         for i, t in enumerate(texts)])


def test_semantic_stage_merges_paraphrases_by_claims_only():
    a = "You already know The Four Horsemen; Last Caress/Green Hell is raw, fast metal."
    texts = [a, "Last Caress/Green Hell is fast, raw metal for a fan of The Four Horsemen.",
             a, "Snowblind fans get raw, fast metal in Last Caress/Green Hell."]
    index = DedupeIndex.build(_frame(texts), _stand_in_vectors([0.75, 0.75]), CurateConfig(),
                              partition=[0, 0, 1, 1])
    res = index.apply(report_examples=0)
    kept = res.df["kept"].tolist()
    assert sum(kept[:2]) == 1 and kept[2:] == [True, True]  # the paraphrase merged, the other tie kept
    sem = [s for s in res.stages if s["stage"] == "semantic"][0]
    assert sem["claim_pairs"] == 1 and res.thresholds["claim_threshold"] == CLAIM_THRESHOLD
    # the band switched off (claim threshold = semantic threshold): the old rule keeps both
    off = index.apply(report_examples=0, claim_threshold=CurateConfig().semantic_threshold)
    assert off.df["kept"].all() and off.thresholds["claim_threshold"] is None
    # different items are never merged, claims or not
    frame = _frame(texts[:2])
    frame.loc[1, "item_id"] = "music:other"
    blind = DedupeIndex.build(frame, _stand_in_vectors([0.75]), CurateConfig(entity_aware=False))
    assert blind.apply(report_examples=0).df["kept"].all()


def test_semantic_stage_keeps_conflicting_claims_apart_above_the_threshold():
    a = "You already know The Four Horsemen; Last Caress/Green Hell is raw, fast metal."
    texts = [a, "Snowblind fans get raw, fast metal in Last Caress/Green Hell.",
             a, "Last Caress/Green Hell is fast, raw metal for a fan of The Four Horsemen."]
    cfg = CurateConfig()
    index = DedupeIndex.build(_frame(texts), _stand_in_vectors([0.90, 0.90]), cfg, partition=[0, 0, 1, 1])
    res = index.apply(report_examples=0)
    kept = res.df["kept"].tolist()
    assert kept[:2] == [True, True] and sum(kept[2:]) == 1  # another tie kept apart, the paraphrase merged
    sem = [s for s in res.stages if s["stage"] == "semantic"][0]
    assert sem["conflict_pairs"] == 1 and res.thresholds["certain_threshold"] == CERTAIN_COSINE
    off = index.apply(report_examples=0, certain_threshold=cfg.semantic_threshold)
    assert off.df["kept"].sum() == 2 and off.thresholds["certain_threshold"] is None
    near_identical = DedupeIndex.build(_frame(texts[:2]), _stand_in_vectors([0.97]), cfg)
    assert near_identical.apply(report_examples=0).df["kept"].sum() == 1


def test_rows_without_item_json_fall_back_to_cosine():
    frame = _frame(["raw metal for a Four Horsemen fan", "a Four Horsemen fan gets raw metal"]).drop(
        columns=["item", "listener"])
    index = DedupeIndex.build(frame, _stand_in_vectors([0.75]), CurateConfig())
    assert index.apply(report_examples=0).df["kept"].all()
    assert not index.apply(report_examples=0, semantic_threshold=0.7).df["kept"].all()
