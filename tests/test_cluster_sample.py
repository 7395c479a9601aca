"""curation.cluster, curation.diversity and curation.sample.

Most tests use synthetic unit vectors (well separated blobs), so they need no
model; `test_minilm_clusters_follow_templates` embeds a small template x entity
set with the packaged all-MiniLM-L6-v2 (torch, offline, cache in a temp dir).
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from curation import cluster as clu
from curation import diversity as div
from curation import sample as smp
from linernotes.config import CurateConfig


def blobs(sizes=(20, 20, 20), dim=16, spread=0.05, seed=0):
    """Unit vectors around len(sizes) orthogonal centres; (vectors, truth labels)."""
    rng = np.random.default_rng(seed)
    vecs, truth = [], []
    for c, n in enumerate(sizes):
        centre = np.zeros(dim)
        centre[c] = 1.0
        vecs.append(centre + spread * rng.standard_normal((n, dim)))
        truth += [c] * n
    x = np.vstack(vecs).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True), np.array(truth)


# ============================================================================ cluster


def test_kmeans_shapes_determinism_and_k_rules():
    x, truth = blobs((30, 20, 10))
    labels = clu.cluster(x, "kmeans", n_clusters=3, seed=3)
    assert labels.shape == (60,) and labels.dtype == np.int64
    assert adjusted_rand_score(truth, labels) == 1.0
    # renumbered by size: 0 is the biggest cluster
    assert [int((labels == c).sum()) for c in range(3)] == [30, 20, 10]
    assert np.array_equal(labels, clu.cluster(x, "kmeans", n_clusters=3, seed=3))
    # n_clusters=0: the default sqrt rule, or silhouette
    assert clu.sqrt_k(60) == 5 and clu.sqrt_k(3000) == 39 and clu.sqrt_k(10**6) == clu.K_MAX
    assert len(set(clu.cluster(x, seed=3).tolist())) == clu.sqrt_k(60)
    assert clu.choose_k(x, seed=3, rule="silhouette") == 3
    assert clu.k_candidates(3) == [] and clu.k_candidates(60)[:2] == [2, 3]


def test_cluster_edge_cases():
    x, _ = blobs((3, 2))
    assert clu.cluster(np.zeros((0, 8)), seed=1).shape == (0,)
    assert list(clu.cluster(x[:1], seed=1)) == [0]
    assert len(set(clu.cluster(x, n_clusters=50, seed=1).tolist())) == len(x)  # capped at n
    same = np.repeat(x[:1], 6, axis=0)
    assert list(clu.cluster(same, seed=1)) == [0] * 6
    with pytest.raises(ValueError, match="unknown cluster method"):
        clu.cluster(x, "dbscan")
    with pytest.raises(ValueError, match="2-D"):
        clu.cluster(np.zeros(5))


def test_hdbscan_keeps_noise_as_its_own_group():
    x, truth = blobs((25, 25))
    rng = np.random.default_rng(1)
    outliers = rng.standard_normal((3, x.shape[1])).astype(np.float32)
    outliers[:, :2] = 0  # far from both centres
    outliers /= np.linalg.norm(outliers, axis=1, keepdims=True)
    labels = clu.cluster(np.vstack([x, outliers]), "hdbscan", seed=1, reduce=False)
    assert set(labels[-3:].tolist()) == {clu.NOISE}
    assert adjusted_rand_score(truth, labels[:50]) == 1.0
    names = clu.label_clusters(["a b"] * 53, labels)
    assert names[clu.NOISE] == clu.NOISE_LABEL
    # too few rows for one cluster: everything unclustered
    assert set(clu.cluster(x[:3], "hdbscan", reduce=False).tolist()) == {clu.NOISE}


def test_hdbscan_on_umap_reduction_is_deterministic():
    pytest.importorskip("umap")
    x, truth = blobs((30, 30))
    a = clu.cluster(x, "hdbscan", seed=5)
    assert np.array_equal(a, clu.cluster(x, "hdbscan", seed=5))
    assert adjusted_rand_score(truth, a) > 0.9


def test_project_2d_shapes_methods_determinism():
    x, _ = blobs((10, 10, 10))
    assert clu.resolve_projection("auto", 10) == "pca"
    assert clu.resolve_projection("umap", 3) == "pca"
    with pytest.raises(ValueError, match="unknown projection"):
        clu.resolve_projection("mds", 10)
    pca = clu.project_2d(x, "pca", seed=1)
    assert pca.shape == (30, 2) and pca.dtype == np.float32
    assert np.array_equal(pca, clu.project_2d(x, "pca", seed=1))
    assert clu.project_2d(np.zeros((0, 8)), seed=1).shape == (0, 2)
    assert clu.project_2d(x[:1], seed=1).tolist() == [[0.0, 0.0]]
    assert clu.project_2d(x[:2], "auto", seed=1).shape == (2, 2)
    tsne = clu.project_2d(x, "tsne", seed=1)
    assert tsne.shape == (30, 2) and np.array_equal(tsne, clu.project_2d(x, "tsne", seed=1))
    if clu.resolve_projection("auto", 30) == "umap":
        um = clu.project_2d(x, "auto", seed=1)
        assert um.shape == (30, 2) and np.allclose(um, clu.project_2d(x, "umap", seed=1))


def test_centroid_margins_and_nearest():
    x, truth = blobs((10, 10))
    mid = (x[0] + x[10]) / np.linalg.norm(x[0] + x[10])  # halfway between the two blobs
    both = np.vstack([x, mid[None, :]])
    labels = np.append(truth, 0)
    margin, runner = clu.margins(both, labels)
    assert margin.shape == (21,) and runner.tolist()[:10] == [1] * 10
    assert margin[-1] == margin.min() and abs(margin[-1]) < 0.1 and margin[:20].min() > 0.5
    centres = clu.centroids(x, truth)
    assert sorted(centres) == [0, 1]
    assert np.allclose(np.linalg.norm(np.stack(list(centres.values())), axis=1), 1.0)
    assert clu.assign_nearest(x, centres).tolist() == truth.tolist()
    assert np.isnan(clu.margins(x, np.zeros(20, dtype=int))[0]).all()  # one cluster only


def test_label_clusters_names_distinguishing_words():
    texts = (["A classic jazz record with saxophone solos.",
              "The saxophone and the jazz trio make this classic."] * 3
             + ["A classic podcast episode with a long interview.",
                "Every episode of this podcast is an interview, a classic."] * 3
             + ["The author's classic novel spans a chapter per decade.",
                "This novel by a classic author has one chapter you will reread."] * 3
             + ["I'm a boy, I'm a boy, I'm a boy, I'm a boy, I'm a boy on a jazz record."])
    labels = [0] * 6 + [1] * 6 + [2] * 6 + [0]
    names = clu.label_clusters(texts, labels, top_n=3)
    assert set(names[0].split(", ")) == {"jazz", "saxophone", "record"}
    assert set(names[1].split(", ")) == {"podcast", "episode", "interview"}
    assert set(names[2].split(", ")) == {"novel", "chapter", "author"}
    words = {w for name in names.values() for w in name.split(", ")}
    assert not words & {"classic", "the", "a", "boy", "this"}
    assert clu.label_clusters(["the and of", None], [0, 1]) == {0: "cluster 0", 1: "cluster 1"}
    with pytest.raises(ValueError, match="labels"):
        clu.label_clusters(["a"], [0, 1])


def _item(i: int, item_type: str = "music") -> str:
    return json.dumps({"item_id": f"{item_type}:{i}", "item_type": item_type,
                       "title": f"Title {i}", "creator": f"Creator {i}"})


def _gates(grounding=(True, [], 1.0), style=(True, [], 1.0), safety=(True, [], 1.0)) -> dict:
    gates = {name: {"passed": p, "reasons": list(r), "score": s}
             for name, (p, r, s) in (("grounding", grounding), ("style", style),
                                     ("safety", safety))}
    return {"gates": json.dumps(gates),
            "gate_reasons": json.dumps({k: v["reasons"] for k, v in gates.items()}),
            **{f"gate_{k}": v["passed"] for k, v in gates.items()},
            "passed_all": all(v["passed"] for v in gates.values())}


def test_cluster_map_figure_and_selection():
    x, truth = blobs((4, 4))
    df = pd.DataFrame({
        "record_id": [f"r{i}" for i in range(8)], "item": [_item(i) for i in range(8)],
        "item_type": ["music"] * 4 + ["book"] * 4,
        "explanation": [f"Note number {i} about Title {i}." for i in range(8)],
        "parsed": True, "kept": [True] * 7 + [False],
        "cluster": truth, "cluster_label": ["jazz, sax"] * 4 + ["novel, chapter"] * 4,
        "x": np.arange(8, dtype=float), "y": np.arange(8, dtype=float) * 2})
    rows = [_gates() if i % 2 else _gates(style=(False, ["31 words (max 30)"], 0.75))
            for i in range(8)]
    for key in rows[0]:
        df[key] = [r[key] for r in rows]
    fig = clu.cluster_map_figure(df, "cluster")
    names = [t.name for t in fig.data]
    assert names == ["0: jazz, sax (4)", "1: novel, chapter (3)", "removed duplicate (1)"]
    hover = fig.data[0].hovertext[0]
    assert "Title 0" in hover and "Note number 0" in hover and "31 words (max 30)" in hover
    assert [t.name for t in clu.cluster_map_figure(df, "item_type").data][:2] == \
        ["book (3)", "music (4)"]
    gate_names = [t.name for t in clu.cluster_map_figure(df, "gate", show_removed=False).data]
    assert gate_names == ["passed all (3)", "failed style (4)"]
    with pytest.raises(ValueError, match="color_by"):
        clu.cluster_map_figure(df, "nope")
    # a selection comes back as rows: customdata, (curve, index) or (x, y)
    assert list(clu.selected_rows(df, [{"customdata": "r2"}])["record_id"]) == ["r2"]
    picked = clu.selected_rows(df, [{"curveNumber": 1, "pointIndex": 0}], fig)
    assert list(picked["record_id"]) == [fig.data[1].customdata[0]]
    assert list(clu.selected_rows(df, [{"x": 3.0, "y": 6.0}])["record_id"]) == ["r3"]
    assert clu.selected_rows(df, []).empty
    assert clu.gate_outcome({"parsed": False, "explanation": None}) == "parse failed"


def test_cluster_frame_clusters_kept_rows_and_maps_all():
    x, truth = blobs((10, 10, 10))
    df = pd.DataFrame({"record_id": [f"r{i}" for i in range(30)],
                       "explanation": [["jazz sax solo", "podcast episode talk",
                                        "novel chapter author"][t] for t in truth],
                       "kept": [True] * 30, "dup_of": [None] * 30})
    df.loc[25, ["kept", "dup_of"]] = [False, "r3"]  # a removed duplicate of a cluster-A row
    config = CurateConfig(n_clusters=3, projection="pca", seed=2)
    out = clu.cluster_frame(df, x, config)
    for col in ("cluster", "cluster_label", "cluster_margin", "cluster_runner_up", "x", "y"):
        assert col in out.columns
    assert out.loc[25, "cluster"] == out.loc[3, "cluster"]  # follows its representative
    assert adjusted_rand_score(truth[out["kept"]], out.loc[out["kept"], "cluster"]) == 1.0
    assert set(out["cluster_label"]) == {"jazz, sax, solo", "episode, podcast, talk",
                                         "author, chapter, novel"}
    coords = np.arange(60, dtype=np.float32).reshape(30, 2)
    again = clu.cluster_frame(df, x, config, coords=coords)
    assert again["x"].tolist() == coords[:, 0].tolist()
    assert again["cluster"].tolist() == out["cluster"].tolist()
    with pytest.raises(ValueError, match="rows"):
        clu.cluster_frame(df.iloc[:5], x, config)


def test_minilm_clusters_follow_templates(tmp_path):
    """Real embeddings (the measured default backend): 4 templates x 15 entities come
    back as 4 clusters named by the templates' own words (c-TF-IDF). Not the torch
    backend: sentence-transformers fails to import once marimo is imported in the
    process (transformers' is_in_notebook() then wants IPython), as it is when the
    notebook tests ran first."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from curation.embed import Embedder

    templates = ["A {g} classic from {a} that sits right beside your {h} plays.",
                 "If you binge {h}, the podcast {t} offers weekly interviews about {g}.",
                 "After {h}, the novel {t} by {a} is the next chapter for your audiobook shelf.",
                 "Since {h} is on repeat, {a}'s {t} brings the same {g} energy to your playlist."]
    artists = ["Miles Davis", "Nina Simone", "Tom Waits", "Björk", "Caetano Veloso", "Radiohead",
               "Joni Mitchell", "Fela Kuti", "Kate Bush", "Sade", "Arca", "Prince", "Tinariwen",
               "Mitski", "Nas"]
    texts, truth = [], []
    for i, tpl in enumerate(templates):
        for j, a in enumerate(artists):
            texts.append(tpl.format(g=["jazz", "soul", "folk", "rock", "funk"][j % 5], a=a,
                                    h=artists[(j + 3) % 15] + " Live",
                                    t=f"{artists[(j + 7) % 15]} Sessions"))
            truth.append(i)
    x = Embedder("auto", cache_path=tmp_path / "emb.sqlite").encode(texts)
    labels = clu.cluster(x, n_clusters=4, seed=17)
    assert adjusted_rand_score(truth, labels) == 1.0
    names = clu.label_clusters(texts, labels)
    by_template = {truth[int(np.argmax(labels == c))]: names[c] for c in range(4)}
    assert by_template[0] == "classic, plays, right, sits"
    assert "podcast" in by_template[1] and "novel" in by_template[2]


# ============================================================================ diversity


def test_diversity_report_metrics():
    df = pd.DataFrame({
        "record_id": [str(i) for i in range(6)], "item_id": [f"music:{i}" for i in range(6)],
        "item_type": ["music", "music", "book", "book", "podcast", "music"],
        "item": [_item(i) for i in range(6)],
        "explanation": ["A jazz classic from Creator 0 that sits right beside your plays.",
                        "A jazz classic from Creator 1 that sits right beside your plays.",
                        "A jazz classic from Creator 2 that sits right beside your plays.",
                        "Something else entirely.", "something else entirely!", None],
        "kept": [True, True, True, True, False, True], "cluster": [0, 0, 0, 1, 1, 1],
        "cluster_label": ["jazz", "jazz", "jazz", "else", "else", "else"]})
    report = div.diversity_report(df)
    assert report["rows"] == 6 and report["texts"] == 5
    assert report["unique_sentence_ratio"] == round(4 / 5, 4)  # case/punctuation ignored
    assert report["per_type"] == {"book": 2, "music": 3, "podcast": 1}
    assert report["mean_words"] == round((12 * 3 + 3 + 3) / 5, 2)
    assert report["clusters"][0] == {"cluster": 0, "label": "jazz", "size": 3, "share": 0.5}
    assert report["kept"]["rows"] == 5 and report["kept"]["texts"] == 4
    assert report["kept"]["unique_sentence_ratio"] == 1.0
    collapse = report["template_collapse"]
    assert collapse["summary"]["collapsed_templates"] == 1
    assert collapse["templates"][0]["n_items"] == 3
    json.dumps(report)  # JSON-ready
    table = div.report_table(report)
    assert list(table.columns) == ["metric", "all rows", "kept"]


def test_distinct_n():
    assert div.distinct_n(["a b a b"], 1) == 0.5
    assert div.distinct_n(["a b a b"], 2) == round(2 / 3, 4)
    assert div.distinct_n([], 1) is None


# ============================================================================ sample


def review_frame(n_per_cluster=(24, 24, 24, 3), seed=0):
    """Kept rows in len(n_per_cluster) blob clusters plus rows each reason should catch,
    a removed duplicate and a row without text; (frame, embeddings)."""
    x, truth = blobs(n_per_cluster, spread=0.08, seed=seed)
    n = len(x)
    rows = []
    for i in range(n):
        row = {"record_id": f"r{i:03d}", "item_id": f"music:{i}", "item_type": "music",
               "item": _item(i), "listener_id": "l1", "listener": json.dumps({"listener_id": "l1"}),
               "explanation": f"Explanation {i}.", "facts_used": [f"Creator {i}"],
               "parsed": True, "parse_error": None, "metadata": "{}", "kept": True,
               "cluster": int(truth[i]), "cluster_label": f"label {truth[i]}",
               "x": float(i), "y": 0.0, **_gates()}
        rows.append(row)
    # gate disagreements: only grounding failed / facts_used vs verdict
    for i in (1, 30):
        rows[i].update(_gates(grounding=(False, ['"Zorblax" is not a name from this item'], 0.5)))
    rows[50].update(_gates(grounding=(False, ['facts_used entry "X" not found in item/listener '
                                              'facts'], 0.5), style=(False, ["2 sentences"], 0.75)))
    # low confidence: near-miss style with a failed grounding; a parse problem
    # (no facts_used: the teacher claimed nothing, so no facts-vs-verdict disagreement)
    for i in (5, 55):
        rows[i].update({"facts_used": [],
                        **_gates(grounding=(False, ["year 1999 not supported"], 0.4),
                                 style=(False, ["31 words (max 30)"], 0.75))})
    rows[70].update(_gates(grounding=(False, ["decade 1990s not supported"], 0.5),
                           style=(False, ["2 sentences"], 0.75)))  # its facts_used are fine
    rows[60]["metadata"] = json.dumps({"call": {"finish_reason": "length"}})
    rows[61]["parse_error"] = "recovered from a broken JSON answer"
    # never sampled: removed duplicate (would be a disagreement) and a row without text
    rows[2].update({"kept": False, **_gates(grounding=(False, ["bad"], 0.0))})
    rows[3].update({"explanation": None, "parsed": False})
    return pd.DataFrame(rows), x


def test_review_flags_find_each_reason():
    df, x = review_frame()
    flags = smp.review_flags(df, x)
    assert flags.loc[[1, 30, 50], "gate_disagreement"].all()
    assert "only grounding failed" in flags.loc[1, "disagree_detail"]
    assert "facts_used" in flags.loc[50, "disagree_detail"]
    assert "every facts_used entry checked out" in flags.loc[70, "disagree_detail"]
    assert flags.loc[[5, 55, 60, 61], "low_confidence"].all()
    assert "narrowly" in flags.loc[5, "lowconf_detail"]
    assert "max tokens" in flags.loc[60, "lowconf_detail"]
    assert not flags.loc[[5, 55], "gate_disagreement"].any()
    assert not flags.loc[[2, 3], "eligible"].any() and not flags.loc[2, "gate_disagreement"]
    eligible = flags["eligible"]
    boundary = flags["cluster_boundary"]
    assert boundary[eligible].mean() == pytest.approx(smp.BOUNDARY_QUANTILE, abs=0.03)
    assert flags.loc[boundary, "cluster_margin"].max() <= flags.loc[eligible & ~boundary,
                                                                    "cluster_margin"].min()


def test_review_sample_reasons_quotas_size_control():
    df, x = review_frame()
    config = CurateConfig(sample_size=40, control_share=0.2, seed=7)
    sample = smp.review_sample(df, config, x)
    assert list(sample.columns) == list(smp.SAMPLE_COLUMNS)
    assert len(sample) == 40 and sample["record_id"].is_unique
    assert sample["review_priority"].tolist() == list(range(1, 41))
    counts = smp.reason_counts(sample)
    assert counts["control"] == 8
    for reason in ("gate_disagreement", "low_confidence", "cluster_boundary"):
        assert counts[reason] >= 1, counts
    # the flagged rows planted above all make it in (they are few)
    assert {"r001", "r030", "r050", "r005", "r055", "r060", "r061"} <= set(sample["record_id"])
    # only kept rows with text
    assert not {"r002", "r003"} & set(sample["record_id"])
    # every cluster represented, the 3-row cluster included; quotas follow cluster size
    per_cluster = sample["cluster"].value_counts()
    assert set(per_cluster.index) == {0, 1, 2, 3}
    assert per_cluster[3] <= 3 and min(per_cluster[0], per_cluster[1], per_cluster[2]) >= 8
    # control rows are spread through the queue, not all at the end
    control_at = sample.index[sample["sample_reason"] == "control"]
    assert control_at.min() < 10 and control_at.max() > 25
    # ready for labeling: map position, cluster, gates, item and listener
    assert sample[["x", "y"]].notna().all().all()
    assert sample["item_title"].str.startswith("Title").all()
    assert sample["reason_detail"].notna().all()
    assert sample["cluster_margin"].notna().all()


def test_review_sample_is_deterministic_and_seeded():
    df, x = review_frame()
    config = CurateConfig(sample_size=30, control_share=0.3, seed=11)
    a = smp.review_sample(df, config, x)
    b = smp.review_sample(df.copy(), config, x.copy())
    pd.testing.assert_frame_equal(a, b)
    other = smp.review_sample(df, CurateConfig(sample_size=30, control_share=0.3, seed=12), x)
    assert set(a.loc[a["sample_reason"] == "control", "record_id"]) != \
        set(other.loc[other["sample_reason"] == "control", "record_id"])


def test_review_sample_limits():
    df, x = review_frame()
    eligible = int(smp.review_flags(df, x)["eligible"].sum())
    everything = smp.review_sample(df, CurateConfig(sample_size=500, seed=1), x)
    assert len(everything) == eligible
    no_control = smp.review_sample(df, CurateConfig(sample_size=20, control_share=0.0, seed=1), x)
    assert smp.reason_counts(no_control)["control"] == 0 and len(no_control) == 20
    # without embeddings or a margin column there are no boundary rows, still a full sample
    no_emb = smp.review_sample(df, CurateConfig(sample_size=20, seed=1))
    assert len(no_emb) == 20 and smp.reason_counts(no_emb)["cluster_boundary"] == 0
    # fewer slots than clusters: clusters the control slice missed come first
    tiny = smp.review_sample(df, CurateConfig(sample_size=3, control_share=0.0, seed=1), x)
    assert len(tiny) == 3 and tiny["cluster"].nunique() == 3
    assert smp.review_sample(df.iloc[0:0], CurateConfig(), None).empty
    with pytest.raises(ValueError, match="control_share"):
        smp.review_sample(df, CurateConfig(control_share=1.5), x)


def test_cluster_quotas():
    quotas = smp.cluster_quotas({0: 50, 1: 30, 2: 2, 3: 1}, 10)
    assert sum(quotas.values()) == 10 and all(q >= 1 for q in quotas.values())
    assert quotas[0] > quotas[1] > quotas[2] and quotas[3] == 1
    short = smp.cluster_quotas({0: 50, 1: 30, 2: 2}, 2, covered={0})
    assert short == {0: 0, 1: 1, 2: 1}
    assert sum(smp.cluster_quotas({0: 2, 1: 1}, 10).values()) == 3  # never above a size
    assert math.isclose(sum(smp.cluster_quotas({0: 7}, 0).values()), 0)
