"""Paraphrase dedupe, second round: one test per cause of holdout2's errors, on cases
written here (other items, listeners and wordings than the pair set), so each fix is
checked for the pairs the same cause would produce, not for the one pair it was read off."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from curation.claim_compare import (
    CERTAIN_COSINE, claim_duplicate, claims_conflict, descriptor_overlap, edit_conflict, numbers_conflict,
)
from curation.claim_signature import signature, stem
from curation.dedupe import DedupeIndex
from linernotes.config import CurateConfig

BOOK = {"item_id": "book:77", "item_type": "book", "title": "The Left Hand of Darkness",
        "creator": "Ursula K. Le Guin", "publisher": "Ace Books", "year": 1987, "genres": []}
READER = {"listener_id": "book-user:5", "country": "spain", "taste": [],
          "history": [{"item_id": "book:1", "title": "Dune", "creator": "Frank Herbert"},
                      {"item_id": "book:2", "title": "Emma", "creator": "Jane Austen"}]}
SHOW = {"item_id": "podcast:9", "item_type": "podcast", "title": "Story Pirates", "creator": "Story Pirates",
        "genres": ["comedy", "kids-family-stories-for-kids"]}
FAMILY = {"listener_id": "podcast-user:3", "country": "france", "taste": ["kids-family"],
          "history": [{"item_id": "podcast:1", "title": "Brains On!", "creator": "APM"},
                      {"item_id": "podcast:2", "title": "But Why", "creator": "VPR"}]}


def book(text: str):
    return signature(text, BOOK, READER)


def show(text: str):
    return signature(text, SHOW, FAMILY)


def test_demonyms_the_prefix_rule_misses_are_the_country():
    assert book("A Spanish reader of Dune will like this.").country
    assert book("For a reader in Spain who liked Dune.").country
    assert show("A French family that plays Brains On! will like it.").country
    # the demonym is the country claim, not a descriptor the other note lacks
    assert book("A Spanish reader of Dune will like this.").descriptors == book(
        "A reader in Spain who liked Dune will like this.").descriptors
    assert not book("A reader of Dune will like this.").country


def test_every_spelling_of_the_country_is_masked():
    uk = {**READER, "country": "united kingdom"}
    s = signature("A British reader in the UK who loved Dune.", BOOK, uk)
    assert s.country and stem("british") not in s.descriptors


def test_a_count_of_the_history_ties_is_no_number_claim():
    named = book("You loved Dune and Emma, two books you already own; try The Left Hand of Darkness.")
    plain = book("You loved Dune and Emma; try The Left Hand of Darkness.")
    assert named.numbers == plain.numbers == frozenset()
    # a count that is not the number of ties named stays a claim, and so does a unit
    assert book("Dune and Emma, three books you love").numbers == frozenset({3.0})
    assert book("After Dune and Emma, two hours of reading a night").numbers == frozenset({2.0})
    assert book("two books you love").numbers == frozenset({2.0})  # no tie named: nothing restated


def test_genre_parts_are_content_words():
    s = show("Brains On! fans get stories for kids here.")
    assert "for" not in s.genres and "stories" in s.genres and "kids" in s.genres


def test_stock_adverbs_are_not_descriptors():
    s = book("Readers of Dune usually tend to love it, and Emma readers too; both, each of them.")
    assert s.descriptors == frozenset()


def test_contrast_with_the_history_is_one_relation_however_worded():
    a = book("After Dune, take a break with The Left Hand of Darkness.")
    b = book("Instead of Dune, The Left Hand of Darkness.")
    c = book("A change of pace from Dune: The Left Hand of Darkness.")
    assert stem("break") == stem("instead") == stem("change") == stem("breather")
    assert descriptor_overlap(a, b) > 0 and descriptor_overlap(a, c) > 0


def test_a_genre_one_note_names_meets_the_others_descriptor():
    worded = show("For a But Why family, Story Pirates has a silly, comic streak.")
    named = show("Story Pirates is comedy, silly too, for a family that plays But Why.")
    assert "comedy" in named.genres and "comedy" not in worded.genres
    assert descriptor_overlap(worded, named) > 0.3
    # genres both notes name stay out of the overlap: they are shared by any two notes on the item
    calm = show("Story Pirates is comedy for calm evenings, for a But Why family.")
    wild = show("Story Pirates is comedy with loud songs, for a But Why family.")
    assert descriptor_overlap(calm, wild) == 0.0


def test_a_number_dropped_or_changed_is_distinct_at_any_cosine():
    three = book("You loved Dune, so here is Le Guin's 1987 novel, a three-day read.")
    digits = book("You loved Dune, so here is Le Guin's 1987 novel, a 3-day read.")
    none = book("You loved Dune, so here is Le Guin's 1987 novel, a slow read.")
    assert not numbers_conflict(three, digits) and numbers_conflict(three, none)
    assert claim_duplicate(0.99, True, three, digits, high=0.85)
    assert not claim_duplicate(0.99, True, three, none, high=0.85)
    assert not claim_duplicate(CERTAIN_COSINE, True, three, none, high=0.85)
    assert claim_duplicate(0.99, True, three, none, high=0.85, certain=0.85)  # claim checks switched off


def test_edit_conflict_catches_one_swapped_phrase():
    lighter = book("After Dune and Emma, a reader might enjoy something lighter: The Left Hand of Darkness.")
    tense = book("After Dune and Emma, a reader might enjoy The Left Hand of Darkness, which builds real dread.")
    same = book("after Dune and Emma, a reader might enjoy something lighter - The Left Hand of Darkness!")
    assert edit_conflict(lighter, tense)
    assert not edit_conflict(lighter, same)
    # the semantic veto keeps its own rule: one short descriptive phrase is not enough there
    assert not claims_conflict(lighter, tense)


def _frame(texts: list[str], item: dict, listener: dict) -> pd.DataFrame:
    return pd.DataFrame([{"record_id": f"r{k}", "item_id": item["item_id"], "explanation": t,
                          "item": json.dumps(item), "listener": json.dumps(listener), "passed_all": True}
                         for k, t in enumerate(texts)])


def test_minhash_stage_keeps_same_wording_different_claims_apart():
    base = ("Readers who love Dune and Emma will find The Left Hand of Darkness by Ursula K. Le Guin, "
            "a 1987 Ace Books novel, a {} read for long winter evenings at home")
    texts = [base.format("three-day"), base.format("slow, moody"), base.format("3-day") + "!"]
    emb = np.eye(3, 8, dtype=np.float32)  # orthogonal: only the MinHash stage can merge
    index = DedupeIndex.build(_frame(texts, BOOK, READER), emb, CurateConfig())
    group = index.apply(report_examples=0).df["dup_group"].tolist()
    assert group[0] == group[2] != group[1]  # the surface edit merges; the swapped claim stays
    # the claim checks switched off (certain = semantic threshold): MinHash alone merges all three
    off = index.apply(report_examples=0, certain_threshold=0.85).df["dup_group"].tolist()
    assert len(set(off)) == 1


def test_a_pair_the_minhash_stage_kept_apart_is_not_merged_by_its_shared_wordings_cosine():
    # names, numbers and the swapped phrase: the shared wording carries no descriptor
    base = ("After Dune and Emma, a reader might enjoy The Left Hand of Darkness, "
            "a 1987 Ace Books novel by Ursula K. Le Guin {}")
    texts = [base.format("that is lighter"), base.format("that builds real dread")]
    emb = np.zeros((2, 8), dtype=np.float32)
    emb[0, 0] = 1.0
    emb[1, 0], emb[1, 1] = 0.9, np.sqrt(1 - 0.81)  # cosine 0.90: above the semantic threshold, below certain
    a, b = (signature(t, BOOK, READER) for t in texts)
    assert edit_conflict(a, b) and not claims_conflict(a, b)  # only the MinHash stage's check sees it
    index = DedupeIndex.build(_frame(texts, BOOK, READER), emb, CurateConfig())
    assert index.apply(report_examples=0).df["kept"].tolist() == [True, True]
    # at the certain cosine only the wording differs: merged
    emb[1, 0], emb[1, 1] = 0.99, np.sqrt(1 - 0.99 ** 2)
    index = DedupeIndex.build(_frame(texts, BOOK, READER), emb, CurateConfig())
    assert index.apply(report_examples=0).df["kept"].tolist().count(True) == 1
