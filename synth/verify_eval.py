"""Rules alone vs rules + the teacher as verifier, on the grounding dev sets.

    python -m synth.verify_eval --split dev2 [--limit N] [--model qwen2.5-coder-1.5b-instruct]
                                [--threads 1] [--send unsure|all] [--selector-only] [--show N] [--json PATH]

Starts llama.cpp on 127.0.0.1 over the packaged teacher (or --base-url for a running
server), judges every row with `run_gates` (the rules), sends the grounding rows the rules
passed but are unsure of (synth.verify.unsure_reasons) to the verifier, and prints P/R per
class for both, how many rows went to the verifier and seconds per verified row (the
latency of the call that produced each answer, so a rerun from the cache still reports
the real cost). Only grounding-scored rows are sent: the verifier changes nothing else.
`--send all` sends every grounding row and adds the verifier's own P/R (what it would
catch where the rules miss); the combined table still changes only the rules' passes.

Splits: dev, dev2, holdout. holdout2 is refused: nobody but the lead opens it.
--limit N keeps the first N rows of the split (in file order).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any, Iterator

ALLOWED_SPLITS = ("dev", "dev2", "holdout")


@contextlib.contextmanager
def _endpoint(args: argparse.Namespace) -> Iterator[Any]:
    from linernotes import paths
    from synth.cache import model_identity
    from synth.verify import CachedChatEndpoint

    from linernotes.services.llamacpp import resolve, server

    if args.base_url:
        # A packaged teacher's name keys the cache on its file, as a server we start does,
        # so answers from a running server and from a started one are the same entries.
        gguf, served = resolve(args.model, args.model)
        identity = model_identity(gguf) if gguf.exists() else ""
        yield CachedChatEndpoint(args.base_url, served, paths.cache_db(), identity=identity,
                                 run_id="verify-eval")
        return

    srv = server(args.model, n_parallel=1, n_threads=args.threads, ctx_per_slot=2048)
    gguf = srv.cmd[srv.cmd.index("--model") + 1]
    print(f"starting llama.cpp ({args.model}, {args.threads} thread(s)) ...", flush=True)
    with srv:
        yield CachedChatEndpoint(srv.base_url + "/v1", srv.cmd[srv.cmd.index("--alias") + 1],
                                 paths.cache_db(), identity=model_identity(gguf), run_id="verify-eval")


def run(args: argparse.Namespace) -> dict[str, Any]:
    from linernotes import paths
    from linernotes.devset_eval import format_report, load_rows, resolve, score
    from linernotes.domain.gate_index import load_gate_index
    from linernotes.domain.gates import run_gates
    from synth.catalog.ingest import load_catalog
    from linernotes.records import GateResult
    from synth.verify import apply_verdict, unsure_reasons, verify_claims

    rows, problems = load_rows("grounding", args.split)
    for p in problems:
        print(f"skipped: {p}", file=sys.stderr)
    if args.limit:
        rows = rows[: args.limit]
    catalog_dir = paths.catalog_dir()
    catalog = load_catalog(catalog_dir)
    index = load_gate_index(catalog_dir)
    listeners = {lst.listener_id: lst for lst in catalog.listeners}
    cases, missing = resolve(rows, catalog.items, listeners)
    for p in missing:
        print(f"skipped: {p}", file=sys.stderr)

    rules: dict[str, dict] = {}
    sent: list[tuple[dict, Any, Any, Any]] = []
    for row, item, listener in cases:
        gates = run_gates(row["note"], row.get("facts_used") or [], item, listener, index)
        rules[row["id"]] = gates
        if row["gate"] != "grounding":
            continue
        unsure = unsure_reasons(row["note"], item, listener)
        if args.send == "all" or (gates["grounding"].passed and unsure):
            sent.append((row, item, listener, unsure))
    by_class: dict[str, int] = {}
    for row, *_ in sent:
        by_class[row["class"]] = by_class.get(row["class"], 0) + 1
    n_pass = sum(1 for r, *_ in cases if r["gate"] == "grounding" and rules[r["id"]]["grounding"].passed)
    print(f"{args.split}: {len(cases)} rows; rules pass {n_pass} grounding rows; "
          f"{len(sent)} {'grounding rows (--send all)' if args.send == 'all' else 'unsure'} -> verifier ({', '.join(f'{c} {n}' for c, n in sorted(by_class.items()))})",
          flush=True)

    verdicts: dict[str, Any] = {}
    wall = 0.0
    if not args.selector_only and sent:
        with _endpoint(args) as endpoint:
            start = time.perf_counter()
            for k, (row, item, listener, unsure) in enumerate(sent, start=1):
                v = verify_claims(row["note"], item, listener, endpoint)
                verdicts[row["id"]] = v
                flag = {"unsupported": "FLAG", "supported": "ok", "error": "ERR"}[v.status]
                lat = f"{v.latency_s:.1f}s" if v.latency_s is not None else "-"
                print(f"  [{k}/{len(sent)}] {row['id']} {row['class']:<20} {flag:<4} {lat}"
                      f"{' (cached)' if v.cached else ''}", flush=True)
            wall = time.perf_counter() - start

    def rules_judge(row, item, listener):
        return rules[row["id"]]

    def combined_judge(row, item, listener):
        gates = rules[row["id"]]
        v = verdicts.get(row["id"])
        return {**gates, "grounding": apply_verdict(gates["grounding"], v)} if v else gates

    rep_rules = score(cases, rules_judge, problems + missing)
    rep_both = score(cases, combined_judge, problems + missing)
    rep_alone = None
    if args.send == "all" and verdicts:
        # The verifier on its own, over every row it answered (an error counts as a pass):
        # what it would catch where the rules miss, and what it would flag falsely.
        alone_cases = [(r, i, lst) for r, i, lst, _ in sent if r["id"] in verdicts]
        passed = GateResult(passed=True, reasons=[], score=1.0)

        def alone_judge(row, item, listener):
            return {"grounding": apply_verdict(passed, verdicts[row["id"]])}

        rep_alone = score(alone_cases, alone_judge)
    quiet = args.split == "holdout" and args.show is None
    show = 0 if quiet else (args.show if args.show is not None else 10)
    print(format_report(f"grounding/{args.split}: rules alone", rep_rules, 0))
    print(format_report(f"grounding/{args.split}: rules + verifier", rep_both, 0))
    if rep_alone is not None:
        print(format_report(f"grounding/{args.split}: verifier alone (rows it answered)", rep_alone, 0))
    lats = [v.latency_s for v in verdicts.values() if v.latency_s is not None]
    errors = sum(1 for v in verdicts.values() if v.status == "error")
    flagged = [(r, verdicts[r["id"]]) for r, *_ in sent if r["id"] in verdicts
               and verdicts[r["id"]].status == "unsupported"]
    true_flags = sum(1 for r, _ in flagged if r["expect"] == "fail")
    print(f"verifier: {len(verdicts)} rows sent, {len(flagged)} flagged ({true_flags} on failing rows, "
          f"{len(flagged) - true_flags} on passing rows), {errors} errors; "
          f"{(sum(lats) / len(lats)) if lats else float('nan'):.1f} s per verified row (call latency), "
          f"wall {wall:.0f}s this run")
    if show:
        for row, item, listener, unsure in sent[: max(show, 0) * 10]:
            v = verdicts.get(row["id"])
            if v is None:
                continue
            wrong = (v.status == "unsupported") != (row["expect"] == "fail")
            if not wrong and not args.show_all:
                continue
            print(f"  [{row['id']}] {row['class']} expect {row['expect']} verifier {v.status}: {row['note']}")
            for c in v.checks:
                if not c.supported:
                    print(f"      s{c.n}: span {c.span!r} reason {c.reason!r}"
                          f"{' (ignored: ' + c.why_ignored + ')' if c.why_ignored else ''}")
            if v.error:
                print(f"      error: {v.error}")
    out = {"split": args.split, "limit": args.limit, "sent": len(sent), "sent_by_class": by_class,
           "flagged": len(flagged), "flagged_on_failing": true_flags, "errors": errors,
           "s_per_verified_row": (sum(lats) / len(lats)) if lats else None,
           "rules": rep_rules.to_dict(), "rules_plus_verifier": rep_both.to_dict(),
           "verifier_alone": rep_alone.to_dict() if rep_alone is not None else None}
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(out, indent=2, ensure_ascii=False), encoding="utf-8")
        print(f"wrote {args.json_path}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m synth.verify_eval", description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", default="dev2",
                    help="dev | dev2 | holdout (holdout2 is not opened here)")
    ap.add_argument("--limit", type=int, default=0, help="first N rows of the split (0: all)")
    ap.add_argument("--model", default="qwen2.5-coder-1.5b-instruct",
                    help="a packaged teacher name or a GGUF path (or the served name with --base-url)")
    ap.add_argument("--base-url", default="", help="a running OpenAI-compatible server instead of starting one")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--send", choices=("unsure", "all"), default="unsure",
                    help="unsure: the rules' unsure passes (the pipeline's rule); all: every grounding row "
                         "(measures the verifier alone; the combined table still only changes rules passes)")
    ap.add_argument("--selector-only", action="store_true", help="count the unsure rows; start no server")
    ap.add_argument("--show", type=int, default=None, help="print the verifier's mistakes (holdout: 0 unless given)")
    ap.add_argument("--show-all", action="store_true", help="with --show: every verified row, not only mistakes")
    ap.add_argument("--json", dest="json_path")
    args = ap.parse_args(argv)
    if args.split not in ALLOWED_SPLITS:
        print(f"error: split {args.split!r} is not one of {ALLOWED_SPLITS} (holdout2 is the lead's)", file=sys.stderr)
        return 2
    run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
