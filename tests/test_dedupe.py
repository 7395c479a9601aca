"""Curation parts 1-3: embedding cache, staged dedupe, entity-awareness, measured quality.

Embeddings come from the real packaged all-MiniLM-L6-v2 on the torch backend (loads
in seconds, no export step, identical on every machine); the ONNX backends are
checked against it in a slow test.
"""

from __future__ import annotations

import dataclasses
import json
import time

import numpy as np
import pandas as pd
import pytest

from curation.dedupe import (DedupeIndex, dedupe, minhash_signatures, normalize_text, shingles,
                             _hashfunc_for_datasketch)
from curation.diversity import skeleton, template_collapse
from curation.embed import Embedder, backend_available
from curation.pairs import evaluate_pairs, labelled_pairs, synthetic_corpus
from linernotes.config import CurateConfig

# The thresholds chosen by `python -m curation.pairs --sweep` (see the report in
# curation/pairs.py): asserted here explicitly so the quality bar does not move
# when someone edits the defaults.
CHOSEN = dict(minhash_threshold=0.6, semantic_threshold=0.85)


@pytest.fixture(scope="session")
def embedder(tmp_path_factory) -> Embedder:
    return Embedder("torch", cache_path=tmp_path_factory.mktemp("emb") / "cache.sqlite")


def _row(rid, item, text, passed=True, gates=(True, True, True), title=None, creator=None):
    return {"record_id": rid, "item_id": item, "explanation": text, "passed_all": passed,
            "gate_grounding": gates[0], "gate_style": gates[1], "gate_safety": gates[2],
            "item": json.dumps({"item_id": item, "title": title or item, "creator": creator})}


# --------------------------------------------------------------------------- primitives


def test_normalize_text_and_shingles():
    assert normalize_text("  \u201cThe Trooper\u201d  ROCKS!! ") == "the trooper rocks"
    assert normalize_text("Queen's  well-known hit.") == "queens well known hit"
    assert normalize_text(None) == "" and normalize_text(float("nan")) == ""
    assert shingles("a b c d", "word3") == ["a b c", "b c d"]
    assert shingles("a b", "word3") == ["a b"]
    assert shingles("abcdef", "char5") == ["abcde", "bcdef"]
    with pytest.raises(ValueError):
        shingles("x", "sentence2")


def test_minhash_signatures_equal_datasketch():
    from datasketch import MinHash

    texts = ["A jazz classic from R.E.M. that sits right beside your Desafinado plays.",
             "The Trooper by Iron Maiden is a heavy metal rush.", "hi"]
    sig = minhash_signatures(texts, "word3", 64)
    for text, row in zip(texts, sig):
        m = MinHash(num_perm=64, seed=1, hashfunc=_hashfunc_for_datasketch)
        for sh in shingles(normalize_text(text), "word3"):
            m.update(sh)
        assert np.array_equal(m.hashvalues, row)


# --------------------------------------------------------------------------- groups + rule


def test_one_representative_per_group_by_the_rule():
    text = "The Trooper by Iron Maiden is a heavy metal rush that fits your Run to the Hills plays."
    df = pd.DataFrame([
        _row("r5", "music:1", text, passed=False, gates=(True, True, True)),
        _row("r4", "music:1", text.upper(), passed=True, gates=(True, True, True)),  # passed_all wins
        _row("r3", "music:1", "\u201c" + text + "\u201d", passed=True, gates=(True, True, True)),
        _row("r9", "music:1", text.replace("rush", "really fast rush"), passed=True),  # longer
        _row("r2", "music:1", text.replace(".", "!"), passed=False, gates=(True, False, True)),
        _row("x1", "music:2", "Something else entirely about another record.", passed=False),
        _row("n1", "music:3", None, passed=False),
    ])
    cfg = dataclasses.replace(CurateConfig(), **CHOSEN)
    res = dedupe(df, cfg, stages=("exact", "near"))
    out = res.df.set_index("record_id")
    group = out.loc[["r5", "r4", "r3", "r9", "r2"], "dup_group"]
    assert group.nunique() == 1
    # passed_all first; among r4/r3 (same gates) the shorter text; tie on length -> smaller id
    assert len(text.upper()) < len("\u201c" + text + "\u201d")
    assert out.loc["r4", "kept"] and out.loc["r4", "dup_of"] is None
    for rid in ("r5", "r3", "r9", "r2"):
        assert not out.loc[rid, "kept"] and out.loc[rid, "dup_of"] == "r4"
    assert out.loc["r9", "dup_stage"] == "near"
    assert {out.loc[r, "dup_stage"] for r in ("r5", "r3", "r2")} == {"exact"}
    assert out.loc["x1", "kept"] and out.loc["n1", "kept"]  # singletons and blank texts stay
    # exactly one kept row per group, and every group keeps one
    per_group = res.df.groupby("dup_group")["kept"].sum()
    assert (per_group == 1).all()
    assert res.n_removed == 4
    stages = {s["stage"]: s for s in res.stages}
    assert stages["exact"]["removed"] == 3 and stages["near"]["removed"] == 1
    assert stages["near"]["examples"][0]["kept_record_id"] == "r4"
    for s in res.stages:
        assert {"stage", "removed", "groups", "threshold", "seconds", "examples", "why"} <= set(s)


