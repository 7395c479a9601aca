"""What experts should label first: a seeded review sample of the kept rows.

    flags = review_flags(df, embeddings)        # why each row is interesting (all rows)
    sample = review_sample(df, config, embeddings)

Eligible rows: `kept` (after dedupe; all rows when there is no `kept` column) with a
non-empty explanation (rows without text have nothing to judge).

Reasons (`REASONS`):

gate_disagreement  the verdicts contradict each other or the teacher: exactly one of
                   grounding/style/safety failed while the other two passed ("only
                   grounding failed"), or the teacher's `facts_used` disagree with
                   the grounding verdict (grounding failed only on facts_used entries
                   while the sentence's own claims checked out, or every facts_used
                   entry checked out while the sentence failed grounding).
low_confidence     a failed gate with score >= NEAR_MISS (one problem among several
                   checks: "31 words (max 30)"), or a parse problem with text left
                   (parse_error set, parsed False, or the teacher stopped at max
                   tokens: finish_reason "length").
cluster_boundary   the cosine margin between the row's own cluster centroid and the
                   nearest other one is in the lowest BOUNDARY_QUANTILE of eligible
                   rows (needs `embeddings` or a `cluster_margin` column).
cluster_coverage   a row drawn at random to fill a cluster's quota when the cluster has
                   too few flagged rows left.
control            the random control slice: round(control_share * size) rows drawn
                   uniformly from all eligible rows BEFORE anything else, so it is an
                   unbiased estimate of the kept set's quality.

Quotas: the non-control budget is split over clusters (noise -1 is a cluster of its
own): one row each (clusters the control slice missed first, then the largest, when
the budget is smaller than the number of clusters), the rest proportional to size
(largest remainder). A cluster fills its quota round-robin over the three flagged
reasons (its best disagreement, best low-confidence, best boundary row, then the
second best of each, ...; best = most severe: only-grounding before facts_used
before style/safety; parse problems, then near misses closest to passing; smallest
margins), then with coverage rows. Quota a cluster cannot fill goes to the flagged
rows left anywhere (same round-robin), then to random rows.

review_priority: 1 = label first. Targeted rows by round (every cluster's and
reason's best first), with the control rows spread evenly through the queue (an
expert who stops early still has a proportional control slice). Same seed, same
frame -> same sample. A row flagged for several reasons lists them all in
`all_reasons`; `sample_reason` is the one it was picked for.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from curation.cluster import NOISE, NOISE_LABEL, item_titles, margins
from linernotes.domain.gates import GATE_NAMES
from linernotes.jsoncol import loads_json, loads_obj

REASONS = ("gate_disagreement", "low_confidence", "cluster_boundary", "cluster_coverage",
           "control")
GATES = GATE_NAMES  # grounding, style, safety, usefulness
NEAR_MISS = 0.75  # a failed gate scoring at least this is a near miss (style: 1 problem of 4)
BOUNDARY_QUANTILE = 0.2
FACTS_PREFIX = "facts_used entry"
NO_EXPLANATION = "no explanation parsed"

# What the labeling stage reads, in this order (missing inputs become None/NaN).
SAMPLE_COLUMNS = (
    "review_priority", "sample_reason", "reason_detail", "all_reasons",
    "record_id", "task", "item_id", "item_type", "item_title", "item", "listener_id", "listener",
    "explanation", "facts_used", "parsed", "parse_error",
    "gate_grounding", "gate_style", "gate_safety", "gate_usefulness", "passed_all", "gate_reasons", "gates",
    "cluster", "cluster_label", "cluster_margin", "x", "y",
    "prompt_version", "model", "dup_group",
)


# ============================================================================ per-row flags


def _gates(row: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{gate: {"passed", "reasons", "score"}} from the `gates` JSON, else the flat
    gate_* columns and `gate_reasons` (score unknown: NaN)."""
    full = loads_obj(row.get("gates"))
    if full:
        return {g: {"passed": bool(v.get("passed")), "reasons": list(v.get("reasons") or []),
                    "score": float(v.get("score", math.nan))} for g, v in full.items()}
    reasons = loads_obj(row.get("gate_reasons"))
    return {g: {"passed": bool(row.get(f"gate_{g}")), "reasons": list(reasons.get(g) or []),
                "score": math.nan} for g in GATES if f"gate_{g}" in row and row.get(f"gate_{g}") is not None}


