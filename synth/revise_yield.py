"""Yield of generate-check-revise on the ingested catalogs, with what n=1 would have kept.

    python -m synth.revise_yield --n-per-type 4 --seed 29 [--runs-dir DIR] [--force]

Runs (or reuses: the call cache) a synth run with n_candidates=2 and revise on and
prints its yield report, the pairs attempt 0 alone would have accepted (the n=1
baseline on the same pairs, same calls) and one line per revision attempt.
"""

from __future__ import annotations

import argparse
import json

from linernotes.config import SynthConfig
from synth import revise


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-per-type", type=int, default=4)
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--n-candidates", type=int, default=2)
    ap.add_argument("--max-revisions", type=int, default=1)
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--catalog-dir", default=None)
    ap.add_argument("--runs-dir", default=None)
    ap.add_argument("--force", action="store_true", help="redo a complete run (gates re-applied; calls cached)")
    args = ap.parse_args(argv)

    from synth.pipeline import load_records, run_synth

    cfg = SynthConfig(n_per_type=args.n_per_type, seed=args.seed, n_candidates=args.n_candidates,
                      revise=args.max_revisions > 0, max_revisions=max(args.max_revisions, 1),
                      concurrency=args.concurrency, catalog_dir=args.catalog_dir, runs_dir=args.runs_dir)
    run = run_synth(cfg, force=args.force, progress=False)
    manifest = run.manifest()
    records = load_records(run)
    attempt0 = sum(revise.accepted(r.metadata["candidates"][0]) for r in records)
    print(json.dumps({"run": run.name, "seed": args.seed, "accepted_by_attempt_0": attempt0,
                      "yield": manifest["yield"],
                      "cache": {k: manifest["cache"][k] for k in ("hit", "miss", "error")}}, indent=1))
    for r in records:
        for c in r.metadata["candidates"]:
            if c["kind"] == revise.REVISION:
                fails = sorted(k for k, g in c["gates"].items() if not g["passed"])
                print(f"revision {r.item.item_type}: accepted={c['passed']} failed={fails} "
                      f"{(c['explanation'] or '')[:90]!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
