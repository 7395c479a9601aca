"""The export gate: a GGUF in llama.cpp against the merged HF model.

The export gate (`export_gate`) loads a GGUF in llama.cpp's server (xllamacpp)
and replays the golden prompts through the GGUF's *embedded* chat template:

  1. template: the prompt llama.cpp renders and tokenizes (/apply-template +
     /tokenize) must be token-for-token the HF tokenizer's
     `apply_chat_template(add_generation_prompt=True)`, and /v1/chat/completions
     must report the same prompt length. Exact, on every prompt.
  2. agreement: teacher-forced greedy next-token agreement with the merged HF
     model over HF's greedy continuation (EOS included): at each position, does
     llama.cpp's greedy token given the same prefix equal HF's? Free-running
     greedy text is compared too (exact match, common prefix) and reported, but
     not gated: one near-tie flip (measured: top-2 logits 0.09 apart) sends
     the rest of a free run elsewhere, while forced agreement counts that flip
     once. Thresholds in GATE_MIN_AGREEMENT.
  3. stops: where HF ended with EOS, llama.cpp must end there too (stop type
     "eos", no token after an EOS id); a free run that reproduced HF's text must
     finish with "stop", not "length"; no output may contain chat markers
     (<|im_start|>, <|im_end|>, role headers).

A failed gate raises ExportGateFailed; gate.json holds the report and the export
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from finetune.export.common import ExportGateFailed
from finetune.export.reference import DEFAULT_MAX_NEW_TOKENS, HFReference, gate_prompts, hf_reference

# Teacher-forced next-token agreement with the merged HF model that a GGUF must reach (see the
# module docstring). Measured on the 6 gate prompts: base SmolLM2 (uncertain, near-ties
# everywhere) Q8_0 0.95-0.96, Q4_0 0.85-0.87; a 16-step LoRA SFT Q8_0 0.985, Q4_0 0.89; BF16
# 1.000. Q8_0 re-quantizes bfloat16 weights to 8 bits per 32-weight block: only near-ties flip.
# Q4_0 (16 levels per block) moves logits far more, so its bar is lower. A wrong chat template
# fails the exact template check whatever the agreement.
GATE_MIN_AGREEMENT = {"F32": 0.98, "BF16": 0.98, "F16": 0.98, "Q8_0": 0.90, "Q5_0": 0.80, "Q5_1": 0.80,
                      "Q4_1": 0.75, "Q4_0": 0.75}
# Near-ties only: where llama.cpp disagrees, HF's own top-1 vs top-2 logit gap must be below this.
# 8-bit rounding moves logits by tenths (measured flips of the base model at gaps <= 0.26); a flip
# where HF was sure by more than a logit means a wrong weight, not rounding. Q4_0 flips at gaps up
# to ~4 (measured), so 4-bit types have no such bound.
GATE_MAX_FLIP_MARGIN = {"F32": 0.5, "BF16": 0.5, "F16": 0.5, "Q8_0": 1.0}


# Text that must never appear in a generation: chat-template tokens, or a role header that
# shows the model ran on past its end-of-turn into a new turn.
CHAT_MARKERS = ("<|im_start|>", "<|im_end|>", "<|endoftext|>", "[INST]", "[/INST]", "<s>", "</s>")
ROLE_HEADER = re.compile(r"(^|\n)(system|user|assistant)\n")


@dataclass
class PromptResult:
    index: int
    prompt_tokens_hf: int
    prompt_tokens_llama: int
    template_match: bool  # llama.cpp's rendered+tokenized prompt == HF's, token for token
    hf_text: str
    llama_text: str
    exact_match: bool  # free-run greedy texts equal
    common_prefix_chars: int
    prefix_share: float  # common prefix / length of the longer text
    hf_finish: str  # "stop" (EOS) | "length"
    llama_finish: str  # finish_reason of /v1/chat/completions
    forced_positions: int  # HF tokens compared teacher-forced (EOS included)
    forced_agreed: int
    forced_agreement: float
    first_divergence: int | None  # index into HF's tokens of the first forced disagreement
    divergence_margins: list[float]  # HF top-1 - top-2 logit where llama.cpp disagreed
    eos_agreed: bool | None  # HF stopped: llama.cpp predicted EOS at the same position
    problems: list[str] = field(default_factory=list)


@dataclass
class GateReport:
    gguf: str
    quant_type: str | None
    merged_dir: str
    max_new_tokens: int
    min_agreement: float
    max_flip_margin: float | None
    max_divergence_margin: float | None  # largest HF logit gap at a disagreement
    n_prompts: int
    template_matches: int
    exact_matches: int
    forced_positions: int
    forced_agreed: int
    agreement: float  # pooled teacher-forced next-token agreement
    mean_prompt_agreement: float
    exact_match_share: float
    mean_prefix_share: float
    hf_stopped: int  # prompts where HF ended with EOS within the budget
    llama_stopped: int  # prompts whose llama.cpp free run finished with "stop"
    eos_agreed: int  # of hf_stopped: llama.cpp predicted EOS at the same position
    passed: bool
    reasons: list[str]
    prompts: list[PromptResult]
    seconds: float
    llama_props: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False))
        os.replace(tmp, path)
        return path

    def summary(self) -> str:
        status = "PASSED" if self.passed else "FAILED"
        s = (f"gate {status} for {Path(self.gguf).name}: forced agreement {self.agreement:.3f} "
             f"(min {self.min_agreement}), template {self.template_matches}/{self.n_prompts}, "
             f"exact {self.exact_matches}/{self.n_prompts}, EOS {self.eos_agreed}/{self.hf_stopped}")
        if self.reasons:
            s += "; " + "; ".join(self.reasons[:5])
        return s


def _quant_type_of(path: Path) -> str | None:
    m = re.search(r"(F32|F16|BF16|Q\d_[01K](?:_[SML])?)", path.name, re.IGNORECASE)
    return m.group(1).upper() if m else None


def _markers_in(text: str) -> list[str]:
    found = [m for m in CHAT_MARKERS if m in text]
    if ROLE_HEADER.search(text):
        found.append("role header")
    return found


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def _forced_run(http, base_url: str, prompt_ids: list[int], hf_ids: list[int], eos_ids: set[int]
                ) -> tuple[int, list[int], bool | None, list[str]]:
    """Teacher-forced greedy agreement over hf_ids, with as few requests as there are
    disagreements: llama.cpp runs greedy from prompt + hf_ids[:pos]; its tokens agree with HF
    until the first mismatch; HF's token is then forced and the run resumes after it.
    Returns (agreed, mismatch positions, eos agreed or None, problems)."""
    agreed, mismatches, problems = 0, [], []
    eos_agreed: bool | None = None
    pos = 0
    while pos < len(hf_ids):
        remaining = len(hf_ids) - pos
        r = http.post(base_url + "/completion", json={
            "prompt": prompt_ids + hf_ids[:pos], "n_predict": remaining + 1,  # +1: see a run-on past EOS
            "temperature": 0.0, "top_k": 1, "n_probs": 1, "cache_prompt": True,
        })
        r.raise_for_status()
        data = r.json()
        gen = [int(p["id"]) for p in data.get("completion_probabilities", [])]
        for i, tid in enumerate(gen):
            if tid in eos_ids and (i < len(gen) - 1 or data.get("stop_type") != "eos"):
                problems.append(f"generation went on past EOS token {tid} (stop_type {data.get('stop_type')!r})")
                break
        if data.get("stop_type") == "eos" and gen and gen[-1] not in eos_ids:
            problems.append(f"llama.cpp ended generation on token {gen[-1]}, which is no EOS of the HF model "
                            f"{sorted(eos_ids)} (end-of-generation tokens differ)")
        k = 0
        while k < len(gen) and k < remaining and gen[k] == hf_ids[pos + k]:
            k += 1
        agreed += k
        pos += k
        if pos >= len(hf_ids):
            break
        # llama.cpp disagrees at pos (or stopped early, which is a disagreement too)
        mismatches.append(pos)
        pos += 1
    if hf_ids and hf_ids[-1] in eos_ids:
        eos_agreed = (len(hf_ids) - 1) not in mismatches
    return agreed, mismatches, eos_agreed, problems


def export_gate(gguf_path: str | Path, merged_dir: str | Path,
                prompts: Sequence[Sequence[Mapping[str, str]]] | None = None, *,
                min_agreement: float | None = None, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
                max_flip_margin: float | None = None,
                reference: HFReference | None = None, raise_on_fail: bool = True,
                report_path: str | Path | None = None, n_threads: int = 1) -> GateReport:
    """Replay the prompts through llama.cpp (the GGUF's embedded chat template) and the merged HF
    model; pass when every prompt renders to the same tokens, the teacher-forced greedy agreement
    is >= min_agreement (default: GATE_MIN_AGREEMENT for the file's type), every disagreement is a
    near-tie (HF logit gap < max_flip_margin, default GATE_MAX_FLIP_MARGIN; none for 4-bit; pass
    float("inf") to turn off), generations stop where
    they should and show no chat markers. Fails loudly (ExportGateFailed) unless raise_on_fail=False;
    the report is written to report_path when given, pass or fail."""
    import httpx
    from openai import OpenAI

    from linernotes.services.llamacpp import server

    t0 = time.monotonic()
    gguf_path = Path(gguf_path)
    prompts = [list(p) for p in (prompts if prompts is not None else gate_prompts())]
    qtype = _quant_type_of(gguf_path)
    if min_agreement is None:
        min_agreement = GATE_MIN_AGREEMENT.get(qtype or "", GATE_MIN_AGREEMENT["Q4_0"])
    if max_flip_margin is None:
        max_flip_margin = GATE_MAX_FLIP_MARGIN.get(qtype or "", float("inf"))
    if reference is None or reference.max_new_tokens != max_new_tokens or \
            reference.prompts != [[dict(m) for m in msgs] for msgs in prompts]:  # not for these prompts
        reference = hf_reference(merged_dir, prompts, max_new_tokens=max_new_tokens)
    eos_ids = set(reference.eos_ids)

    results: list[PromptResult] = []
    reasons: list[str] = []
    props: dict[str, Any] = {}
    srv = server(gguf_path, n_parallel=1, n_threads=n_threads, ctx_per_slot=4096, model_name="export-gate")
    with srv, httpx.Client(timeout=300.0) as http:
        try:
            p = http.get(srv.base_url + "/props").json()
            props = {k: p.get(k) for k in ("chat_template", "bos_token", "eos_token", "model_path")}
        except (httpx.HTTPError, ValueError):
            pass
        client = OpenAI(base_url=srv.base_url + "/v1", api_key="none", max_retries=0, timeout=300.0)
        for i, (msgs, ref) in enumerate(zip(prompts, reference.generations)):
            problems: list[str] = []
            rendered = http.post(srv.base_url + "/apply-template", json={"messages": msgs}).json()["prompt"]
            llama_prompt = http.post(srv.base_url + "/tokenize", json={
                "content": rendered, "add_special": True, "parse_special": True}).json()["tokens"]
            template_match = llama_prompt == ref.prompt_ids
            if not template_match:
                problems.append(f"prompt renders to {len(llama_prompt)} tokens in llama.cpp vs "
                                f"{len(ref.prompt_ids)} in HF (chat template or tokenizer differs)")
            chat = client.chat.completions.create(model="export-gate", messages=msgs, temperature=0.0,
                                                  max_tokens=max_new_tokens, seed=0)
            choice = chat.choices[0]
            llama_text = choice.message.content or ""
            llama_finish = choice.finish_reason or ""
            if chat.usage and chat.usage.prompt_tokens != len(llama_prompt):
                problems.append(f"chat endpoint used a {chat.usage.prompt_tokens}-token prompt, "
                                f"/apply-template gives {len(llama_prompt)}")
                template_match = False
            agreed, mismatches, eos_ok, forced_problems = _forced_run(
                http, srv.base_url, llama_prompt, ref.token_ids, eos_ids)
            problems += forced_problems
            problems = list(dict.fromkeys(problems))  # one line per distinct problem
            markers = _markers_in(llama_text)
            if markers:
                problems.append(f"chat markers in the output: {markers}")
            exact = llama_text == ref.text
            if exact and ref.stopped and llama_finish != "stop":
                problems.append(f"same text as HF but finish_reason {llama_finish!r}, not 'stop' (run-on)")
            cp = _common_prefix(llama_text, ref.text)
            n = len(ref.token_ids)
            results.append(PromptResult(
                index=i, prompt_tokens_hf=len(ref.prompt_ids), prompt_tokens_llama=len(llama_prompt),
                template_match=template_match, hf_text=ref.text, llama_text=llama_text, exact_match=exact,
                common_prefix_chars=cp, prefix_share=round(cp / max(len(llama_text), len(ref.text), 1), 4),
                hf_finish="stop" if ref.stopped else "length", llama_finish=llama_finish,
                forced_positions=n, forced_agreed=agreed, forced_agreement=round(agreed / n, 4) if n else 1.0,
                first_divergence=mismatches[0] if mismatches else None,
                divergence_margins=[ref.margins[m] for m in mismatches if m < len(ref.margins)],
                eos_agreed=eos_ok, problems=problems))

    total = sum(r.forced_positions for r in results)
    agreed_total = sum(r.forced_agreed for r in results)
    agreement = agreed_total / total if total else 0.0
    n_template = sum(r.template_match for r in results)
    if n_template < len(results):
        reasons.append(f"chat template: {len(results) - n_template}/{len(results)} prompts render differently "
                       "in llama.cpp than in the HF tokenizer")
    if agreement < min_agreement:
        reasons.append(f"teacher-forced agreement {agreement:.3f} < {min_agreement}")
    flips = [(r.index, m) for r in results for m in r.divergence_margins if m >= max_flip_margin]
    if flips:
        reasons.append(f"{len(flips)} disagreement(s) where HF was sure (logit gap >= {max_flip_margin}): "
                       f"{flips[:5]} (prompt, gap)")
    for r in results:
        hard = [p for p in r.problems if not p.startswith("prompt renders to")]
        if hard:
            reasons.append(f"prompt {r.index}: " + "; ".join(hard))
    hf_stopped = sum(r.hf_finish == "stop" for r in results)
    eos_agreed = sum(bool(r.eos_agreed) for r in results)
    report = GateReport(
        gguf=str(gguf_path), quant_type=qtype, merged_dir=str(merged_dir), max_new_tokens=max_new_tokens,
        min_agreement=min_agreement, max_flip_margin=max_flip_margin if max_flip_margin != float("inf") else None,
        max_divergence_margin=max((m for r in results for m in r.divergence_margins), default=None),
        n_prompts=len(results), template_matches=n_template,
        exact_matches=sum(r.exact_match for r in results), forced_positions=total,
        forced_agreed=agreed_total, agreement=round(agreement, 4),
        mean_prompt_agreement=round(sum(r.forced_agreement for r in results) / max(len(results), 1), 4),
        exact_match_share=round(sum(r.exact_match for r in results) / max(len(results), 1), 4),
        mean_prefix_share=round(sum(r.prefix_share for r in results) / max(len(results), 1), 4),
        hf_stopped=hf_stopped, llama_stopped=sum(r.llama_finish == "stop" for r in results),
        eos_agreed=eos_agreed, passed=not reasons, reasons=reasons, prompts=results,
        seconds=round(time.monotonic() - t0, 1), llama_props=props)
    if report_path is not None:
        report.write(report_path)
    if not report.passed and raise_on_fail:
        raise ExportGateFailed(report.summary(), report)
    return report
