"""Clusters, a 2-D map and cluster names for the explanation embeddings.

    cluster(embeddings, method, n_clusters, seed)      -> int labels (-1: unclustered)
    choose_k(embeddings, seed, rule)                   -> k for n_clusters=0 (sqrt or silhouette)
    centroids(embeddings, labels) / margins(...)       -> per-cluster centres, boundary margins
    assign_nearest(embeddings, centres)                -> nearest-centre labels (removed rows)
    cluster_frame(df, embeddings, config, coords)      -> df + cluster/label/margin/x/y columns
    project_2d(embeddings, method, seed)               -> (n, 2) map coordinates
    label_clusters(texts, labels, top_n)               -> {cluster: "term, term, ..."} (c-TF-IDF)
    gate_outcome(row) / item_titles(df)                -> display helpers shared with the app
    cluster_map_figure(df, color_by)                   -> plotly scatter with hover text
    selected_rows(df, points, figure)                  -> rows behind a map selection

Embeddings are L2-normalised (curation.embed), so euclidean distance ranks like
cosine distance and k-means on them is spherical k-means in all but name.

Defaults, measured with MiniLM on the real 60-row synth run (59 texts) and on
3,000 synthetic template x catalog-entity texts (24 templates, 8 per item type):

    method                         k    unclustered  silhouette  ARI template  ARI type
    real 59:  kmeans, sqrt rule    5    0            0.126       -             0.67
              kmeans, silhouette   3    0            0.157       -             0.81
              hdbscan (UMAP 10-d)  3    0            0.163       -             0.86
              hdbscan (raw 384-d)  2    17%          0.184       -             0.48
    synth 3k: kmeans, sqrt rule    39   0            0.094       0.43          0.11
              kmeans, true k=24    24   0            0.090       0.43          0.20
              kmeans, silhouette   4    0            0.121       0.14          0.81
              hdbscan (UMAP 10-d)  17   8%           0.050       0.16          0.75
              hdbscan (raw 384-d)  3    65%          0.119       0.04          0.23

Silhouette is low everywhere (no crisp clusters in sentence space) and prefers the
coarse item-type split; the sqrt rule recovers templates as well as the true k.
So: k-means (0.6 s for 3,000 rows) with k = sqrt(n/2) by default; HDBSCAN on request,
on a UMAP reduction. Every function is deterministic for a given seed.
"""

from __future__ import annotations

import importlib.util
import math
import textwrap
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from linernotes.domain.gates import GATE_NAMES
from linernotes.jsoncol import loads_json, loads_obj

NOISE = -1
NOISE_LABEL = "unclustered"
CLUSTER_METHODS = ("kmeans", "hdbscan")
PROJECTIONS = ("auto", "umap", "pca", "tsne")
COLOR_BY = ("cluster", "item_type", "gate")
GATES = GATE_NAMES  # grounding, style, safety, usefulness

# n_clusters=0 picks k by K_RULE. "sqrt": k = clip(round(sqrt(n/2)), 2, K_MAX);
# "silhouette": the cosine-silhouette-best k over `k_candidates(n)` (all ks up to 12,
# then a geometric grid up to 2*sqrt(n/2)), scored on at most SILHOUETTE_SAMPLE rows.
# Measured (MiniLM, seed 17): silhouette picks k=3-4, i.e. the item types (ARI vs
# item type 0.81-0.83) and misses the templates (ARI vs template id 0.14 on 3,000
# synthetic template x entity texts with 24 templates); sqrt gives k=39 there, ARI
# vs template 0.43 (the true k=24 gives 0.43 too). Finer clusters are what the
# review quotas and the map need, so "sqrt" is the default.
K_RULES = ("sqrt", "silhouette")
K_RULE = "sqrt"
K_MIN = 2
K_MAX = 40
SILHOUETTE_SAMPLE = 2000
KMEANS_N_INIT = 4
# HDBSCAN runs on a 10-d UMAP (cosine) reduction when umap-learn is installed
# (BERTopic's recipe): on raw 384-d vectors it left 38-86% of rows unclustered in
# the measurement; after UMAP 2-8%. Smallest cluster: max(5, n * 0.005).
HDBSCAN_MIN_SIZE = 5
HDBSCAN_MIN_SHARE = 0.005
HDBSCAN_UMAP_DIMS = 10
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
    from threadpoolctl import threadpool_limits

    # One thread: with numpy's and scipy's OpenBLAS plus OpenMP all at 2 threads,
    # KMeans on 3,000 x 384 took 5-8 s instead of 0.6 s (oversubscription).
    with threadpool_limits(1):
        return KMeans(n_clusters=k, n_init=KMEANS_N_INIT, random_state=seed).fit_predict(x)


