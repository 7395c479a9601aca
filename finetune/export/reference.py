"""The gate's prompts and the merged HF model's greedy generations on them."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from finetune.export.common import offline_env

DEFAULT_MAX_NEW_TOKENS = 64


# Short prompts that an instruction model answers in a few tokens, so the stop check has
# something to check even on an untuned base model (whose answers to the golden prompts
# often run past a short budget).
STOP_PROBE_PROMPTS: tuple[tuple[str, str], ...] = (
    ("You are a helpful assistant.", "What is the capital of France? Answer in one word."),
    ("You are a helpful assistant.", "Say hello."),
)


def golden_prompts(golden_path: str | Path | None = None, template_path: str | Path | None = None
                   ) -> list[list[dict[str, str]]]:
    """The editors' golden examples as zero-shot [system, user] prompts (the SFT prompt format)."""
    from finetune.data import golden_example_rows

    return [row["messages"][:2] for row in golden_example_rows(golden_path, template_path)]


def stop_probe_prompts() -> list[list[dict[str, str]]]:
    return [[{"role": "system", "content": s}, {"role": "user", "content": u}] for s, u in STOP_PROBE_PROMPTS]


def gate_prompts() -> list[list[dict[str, str]]]:
    """Golden prompts + the short stop probes."""
    return golden_prompts() + stop_probe_prompts()


# ---------------------------------------------------------------- HF reference

@dataclass
class HFGeneration:
    prompt_ids: list[int]
    token_ids: list[int]  # greedy continuation; ends with an EOS id when the model stopped
    text: str  # decoded without special tokens
    stopped: bool  # ended with EOS within max_new_tokens
    margins: list[float]  # top-1 minus top-2 logit at each generated position


@dataclass
class HFReference:
    model_dir: str
    max_new_tokens: int
    eos_ids: list[int]
    generations: list[HFGeneration]
    seconds: float
    prompts: list[list[dict[str, str]]] = field(default_factory=list)


def hf_reference(merged_dir: str | Path, prompts: Sequence[Sequence[Mapping[str, str]]], *,
                 max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, num_threads: int | None = 1) -> HFReference:
    """Greedy generations of the merged HF model (float32) on the prompts."""
    offline_env()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    t0 = time.monotonic()
    before = torch.get_num_threads()
    if num_threads:
        torch.set_num_threads(num_threads)  # on 2 shared cores 1 thread gave steadier timings
    try:
        tok = AutoTokenizer.from_pretrained(str(merged_dir))
        model = AutoModelForCausalLM.from_pretrained(str(merged_dir), dtype=torch.float32).eval()
        eos = model.generation_config.eos_token_id
        eos_ids = sorted({int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos]) if e is not None}
                         | ({int(tok.eos_token_id)} if tok.eos_token_id is not None else set()))
        pad = model.generation_config.pad_token_id
        pad = pad if pad is not None else eos_ids[0]
        gens = []
        for msgs in prompts:
            enc = tok.apply_chat_template(list(msgs), add_generation_prompt=True, return_tensors="pt",
                                          return_dict=True)
            with torch.no_grad():
                out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=eos_ids,
                                     pad_token_id=pad, output_scores=True, return_dict_in_generate=True)
            prompt_ids = enc["input_ids"][0].tolist()
            new = out.sequences[0, len(prompt_ids):].tolist()
            margins = []
            for step_scores in out.scores:
                top = torch.topk(step_scores[0].float(), 2).values
                margins.append(round(float(top[0] - top[1]), 4))
            stopped = bool(new) and new[-1] in eos_ids
            text = tok.decode(new[:-1] if stopped else new, skip_special_tokens=True)
            gens.append(HFGeneration(prompt_ids, new, text, stopped, margins))
    finally:
        torch.set_num_threads(before)
    return HFReference(str(merged_dir), max_new_tokens, eos_ids, gens, round(time.monotonic() - t0, 1),
                       [[dict(m) for m in msgs] for msgs in prompts])
