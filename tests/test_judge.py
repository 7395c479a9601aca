"""Pairwise judge: swap logic, forfeits, parsing and the call log, with stand-in judges."""

from __future__ import annotations

import json

from finetune import judge


def _standin_always_a(prompt: str) -> str:
    """Stand-in judge with pure position bias."""
    return '{"better": "A"}'


def _standin_prefers(word: str):
    """Stand-in judge that prefers whichever note contains `word`."""
    def call(prompt: str) -> str:
        a = prompt.split("NOTE A:\n")[1].split("\n\nNOTE B:")[0]
        return "A" if word in a else "B"
    return call


def test_position_bias_yields_ties(tmp_path):
    log = tmp_path / "judge.jsonl"
    res = judge.judge_sides(_standin_always_a, ["ctx"] * 6, ["good note"] * 6, ["bad note"] * 6,
                            ("tuned", "base"), log_path=log)
    assert res["tie"]["k"] == 6 and res["win"]["k"] == res["loss"]["k"] == 0
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(entries) == 12 and res["calls"] == 12
    assert {e["order"] for e in entries} == {"xy", "yx"}
    assert all("NOTE A:" in e["prompt"] and e["raw"] == '{"better": "A"}' for e in entries)


def test_consistent_preference_wins_and_forfeits():
    xs = ["great note", "plain note", None, None]
    ys = ["plain note", "great note", "plain note", None]
    res = judge.judge_sides(_standin_prefers("great"), ["c"] * 4, xs, ys, ("tuned", "teacher"))
    assert res["verdicts"] == ["x", "y", "y", "tie"]
    assert res["calls"] == 4  # forfeits make no call
    assert res["win"]["k"] == 1 and res["loss"]["k"] == 2 and res["tie"]["k"] == 1
    assert judge.judge_sides(_standin_prefers("great"), ["c"] * 4, xs, ys, ("a", "b"), n=2)["n"] == 2


def test_parse_answer():
    assert judge.parse_answer('{"better": "B"}') == "B"
    assert judge.parse_answer('{\n  "better": "A"\n ') == "A"  # cut off by max_tokens after the answer
    assert judge.parse_answer('{\n  "better": ') is None
    assert judge.parse_answer(" tie.") == "tie"
    assert judge.parse_answer("a") == "A"
    assert judge.parse_answer("Both are fine") is None and judge.parse_answer(None) is None