def _has_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _disagreement(gates: dict[str, dict[str, Any]], facts_used: list[str]
                  ) -> tuple[int, str] | None:
    """(severity, detail) when the verdicts disagree: 0 only grounding failed, 1 the
    teacher's facts_used disagree with the grounding verdict, 2 only style/safety failed."""
    failed = [name for name in GATES if name in gates and not gates[name]["passed"]]
    if len(failed) == 1 and len(gates) >= 2:
        name = failed[0]
        first = gates[name]["reasons"][0] if gates[name]["reasons"] else "no reason given"
        if first != NO_EXPLANATION:
            others = " and ".join(x for x in GATES if x in gates and x != name)
            return ((0 if name == "grounding" else 2),
                    f"only {name} failed ({others} passed): {first}")
    g = gates.get("grounding")
    if g and not g["passed"] and g["reasons"] and NO_EXPLANATION not in g["reasons"]:
        fact_r = [r for r in g["reasons"] if r.startswith(FACTS_PREFIX)]
        sentence_r = [r for r in g["reasons"] if not r.startswith(FACTS_PREFIX)]
        if fact_r and not sentence_r:
            return 1, f"grounding failed only on the teacher's facts_used: {fact_r[0]}"
        if sentence_r and facts_used and not fact_r:
            return 1, (f"every facts_used entry checked out, yet the sentence failed "
                       f"grounding: {sentence_r[0]}")
    return None


def _low_confidence(row: dict[str, Any], gates: dict[str, dict[str, Any]],
                    near_miss: float) -> tuple[float, str] | None:
    """(severity, detail): parse problems first (-1), then near misses by 1 - score."""
    call = loads_obj(row.get("metadata")).get("call", {})
    if isinstance(call, dict) and call.get("finish_reason") == "length":
        return -1.0, "the teacher hit max tokens (finish_reason length): output may be cut"
    if _has_text(row.get("parse_error")):
        return -1.0, f"parse problem: {row['parse_error']}"
    parsed = row.get("parsed")
    if parsed is not None and not (isinstance(parsed, float) and math.isnan(parsed)) \
            and not bool(parsed):
        return -1.0, "parse problem: the output did not parse (text recovered)"
    near = [(gates[g]["score"], g) for g in GATES
            if g in gates and not gates[g]["passed"] and not math.isnan(gates[g]["score"])
            and gates[g]["score"] >= near_miss]
    if near:
        score, name = max(near)
        first = gates[name]["reasons"][0] if gates[name]["reasons"] else ""
        return 1.0 - score, f"{name} failed narrowly (score {score:.2f}): {first}"
    return None


def _facts(value: Any) -> list[str]:
    if isinstance(value, str):  # a JSON list, or one bare fact
        return [str(v) for v in loads_json(value, [value], expect=list)]
    return [str(v) for v in loads_json(value, [])]


def boundary_margins(df: pd.DataFrame, embeddings: Any | None) -> tuple[np.ndarray, np.ndarray]:
    """(margin, runner-up cluster) per row (`curation.cluster.margins`, centroids from
    kept rows); the `cluster_margin` / `cluster_runner_up` columns when df has them."""
    n = len(df)
    if "cluster_margin" in df.columns:
        runner = (df["cluster_runner_up"].to_numpy() if "cluster_runner_up" in df.columns
                  else np.full(n, NOISE))
        return df["cluster_margin"].to_numpy(dtype=np.float64), runner
    if embeddings is None or "cluster" not in df.columns:
        return np.full(n, np.nan), np.full(n, NOISE)
    x = np.asarray(embeddings, dtype=np.float32)
    if len(x) != n:
        raise ValueError(f"embeddings have {len(x)} rows, the frame has {n}")
    kept = df["kept"].to_numpy(dtype=bool) if "kept" in df.columns else None
    return margins(x, df["cluster"].to_numpy(), kept)


