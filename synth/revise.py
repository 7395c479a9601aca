"""Generate, check, revise: the gates choose among a pair's candidates.

A pair (item, listener) gets `n_candidates` teacher answers (candidate k is
attempt k, sampled with seed + k: synth.cache.attempt_sampling). Each is parsed
and gated; a candidate is accepted when it parsed and every gate in its verdict
passed (the gates dict is read generically: any gate key counts). With
`revise`, a pair with no accepted candidate goes back to the teacher with its
best failing candidate and the gates' reasons (linernotes.domain.revise_prompt),
for up to `max_revisions` rounds (round r is attempt n_candidates + r - 1).

Every attempt is recorded in the row's metadata (`candidates`: attempt,
kind, seed, raw output, parse result, gates, the call's cache record; a
revision also its prompt). The row itself carries the chosen attempt: the
accepted one (highest mean gate score, then fewest words, then first), else
the best failing one, so downstream stages see one row per pair as before.
"""

from __future__ import annotations

from typing import Any

FIRST = "candidate"
REVISION = "revision"


def gates_passed(gates: dict[str, Any]) -> bool:
    return bool(gates) and all(_passed(g) for g in gates.values())


def _passed(g: Any) -> bool:
    return bool(g["passed"] if isinstance(g, dict) else g.passed)


def _score(g: Any) -> float:
    s = g.get("score", 0.0) if isinstance(g, dict) else g.score
    return float(s if s is not None else 0.0)


def accepted(c: dict[str, Any]) -> bool:
    return bool(c.get("parsed")) and gates_passed(c.get("gates") or {})


def mean_score(c: dict[str, Any]) -> float:
    gates = c.get("gates") or {}
    return sum(_score(g) for g in gates.values()) / len(gates) if gates else 0.0


def _words(c: dict[str, Any]) -> int:
    return len((c.get("explanation") or "").split())


def choose(candidates: list[dict[str, Any]]) -> tuple[dict[str, Any], bool]:
    """(chosen attempt, accepted?). Deterministic: ties go to the lower attempt."""
    if not candidates:
        raise ValueError("a pair has no attempts")
    ok = [c for c in candidates if accepted(c)]
    if ok:
        return min(ok, key=lambda c: (-round(mean_score(c), 6), _words(c), c["attempt"])), True
    return best_failing(candidates), False


def best_failing(candidates: list[dict[str, Any]]) -> dict[str, Any]:
    """The failing attempt closest to passing: parsed, most gates passed, best score."""
    def rank(c):
        gates = (c.get("gates") or {}).values()
        return (not c.get("parsed"), -sum(_passed(g) for g in gates), -round(mean_score(c), 6),
                c["attempt"])
    return min(candidates, key=rank)


def problems(c: dict[str, Any]) -> list[tuple[str, str]]:
    """(gate, reason) for everything that failed, in gate order; the reasons are
    the gates' own text (quoted spans included)."""
    if not c.get("parsed"):
        return [("parse", c.get("parse_error") or "the answer was not valid JSON")]
    out = []
    for name, g in (c.get("gates") or {}).items():
        if _passed(g):
            continue
        reasons = (g.get("reasons") if isinstance(g, dict) else g.reasons) or ["failed"]
        out += [(name, str(r)) for r in reasons]
    return out


def previous_answer(c: dict[str, Any]) -> Any:
    """What the teacher sees of its attempt: the parsed answer, else its raw text."""
    if c.get("parsed"):
        return {"explanation": c.get("explanation"), "facts_used": c.get("facts_used") or []}
    return c.get("raw_output") or ""


# ------------------------------------------------------------------ the yield report

def _attempts_of(record: Any) -> list[dict[str, Any]]:
    """A record's attempts; a row written before candidates existed is its own one attempt."""
    cands = (record.metadata or {}).get("candidates")
    if cands:
        return cands
    return [{"attempt": 0, "kind": FIRST, "parsed": record.parsed,
             "gates": {k: g.model_dump() for k, g in record.gates.items()},
             "call": (record.metadata or {}).get("call") or {}}]