def sqrt_k(n: int) -> int:
    """k = clip(round(sqrt(n/2)), 2, K_MAX), never more than n."""
    if n < 2:
        return n
    return int(min(n, K_MAX, max(K_MIN, round(math.sqrt(n / 2)))))


def choose_k(embeddings: Any, seed: int = 17, rule: str = K_RULE) -> int:
    """k for n_clusters=0: `sqrt_k(n)`, or the cosine-silhouette-best k over
    `k_candidates(n)` on a seeded sample of at most SILHOUETTE_SAMPLE rows."""
    x = _as_matrix(embeddings)
    n = len(x)
    if rule not in K_RULES:
        raise ValueError(f"unknown k rule {rule!r}; choose one of {K_RULES}")
    if rule == "sqrt":
        return sqrt_k(n)
    from sklearn.metrics import silhouette_score

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
            min_cluster_size: int | None = None, k_rule: str = K_RULE,
            reduce: bool | None = None) -> np.ndarray:
    """Cluster labels for each row (int64), renumbered by size: 0 is the largest.

    kmeans: n_clusters > 0 is used as given (capped at the number of rows); 0 picks k
    with `choose_k(rule=k_rule)`. hdbscan: finds the number of clusters itself
    (n_clusters is ignored), on a 10-d UMAP reduction when umap-learn is installed
    (reduce=None; True/False forces it); rows it cannot place get -1 ("unclustered").
    """
    x = _as_matrix(embeddings)
    n = len(x)
    if method not in CLUSTER_METHODS:
        raise ValueError(f"unknown cluster method {method!r}; choose one of {CLUSTER_METHODS}")
    if n_clusters < 0:
        raise ValueError(f"n_clusters must be >= 0 (0: choose from the data), got {n_clusters}")
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if method == "hdbscan":
        return _hdbscan(x, min_cluster_size or hdbscan_min_size(n), seed, reduce)
    k = min(n_clusters, n) if n_clusters else choose_k(x, seed, k_rule)
    if k <= 1 or len(np.unique(x.round(6), axis=0)) < 2:
        return np.zeros(n, dtype=np.int64)
    return _renumber(_kmeans(x, k, seed))


def _hdbscan(x: np.ndarray, size: int, seed: int, reduce: bool | None) -> np.ndarray:
    from sklearn.cluster import HDBSCAN

    n = len(x)
    if n < max(size, 2):
        return np.full(n, NOISE, dtype=np.int64)
    if reduce is None:
        reduce = bool(importlib.util.find_spec("umap")) and n > HDBSCAN_UMAP_DIMS + 2
    if reduce:
        import umap

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            x = umap.UMAP(n_components=HDBSCAN_UMAP_DIMS, n_neighbors=max(2, min(15, n - 1)),
                          min_dist=0.0, metric="cosine", random_state=seed,
                          n_jobs=1).fit_transform(x)
    return _renumber(HDBSCAN(min_cluster_size=size, copy=True).fit_predict(x))


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


