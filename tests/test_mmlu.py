"""MMLU guardrail: offline subset loading, the letter-logit scorer, paired compare.

SmolLM2-135M scores near chance on MMLU (~25-30%; 24% on the n=100 seed-0
subset), so these tests check mechanics (well-formed output, CI contains the
point estimate, predictions equal a hand-computed argmax), not a score bar.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from finetune import mmlu  # noqa: E402


# --------------------------------------------------------------------------- data

def test_subjects_offline():
    subjects = mmlu.all_subjects()
    assert len(subjects) == 57
    assert "abstract_algebra" in subjects and "world_religions" in subjects


def test_subset_deterministic_stratified_wellformed():
    a = mmlu.load_mmlu(n=200, seed=0)
    b = mmlu.load_mmlu(n=200, seed=0)
    c = mmlu.load_mmlu(n=200, seed=1)
    assert a == b
    assert [q["id"] for q in a] != [q["id"] for q in c]
    assert len(a) == 200 and len({q["id"] for q in a}) == 200
    counts = Counter(q["subject"] for q in a)
    assert len(counts) == 57  # every subject represented
    assert set(counts.values()) <= {200 // 57, 200 // 57 + 1}  # 3 or 4 each
    for q in a:
        assert isinstance(q["question"], str) and q["question"].strip()
        assert len(q["choices"]) == 4 and all(isinstance(x, str) for x in q["choices"])
        assert q["answer"] in (0, 1, 2, 3)


def test_subset_subject_filter_and_small_n():
    qs = mmlu.load_mmlu(subjects=["astronomy", "virology"], n=10, seed=3)
    assert Counter(q["subject"] for q in qs) == {"astronomy": 5, "virology": 5}
    small = mmlu.load_mmlu(n=20, seed=0)
    assert len(small) == 20 and len({q["subject"] for q in small}) == 20  # one each


def test_prompt_format():
    q = {"subject": "high_school_physics", "question": "Q?", "choices": ["w", "x", "y", "z"], "answer": 0}
    assert mmlu.format_prompt(q) == (
        "The following is a multiple choice question about high school physics.\n\n"
        "Q?\nA. w\nB. x\nC. y\nD. z\nAnswer:")


def test_wilson():
    lo, hi = mmlu.wilson_ci(25, 100)
    assert 0.17 < lo < 0.18 and 0.34 < hi < 0.35
    assert mmlu.wilson_ci(0, 10)[0] == pytest.approx(0.0) and mmlu.wilson_ci(10, 10)[1] == pytest.approx(1.0)


# --------------------------------------------------------------------------- compare

def _res(correct, ids=None):
    ids = ids or [f"s/{i}" for i in range(len(correct))]
    preds = [{"id": i, "subject": "s", "answer": 0, "pred": 0 if c else 1, "correct": bool(c)}
             for i, c in zip(ids, correct)]
    return mmlu.summarize(preds)


def test_compare_identical_is_zero():
    r = _res([1, 0, 1, 1, 0, 0, 1, 0] * 5)
    out = mmlu.compare(r, r)
    assert out["delta"] == 0.0 and out["ci95"] == (0.0, 0.0) and out["b"] == out["c"] == 0


def test_compare_sign_and_pairing():
    before = [1, 0, 0, 1, 0, 0, 1, 0, 0, 0] * 6   # 30%
    after = [1, 1, 1, 1, 0, 1, 1, 0, 1, 0] * 6    # 70%, every change is 0 -> 1
    up = mmlu.compare(_res(before), _res(after))
    assert up["delta"] == pytest.approx(0.4) and up["c"] == 24 and up["b"] == 0
    assert 0 < up["ci95"][0] <= up["delta"] <= up["ci95"][1]
    assert up["ci95_mcnemar"][0] > 0
    down = mmlu.compare(_res(after), _res(before))
    assert down["delta"] == pytest.approx(-0.4) and down["ci95"][1] < 0
    # matched by id, not by position
    ids = [f"s/{i}" for i in range(len(after))]
    shuffled = mmlu.compare(_res(before, ids), _res(after[::-1], ids[::-1]))
    assert shuffled["delta"] == pytest.approx(0.4) and shuffled["ci95"] == up["ci95"]
    with pytest.raises(ValueError):
        mmlu.compare(_res([1, 0]), _res([1, 0, 1]))


# --------------------------------------------------------------------------- real model

@pytest.fixture(scope="module")
def base():
    return mmlu.load_base_model("float32")


def test_score_real_model_small(base):
    import torch

    model, tok = base
    qs = mmlu.load_mmlu(n=20, seed=0)
    t0 = time.monotonic()
    res = mmlu.score_mmlu(model, tok, qs, batch_size=8)
    assert time.monotonic() - t0 < 60
    assert res["n"] == 20 and 0.0 <= res["accuracy"] <= 1.0
    lo, hi = res["ci95"]
    assert lo <= res["accuracy"] <= hi
    assert sum(d["n"] for d in res["per_subject"].values()) == 20
    assert [p["id"] for p in res["predictions"]] == [q["id"] for q in qs]
    for p in res["predictions"]:
        assert p["pred"] in (0, 1, 2, 3) and p["correct"] == (p["pred"] == p["answer"])

    # hand check: the shortest prompt of the first batch (so it was right-padded there),
    # scored alone with no padding: same letter logits, same argmax.
    first = qs[:8]
    i = min(range(8), key=lambda j: len(tok.encode(mmlu.format_prompt(first[j]), add_special_tokens=False)))
    ids = tok(mmlu.format_prompt(first[i]), return_tensors="pt", add_special_tokens=False).input_ids
    with torch.inference_mode():
        logits = model(input_ids=ids).logits[0, -1]
    letters = [tok.convert_tokens_to_ids(t) for t in ("ĠA", "ĠB", "ĠC", "ĠD")]
    assert letters == mmlu.letter_token_ids(tok)
    four = logits[letters]
    assert int(torch.argmax(four)) == res["predictions"][i]["pred"]
    assert torch.allclose(four, torch.tensor(res["predictions"][i]["logits"]), atol=1e-3)


def test_correct_letter_probability_moves_when_accuracy_cannot():
    """A model that always answers "A" has the same accuracy before and after; the probability
    it gives the right letter still shows a loss of knowledge."""
    def res(right_logit):
        preds = [{"id": f"s/{i}", "subject": "s", "answer": 1, "pred": 0, "correct": False,
                  "logits": [5.0, right_logit, 0.0, 0.0]} for i in range(20)]
        return mmlu.summarize(preds)

    before, after = res(4.0), res(1.0)
    assert before["accuracy"] == after["accuracy"] == 0.0
    assert 0.25 < before["correct_prob"] < 0.3 and after["correct_prob"] < 0.02
    out = mmlu.compare(before, after)
    assert out["delta"] == 0.0
    cp = out["correct_prob"]
    assert cp["delta"] == pytest.approx(after["correct_prob"] - before["correct_prob"])
    assert cp["ci95"][1] < 0
    assert "correct_prob" not in mmlu.compare(_res([1, 0]), _res([0, 1]))  # no logits: not computed
