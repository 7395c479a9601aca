"""Clusters, a 2-D map and cluster names for the explanation embeddings.

    cluster(embeddings, method, n_clusters, seed)      -> int labels (-1: unclustered)
    choose_k(embeddings, seed)                         -> k for n_clusters=0 (silhouette)
    centroids(embeddings, labels) / margins(...)       -> per-cluster centres, boundary margins
    assign_nearest(embeddings, centres)                -> nearest-centre labels (removed rows)
    project_2d(embeddings, method, seed)               -> (n, 2) map coordinates
    label_clusters(texts, labels, top_n)               -> {label: "term, term, ..."} (c-TF-IDF)
    gate_outcome(row) / item_titles(df)                -> display helpers shared with the app
    cluster_map_figure(df, color_by)                   -> plotly scatter with hover text

Embeddings are L2-normalised (curation.embed), so euclidean distance ranks like
cosine distance and k-means on them is spherical k-means in all but name.

Defaults were chosen by measurement (numbers in the module constants' comments
and in the curation report): k-means with k picked by silhouette beat HDBSCAN on
both the real 60-row synth run and 3,000 synthetic template x entity texts;
HDBSCAN on raw 384-d MiniLM vectors leaves most rows unclustered (-1).
Every function is deterministic for a given seed.
"""

from __future__ import annotations

import importlib.util
import json
import math
import textwrap
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

NOISE = -1
NOISE_LABEL = "unclustered"
CLUSTER_METHODS = ("kmeans", "hdbscan")
PROJECTIONS = ("auto", "umap", "pca", "tsne")
COLOR_BY = ("cluster", "item_type", "gate")
GATES = ("grounding", "style", "safety")

# n_clusters=0: k is the silhouette-best k in [K_MIN, k_max(n)], scored on at most
# SILHOUETTE_SAMPLE rows; k_max(n) = clip(2*sqrt(n/2), 2, K_MAX). Candidate ks are
# all ks up to 12, then a geometric grid (keeps the search ~2-3 s at n=3,000).
K_MIN = 2
K_MAX = 40
SILHOUETTE_SAMPLE = 2000
KMEANS_N_INIT = 4
# HDBSCAN: smallest cluster = max(HDBSCAN_MIN_SIZE, n * HDBSCAN_MIN_SHARE).
HDBSCAN_MIN_SIZE = 3
HDBSCAN_MIN_SHARE = 0.005
UMAP_MIN_ROWS = 15  # auto projection: UMAP from this many rows on, PCA below