def review_flags(df: pd.DataFrame, embeddings: Any | None = None, *, near_miss: float = NEAR_MISS,
                 boundary_quantile: float = BOUNDARY_QUANTILE,
                 text_column: str = "explanation") -> pd.DataFrame:
    """One row per df row (same index): eligible, each reason's flag + severity + detail,
    cluster_margin. Severity: lower = label sooner."""
    rows = df.to_dict("records")
    n = len(rows)
    kept = df["kept"].to_numpy(dtype=bool) if "kept" in df.columns else np.ones(n, dtype=bool)
    eligible = kept & np.array([_has_text(r.get(text_column)) for r in rows], dtype=bool)
    out = {k: [] for k in ("disagree_sev", "disagree_detail", "lowconf_sev", "lowconf_detail")}
    for r in rows:
        gates = _gates(r)
        d = _disagreement(gates, _facts(r.get("facts_used")))
        out["disagree_sev"].append(np.nan if d is None else float(d[0]))
        out["disagree_detail"].append(None if d is None else d[1])
        lc = _low_confidence(r, gates, near_miss)
        out["lowconf_sev"].append(np.nan if lc is None else float(lc[0]))
        out["lowconf_detail"].append(None if lc is None else lc[1])
    margin, runner = boundary_margins(df, embeddings)
    ok = eligible & ~np.isnan(margin)
    cut = np.quantile(margin[ok], boundary_quantile) if ok.any() else -np.inf
    boundary = ok & (margin <= cut)
    labels = (dict(zip(df["cluster"].tolist(), df["cluster_label"].tolist()))
              if {"cluster", "cluster_label"} <= set(df.columns) else {})
    own = df["cluster"].tolist() if "cluster" in df.columns else [NOISE] * n
    detail = [f"margin {m:.3f} between cluster {c} ({labels.get(c, '')}) and cluster {o} "
              f"({labels.get(o, '')})" if b else None
              for b, m, c, o in zip(boundary, margin, own, runner.tolist())]
    flags = pd.DataFrame({
        "eligible": eligible,
        "gate_disagreement": ~np.isnan(np.array(out["disagree_sev"], dtype=float)) & eligible,
        "disagree_sev": out["disagree_sev"], "disagree_detail": out["disagree_detail"],
        "low_confidence": ~np.isnan(np.array(out["lowconf_sev"], dtype=float)) & eligible,
        "lowconf_sev": out["lowconf_sev"], "lowconf_detail": out["lowconf_detail"],
        "cluster_boundary": boundary, "cluster_margin": margin, "boundary_detail": detail,
    }, index=df.index)
    return flags


# ============================================================================ quotas


def cluster_quotas(sizes: dict[int, int], budget: int, covered: set[int] = frozenset(),
                   ) -> dict[int, int]:
    """Split `budget` over clusters: 1 each (uncovered, then largest first, when the budget
    is short), the rest proportional to size by largest remainder, never above a size."""
    quotas = {c: 0 for c in sizes}
    if budget <= 0 or not sizes:
        return quotas
    order = sorted(sizes, key=lambda c: (c in covered, -sizes[c], c))
    for c in order[:budget]:
        if sizes[c] > 0:
            quotas[c] = 1
    left = budget - sum(quotas.values())
    while left > 0:
        room = {c: sizes[c] - quotas[c] for c in sizes if sizes[c] > quotas[c]}
        if not room:
            break
        total = sum(sizes[c] for c in room)
        exact = {c: left * sizes[c] / total for c in room}
        add = {c: min(room[c], int(math.floor(exact[c]))) for c in room}
        rest = left - sum(add.values())
        for c in sorted(room, key=lambda c: (-(exact[c] - math.floor(exact[c])), -sizes[c], c)):
            if rest <= 0:
                break
            if add[c] < room[c]:
                add[c] += 1
                rest -= 1
        if not any(add.values()):
            break
        for c, a in add.items():
            quotas[c] += a
        left = budget - sum(quotas.values())
    return quotas