def test_representative_tie_breaks_on_record_id(embedder):
    df = pd.DataFrame([_row(r, "book:1", "Mortal Prey is a tense crime thriller.") for r in ("b", "c", "a")])
    res = dedupe(df, CurateConfig(), embeddings=embedder.encode(df["explanation"]))
    assert res.df.loc[res.df["kept"], "record_id"].tolist() == ["a"]
    assert set(res.df["dup_of"].dropna()) == {"a"}


def test_semantic_stage_groups_paraphrases(embedder):
    df = pd.DataFrame([
        _row("a", "music:1", "Under Pressure by Queen is one of the most played rock picks among listeners like you."),
        _row("b", "music:1", "Queen's Under Pressure is one of the most played rock picks for listeners like you."),
        _row("c", "music:1", "At 4 minutes, Under Pressure is a quick rock fix for your commute."),
        _row("d", "music:2", "Queen's Bohemian Rhapsody is one of the most played rock picks for listeners like you."),
    ])
    cfg = dataclasses.replace(CurateConfig(), **CHOSEN)
    res = dedupe(df, cfg, embeddings=embedder.encode(df["explanation"]))
    out = res.df.set_index("record_id")
    # same gates: the shorter text (b) represents the group
    assert out.loc["a", "dup_of"] == "b" and out.loc["a", "dup_stage"] in ("near", "semantic")
    assert out.loc["c", "kept"]  # same item, different claim
    assert out.loc["d", "kept"]  # same wording, different item


# --------------------------------------------------------------------------- entity-awareness


def test_entity_differing_templates_are_not_merged_unless_entity_blind(embedder):
    df = pd.DataFrame([
        _row("a", "music:5001", "At 6 minutes, Hurt is a quick industrial fix for your commute."),
        _row("b", "music:5002", "At 6 minutes, Hurt is a quick industrial fix for your commute."),  # namesake
        _row("c", "music:4001", "Silent Harbor's latest single is a metalcore rush that fits right next "
                                "to your Sleepwalker plays at the gym."),
        _row("d", "music:4002", "Northbound Wolves's latest single is a metalcore rush that fits right next "
                                "to your Sleepwalker plays at the gym."),
    ])
    emb = embedder.encode(df["explanation"])
    aware = dedupe(df, dataclasses.replace(CurateConfig(), entity_aware=True, **CHOSEN), embeddings=emb)
    assert aware.df["kept"].all()
    assert aware.stages[0]["kept_apart_by_entity"] == 1
    blind = dedupe(df, dataclasses.replace(CurateConfig(), entity_aware=False, **CHOSEN), embeddings=emb)
    out = blind.df.set_index("record_id")
    assert out.loc["b", "dup_of"] == "a" and out.loc["b", "dup_stage"] == "exact"
    # word3 Jaccard ~0.73 (cosine only ~0.74: MiniLM weighs the names)
    assert out.loc["d", "dup_of"] == "c" and out.loc["d", "dup_stage"] == "near"