def _as_matrix(embeddings: Any) -> np.ndarray:
    x = np.asarray(embeddings, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D array (rows x dims), got shape {x.shape}")
    return x


# ============================================================================ clustering


def k_candidates(n: int) -> list[int]:
    """The ks `choose_k` tries for n rows (empty when n is too small to compare ks)."""
    if n < 4:
        return []
    hi = int(min(K_MAX, n - 1, max(K_MIN, round(2 * math.sqrt(n / 2)))))
    ks = list(range(K_MIN, min(hi, 12) + 1))
    k = 12
    while k < hi:
        k = min(hi, max(k + 1, int(round(k * 1.25))))
        ks.append(k)
    return ks


def _kmeans(x: np.ndarray, k: int, seed: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=k, n_init=KMEANS_N_INIT, random_state=seed).fit_predict(x)


def choose_k(embeddings: Any, seed: int = 17) -> int:
    """The silhouette-best k (cosine) over `k_candidates(n)`, on a seeded sample of rows."""
    from sklearn.metrics import silhouette_score

    x = _as_matrix(embeddings)
    n = len(x)
    ks = k_candidates(n)
    if not ks:
        return 1 if n else 0
    if n > SILHOUETTE_SAMPLE:
        x = x[np.sort(np.random.default_rng(seed).choice(n, SILHOUETTE_SAMPLE, replace=False))]
    distinct = len(np.unique(x.round(5), axis=0))
    best_k, best_s = 1, -math.inf
    for k in ks:
        if k >= distinct:  # more clusters than distinct points: silhouette is undefined
            break
        labels = _kmeans(x, k, seed)
        if len(set(labels.tolist())) < 2:
            continue
        s = silhouette_score(x, labels, metric="cosine")
        if s > best_s + 1e-9:
            best_k, best_s = k, s
    return best_k


def hdbscan_min_size(n: int) -> int:
    return max(HDBSCAN_MIN_SIZE, int(round(n * HDBSCAN_MIN_SHARE)))


def cluster(embeddings: Any, method: str = "kmeans", n_clusters: int = 0, seed: int = 17,
            min_cluster_size: int | None = None) -> np.ndarray:
    """Cluster labels 0..k-1 for each row (int64).

    kmeans: n_clusters > 0 is used as given (capped at the number of rows); 0 picks k
    by silhouette (`choose_k`). hdbscan: finds the number of clusters itself
    (n_clusters is ignored); rows it cannot place get -1, shown as "unclustered".
    """
    x = _as_matrix(embeddings)
    n = len(x)
    if method not in CLUSTER_METHODS:
        raise ValueError(f"unknown cluster method {method!r}; choose one of {CLUSTER_METHODS}")
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if n_clusters < 0:
        raise ValueError(f"n_clusters must be >= 0 (0: choose from the data), got {n_clusters}")
    if method == "hdbscan":
        from sklearn.cluster import HDBSCAN

        size = min_cluster_size or hdbscan_min_size(n)
        if n < max(size, 2):
            return np.full(n, NOISE, dtype=np.int64)
        labels = HDBSCAN(min_cluster_size=size, copy=True).fit_predict(x)
        return _renumber(labels)
    k = min(n_clusters, n) if n_clusters else choose_k(x, seed)
    if k <= 1:
        return np.zeros(n, dtype=np.int64)
    return _renumber(_kmeans(x, k, seed))


def _renumber(labels: np.ndarray) -> np.ndarray:
    """Clusters renumbered by size (0 = largest, ties by first row), noise stays -1."""
    labels = np.asarray(labels, dtype=np.int64)
    ids = [c for c in np.unique(labels) if c != NOISE]
    first = {c: int(np.argmax(labels == c)) for c in ids}
    order = sorted(ids, key=lambda c: (-int((labels == c).sum()), first[c]))
    mapping = {old: new for new, old in enumerate(order)}
    return np.array([mapping.get(c, NOISE) for c in labels.tolist()], dtype=np.int64)


def centroids(embeddings: Any, labels: Sequence[int]) -> dict[int, np.ndarray]:
    """{cluster: unit-length mean vector} for every cluster except -1."""
    x = _as_matrix(embeddings)
    labels = np.asarray(labels)
    out = {}
    for c in sorted(set(labels.tolist()) - {NOISE}):
        v = x[labels == c].mean(axis=0)
        norm = np.linalg.norm(v)
        out[int(c)] = (v / norm if norm > 0 else v).astype(np.float32)
    return out


def margins(embeddings: Any, labels: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """(margin, runner_up) per row: cosine similarity to the nearest centroid minus to
    the second nearest (small = on a cluster boundary), and that second cluster.
    NaN / -1 when there are fewer than two clusters."""
    x = _as_matrix(embeddings)
    centres = centroids(x, labels)
    n = len(x)
    if len(centres) < 2:
        return np.full(n, np.nan), np.full(n, NOISE, dtype=np.int64)
    ids = np.array(list(centres))
    sims = x @ np.stack([centres[c] for c in ids]).T
    order = np.argsort(-sims, axis=1, kind="stable")
    top, second = sims[np.arange(n), order[:, 0]], sims[np.arange(n), order[:, 1]]
    return (top - second).astype(np.float64), ids[order[:, 1]].astype(np.int64)


def assign_nearest(embeddings: Any, centres: dict[int, np.ndarray]) -> np.ndarray:
    """Label of the most similar centre for each row (for rows left out of clustering)."""
    x = _as_matrix(embeddings)
    if not centres:
        return np.full(len(x), NOISE, dtype=np.int64)
    ids = np.array(list(centres))
    sims = x @ np.stack([centres[c] for c in ids]).T
    return ids[np.argmax(sims, axis=1)].astype(np.int64)


# ============================================================================ 2-D map


def resolve_projection(method: str, n: int) -> str:
    """The projection `project_2d` uses for n rows ("auto" resolved)."""
    if method not in PROJECTIONS:
        raise ValueError(f"unknown projection {method!r}; choose one of {PROJECTIONS}")
    if method == "auto":
        method = "umap" if importlib.util.find_spec("umap") and n >= UMAP_MIN_ROWS else "pca"
    if method in ("umap", "tsne") and n < 4:
        method = "pca"  # neighbourhood methods need a few neighbours
    return method


def project_2d(embeddings: Any, method: str = "auto", seed: int = 17) -> np.ndarray:
    """(n, 2) float32 map coordinates. auto: UMAP (cosine) when umap-learn is installed
    and n >= 15, else PCA; tsne: scikit-learn t-SNE. Same seed, same map."""
    x = _as_matrix(embeddings)
    n = len(x)
    if n == 0:
        return np.zeros((0, 2), dtype=np.float32)
    method = resolve_projection(method, n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if method == "umap":
            import umap

            reducer = umap.UMAP(n_components=2, n_neighbors=max(2, min(15, n - 1)),
                                min_dist=0.1, metric="cosine", random_state=seed, n_jobs=1)
            xy = reducer.fit_transform(x)
        elif method == "tsne":
            from sklearn.manifold import TSNE

            xy = TSNE(n_components=2, perplexity=float(min(30.0, max(1.0, (n - 1) / 3))),
                      metric="cosine", init="pca", random_state=seed).fit_transform(x)
        else:
            xy = _pca(x, seed)
    return np.asarray(xy, dtype=np.float32)


def _pca(x: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.decomposition import PCA

    n, d = x.shape
    k = min(2, n - 1, d) if n > 1 else 0
    out = np.zeros((n, 2), dtype=np.float32)
    if k >= 1 and float(np.ptp(x, axis=0).max()) > 0:
        out[:, :k] = PCA(n_components=k, random_state=seed).fit_transform(x)
    return out


# ============================================================================ names


def label_clusters(texts: Sequence[str | None], labels: Sequence[int], top_n: int = 4,
                   ngram_range: tuple[int, int] = (1, 1)) -> dict[int, str]:
    """{cluster: "term, term, ..."}: the top_n terms of each cluster by class-based TF-IDF.

    c-TF-IDF (BERTopic): all texts of a cluster form one document; a term's weight is
    its frequency in that document (normalised by the document's length) times
    log(1 + A / f), A = mean words per cluster, f = the term's count over all
    clusters. English stop words and tokens without letters are dropped. Cluster -1
    is "unclustered"; a cluster with no usable words is "cluster <k>".
    """
    from sklearn.feature_extraction.text import CountVectorizer

    labels = [int(c) for c in labels]
    if len(labels) != len(texts):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    ids = sorted(set(labels))
    out = {c: (NOISE_LABEL if c == NOISE else f"cluster {c}") for c in ids}
    if not ids:
        return out
    docs = {c: [] for c in ids}
    for text, c in zip(texts, labels):
        if isinstance(text, str) and text.strip():
            docs[c].append(text)
    joined = [" ".join(docs[c]) for c in ids]
    vectorizer = CountVectorizer(stop_words="english", lowercase=True, ngram_range=ngram_range,
                                 token_pattern=r"(?u)\b[^\W\d_][^\W\d_']+\b")
    try:
        counts = vectorizer.fit_transform(joined).toarray().astype(np.float64)
    except ValueError:  # empty vocabulary: only stop words / no text
        return out
    terms = vectorizer.get_feature_names_out()
    words_per_class = counts.sum(axis=1)
    avg = words_per_class.mean()
    idf = np.log(1.0 + avg / np.maximum(counts.sum(axis=0), 1.0))
    tf = counts / np.maximum(words_per_class[:, None], 1.0)
    scores = tf * idf
    for row, c in enumerate(ids):
        if c == NOISE:
            continue
        order = sorted(range(len(terms)), key=lambda j: (-scores[row, j], terms[j]))
        top = [terms[j] for j in order[:top_n] if scores[row, j] > 0]
        if top:
            out[c] = ", ".join(top)
    return out


# ============================================================================ map figure


def item_titles(df) -> list[str]:
    """Item title per row: `item_title` column, else the `item` JSON, else item_id."""
    if "item_title" in df.columns:
        return [str(t) if t is not None else "" for t in df["item_title"]]
    if "item" in df.columns:
        out = []
        for raw in df["item"]:
            try:
                out.append(str(json.loads(raw).get("title") or ""))
            except (TypeError, ValueError, AttributeError):
                out.append("")
        return out
    if "item_id" in df.columns:
        return [str(v) for v in df["item_id"]]
    return [""] * len(df)


def gate_outcome(row: Any) -> str:
    """"passed all", "parse failed" or "failed <gate>[+<gate>...]" for a synth row."""
    get = row.get if hasattr(row, "get") else (lambda k, d=None: getattr(row, k, d))
    text = get("explanation", "x")
    if _is_false(get("parsed", None)) or text is None or (isinstance(text, float) and math.isnan(text)):
        return "parse failed"
    failed = [g for g in GATES if _is_false(get(f"gate_{g}", None))]
    return "passed all" if not failed else "failed " + "+".join(failed)


def _is_false(value: Any) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    return not bool(value)


def _reasons_text(raw: Any) -> str:
    if not isinstance(raw, str) or not raw:
        return ""
    try:
        data = json.loads(raw)
    except ValueError:
        return raw
    return "; ".join(f"{g}: {r}" for g, reasons in data.items() for r in (reasons or []))


def _wrap(text: Any, width: int = 70) -> str:
    if not isinstance(text, str):
        return "(no explanation)"
    return "<br>".join(textwrap.wrap(text, width)) or "(empty)"


def _palette() -> list[str]:
    import plotly.colors as pc

    return list(pc.qualitative.Plotly) + list(pc.qualitative.D3) + list(pc.qualitative.Alphabet)


def cluster_map_figure(df, color_by: str = "cluster", title: str | None = None,
                       text_column: str = "explanation", show_removed: bool = True):
    """Scatter of the map (`x`, `y` columns), one trace per colour group.

    color_by: "cluster" (`cluster` + `cluster_label`), "item_type", or "gate" (pass /
    which gates failed). Hover: item title and type, the explanation, cluster, gate
    reasons. Rows with `kept` False are drawn as grey crosses ("removed duplicate")
    when show_removed, else left out.
    """
    import plotly.graph_objects as go

    if color_by not in COLOR_BY:
        raise ValueError(f"color_by must be one of {COLOR_BY}, got {color_by!r}")
    for col in ("x", "y"):
        if col not in df.columns:
            raise ValueError(f"cluster_map_figure needs an {col!r} column (project_2d)")
    frame = df.reset_index(drop=True)
    titles = item_titles(frame)
    n = len(frame)
    col = lambda name, default="": (frame[name].tolist() if name in frame.columns  # noqa: E731
                                    else [default] * n)
    clusters, cluster_labels = col("cluster", NOISE), col("cluster_label", "")
    types, reasons, texts = col("item_type"), col("gate_reasons"), col(text_column, None)
    kept = [bool(k) for k in col("kept", True)]
    outcomes = [gate_outcome(r) for r in frame.to_dict("records")] if n else []

    def cluster_name(i: int) -> str:
        c = int(clusters[i])
        label = cluster_labels[i] or (NOISE_LABEL if c == NOISE else f"cluster {c}")
        return NOISE_LABEL if c == NOISE else f"{c}: {label}"

    hover = [f"<b>{titles[i]}</b> ({types[i]})<br>{_wrap(texts[i])}<br>"
             f"<i>cluster</i> {cluster_name(i)}<br><i>gates</i> {outcomes[i]}"
             + (f"<br>{_wrap(_reasons_text(reasons[i]), 90)}" if _reasons_text(reasons[i]) else "")
             + ("" if kept[i] else "<br><b>removed duplicate</b>") for i in range(n)]
    if color_by == "cluster":
        keys = [cluster_name(i) for i in range(n)]
        order = sorted(set(keys), key=lambda k: (k == NOISE_LABEL, int(k.split(":")[0])
                                                 if k != NOISE_LABEL else 0))
    elif color_by == "item_type":
        keys = [str(t) for t in types]
        order = sorted(set(keys))
    else:
        keys = outcomes
        order = sorted(set(keys), key=lambda k: (k != "passed all", k == "parse failed", k))
    palette = _palette()
    fig = go.Figure()
    record_ids = col("record_id")
    for j, key in enumerate(order):
        idx = [i for i in range(n) if keys[i] == key and kept[i]]
        if not idx:
            continue
        color = "lightgrey" if key == NOISE_LABEL else palette[j % len(palette)]
        fig.add_trace(go.Scatter(
            x=[float(frame.at[i, "x"]) for i in idx], y=[float(frame.at[i, "y"]) for i in idx],
            mode="markers", name=f"{key} ({len(idx)})", marker=dict(size=8, color=color,
                                                                    opacity=0.85),
            customdata=[record_ids[i] for i in idx], hovertext=[hover[i] for i in idx],
            hoverinfo="text"))
    removed = [i for i in range(n) if not kept[i]]
    if removed and show_removed:
        fig.add_trace(go.Scatter(
            x=[float(frame.at[i, "x"]) for i in removed],
            y=[float(frame.at[i, "y"]) for i in removed], mode="markers",
            name=f"removed duplicate ({len(removed)})",
            marker=dict(size=6, color="darkgrey", symbol="x", opacity=0.6),
            customdata=[record_ids[i] for i in removed], hovertext=[hover[i] for i in removed],
            hoverinfo="text"))
    fig.update_layout(
        title=title or f"{sum(kept)} explanations, coloured by {color_by.replace('_', ' ')}",
        xaxis=dict(showticklabels=False, title=None, zeroline=False),
        yaxis=dict(showticklabels=False, title=None, zeroline=False),
        legend=dict(title=color_by.replace("_", " "), itemsizing="constant"),
        hoverlabel=dict(align="left"), dragmode="lasso", height=620,
        margin=dict(l=10, r=10, t=50, b=10), template="plotly_white")
    return fig


def rows_at(df, points: Sequence[dict[str, Any]], tol: float = 1e-4):
    """The rows of df whose (x, y) match selected plot points (marimo's plotly `.value`)."""
    if not len(points) or not len(df):
        return df.iloc[0:0]
    xy = np.array([[float(p.get("x", np.nan)), float(p.get("y", np.nan))] for p in points])
    have = df[["x", "y"]].to_numpy(dtype=np.float64)
    hit = np.zeros(len(df), dtype=bool)
    for px, py in xy:
        hit |= (np.abs(have[:, 0] - px) <= tol) & (np.abs(have[:, 1] - py) <= tol)
    return df[hit]