def margins(embeddings: Any, labels: Sequence[int], mask: Any = None
            ) -> tuple[np.ndarray, np.ndarray]:
    """(margin, runner_up) per row: cosine similarity to the row's own cluster centroid
    minus to the nearest other centroid (small = on a boundary; negative = closer to
    another cluster), and that other cluster. Unclustered rows (-1) use their nearest
    centroid as their own. Centroids come from the rows in `mask` (default: all).
    NaN / -1 when there are fewer than two clusters."""
    x = _as_matrix(embeddings)
    labels = np.asarray(labels, dtype=np.int64)
    n = len(x)
    mask = np.ones(n, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    centres = centroids(x[mask], labels[mask])
    if len(centres) < 2:
        return np.full(n, np.nan), np.full(n, NOISE, dtype=np.int64)
    ids = np.array(list(centres), dtype=np.int64)
    where = {int(c): i for i, c in enumerate(ids)}
    sims = x @ np.stack([centres[c] for c in ids]).T
    own = np.array([where.get(int(c), -1) for c in labels], dtype=np.int64)
    own = np.where(own >= 0, own, np.argmax(sims, axis=1))
    rows = np.arange(n)
    own_sim = sims[rows, own]
    others = sims.copy()
    others[rows, own] = -np.inf
    best_other = np.argmax(others, axis=1)
    return (own_sim - others[rows, best_other]).astype(np.float64), ids[best_other]


def assign_nearest(embeddings: Any, centres: dict[int, np.ndarray]) -> np.ndarray:
    """Label of the most similar centre for each row (for rows left out of clustering)."""
    x = _as_matrix(embeddings)
    if not centres:
        return np.full(len(x), NOISE, dtype=np.int64)
    ids = np.array(list(centres))
    sims = x @ np.stack([centres[c] for c in ids]).T
    return ids[np.argmax(sims, axis=1)].astype(np.int64)


def cluster_frame(df, embeddings: Any, config: Any, coords: Any = None,
                  text_column: str | None = None):
    """df (copy) + cluster, cluster_label, cluster_margin, cluster_runner_up, x, y.

    Clusters only the kept rows (`kept`; all rows without that column), so duplicates
    do not weigh on k-means; a removed row gets its representative's cluster (`dup_of`
    -> record_id), else its nearest centroid. Labels: c-TF-IDF over kept rows. The map
    covers every row (removed ones sit on their representative): `coords` (n, 2) when
    given (the app keeps one map while thresholds move), else project_2d of all rows.
    config: cluster_method, n_clusters, projection, seed (CurateConfig).
    """
    x = _as_matrix(embeddings)
    out = df.copy()
    n = len(out)
    if len(x) != n:
        raise ValueError(f"embeddings have {len(x)} rows, the frame has {n}")
    col = text_column or getattr(config, "text_column", "explanation")
    kept = out["kept"].to_numpy(dtype=bool) if "kept" in out.columns else np.ones(n, dtype=bool)
    labels = np.full(n, NOISE, dtype=np.int64)
    labels[kept] = cluster(x[kept], method=config.cluster_method, n_clusters=config.n_clusters,
                           seed=config.seed)
    if (~kept).any():
        by_id = dict(zip(out["record_id"].astype(str), labels)) if "record_id" in out else {}
        centres = centroids(x[kept], labels[kept])
        nearest = assign_nearest(x, centres)
        dup_of = out["dup_of"].tolist() if "dup_of" in out.columns else [None] * n
        for i in np.flatnonzero(~kept):
            labels[i] = by_id.get(str(dup_of[i]), nearest[i]) if dup_of[i] is not None \
                else nearest[i]
    texts = out[col].tolist()
    names = label_clusters([t for t, k in zip(texts, kept) if k], labels[kept])
    out["cluster"] = labels
    out["cluster_label"] = [names.get(int(c), NOISE_LABEL if c == NOISE else f"cluster {c}")
                            for c in labels]
    margin, runner = margins(x, labels, kept)
    out["cluster_margin"], out["cluster_runner_up"] = margin, runner
    xy = project_2d(x, config.projection, config.seed) if coords is None else \
        np.asarray(coords, dtype=np.float32)
    if xy.shape != (n, 2):
        raise ValueError(f"coords must have shape ({n}, 2), got {xy.shape}")
    out["x"], out["y"] = xy[:, 0], xy[:, 1]
    return out


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

    c-TF-IDF (BERTopic): the texts of a cluster form one class document; a term's
    weight is its frequency in that document (over the document's length) times
    log(1 + A / f), A = mean words per class, f = the term's count over all classes.
    A term counts once per text (a text repeating "I'm a boy" twenty times does not
    name its cluster). English stop words and tokens without letters are dropped.
    Cluster -1 is "unclustered"; a cluster with no usable words is "cluster <k>".
    """
    from sklearn.feature_extraction.text import CountVectorizer

    labels = [int(c) for c in labels]
    if len(labels) != len(texts):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    ids = sorted(set(labels))
    out = {c: (NOISE_LABEL if c == NOISE else f"cluster {c}") for c in ids}
    docs = [t if isinstance(t, str) else "" for t in texts]
    if not ids or not any(d.strip() for d in docs):
        return out
    vectorizer = CountVectorizer(stop_words="english", lowercase=True, ngram_range=ngram_range,
                                 token_pattern=r"(?u)\b[^\W\d_][^\W\d_']+\b", binary=True)
    try:
        per_text = vectorizer.fit_transform(docs)
    except ValueError:  # empty vocabulary: only stop words
        return out
    lab = np.asarray(labels)
    counts = np.vstack([np.asarray(per_text[lab == c].sum(axis=0)).ravel() for c in ids]
                       ).astype(np.float64)
    terms = vectorizer.get_feature_names_out()
    words_per_class = counts.sum(axis=1)
    avg = words_per_class.mean()
    idf = np.log(1.0 + avg / np.maximum(counts.sum(axis=0), 1.0))
    tf = counts / np.maximum(words_per_class[:, None], 1.0)
    scores = tf * idf
    for row, c in enumerate(ids):
        if c == NOISE:
            continue
        order = np.argsort(-scores[row], kind="stable")  # terms are sorted: ties go a-z
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
        return [str(loads_obj(raw).get("title") or "") for raw in df["item"]]
    if "item_id" in df.columns:
        return [str(v) for v in df["item_id"]]
    return [""] * len(df)


def gate_outcome(row: Any) -> str:
    """"passed all", "parse failed" or "failed <gate>[+<gate>...]" for a synth row."""
    get = row.get if hasattr(row, "get") else (lambda k, d=None: getattr(row, k, d))
    text = get("explanation", "x")
    if _is_false(get("parsed", None)) or not isinstance(text, str):
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
    data = loads_json(raw, None, expect=dict)
    if data is None:  # not a JSON object: show the text as it is
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


def selected_rows(df, points: Sequence[dict[str, Any]], figure: Any = None, tol: float = 1e-4):
    """The rows of df behind points selected on `cluster_map_figure` (marimo's plotly
    `.value`): by record_id from the point's customdata, or from the figure's trace
    (curveNumber, pointIndex); else by matching (x, y)."""
    if not len(points) or not len(df):
        return df.iloc[0:0]
    ids, xy = set(), []
    for p in points:
        curve, index = p.get("curveNumber"), p.get("pointIndex")
        if p.get("customdata") is not None:
            data = p["customdata"]
            ids.add(str(data[0] if isinstance(data, (list, tuple)) else data))
        elif figure is not None and isinstance(curve, int) and isinstance(index, int) \
                and curve < len(figure.data) and figure.data[curve].customdata is not None \
                and index < len(figure.data[curve].customdata):
            ids.add(str(figure.data[curve].customdata[index]))
        elif "x" in p and "y" in p:
            xy.append((float(p["x"]), float(p["y"])))
    hit = np.zeros(len(df), dtype=bool)
    if ids and "record_id" in df.columns:
        hit |= df["record_id"].astype(str).isin(ids).to_numpy()
    if xy:
        have = df[["x", "y"]].to_numpy(dtype=np.float64)
        for px, py in xy:
            hit |= (np.abs(have[:, 0] - px) <= tol) & (np.abs(have[:, 1] - py) <= tol)
    return df[hit]