def test_entity_by_work_merges_same_creator_and_title():
    text = "Hurt by Johnny Cash is a quiet country choice for the late hours."
    df = pd.DataFrame([_row("a", "music:1", text, title="Hurt", creator="Johnny Cash"),
                       _row("b", "music:2", text, title="Hurt", creator="Johnny Cash"),
                       _row("c", "music:3", text, title="Hurt", creator="Nine Inch Nails")])
    by_item = dedupe(df, CurateConfig(), stages=("exact",))
    assert by_item.df["kept"].all()
    by_work = dedupe(df, CurateConfig(), stages=("exact",), entity_by="work")
    assert by_work.df["kept"].tolist() == [True, False, True]


def test_template_collapse_reports_shared_skeletons():
    rows = []
    for i, (creator, hist) in enumerate([("R.E.M.", "Desafinado"), ("Chico Science & Nação Zumbi", "Elenorio de Aguero"),
                                         ("Legião Urbana", "Bass Trap"), ("Creedence Clearwater Revival", "Suzie-Q, Pt. 2")]):
        rows.append({"record_id": f"r{i}", "item_id": f"music:{i}",
                     "explanation": f"A jazz classic from {creator} that sits right beside your {hist} plays.",
                     "item": json.dumps({"title": f"Song {i}", "creator": creator}),
                     "listener": json.dumps({"history": [{"title": hist}]})})
    rows.append({"record_id": "x", "item_id": "music:9", "explanation": "The Trooper gallops like a war horse.",
                 "item": json.dumps({"title": "The Trooper", "creator": "Iron Maiden"}), "listener": "{}"})
    rep = template_collapse(pd.DataFrame(rows), min_items=3)
    assert len(rep.templates) == 1
    t = rep.templates[0]
    assert t["skeleton"] == "a jazz classic from xxent that sits right beside your xxent plays"
    assert t["n_items"] == 4 and t["n_rows"] == 4 and len(t["examples"]) == 3
    assert rep.summary["collapsed_share"] == pytest.approx(0.8)
    assert skeleton("Released in 1983, it is 4 minutes long.") == "released in xxnum it is xxnum minutes long"


# --------------------------------------------------------------------------- measured quality


def test_precision_recall_on_labelled_pairs(embedder):
    """The bar: entity-aware pipeline precision >= 0.98 and recall >= 0.80 at the chosen
    thresholds. Precision first: a false merge deletes a distinct explanation from
    the training set for good, while a missed paraphrase only leaves a near-twin in
    it. Measured 1.00 / 0.84 (torch and onnx-int8 alike), so 0.98 allows one or two
    borderline flips from backend or library numerics, and 0.80 stays above the 0.59
    that the old 0.92 cosine default reached, i.e. the bar fails if the thresholds
    regress. Entity-blind must be strictly less precise: the namesake/templated
    near-misses are what entity-awareness exists for."""
    pairs = labelled_pairs(17)
    assert 400 <= len(pairs) <= 500
    emb = embedder.encode([t for p in pairs for t in (p.a_text, p.b_text)]).reshape(len(pairs), 2, -1)
    res = evaluate_pairs(dataclasses.replace(CurateConfig(), **CHOSEN), pairs, emb)
    aware, blind = res["results"]["entity_aware"], res["results"]["entity_blind"]
    assert aware["pipeline"]["precision"] >= 0.98
    assert aware["pipeline"]["recall"] >= 0.80
    assert aware["exact"]["precision"] == 1.0 and res["recall_by_kind"]["entity_aware"]["exact"]["surface"] == 1.0
    assert blind["pipeline"]["precision"] < aware["pipeline"]["precision"]
    assert res["false_positives_by_kind"]["entity_aware"]["pipeline"]["near_miss"] == 0
    assert res["false_positives_by_kind"]["entity_blind"]["pipeline"]["near_miss"] > 0
    # every stage adds recall in the pipeline
    assert aware["pipeline"]["recall"] >= max(aware[s]["recall"] for s in ("exact", "near", "semantic"))


# --------------------------------------------------------------------------- cache


