"""General-chat check: does the tuned student still answer ordinary prompts without looping?

50 hand-written general prompts (finetune/data/chat_prompts.yaml: how-to,
explain, short creative, advice, misc), greedy generations from base and tuned
with each model's chat template (`finetune.evaluate.generate`), then per
answer:

- distinct-2: unique word bigrams / bigrams (1.0: no bigram repeats);
- longest repeated run: the most consecutive back-to-back copies of any span
  of 1-20 words ("a b a b a b" -> 3);
- loop: some span of >= 3 words repeated >= 3 times in a row ("The Big Bang:
  In Your Mind: The Big Bang: In Your Mind: ..."), the failure a collapsed
  fine-tune shows; the loop rate over all prompts gets a Wilson CI;
- looks_like_json: the answer starts with "{" (the note format leaking into chat).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

from finetune.stats import rate

PROMPTS_FILE = Path(__file__).parent / "data" / "chat_prompts.yaml"
LOOP_MIN_SPAN = 3  # words
LOOP_MIN_REPEATS = 3
_WORD = re.compile(r"\w+(?:'\w+)?|[^\w\s]")


def load_prompts(path: str | Path | None = None, n: int | None = None) -> list[dict]:
    import yaml

    rows = yaml.safe_load(Path(path or PROMPTS_FILE).read_text())
    return rows[:n] if n is not None else rows


def words(text: str) -> list[str]:
    """Lower-cased words and punctuation marks (punctuation counts: loops repeat it too)."""
    return [w.lower() for w in _WORD.findall(text or "")]


def distinct_2(text: str) -> float | None:
    toks = words(text)
    grams = list(zip(toks, toks[1:]))
    return round(len(set(grams)) / len(grams), 4) if grams else None


def longest_repeat(tokens: Sequence[str], max_span: int = 20) -> tuple[int, int]:
    """(repeats, span): the largest number of back-to-back copies of one span, and that span's length.

    Ties on repeats go to the longer span. A text with no adjacent repeat is (1, 0)."""
    best = (1, 0)
    n = len(tokens)
    for span in range(1, min(max_span, n // 2) + 1):
        for start in range(0, n - 2 * span + 1):
            reps = 1
            while start + (reps + 1) * span <= n and \
                    tokens[start + reps * span:start + (reps + 1) * span] == tokens[start:start + span]:
                reps += 1
            if reps > 1 and (reps, span) > best:
                best = (reps, span)
    return best


def has_loop(text: str, min_span: int = LOOP_MIN_SPAN, min_repeats: int = LOOP_MIN_REPEATS) -> bool:
    """True when some span of >= min_span words appears >= min_repeats times back to back."""
    toks = words(text)
    n = len(toks)
    for span in range(min_span, n // min_repeats + 1):
        for start in range(0, n - min_repeats * span + 1):
            unit = toks[start:start + span]
            if all(toks[start + r * span:start + (r + 1) * span] == unit for r in range(1, min_repeats)):
                return True
    return False


def text_metrics(text: str) -> dict:
    toks = words(text)
    reps, span = longest_repeat(toks)
    return {"words": len(toks), "distinct_2": distinct_2(text), "longest_repeat": reps,
            "longest_repeat_span": span, "loop": has_loop(text),
            "looks_like_json": (text or "").lstrip().startswith("{")}


def summarize(outputs: Sequence[str]) -> dict:
    ms = [text_metrics(t) for t in outputs]
    d2 = [m["distinct_2"] for m in ms if m["distinct_2"] is not None]
    n = len(ms)
    return {"n": n, "loop": rate(sum(m["loop"] for m in ms), n),
            "json": rate(sum(m["looks_like_json"] for m in ms), n),
            "distinct_2_mean": round(sum(d2) / len(d2), 4) if d2 else None,
            "longest_repeat_max": max((m["longest_repeat"] for m in ms), default=0),
            "longest_repeat_mean": round(sum(m["longest_repeat"] for m in ms) / n, 3) if n else None,
            "words_mean": round(sum(m["words"] for m in ms) / n, 1) if n else None,
            "per_prompt": ms}


def run_chat_check(model, tokenizer, prompts: Sequence[dict], max_new_tokens: int, batch_size: int = 8) -> dict:
    """Greedy answers to the prompts (user turn only, the model's chat template) + their summary."""
    from finetune.generation import generate

    outputs = generate(model, tokenizer, [[{"role": "user", "content": p["prompt"]}] for p in prompts],
                       max_new_tokens, batch_size)
    return {"outputs": outputs, **summarize(outputs)}
