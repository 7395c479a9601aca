"""Scoring notes for the report card: parse, gates (read generically), rates with Wilson CIs.

A note is *accepted* when it parsed and every gate in `run_gates`'s verdict
passed; the gate names come from the verdict itself, so a new gate (e.g.
"usefulness") shows up in every table without a change here. An unparsable
answer fails every gate. Failure reasons are normalised (quoted text and
numbers masked) so that "12 words (max 30)" and "41 words (max 30)" count as
one reason in the per-gate breakdown.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter
from typing import Any, Sequence

from finetune.stats import rate

TOP_REASONS = 5


def score_outputs(outputs: Sequence[str | None], pairs: Sequence, index=None) -> list[dict[str, Any]]:
    from linernotes.domain.gates import run_gates
    from linernotes.domain.parsing import parse_explanation

    rows = []
    for text, pair in zip(outputs, pairs):
        parsed, error = parse_explanation(text or "")
        expl = parsed["explanation"] if parsed else None
        gates = run_gates(expl, parsed["facts_used"] if parsed else None, pair.item, pair.listener, index)
        passed = {k: bool(v.passed) for k, v in gates.items()}
        rows.append({"output": text, "parsed": parsed is not None, "parse_error": error, "explanation": expl,
                     "facts_used": parsed["facts_used"] if parsed else None, "gates": passed,
                     "accepted": parsed is not None and all(passed.values()),
                     **{f"{k}_passed": v for k, v in passed.items()},
                     "reasons": {k: list(v.reasons) for k, v in gates.items() if not v.passed}})
    return rows


def normalise_reason(reason: str) -> str:
    r = re.sub(r'"[^"]*"', '"…"', reason)
    r = re.sub(r"\[[^\]]*\]", "[…]", r)
    r = re.sub(r"\d+(?:\.\d+)?", "N", r)
    r = re.sub(r"(ALL-CAPS shouting): .*", r"\1", r)
    return r[:100]


def gate_names(rows: Sequence[dict[str, Any]]) -> list[str]:
    names: list[str] = []
    for r in rows:
        for k in r.get("gates", {}):
            if k not in names:
                names.append(k)
    return names


def _rate(rows, key) -> float:
    return round(sum(bool(r.get(key)) for r in rows) / len(rows), 4) if rows else 0.0


def summarize(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    from curation.diversity import distinct_n, normalise_sentence
    from linernotes.domain.gates import count_words

    n = len(rows)
    names = gate_names(rows)
    texts = [r["explanation"] for r in rows if r["explanation"]]
    lengths = [count_words(t) for t in texts]
    uniq = len({normalise_sentence(t) for t in texts})
    gates = {g: rate(sum(bool(r["gates"].get(g)) for r in rows), n) for g in names}
    failures = {}
    for g in names:
        c = Counter(normalise_reason(reason) for r in rows for reason in r["reasons"].get(g, []))
        failures[g] = [[reason, k] for reason, k in c.most_common(TOP_REASONS)]
    out = {
        "n": n,
        "accepted": rate(sum(bool(r["accepted"]) for r in rows), n),
        "parse": rate(sum(bool(r["parsed"]) for r in rows), n),
        "gates": gates,
        "failures": failures,
        # flat keys kept for readers of older reports (card, notebooks)
        "parse_rate": _rate(rows, "parsed"),
        **{f"{g}_pass": gates[g]["rate"] or 0.0 for g in names},
        "all_gates_pass": _rate(rows, "accepted"),
        "unique_sentence_ratio": round(uniq / len(texts), 4) if texts else None,
        "distinct_1": distinct_n(texts, 1),
        "distinct_2": distinct_n(texts, 2),
        "words": {"mean": round(statistics.mean(lengths), 2) if lengths else None,
                  "median": statistics.median(lengths) if lengths else None,
                  # nearest rank: the smallest length with at least 90% of notes at or below it
                  "p90": sorted(lengths)[math.ceil(0.9 * len(lengths)) - 1] if lengths else None,
                  "all": lengths},
    }
    return out


def by_type(rows: Sequence[dict[str, Any]], pairs: Sequence) -> dict[str, dict]:
    """Accepted-note rate per item type."""
    out: dict[str, list] = {}
    for r, p in zip(rows, pairs):
        out.setdefault(p.item.item_type, []).append(r)
    return {t: rate(sum(bool(r["accepted"]) for r in rs), len(rs)) for t, rs in out.items()}


def compare_rates(a: dict, b: dict, a_name: str, b_name: str, what: str = "accepted-note rate") -> dict:
    """a vs b on one rate ({k, n, rate, ci95} each): the difference, its Newcombe CI and a verdict."""
    from finetune.stats import diff_ci

    lo, hi = diff_ci(a["k"], a["n"], b["k"], b["n"])
    d = (a["rate"] or 0.0) - (b["rate"] or 0.0)
    pct = lambda r: f"{100 * r['rate']:.0f}% (95% CI {100 * r['ci95'][0]:.0f}-{100 * r['ci95'][1]:.0f}%, n={r['n']})"
    if lo > 0:
        call = f"{a_name} is better than {b_name}"
    elif hi < 0:
        call = f"{a_name} is worse than {b_name}"
    else:
        call = f"{a_name} and {b_name} cannot be told apart at this n"
    verdict = (f"{call[0].upper() + call[1:]}: {what} {pct(a)} vs {pct(b)}; difference {100 * d:+.0f} points "
               f"(95% CI {100 * lo:+.0f} to {100 * hi:+.0f}).")
    return {"a": a_name, "b": b_name, "metric": what, "a_rate": a, "b_rate": b, "diff": round(d, 4),
            "diff_ci95": [round(lo, 4), round(hi, 4)], "separated": bool(lo > 0 or hi < 0), "verdict": verdict}
