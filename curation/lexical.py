"""Text keys and near-lexical candidates of the dedupe: normalisation (the exact
stage's key), shingles, MinHash signatures and LSH banding (moved out of
curation/dedupe.py, which re-exports every name)."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

LSH_BUCKET_CAP = 64  # LSH buckets bigger than this: each member meets the next 64 only


_QUOTES = "'\"`\u00b4\u2018\u2019\u201a\u201b\u201c\u201d\u201e\u201f\u00ab\u00bb\u2039\u203a"
_QUOTE_TABLE = str.maketrans("", "", _QUOTES)
_PUNCT_RE = re.compile(r"[^\w\s]|_")


def _as_text(t: Any) -> str:
    if t is None or (isinstance(t, float) and t != t):
        return ""
    return str(t)


def normalize_text(text: Any) -> str:
    """Key of the exact stage: NFKC, lowercase, quotes/apostrophes removed, other
    punctuation replaced by a space, whitespace collapsed."""
    t = unicodedata.normalize("NFKC", _as_text(text)).lower().translate(_QUOTE_TABLE)
    return " ".join(_PUNCT_RE.sub(" ", t).split())


def _parse_shingle(spec: str) -> tuple[str, int]:
    m = re.fullmatch(r"(word|char)(\d+)", spec.strip().lower())
    if not m or int(m.group(2)) < 1:
        raise ValueError(f"shingle {spec!r}: expected word<n> or char<n>, e.g. word3, char5")
    return m.group(1), int(m.group(2))


def shingles(norm: str, spec: str = "word3") -> list[str]:
    """Shingles of a normalised text; a text shorter than n gives one shingle (itself)."""
    kind, n = _parse_shingle(spec)
    if not norm:
        return []
    if kind == "word":
        toks = norm.split()
        if len(toks) <= n:
            return [" ".join(toks)]
        return list(dict.fromkeys(" ".join(toks[i:i + n]) for i in range(len(toks) - n + 1)))
    if len(norm) <= n:
        return [norm]
    return list(dict.fromkeys(norm[i:i + n] for i in range(len(norm) - n + 1)))


# --------------------------------------------------------------------------- MinHash


@lru_cache(maxsize=16)
def _permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from datasketch import MinHash

    a, b = MinHash(num_perm=num_perm, seed=seed).permutations  # affine32: odd a, uint32
    return np.asarray(a, dtype=np.uint32), np.asarray(b, dtype=np.uint32)


def shingle_hash32(values: Sequence[str]) -> np.ndarray:
    """Deterministic 32-bit hashes of strings (pandas' SipHash, vectorised)."""
    if not len(values):
        return np.zeros(0, dtype=np.uint32)
    h = pd.util.hash_array(np.asarray(values, dtype=object), categorize=False)
    return (h & np.uint64(0xFFFFFFFF)).astype(np.uint32)


def _hashfunc_for_datasketch(b: str) -> int:
    """The same per-shingle hash as `shingle_hash32`, for datasketch.MinHash(hashfunc=...)."""
    return int(shingle_hash32([b])[0])


EMPTY_HASH = np.uint32(0xFFFFFFFF)


def minhash_signatures(texts: Iterable[Any], shingle: str = "word3", num_perm: int = 128,
                       seed: int = 1, normalized: bool = False) -> np.ndarray:
    """(n, num_perm) uint32 MinHash signatures, identical to
    `datasketch.MinHash(num_perm, seed, hashfunc=_hashfunc_for_datasketch)` updated with
    `shingles(normalize_text(text))`, computed for all texts at once with numpy.
    Texts without shingles get all-0xFFFFFFFF (datasketch's empty value)."""
    from datasketch.minhash import _fmix

    norms = [(_as_text(t) if normalized else normalize_text(t)) for t in texts]
    sh = [shingles(t, shingle) for t in norms]
    n = len(sh)
    sig = np.full((n, num_perm), EMPTY_HASH, dtype=np.uint32)
    lens = np.fromiter((len(s) for s in sh), dtype=np.int64, count=n)
    if n == 0 or lens.sum() == 0:
        return sig
    flat = [x for s in sh for x in s]
    hv = _fmix(shingle_hash32(flat), 32)
    a, b = _permutations(num_perm, seed)
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    rows = np.flatnonzero(lens > 0)
    budget = max(1, 4_000_000 // num_perm)  # shingles per chunk (~16 MB of uint32 per 1M cells)
    i = 0
    with np.errstate(over="ignore"):
        while i < len(rows):
            j, total = i, 0
            while j < len(rows) and (total == 0 or total + lens[rows[j]] <= budget):
                total += lens[rows[j]]
                j += 1
            chunk = rows[i:j]
            s0 = starts[chunk[0]]
            s1 = starts[chunk[-1]] + lens[chunk[-1]]
            phv = hv[s0:s1, None] * a[None, :] + b[None, :]  # uint32 wraparound = mod 2^32
            sig[chunk] = np.minimum.reduceat(phv, starts[chunk] - s0, axis=0)
            i = j
    return sig


@lru_cache(maxsize=64)
def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) datasketch's MinHashLSH would pick for this threshold."""
    from datasketch.lsh import _optimal_param

    return tuple(int(x) for x in _optimal_param(threshold, num_perm, 0.5, 0.5))  # type: ignore[return-value]


def _pairs_within_runs(order: np.ndarray, run_id: np.ndarray, cap: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (order[p], order[p+d]) for 1 <= d <= cap where both are in the same run:
    all pairs of runs up to cap+1 long, a sliding window in longer ones."""
    if len(order) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    change = np.flatnonzero(np.diff(run_id)) + 1
    bounds = np.concatenate([[0], change, [len(run_id)]])
    longest = int(np.diff(bounds).max())
    ii, jj = [], []
    for d in range(1, min(cap, longest - 1) + 1):
        same = run_id[:-d] == run_id[d:]
        p = np.flatnonzero(same)
        if len(p):
            ii.append(order[p])
            jj.append(order[p + d])
    if not ii:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(ii).astype(np.int64), np.concatenate(jj).astype(np.int64)


def _unique_pairs(i: np.ndarray, j: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    keep = lo != hi
    code = np.unique(lo[keep].astype(np.int64) * n + hi[keep])
    return code // n, code % n


def lsh_candidates(sig: np.ndarray, threshold: float, blocks: np.ndarray | None = None,
                   valid: np.ndarray | None = None, cap: int = LSH_BUCKET_CAP) -> tuple[np.ndarray, np.ndarray]:
    """Candidate pairs (i < j) sharing at least one LSH band (banded for `threshold`),
    within the same block when `blocks` is given."""
    n, num_perm = sig.shape
    bands, rows = lsh_params(threshold, num_perm)
    idx = np.flatnonzero(valid) if valid is not None else np.arange(n)
    if len(idx) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    block_mix = (blocks[idx].astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) if blocks is not None else None
    ii, jj = [], []
    with np.errstate(over="ignore"):
        for band in range(bands):
            cols = sig[idx, band * rows:(band + 1) * rows].astype(np.uint64)
            key = np.full(len(idx), np.uint64(band + 1) * np.uint64(0xBF58476D1CE4E5B9), dtype=np.uint64)
            for c in range(rows):
                key = (key ^ cols[:, c]) * np.uint64(0x94D049BB133111EB)
                key ^= key >> np.uint64(29)
            if block_mix is not None:
                key ^= block_mix
            order = np.argsort(key, kind="stable")
            a, b = _pairs_within_runs(idx[order], key[order], cap)
            ii.append(a)
            jj.append(b)
    return _unique_pairs(np.concatenate(ii), np.concatenate(jj), n)


def jaccard_estimate(sig: np.ndarray, i: np.ndarray, j: np.ndarray, chunk: int = 200_000) -> np.ndarray:
    out = np.empty(len(i), dtype=np.float32)
    for s in range(0, len(i), chunk):
        out[s:s + chunk] = (sig[i[s:s + chunk]] == sig[j[s:s + chunk]]).mean(axis=1)
    return out
