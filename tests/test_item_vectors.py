"""Item vectors (recommend.item_vectors): the embedded text, collaborative factors, fusion,
the kNN check that picks the fusion weight. Nothing here runs the embedding model."""

import numpy as np
import pandas as pd
import pytest

from recommend import item_vectors as iv


def test_item_text_joins_present_fields_in_order():
    row = {"title": "Balls to the Wall", "creator": "Accept", "collection": "Balls to the Wall",
           "publisher": None, "genres": np.array(["Rock", "Metal"]), "description": float("nan")}
    assert iv.item_text(row) == "Balls to the Wall | Accept | Balls to the Wall | Rock, Metal"
    book = {"title": "Clara  Callan\n", "creator": "Richard Bruce Wright", "collection": None,
            "publisher": "HarperFlamingo Canada", "genres": [], "description": None}
    assert iv.item_text(book) == "Clara Callan | Richard Bruce Wright | HarperFlamingo Canada"
    long = {"title": "T", "description": "word " * 500}
    assert len(iv.item_text(long)) <= len("T | ") + iv.DESCRIPTION_CHARS


def test_item_texts_reads_a_frame():
    df = pd.DataFrame({"title": ["A", "B"], "creator": ["x", None], "collection": [None, None],
                       "publisher": [None, None], "genres": [["g"], []], "description": [None, "d"]})
    assert iv.item_texts(df) == ["A | x | g", "B | d"]


def interactions(rows):
    return pd.DataFrame(rows, columns=["listener_id", "item_id"]).assign(ts=np.nan, rating=np.nan)


def test_collaborative_vectors_follow_shared_listeners():
    ids = ["i0", "i1", "i2", "i3", "cold"]
    rows = [(f"u{u}", "i0") for u in range(6)] + [(f"u{u}", "i1") for u in range(6)]
    rows += [(f"v{u}", "i2") for u in range(6)] + [(f"v{u}", "i3") for u in range(5)] + [("u0", "i3")]
    vec, has = iv.collaborative_vectors(ids, interactions(rows), dim=3)
    assert has.tolist() == [True, True, True, True, False]
    assert np.allclose(vec[4], 0)
    assert np.allclose(np.linalg.norm(vec[:4], axis=1), 1, atol=1e-5)
    assert vec[0] @ vec[1] > 0.9          # the same six listeners
    assert vec[2] @ vec[3] > vec[0] @ vec[3]


def test_interaction_matrix_is_binary_and_rejects_unknown_items():
    mat, listeners = iv.interaction_matrix(["a", "b"], interactions([("u", "a"), ("u", "a"), ("w", "b")]))
    assert mat.toarray().tolist() == [[1, 0], [0, 1]] and listeners == ["u", "w"]
    with pytest.raises(ValueError, match="'zzz'"):
        iv.interaction_matrix(["a"], interactions([("u", "zzz")]))


def test_fuse_weights_the_collaborative_part_and_keeps_unit_rows():
    rng = np.random.default_rng(0)
    content = rng.normal(size=(4, 5)).astype(np.float32)
    content /= np.linalg.norm(content, axis=1, keepdims=True)
    collab = np.zeros((4, 3), np.float32)
    collab[:2, 0] = 1.0
    fused = iv.fuse(content, collab, 0.5)
    assert fused.shape == (4, 8)
    assert np.allclose(np.linalg.norm(fused, axis=1), 1, atol=1e-6)
    assert np.allclose(fused[2:, :5], content[2:])           # no interactions: content only
    assert np.allclose(fused[0, 5], 0.5 / np.sqrt(1.25))     # share of the collaborative part
    assert np.allclose(iv.fuse(content, collab, 0.0)[:, :5], content)
    with pytest.raises(ValueError, match="3 collaborative rows"):
        iv.fuse(content, collab[:3], 0.5)


def test_knn_next_item_scores_a_neighbour_hit():
    ids = ["a", "b", "c", "d"]
    vecs = np.eye(4, dtype=np.float32)
    vecs[1] = [0.9, 0.1, 0, 0]   # b is a's neighbour
    vecs[3] = [0, 0, 0.9, 0.1]   # d is c's neighbour
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    fit = pd.DataFrame({"listener_id": ["u", "w"], "item_id": ["a", "c"]})
    targets = pd.DataFrame({"listener_id": ["u", "w"], "item_id": ["b", "a"]})
    out = iv.knn_next_item(vecs, ids, fit, targets, k=1)
    assert out["listeners"] == 2
    assert out["recall@1"]["mean"] == 0.5      # u gets b (hit); w gets d, not a (miss)


def test_item_vectors_fingerprint_tracks_values_and_config():
    ids = ["x", "y"]
    v = np.eye(2, dtype=np.float32)
    a = iv.ItemVectors("music", ids, v, np.ones(2, bool), {"weight": 0.25})
    assert a.fingerprint() == iv.ItemVectors("music", ids, v.copy(), np.ones(2, bool), {"weight": 0.25}).fingerprint()
    assert a.fingerprint() != iv.ItemVectors("music", ids, v[::-1].copy(), np.ones(2, bool), {"weight": 0.25}).fingerprint()
    assert a.fingerprint() != iv.ItemVectors("music", ids, v, np.ones(2, bool), {"weight": 0.5}).fingerprint()


def test_load_items_rejects_an_unknown_type():
    with pytest.raises(ValueError, match="'video'"):
        iv.load_items("video")