def test_embedding_cache_hits_on_rerun(tmp_path):
    texts = ["The Trooper gallops.", "Hurt is quiet.", "The Trooper gallops.", "", None]
    cache = tmp_path / "emb"
    e1 = Embedder("torch", cache_path=cache)
    v1 = e1.encode(texts)
    assert v1.dtype == np.float32 and v1.shape == (5, 384)
    assert np.allclose(np.linalg.norm(v1, axis=1), 1.0, atol=1e-5)
    assert e1.last_misses == 5 and e1.last_hits == 0  # 3 distinct texts embedded once each
    assert len(e1.cache) == 3
    v2 = e1.encode(texts)
    assert e1.last_hits == 5 and e1.last_misses == 0
    assert np.array_equal(v1, v2)
    e2 = Embedder("torch", cache_path=cache)  # a new process would see the same
    v3 = e2.encode(list(reversed(texts)))
    assert e2.hits == 5 and e2.misses == 0 and e2._encoder is None  # model never loaded
    assert np.array_equal(v3, v1[::-1])
    e2.encode(["a new text"])
    assert e2.last_misses == 1 and e2.stats()["hits"] == 5


def test_embedding_cache_separates_backends(tmp_path):
    a = Embedder("torch", cache_path=tmp_path)
    assert a.key("x") != a.key("y")
    b = Embedder("torch", cache_path=tmp_path)
    b.backend = "onnx"
    assert a.key("x") != b.key("x")


# --------------------------------------------------------------------------- sliders


def test_dedupe_index_apply_is_monotone_and_fast(embedder):
    df = synthetic_corpus(600, seed=3)
    emb = embedder.encode(df["explanation"])
    index = DedupeIndex.build(df, emb, CurateConfig())
    removed_near, removed_sem = [], []
    for t in (0.95, 0.9, 0.8, 0.7, 0.6, 0.5):
        res = index.apply(minhash_threshold=t, stages=("near",))
        removed_near.append(res.n_removed)
    for t in (0.98, 0.95, 0.92, 0.9, 0.85, 0.8):
        res = index.apply(semantic_threshold=t, stages=("semantic",))
        removed_sem.append(res.n_removed)
    assert removed_near == sorted(removed_near) and removed_near[-1] > removed_near[0]
    assert removed_sem == sorted(removed_sem) and removed_sem[-1] > removed_sem[0]
    full = [index.apply(minhash_threshold=m, semantic_threshold=s).n_removed
            for m, s in ((0.9, 0.95), (0.8, 0.9), (0.6, 0.85))]
    assert full == sorted(full)
    t0 = time.perf_counter()
    for _ in range(5):
        index.apply(minhash_threshold=0.7, semantic_threshold=0.88, report_examples=0)
    assert (time.perf_counter() - t0) / 5 < 0.25  # slider speed (measured ~10 ms)
    # below the build floor: rebuilt on demand, still monotone
    assert index.apply(minhash_threshold=0.3, stages=("near",)).n_removed >= removed_near[-1]
    # planted duplicates land in a group with their source (either may be the one kept)
    res = index.apply(**CHOSEN)
    merged = res.df.groupby("dup_group")["record_id"].transform("size") > 1
    found = merged.groupby(res.df["planted"]).mean()
    assert found["exact"] == 1.0 and found["near"] >= 0.9
    assert found["semantic"] >= 0.5  # reworded: ~0.6, like the paraphrase recall of the pair set


def test_dedupe_result_matches_index_apply(embedder):
    df = synthetic_corpus(200, seed=5)
    emb = embedder.encode(df["explanation"])
    cfg = dataclasses.replace(CurateConfig(), **CHOSEN)
    a = dedupe(df, cfg, embeddings=emb)
    b = DedupeIndex.build(df, emb, CurateConfig()).apply(**CHOSEN)
    assert a.df["kept"].tolist() == b.df["kept"].tolist()
    assert a.df["dup_of"].tolist() == b.df["dup_of"].tolist()
    assert list(a.summary()["stage"]) == ["exact", "near", "semantic"]


# --------------------------------------------------------------------------- ONNX


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["onnx", "onnx-int8"])
def test_onnx_backends_agree_with_torch(backend, embedder):
    ok, why = backend_available(backend)
    if not ok:
        pytest.skip(why)
    from curation.pairs import synthetic_explanations

    texts = synthetic_explanations(200, seed=9)
    ref = embedder.encode(texts)
    got = Embedder(backend, use_cache=False).encode(texts)
    cos = (ref * got).sum(axis=1)
    assert cos.mean() > (0.9999 if backend == "onnx" else 0.99)
    assert cos.min() > (0.999 if backend == "onnx" else 0.97)
