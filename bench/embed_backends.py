"""Embedding backends measured on this machine: texts/s per backend (torch, onnx,
onnx-int8) and cosine agreement with torch, the numbers behind curation.embed.AUTO_BACKEND.

Texts: the real synth-run explanations when a run is around, topped up with templated
ones (curation.pairs' catalog x phrasings). No cache; rounds interleaved across
backends, best of --repeats.

    .venv/bin/python bench/embed_backends.py [--n 1000] [--batch-size 64] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import time

from curation.embed import BACKENDS, Embedder, backend_available
from curation.pairs import synthetic_explanations
from linernotes import paths


def measurement_texts(n: int = 1000, seed: int = 17) -> list[str]:
    """Explanation-like texts: the real synth-run explanations when a run is around,
    topped up with templated ones (curation.pairs' catalog x phrasings)."""
    texts: list[str] = []
    for run in sorted(paths.runs_dir().glob("synth-*/data/*.parquet")):
        import pandas as pd

        col = pd.read_parquet(run, columns=["explanation"])["explanation"]
        texts.extend(str(t) for t in col.dropna())
    texts = list(dict.fromkeys(texts))[:n]
    texts += synthetic_explanations(n - len(texts), seed=seed)
    return texts[:n]


def measure_backends(n: int = 1000, batch_size: int = 64, repeats: int = 3) -> dict:
    """texts/s per available backend (no cache; rounds interleaved across backends,
    best round kept, so a busy shared machine penalises all alike) and agreement with torch."""
    texts = measurement_texts(n)
    result: dict = {"n": len(texts), "batch_size": batch_size, "cpus": os.cpu_count(), "backends": {}}
    embedders = {}
    for backend in BACKENDS:
        ok, why = backend_available(backend)
        if not ok:
            result["backends"][backend] = {"available": False, "why": why}
            continue
        t0 = time.perf_counter()
        emb = Embedder(backend, batch_size=batch_size, use_cache=False)
        emb.encoder  # load (and export on first use)
        result["backends"][backend] = {"available": True, "load_s": round(time.perf_counter() - t0, 2)}
        emb.encode_uncached(texts[:64])  # warm-up
        embedders[backend] = emb
    best = {b: float("inf") for b in embedders}
    vecs = {}
    for _ in range(repeats):
        for backend, emb in embedders.items():
            t0 = time.perf_counter()
            vecs[backend] = emb.encode_uncached(texts)
            best[backend] = min(best[backend], time.perf_counter() - t0)
    for backend in embedders:
        row = result["backends"][backend]
        row["texts_per_s"] = round(len(texts) / best[backend], 1)
        if backend != "torch" and "torch" in vecs:
            cos = (vecs[backend] * vecs["torch"]).sum(axis=1)
            row.update(cos_mean=round(float(cos.mean()), 5), cos_min=round(float(cos.min()), 5))
    return result


def main(argv: list[str] | None = None) -> None:
    paths.use_offline_hub()
    p = argparse.ArgumentParser(description="measure embedding backends on this machine")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args(argv)
    print(json.dumps(measure_backends(a.n, a.batch_size, a.repeats), indent=2))


if __name__ == "__main__":
    main()
