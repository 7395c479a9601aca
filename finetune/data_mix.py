"""Mix general chat rows (finetune.general_data) into the liner-note SFT rows.

`fraction` is the share of general rows in the FINAL training set: with n task
rows, g = round(n * fraction / (1 - fraction)) general rows are added (0.3 and
70 task rows -> 30 general). Trained on liner notes alone the 135M student
loses plain chat (it loops); a share of short plain answers keeps the habit of
answering and stopping. Only training rows are mixed: eval rows stay task rows,
so the eval loss still measures liner notes.

The general rows are drawn by seed and placed at seeded positions; the task
rows keep their relative order. `info` is what the manifest records.

Measured once (2026-12-04, 2 shared CPU cores, load 4-6): 30 LoRA steps of
recipes/finetune_cpu.yaml on the 18 editor golden rows, loop rate on 20 of the
chat-check prompts (greedy, 96 tokens): base 1/20, no mix 0/20, mix 0.3 1/20;
mean answer 72.5 / 67.7 / 46.6 words. So short runs do not show the looping and
the mix does not yet show a gain; chatterbot answers make chat answers shorter.
"""

from __future__ import annotations

import random
from typing import Any, Mapping, Sequence

DEFAULT_GENERAL_MIX = 0.0  # off unless the config asks (FinetuneConfig.general_mix)


def n_general_for(n_task: int, fraction: float) -> int:
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"general_mix must be in [0, 1), got {fraction}")
    return int(round(n_task * fraction / (1.0 - fraction)))


def mix_rows(task_rows: Sequence[Mapping[str, Any]], fraction: float, seed: int,
             tokenizer=None, max_length: int = 768,
             general=None) -> tuple[list[Mapping[str, Any]], dict[str, Any]]:
    """(mixed rows, info). `general`: a finetune.general_data.GeneralRows to draw from
    (default: loaded with the student's tokenizer and max_length)."""
    task_rows = list(task_rows)
    want = n_general_for(len(task_rows), fraction)
    if want == 0:
        return task_rows, {"fraction": fraction, "general_rows": 0, "task_rows": len(task_rows)}
    from finetune import general_data

    if general is None:
        general = general_data.load_general_rows(tokenizer, max_length)
    picked = general_data.sample_rows(general.rows, want, seed)
    rng = random.Random(f"{seed}:positions")
    slots = sorted(rng.sample(range(len(task_rows) + len(picked)), len(picked)))
    mixed: list[Mapping[str, Any]] = []
    task_iter, gen_iter, slot_set = iter(task_rows), iter(picked), set(slots)
    for pos in range(len(task_rows) + len(picked)):
        mixed.append(next(gen_iter) if pos in slot_set else next(task_iter))
    info = {"fraction": fraction, "requested": want, "general_rows": len(picked),
            "task_rows": len(task_rows), "achieved_fraction": round(len(picked) / len(mixed), 4),
            "seed": seed, "max_length": max_length, "source": general.source()}
    if len(picked) < want:  # fewer usable general rows than the fraction asks for
        info["shortfall"] = want - len(picked)
    return mixed, info


def mix_general_rows(train_rows: Sequence[Mapping[str, Any]], config, tokenizer=None
                     ) -> tuple[list[Mapping[str, Any]], dict[str, Any]]:
    """The training rows with `config.general_mix` of general chat rows mixed in
    (finetune.data_mix), and what was mixed, for the manifest's data.general_mix.
    Call on training rows only, after the eval split."""
    fraction = float(getattr(config, "general_mix", DEFAULT_GENERAL_MIX) or 0.0)
    if tokenizer is None and fraction > 0:
        from finetune.general_data import student_tokenizer

        tokenizer = student_tokenizer(getattr(config, "base_model", None))
    return mix_rows(train_rows, fraction, int(getattr(config, "seed", 0)), tokenizer,
                    int(getattr(config, "max_length", 768)))
