"""Chat check: the prompt file and the repetition metrics (no model needed)."""

from __future__ import annotations

from collections import Counter

from finetune import chat_check as cc


def test_prompt_file_has_50_varied_prompts():
    rows = cc.load_prompts()
    assert len(rows) == 50 and len({r["prompt"] for r in rows}) == 50
    kinds = Counter(r["kind"] for r in rows)
    assert set(kinds) >= {"howto", "explain", "creative", "advice"} and min(kinds.values()) >= 5
    assert cc.load_prompts(n=7) == rows[:7]


def test_loop_detector():
    looped = "The Big Bang: In Your Mind: The Big Bang: In Your Mind: The Big Bang: In Your Mind: The Big"
    assert cc.has_loop(looped)
    assert cc.has_loop("I like it a lot. I like it a lot. I like it a lot.")
    # twice is not a loop, nor is a short word stutter
    assert not cc.has_loop("I like it a lot. I like it a lot. Then I left.")
    assert not cc.has_loop("no no no no no, said the cat")
    assert not cc.has_loop("Boil water, add the egg, wait six minutes, then cool it in cold water.")
    assert not cc.has_loop("")


def test_repetition_metrics():
    assert cc.longest_repeat("a b a b a b c".split()) == (3, 2)
    assert cc.longest_repeat("x y z".split()) == (1, 0)
    assert cc.distinct_2("one two three") == 1.0
    assert cc.distinct_2("a b a b a b") == 0.4  # 5 bigrams, 2 unique
    s = cc.summarize(["a b c a b c a b c a b c", "A fine answer.", '{"explanation": "x"}'])
    assert s["n"] == 3 and s["loop"]["k"] == 1 and s["json"]["k"] == 1
    assert s["loop"]["ci95"][0] < 1 / 3 < s["loop"]["ci95"][1]
    assert s["longest_repeat_max"] == 4