# ============================================================================ sample


FLAGGED = ("gate_disagreement", "low_confidence", "cluster_boundary")
_SEVERITY = {"gate_disagreement": ("disagree_sev", "disagree_detail"),
             "low_confidence": ("lowconf_sev", "lowconf_detail"),
             "cluster_boundary": ("cluster_margin", "boundary_detail")}


def _round_robin(flags: pd.DataFrame, pos: np.ndarray, tiebreak: np.ndarray, k: int,
                 taken: set[int]) -> list[tuple[int, int, int, str, str]]:
    """Up to k rows among `pos` (not in `taken`), alternating reasons: the best row of each
    flagged reason, then the second best of each, ... (round, reason rank, position,
    reason, detail). A row flagged for several reasons is taken once, by the first list
    that reaches it."""
    lists = []
    for reason in FLAGGED:
        sev, det = _SEVERITY[reason]
        rows = [p for p in pos if flags.at[p, reason]]
        rows.sort(key=lambda p: (flags.at[p, sev], tiebreak[p], p))
        lists.append((reason, det, rows))
    picked: list[tuple[int, int, int, str, str]] = []
    cursor = [0] * len(lists)
    rnd = 0
    while len(picked) < k and any(cursor[i] < len(lists[i][2]) for i in range(len(lists))):
        for i, (reason, det, rows) in enumerate(lists):
            if len(picked) >= k:
                break
            while cursor[i] < len(rows) and int(rows[cursor[i]]) in taken:
                cursor[i] += 1
            if cursor[i] < len(rows):
                p = int(rows[cursor[i]])
                taken.add(p)
                picked.append((rnd, i, p, reason, flags.at[p, det]))
                cursor[i] += 1
        rnd += 1
    return picked