def yield_report(records: list[Any], wall_s: float | None = None) -> dict[str, Any]:
    """What the attempts bought: accepted notes per pair, first time vs after revision,
    tokens and seconds per accepted note, and which gates failed first-round candidates.
    Tokens and model seconds are those of the calls that made the data (stored with
    each cached call), so a rerun served from the cache reports the same cost;
    wall_s is this run's own pipeline time."""
    pairs = len(records)
    first_time = after_revision = revised_pairs = 0
    passing_first: list[int] = []
    attempts = {FIRST: 0, REVISION: 0}
    prompt_tokens = completion_tokens = 0
    model_s = 0.0
    gate_failures: dict[str, int] = {}
    first_round = 0
    for r in records:
        cands = _attempts_of(r)
        initial = [c for c in cands if c.get("kind", FIRST) == FIRST]
        revisions = [c for c in cands if c.get("kind") == REVISION]
        attempts[FIRST] += len(initial)
        attempts[REVISION] += len(revisions)
        revised_pairs += bool(revisions)
        passing_first.append(sum(accepted(c) for c in initial))
        if any(accepted(c) for c in initial):
            first_time += 1
        elif any(accepted(c) for c in revisions):
            after_revision += 1
        for c in cands:
            call = c.get("call") or {}
            prompt_tokens += call.get("input_tokens") or 0
            completion_tokens += call.get("output_tokens") or 0
            model_s += call.get("latency_s") or 0.0
        for c in initial:
            first_round += 1
            if not c.get("parsed"):
                gate_failures["parse"] = gate_failures.get("parse", 0) + 1
                continue
            for name, g in (c.get("gates") or {}).items():
                if not _passed(g):
                    gate_failures[name] = gate_failures.get(name, 0) + 1
    n_ok = first_time + after_revision
    per = (lambda x: round(x / n_ok, 3) if n_ok else None)
    return {
        "pairs": pairs,
        "accepted": n_ok,
        "accepted_per_pair": round(n_ok / pairs, 4) if pairs else 0.0,
        "accepted_first_time": first_time,
        "accepted_after_revision": after_revision,
        "revised_pairs": revised_pairs,
        "passing_candidates_per_pair": round(sum(passing_first) / pairs, 4) if pairs else 0.0,
        "attempts": attempts,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "tokens_per_accepted": per(prompt_tokens + completion_tokens),
        "model_s": round(model_s, 3),
        "model_s_per_accepted": per(model_s),
        "wall_s": round(wall_s, 3) if wall_s is not None else None,
        "wall_s_per_accepted": per(wall_s) if wall_s is not None else None,
        "first_round_candidates": first_round,
        # 'parse': the answer did not parse (then no gate is counted for it)
        "first_round_gate_failures": dict(sorted(gate_failures.items())),
    }


def format_yield(y: dict[str, Any]) -> str:
    fails = ", ".join(f"{k} {v}" for k, v in y["first_round_gate_failures"].items()) or "none"
    spent = y["prompt_tokens"] + y["completion_tokens"]
    if y["accepted"]:
        wall = f", {y['wall_s_per_accepted']} s wall" if y.get("wall_s_per_accepted") is not None else ""
        cost = (f"per accepted note: {y['tokens_per_accepted']} tokens (prompt+completion), "
                f"{y['model_s_per_accepted']} s model{wall}")
    else:
        wall = f", {y['wall_s']} s wall" if y.get("wall_s") is not None else ""
        cost = f"no note accepted; spent {spent} tokens (prompt+completion), {y['model_s']} s model{wall}"
    return (f"synth yield: {y['accepted']}/{y['pairs']} pairs accepted ({y['accepted_per_pair']:.0%}); "
            f"first time {y['accepted_first_time']}, after revision {y['accepted_after_revision']} "
            f"(revised {y['revised_pairs']}); attempts {y['attempts'][FIRST]} + "
            f"{y['attempts'][REVISION]} revisions\n"
            f"  {cost}\n"
            f"  first-round failures of {y['first_round_candidates']} candidates: {fails}")
