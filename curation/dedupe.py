"""Staged dedupe of explanations: exact -> near-lexical (MinHash/LSH) -> semantic (kNN).

    result = dedupe(df, config)                  # one shot
    index = DedupeIndex.build(df, embeddings, config)
    result = index.apply(minhash_threshold=0.7, semantic_threshold=0.9)   # milliseconds

Stages (each reports what it removed and why, `result.stages`):

exact     normalised text equal (NFKC, lowercase, quotes/apostrophes dropped, other
          punctuation -> space, whitespace collapsed).
near      MinHash (datasketch's affine32 permutations over `config.shingle`
          shingles: word<n> or char<n>) + LSH banding (datasketch's optimal
          bands/rows); candidate pairs are kept when the estimated Jaccard is at
          least `minhash_threshold`.
semantic  cosine of L2-normalised embeddings from a nearest-neighbour search:
          FAISS IndexFlatIP up to FLAT_MAX vectors, IndexHNSWFlat above, `semantic_k`
          neighbours per text; pairs with cosine >= `semantic_threshold`, and pairs
          about the same item with cosine >= `claim_threshold` whose claim
          signatures match (curation/claim_signature.py, compared in claim_compare.py: same history ties,
          numbers, country, album): paraphrases reword, they do not change claims.
          Conversely, a same-item pair above `semantic_threshold` but below
          `claim_compare.CERTAIN_COSINE` is kept apart when the claims conflict
          (one note makes a claim, a gate claim type or a listener tie the other
          lacks, or the two make disjoint descriptive claims): a note with another
          fact in the same frame sentence is not a duplicate.

Entity-awareness (`config.entity_aware`, default on): explanations about different
items are never duplicates, however alike the wording. Every stage then compares
only texts of the same entity (same item_id; `entity_by="work"`: same normalised
creator + title, falling back to item_id), i.e. the LSH buckets and the kNN search
are blocked by entity, so near-identical templates about other items can neither
merge nor crowd the same item's neighbours out of the k. Many items sharing one
sentence shape is a diversity problem, not duplication:
`curation.diversity.template_collapse(df)` reports it.

Groups and the representative: duplicate pairs from all stages are joined
transitively (connected components, i.e. union-find); each group keeps exactly ONE
row, the best by: passed_all (True first), then the number of gates passed
(gate_grounding/gate_style/gate_safety, or the `gates` JSON), then the shortest
text, then the smallest record_id. A group is never dropped whole. Rows with no
text (None/NaN/blank) are singletons and kept: the gates decide about those.

Output columns added to the frame: dup_stage (None | "exact" | "near" |
"semantic": the stage that removed the row), dup_group (int; singletons have
their own), dup_of (the group's representative record_id, None for kept rows),
kept (bool).

Speed: the build computes everything threshold-independent once (normalised
texts, MinHash signatures, LSH candidates verified down to a floor Jaccard, the kNN
graph down to a floor cosine); `apply` only filters edges and recomputes
components, so slider moves are milliseconds. A threshold below the floor rebuilds
that stage's edges.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any, Sequence

import numpy as np
import pandas as pd

from curation.lexical import (  # noqa: F401 (re-exported: diversity, tests and bench import them from here)
    EMPTY_HASH, LSH_BUCKET_CAP, _as_text, _hashfunc_for_datasketch, _parse_shingle, jaccard_estimate,
    lsh_candidates, lsh_params, minhash_signatures, normalize_text, shingle_hash32, shingles,
)
from curation.knn import FLAT_MAX, HNSW_EF_CONSTRUCTION, HNSW_M, SMALL_BLOCK, knn_edges  # noqa: F401 (re-exported)
from linernotes.jsoncol import loads_obj

log = logging.getLogger(__name__)

STAGES = ("exact", "near", "semantic")
MINHASH_FLOOR = 0.5  # candidate Jaccard kept at build time (apply above it is free)
SEMANTIC_FLOOR = 0.80  # kNN edges kept at build time

# --------------------------------------------------------------------------- frame helpers


def _item_field(df: pd.DataFrame, field: str) -> pd.Series:
    if field in df.columns:
        return df[field].map(_as_text)
    if "item" not in df.columns:
        return pd.Series([""] * len(df), index=df.index)

    return df["item"].map(lambda blob: _as_text(loads_obj(blob).get(field)))


def entity_keys(df: pd.DataFrame, by: str = "item") -> np.ndarray:
    """int code per row; rows with the same code are about the same entity.

    by="item": same item_id. by="work": same normalised creator + title (from the
    `item` JSON or creator/title columns), falling back to item_id where either is missing.
    """
    if "item_id" not in df.columns:
        raise ValueError("entity-aware dedupe needs an item_id column (or set entity_aware=False)")
    ids = df["item_id"].map(_as_text).to_numpy(dtype=object)
    if by == "work":
        title = _item_field(df, "title").map(normalize_text)
        creator = _item_field(df, "creator").map(normalize_text)
        work = ("work:" + creator + "|" + title).to_numpy(dtype=object)
        ok = (title != "").to_numpy() & (creator != "").to_numpy()
        ids = np.where(ok, work, ids)
    elif by != "item":
        raise ValueError(f"entity_by {by!r}: expected 'item' or 'work'")
    codes, _ = pd.factorize(pd.Series(ids), sort=False)
    return codes.astype(np.int64)


GATE_COLUMNS = ("gate_grounding", "gate_style", "gate_safety", "gate_usefulness")


def _gates_passed(df: pd.DataFrame) -> np.ndarray:
    cols = [c for c in GATE_COLUMNS if c in df.columns]
    if cols:
        return sum(df[c].fillna(False).astype(bool).to_numpy().astype(np.int64) for c in cols)
    if "gates" in df.columns:
        def count(blob):
            return sum(bool(g.get("passed")) for g in loads_obj(blob).values() if isinstance(g, dict))
        return df["gates"].map(count).to_numpy(dtype=np.int64)
    return np.zeros(len(df), dtype=np.int64)


def representative_order(df: pd.DataFrame, texts: Sequence[str]) -> np.ndarray:
    """Row positions best-first by the representative rule: passed_all, then gates
    passed, then shorter text, then smaller record_id."""
    n = len(df)
    passed = df["passed_all"].fillna(False).astype(bool).to_numpy() if "passed_all" in df.columns \
        else np.zeros(n, dtype=bool)
    rid = df["record_id"].map(_as_text).to_numpy(dtype=object) if "record_id" in df.columns \
        else np.array([f"{i:012d}" for i in range(n)], dtype=object)
    lengths = np.fromiter((len(t.strip()) for t in texts), dtype=np.int64, count=n)
    rid_rank = pd.factorize(pd.Series(rid), sort=True)[0]
    # np.lexsort: last key is the primary one
    return np.lexsort((np.arange(n), rid_rank, lengths, -_gates_passed(df), ~passed))


def _components(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if len(i) == 0:
        return np.arange(n)
    g = coo_matrix((np.ones(len(i), dtype=np.int8), (i, j)), shape=(n, n)).tocsr()
    return connected_components(g, directed=False)[1]


def _claim_threshold(config: Any) -> float:
    """config.claim_threshold when the config has the field, else the measured default."""
    from curation.claim_compare import CLAIM_THRESHOLD

    value = getattr(config, "claim_threshold", None)
    return CLAIM_THRESHOLD if value is None else float(value)


def _certain_threshold(config: Any) -> float:
    """config.certain_threshold when the config has the field, else the measured default."""
    from curation.claim_compare import CERTAIN_COSINE

    value = getattr(config, "certain_threshold", None)
    return CERTAIN_COSINE if value is None else float(value)


# --------------------------------------------------------------------------- result


@dataclasses.dataclass
class DedupeResult:
    df: pd.DataFrame
    stages: list[dict[str, Any]]
    thresholds: dict[str, Any]

    @property
    def n_kept(self) -> int:
        return int(self.df["kept"].sum())

    @property
    def n_removed(self) -> int:
        return int((~self.df["kept"]).sum())

    def summary(self) -> pd.DataFrame:
        cols = ["stage", "removed", "groups", "threshold", "seconds", "why"]
        return pd.DataFrame([{c: s.get(c) for c in cols} for s in self.stages], columns=cols)

    def removed(self) -> pd.DataFrame:
        return self.df[~self.df["kept"]]

    def to_dict(self) -> dict[str, Any]:
        return {"n": len(self.df), "kept": self.n_kept, "removed": self.n_removed,
                "thresholds": self.thresholds, "stages": self.stages}


# --------------------------------------------------------------------------- index


class DedupeIndex:
    """Everything threshold-independent about a frame, built once; `apply` is cheap."""

    def __init__(self) -> None:
        self.df: pd.DataFrame
        self.config: Any
        self.stages: tuple[str, ...] = STAGES
        self.entity_by = "item"
        self.build_seconds: dict[str, float] = {}

    # ------------------------------------------------------------------ build
    @classmethod
    def build(cls, df: pd.DataFrame, embeddings: np.ndarray | None = None, config: Any = None, *,
              stages: Sequence[str] | None = None, entity_by: str = "item", embedder: Any = None,
              partition: str | Sequence[Any] | None = None,
              minhash_floor: float = MINHASH_FLOOR, semantic_floor: float = SEMANTIC_FLOOR) -> "DedupeIndex":
        """Compute the threshold-independent parts. `partition` (a column name or one
        value per row) splits the frame into parts that are never compared with each
        other, entity-aware or not (e.g. item_type; `curation.pairs` uses it to
        evaluate hundreds of independent pairs in one build)."""
        from linernotes.config import CurateConfig

        self = cls()
        self.config = config or CurateConfig()
        self.df = df.reset_index(drop=True)
        self.stages = tuple(stages) if stages is not None else STAGES
        unknown = set(self.stages) - set(STAGES)
        if unknown:
            raise ValueError(f"unknown dedupe stage(s) {sorted(unknown)}; known: {STAGES}")
        self.entity_by = entity_by
        n = len(self.df)
        self.n = n
        col = self.config.text_column
        if col not in self.df.columns:
            raise ValueError(f"text column {col!r} not in frame (columns: {list(self.df.columns)})")
        t0 = time.perf_counter()
        self.texts = [_as_text(t) for t in self.df[col]]
        self.norms = [normalize_text(t) for t in self.texts]
        self.valid = np.array([bool(t) for t in self.norms], dtype=bool)
        self.entity_aware = bool(self.config.entity_aware)
        self.blocks = entity_keys(self.df, entity_by) if self.entity_aware else None
        if partition is not None:
            part = self.df[partition] if isinstance(partition, str) else pd.Series(list(partition))
            if len(part) != n:
                raise ValueError(f"partition has {len(part)} values, frame has {n} rows")
            pcodes, _ = pd.factorize(part.map(_as_text), sort=False)
            combo = pcodes.astype(np.int64) if self.blocks is None else \
                pd.factorize(pd.Series(pcodes.astype(str)) + "|" + pd.Series(self.blocks.astype(str)))[0]
            self.blocks = np.asarray(combo, dtype=np.int64)
        self.order = representative_order(self.df, self.texts)
        self.rank = np.empty(n, dtype=np.int64)
        self.rank[self.order] = np.arange(n)
        self.build_seconds["prepare"] = time.perf_counter() - t0
        self.signatures = None
        self.embeddings = None
        self._build_exact()
        self.minhash_floor = min(minhash_floor, self.config.minhash_threshold)
        self.semantic_floor = min(semantic_floor, self.config.semantic_threshold, _claim_threshold(self.config))
        if "near" in self.stages:
            self._build_near()
        if "semantic" in self.stages:
            self._build_semantic(embeddings, embedder)
        return self

    def _build_exact(self) -> None:
        t0 = time.perf_counter()
        norms = pd.Series(self.norms)
        keys = norms if self.blocks is None else norms + "\x00" + pd.Series(self.blocks).astype(str)
        codes, _ = pd.factorize(keys)
        codes = np.where(self.valid, codes, -1 - np.arange(self.n))  # blank texts: own group
        order = np.argsort(codes, kind="stable")
        sc = codes[order]
        same = np.flatnonzero(sc[1:] == sc[:-1])
        # chain each run: consecutive members of one exact group
        self.exact_edges = (order[same].astype(np.int64), order[same + 1].astype(np.int64))
        # what entity-awareness kept apart: same normalised text, different entity
        blind, _ = pd.factorize(norms)
        v = self.valid
        self.exact_cross_entity = int(v.sum() - len(np.unique(blind[v]))) - int(len(same)) \
            if self.entity_aware else 0
        self.build_seconds["exact"] = time.perf_counter() - t0

    def _build_near(self, floor: float | None = None) -> None:
        t0 = time.perf_counter()
        cfg = self.config
        if floor is not None:
            self.minhash_floor = floor
        if self.signatures is None:
            self.signatures = minhash_signatures(self.norms, cfg.shingle, cfg.minhash_num_perm, normalized=True)
        i, j = lsh_candidates(self.signatures, self.minhash_floor, self.blocks, self.valid)
        jac = jaccard_estimate(self.signatures, i, j)
        keep = jac >= self.minhash_floor
        self.near_candidates = len(i)
        self.near_edges = (i[keep], j[keep], jac[keep])
        self.build_seconds["near"] = time.perf_counter() - t0

    def _build_semantic(self, embeddings: np.ndarray | None = None, embedder: Any = None,
                        floor: float | None = None) -> None:
        t0 = time.perf_counter()
        cfg = self.config
        if floor is not None:
            self.semantic_floor = floor
        if self.embeddings is None:
            if embeddings is None:
                if embedder is None:
                    from curation.embed import Embedder

                    embedder = Embedder(cfg.embed_backend, batch_size=cfg.embed_batch_size)
                embeddings = embedder.encode(self.texts)
            embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
            if embeddings.shape[0] != self.n:
                raise ValueError(f"embeddings have {embeddings.shape[0]} rows, frame has {self.n}")
            self.embeddings = embeddings
            self.build_seconds["embed"] = time.perf_counter() - t0
            t0 = time.perf_counter()
        self.semantic_edges = knn_edges(self.embeddings, cfg.semantic_k, self.semantic_floor,
                                        self.blocks, self.valid)
        self.build_seconds["semantic"] = time.perf_counter() - t0

    # ------------------------------------------------------------------ apply
    def apply(self, minhash_threshold: float | None = None, semantic_threshold: float | None = None,
              exact: bool | None = None, stages: Sequence[str] | None = None,
              report_examples: int = 5, claim_threshold: float | None = None,
              descriptor_min: float | None = None, certain_threshold: float | None = None,
              veto_jaccard: float | None = None) -> DedupeResult:
        """Dedupe at these thresholds (default: the config's) from the cached graph.

        Thresholds at or above the build floors (MinHash 0.5, cosine 0.80 by default)
        only filter cached edges (milliseconds); lower ones rebuild that stage once.
        Changing entity_aware, shingle, num_perm or semantic_k needs a new build.
        claim_threshold: the lower cosine for same-item pairs whose claim signatures
        match (default: config.claim_threshold if it has one, else
        claim_compare.CLAIM_THRESHOLD); at or above semantic_threshold: off.
        descriptor_min: the descriptor Jaccard those pairs also need (default
        claim_compare.DESCRIPTOR_MIN).
        certain_threshold: same-item pairs with semantic_threshold <= cosine < this are
        kept apart when their claims conflict (claim_compare.claims_conflict: one
        note makes a claim or listener tie the other lacks); default
        config.certain_threshold if it has one, else claim_compare.CERTAIN_COSINE; at
        or below semantic_threshold: off. veto_jaccard: the descriptor Jaccard below
        which two descriptive claims conflict (default claim_compare.VETO_JACCARD).
        """
        cfg = self.config
        mh = cfg.minhash_threshold if minhash_threshold is None else float(minhash_threshold)
        sem = cfg.semantic_threshold if semantic_threshold is None else float(semantic_threshold)
        use_exact = cfg.exact if exact is None else bool(exact)
        run = [s for s in (stages if stages is not None else self.stages) if s in self.stages]
        if not use_exact and "exact" in run:
            run.remove("exact")
        if "near" in run and mh < self.minhash_floor:
            self._build_near(floor=mh)
        low = _claim_threshold(cfg) if claim_threshold is None else float(claim_threshold)
        certain = _certain_threshold(cfg) if certain_threshold is None else float(certain_threshold)
        if "semantic" in run and min(sem, low) < self.semantic_floor:
            self._build_semantic(floor=min(sem, low))
        n = self.n
        is_rep_prev = np.ones(n, dtype=bool)
        edit_vetoed: set[tuple[int, int]] = set()
        dup_stage = np.full(n, None, dtype=object)
        ei: list[np.ndarray] = []
        ej: list[np.ndarray] = []
        labels = np.arange(n)
        rep = np.arange(n)
        reports = []
        block_note = (f"only rows about the same {'item (item_id)' if self.entity_by == 'item' else 'work'}"
                      if self.entity_aware else "any rows (entity-blind)")
        for stage in run:
            t0 = time.perf_counter()
            if stage == "exact":
                i, j = self.exact_edges
                sim = None
                thr: Any = True
                why = f"normalised text identical; {block_note}"
            elif stage == "near":
                i, j, s = self.near_edges
                keep = s >= mh
                n_edit_veto = 0
                if certain > sem and keep.any():
                    # shared wording, different claims ("a loud three-minute rock song" vs "a
                    # scrappy rock song" in one sentence): the claim checks cover this stage too
                    hk = np.flatnonzero(keep)
                    conflict = self._claim_conflicts(i[hk], j[hk], veto_jaccard, edit=True)
                    keep[hk[conflict]] = False
                    n_edit_veto = int(conflict.sum())
                    edit_vetoed = {(min(a, b), max(a, b))
                                   for a, b in zip(i[hk[conflict]].tolist(), j[hk[conflict]].tolist())}
                i, j, sim = i[keep], j[keep], s[keep]
                thr = mh
                why = (f"MinHash Jaccard of {cfg.shingle} shingles >= {mh} "
                       f"({cfg.minhash_num_perm} perms, LSH); {block_note}")
                if n_edit_veto:
                    why += f"; same-item pairs whose claims differ kept apart ({n_edit_veto} pairs)"
            else:
                i, j, s = self.semantic_edges
                keep = s >= sem
                # below `certain` the cosine of a pair the MinHash stage kept apart comes from the
                # wording they share, and their claims were already found different: the plain
                # cosine does not merge them (the claim band below still may)
                if edit_vetoed:
                    carried = np.array([(min(a, b), max(a, b)) in edit_vetoed for a, b in zip(i.tolist(), j.tolist())],
                                       dtype=bool)
                    keep &= ~(carried & (s < certain))
                n_claim = n_veto = 0
                if certain > sem:
                    hb = np.flatnonzero(keep & (s < certain))
                    if len(hb):
                        conflict = self._claim_conflicts(i[hb], j[hb], veto_jaccard)
                        keep[hb[conflict]] = False
                        n_veto = int(conflict.sum())
                    # above `certain` only the wording differs, unless a number does
                    top = np.flatnonzero(keep & (s >= certain))
                    if len(top):
                        conflict = self._claim_conflicts(i[top], j[top], numbers_only=True)
                        keep[top[conflict]] = False
                        n_veto += int(conflict.sum())
                if low < sem:
                    band = np.flatnonzero((s >= low) & ~keep)
                    if len(band):
                        rescued = self._claim_matches(i[band], j[band], descriptor_min)
                        keep[band[rescued]] = True
                        n_claim = int(rescued.sum())
                i, j = i[keep], j[keep]
                thr = sem
                why = f"embedding cosine >= {sem} (k={cfg.semantic_k} neighbours); {block_note}"
                if low < sem:
                    why += f"; or cosine >= {low}, same item and the same claims ({n_claim} pairs)"
                if certain > sem:
                    why += f"; below {certain}, same-item pairs whose claims conflict kept apart ({n_veto} pairs)"
            ei.append(i)
            ej.append(j)
            labels = _components(n, np.concatenate(ei), np.concatenate(ej))
            best = np.full(int(labels.max()) + 1 if n else 0, n, dtype=np.int64)
            np.minimum.at(best, labels, self.rank)
            rep = self.order[best[labels]]
            is_rep = rep == np.arange(n)
            removed = is_rep_prev & ~is_rep
            dup_stage[removed] = stage
            sizes = np.bincount(labels) if n else np.zeros(0, dtype=np.int64)
            report = {"stage": stage, "removed": int(removed.sum()), "groups": int((sizes > 1).sum()),
                      "threshold": thr, "pairs": int(len(i)),
                      "seconds": round(time.perf_counter() - t0 + self.build_seconds.get(stage, 0.0), 4),
                      "apply_seconds": round(time.perf_counter() - t0, 4),
                      "build_seconds": round(self.build_seconds.get(stage, 0.0), 4),
                      "why": why, "examples": self._examples(stage, np.flatnonzero(removed), rep,
                                                             report_examples)}
            if stage == "exact" and self.entity_aware:
                report["kept_apart_by_entity"] = self.exact_cross_entity
            if stage == "near":
                report["candidates"] = int(self.near_candidates)
            if stage == "semantic":
                report["claim_threshold"] = low if low < sem else None
                report["claim_pairs"] = n_claim
                report["certain_threshold"] = certain if certain > sem else None
                report["conflict_pairs"] = n_veto
            if stage == "semantic" and "embed" in self.build_seconds:
                report["embed_seconds"] = round(self.build_seconds["embed"], 4)
            reports.append(report)
            is_rep_prev = is_rep
        out = self.df.copy()
        kept = rep == np.arange(n)
        _, group = np.unique(labels, return_inverse=True)
        # group ids numbered by first appearance
        first = pd.Series(group).drop_duplicates()
        renum = np.empty(group.max() + 1 if n else 0, dtype=np.int64)
        renum[first.to_numpy()] = np.arange(len(first))
        rid = out["record_id"].map(_as_text).to_numpy(dtype=object) if "record_id" in out.columns \
            else np.arange(n).astype(str).astype(object)
        # object dtype keeps None as None (pandas 3 would infer str and turn it into NaN)
        out["dup_stage"] = pd.Series(dup_stage, index=out.index, dtype=object)
        out["dup_group"] = renum[group] if n else np.zeros(0, dtype=np.int64)
        out["dup_of"] = pd.Series(np.where(kept, None, rid[rep]), index=out.index, dtype=object)
        out["kept"] = kept
        thresholds = {"exact": use_exact, "minhash_threshold": mh, "shingle": cfg.shingle,
                      "minhash_num_perm": cfg.minhash_num_perm, "semantic_threshold": sem,
                      "semantic_k": cfg.semantic_k, "claim_threshold": low if low < sem else None,
                      "certain_threshold": certain if certain > sem else None,
                      "entity_aware": self.entity_aware,
                      "entity_by": self.entity_by if self.entity_aware else None, "stages": run}
        return DedupeResult(out, reports, thresholds)

    def _same_item(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Per candidate pair: both rows are about the same item_id (no column: none are)."""
        if "item_id" not in self.df.columns:
            return np.zeros(len(i), dtype=bool)
        ids = self.df["item_id"].map(_as_text).to_numpy(dtype=object)
        return ids[i] == ids[j]

    def _claim_matches(self, i: np.ndarray, j: np.ndarray, descriptor_min: float | None = None) -> np.ndarray:
        """Same item_id and matching claim signatures, per candidate pair."""
        from curation.claim_compare import claim_mask

        same = self._same_item(i, j)
        out = np.zeros(len(i), dtype=bool)
        if same.any():
            out[same] = claim_mask(self.df, self.texts, i[same], j[same], descriptor_min=descriptor_min)
        return out

    def _claim_conflicts(self, i: np.ndarray, j: np.ndarray, veto_jaccard: float | None = None,
                         numbers_only: bool = False, edit: bool = False) -> np.ndarray:
        """Same item_id and conflicting claims (with numbers_only: numbers), per candidate
        pair (other items: no veto)."""
        from curation.claim_compare import VETO_JACCARD, conflict_mask

        same = self._same_item(i, j)
        out = np.zeros(len(i), dtype=bool)
        if same.any():
            out[same] = conflict_mask(self.df, self.texts, i[same], j[same], numbers_only=numbers_only, edit=edit,
                                      veto_jaccard=VETO_JACCARD if veto_jaccard is None else veto_jaccard)
        return out

    def _examples(self, stage: str, removed: np.ndarray, rep: np.ndarray, k: int) -> list[dict[str, Any]]:
        if k <= 0 or not len(removed):
            return []
        pick = removed[np.linspace(0, len(removed) - 1, min(k, len(removed))).astype(int)]
        out = []
        for r in pick:
            kk = int(rep[r])
            if stage == "exact":
                sim = 1.0
            elif stage == "near":
                sim = float((self.signatures[r] == self.signatures[kk]).mean())
            else:
                sim = float(self.embeddings[r] @ self.embeddings[kk])
            row = self.df.iloc[r]
            out.append({"removed": self.texts[r], "kept": self.texts[kk],
                        "removed_record_id": _as_text(row.get("record_id")),
                        "kept_record_id": _as_text(self.df.iloc[kk].get("record_id")),
                        "item_id": _as_text(row.get("item_id")), "similarity": round(sim, 4)})
        return out


def dedupe(df: pd.DataFrame, config: Any = None, embeddings: np.ndarray | None = None, *,
           stages: Sequence[str] | None = None, entity_by: str = "item", embedder: Any = None,
           partition: str | Sequence[Any] | None = None, report_examples: int = 5) -> DedupeResult:
    """Staged dedupe at the config's thresholds (see the module docstring).

    embeddings: (len(df), d) L2-normalised vectors of the text column; computed with
    `curation.embed.Embedder(config.embed_backend)` (cached) when None and the
    semantic stage runs. stages: a subset of ("exact", "near", "semantic").
    """
    index = DedupeIndex.build(df, embeddings, config, stages=stages, entity_by=entity_by, embedder=embedder,
                              partition=partition)
    return index.apply(report_examples=report_examples)