def review_sample(df: pd.DataFrame, config: Any, embeddings: Any | None = None, *,
                  near_miss: float = NEAR_MISS,
                  boundary_quantile: float = BOUNDARY_QUANTILE) -> pd.DataFrame:
    """The rows to label first (see the module docstring), SAMPLE_COLUMNS, by priority.

    config: anything with sample_size, control_share and seed (CurateConfig).
    embeddings: rows aligned with df (for cluster margins); optional when df has a
    `cluster_margin` column or boundary rows are not wanted.
    """
    size, share, seed = int(config.sample_size), float(config.control_share), int(config.seed)
    if not 0 <= share <= 1:
        raise ValueError(f"control_share must be in [0, 1], got {share}")
    frame = df.reset_index(drop=True)
    flags = review_flags(frame, embeddings, near_miss=near_miss,
                         boundary_quantile=boundary_quantile,
                         text_column=getattr(config, "text_column", "explanation"))
    pool = np.flatnonzero(flags["eligible"].to_numpy())
    size = min(max(size, 0), len(pool))
    rng = np.random.default_rng(seed)
    tiebreak = np.empty(len(frame))
    tiebreak[:] = rng.permutation(len(frame)) if len(frame) else []
    clusters = (frame["cluster"].astype(int).to_numpy() if "cluster" in frame.columns
                else np.zeros(len(frame), dtype=int))

    n_control = int(round(share * size))
    if share > 0 and n_control == 0 and size >= 2:
        n_control = 1
    control = (np.sort(rng.choice(pool, n_control, replace=False)) if n_control
               else np.zeros(0, dtype=int))
    chosen: dict[int, tuple[str, str]] = {int(p): ("control", "random control slice")
                                          for p in control}
    rest = np.setdiff1d(pool, control)
    sizes = {int(c): int((clusters[rest] == c).sum()) for c in np.unique(clusters[pool])}
    quotas = cluster_quotas(sizes, size - n_control, covered=set(clusters[control].tolist()))

    taken = set(chosen)
    order_key: dict[int, tuple] = {}
    leftover = 0
    for c in sorted(quotas):
        members = rest[clusters[rest] == c]
        picked = _round_robin(flags, members, tiebreak, quotas[c], taken)
        for rnd, rank, p, reason, detail in picked:
            chosen[p], order_key[p] = (reason, detail), (rnd, rank)
        need = quotas[c] - len(picked)
        free = sorted((tiebreak[p], int(p)) for p in members if int(p) not in taken)[:need]
        for i, (_, p) in enumerate(free):
            taken.add(p)
            chosen[p] = ("cluster_coverage",
                         f"fills cluster {c}'s quota ({sizes[c]} eligible rows)")
            order_key[p] = (len(picked) + i, len(FLAGGED))
        leftover += need - len(free)
    if leftover > 0:  # clusters too small for their quota: best flagged rows anywhere
        picked = _round_robin(flags, rest, tiebreak, leftover, taken)
        for rnd, rank, p, reason, detail in picked:
            chosen[p], order_key[p] = (reason, detail), (rnd, rank)
        free = sorted((tiebreak[p], int(p)) for p in rest if int(p) not in taken)
        for i, (_, p) in enumerate(free[:leftover - len(picked)]):
            taken.add(p)
            chosen[p] = ("cluster_coverage", "fills the sample size")
            order_key[p] = (10**6 + i, len(FLAGGED))

    return _finish(frame, flags, chosen, order_key, tiebreak)


def _finish(frame: pd.DataFrame, flags: pd.DataFrame, chosen: dict[int, tuple[str, str]],
            order_key: dict[int, tuple], tiebreak: np.ndarray) -> pd.DataFrame:
    targeted = sorted((p for p, (r, _) in chosen.items() if r != "control"),
                      key=lambda p: (*order_key[p], tiebreak[p], p))
    control = sorted((p for p, (r, _) in chosen.items() if r == "control"),
                     key=lambda p: (tiebreak[p], p))
    # control rows spread evenly through the queue
    slots = [((i + 0.5) / len(targeted), 0, p) for i, p in enumerate(targeted)]
    slots += [((j + 0.5) / len(control), 1, p) for j, p in enumerate(control)]
    order = [p for *_, p in sorted(slots)]
    out = frame.iloc[order].copy() if order else frame.iloc[0:0].copy()
    out["review_priority"] = np.arange(1, len(order) + 1)
    out["sample_reason"] = [chosen[p][0] for p in order]
    out["reason_detail"] = [chosen[p][1] for p in order]
    out["all_reasons"] = [",".join(r for r in ("gate_disagreement", "low_confidence",
                                                "cluster_boundary") if flags.at[p, r])
                          for p in order]
    out["cluster_margin"] = [float(flags.at[p, "cluster_margin"]) for p in order]
    if "item_title" not in out.columns:
        out["item_title"] = item_titles(out)
    if "cluster" not in out.columns:
        out["cluster"] = 0
    if "cluster_label" not in out.columns:
        out["cluster_label"] = [NOISE_LABEL if c == NOISE else "" for c in out["cluster"]]
    for col in SAMPLE_COLUMNS:
        if col not in out.columns:
            out[col] = np.nan if col in ("x", "y") else None
    return out[list(SAMPLE_COLUMNS)].reset_index(drop=True)


def reason_counts(sample: pd.DataFrame) -> dict[str, int]:
    """{reason: rows} in REASONS order (zeros included)."""
    counts = sample["sample_reason"].value_counts() if len(sample) else {}
    return {r: int(counts.get(r, 0)) for r in REASONS}
