"""Export a recommend.train_codes run (SmolLM2 + code tokens) to GGUF, and gate its code outputs.

    python -m finetune.export.codes RUN_DIR [--out DIR] [--outtype q8_0] [--prompts 12] [--beams 10]

writes `<run>/export/` (or --out):

    merged/           base + adapter (LoRA + the code-token rows) merged, float32 safetensors,
                      the run's tokenizer (with the code tokens) and chat template
    model-Q8_0.gguf   llama.cpp's converter on merged/
    table/            the id table the run was trained with (`table/catalog/semantic_ids/<type>-<version>.*`,
                      `load_table(type, version, home=<export>/table)`): the export serves without
                      the catalog's id folder, which may have moved on to newer versions
    gate.json         the code gate's report
    manifest.json     stage "export", task "recommend", item type, id-table version, the code
                      tokens and their ids, files + sha256, gate block (serve.gate_check reads it)
    COMPLETE          written last, only when the gate passed

Checks, in order (any failure: ExportGateFailed, manifest/gate.json written, no COMPLETE):

  1. tokens in the file: every code token of the table is in the GGUF's tokenizer.ggml.tokens at
     the HF tokenizer's id, as USER_DEFINED (printed as text, matched whole by the tokenizer);
  2. served tokenizer: llama.cpp's /tokenize of each code token string is exactly that one id;
  3. template: for each gate prompt llama.cpp's /apply-template + /tokenize is token for token the
     HF tokenizer's chat prompt (the served path renders prompts with the engine's template);
  4. agreement: on `n_prompts` held-out prompts (test listeners' histories as codes whose prompt
     text is not among the run's training rows), the top-1 code of the HF trie beam search
     (`recommend.llm_recommender.topk_codes`) equals the top-1 code of the same beam search run
     over llama.cpp `/completion` calls (`engine_topk_codes`); fails below MIN_AGREEMENT.

Measured (runs/recommend-codes-podcast-h8, 6 training steps, final loss 10.5; 12 gate prompts,
10 beams): F32 agreement 1.00 (top-1 scores within 0.28 nats of HF's), BF16 0.75, Q8_0 0.50. The code
tokens of so short a run sit in the far tail, where rounding moves a code's total logprob by 1-3
nats; the gate fails the quantised files rather than serve a ranking that is not the HF one.

The engine-side beam search lives here (`CodeSearch`, `completion_body`, `step_scores`) so the
gate and the endpoint (`serve.recommend`) run one implementation. One step = one /completion per
live beam: prompt = token ids (chat prompt + the beam's partial code), n_predict 1, temperature 0,
a GBNF grammar allowing only that beam's allowed next tokens, and logit_bias +100 on those same
tokens. llama.cpp reports `top_logprobs` (and the sampled token's logprob) from the raw logits
before any sampler (measured: identical with and without the bias), i.e. the full-vocab
log-softmax HF's beam search adds up. The bias makes the sampled token the best *whole* allowed
token (a grammar alone may let a plain "<" piece win, which names no code), so each beam gets at
least its best continuation with an exact score, plus every other allowed token in the top
`n_probs`: a beam never dies. Allowed tokens not shown score at most the lowest shown logprob;
while that bound says one of them could still rank among the step's best num_beams, the beam is
asked again with the seen tokens left out (its next-best allowed token, exactly), so the step is
the HF beam search's step, not an approximation of it. The end step (after a whole code) allows
only the end token (<|im_end|>, CONTROL, no text): no grammar, the bias alone.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from finetune.export.common import COMPLETE, EXPORT_DIR, GATE_FILE, MERGED_DIR, ExportError, ExportGateFailed, \
    log, package_version, sha256_file, write_json
from recommend.trie import CodeTrie

TASK = "recommend"
TABLE_DIR = "table"
MIN_AGREEMENT = 0.9
DEFAULT_PROMPTS = 12
DEFAULT_BEAMS = 10
DEFAULT_N_PROBS = 64
ALLOWED_BIAS = 100.0  # added to the allowed tokens' logits: the sampled token is the best allowed one
USER_DEFINED = 4  # gguf.TokenType.USER_DEFINED
OUTTYPES = {"q8_0": "Q8_0", "bf16": "BF16", "f16": "F16", "f32": "F32"}


class EngineError(RuntimeError):
    """The engine answered something the search cannot use (status, shape, a token outside the grammar)."""


# ---------------------------------------------------------------- engine beam search

def step_grammar(texts: Sequence[str]) -> str:
    """GBNF accepting exactly one of `texts` (the allowed next tokens' strings)."""
    from recommend.grammar import gbnf_literal

    if not texts:
        raise ValueError("no allowed token: the grammar would accept nothing")
    return "root ::= " + " | ".join(gbnf_literal(t) for t in texts) + "\n"


def completion_body(prompt_ids: Sequence[int], allowed: Sequence[int], token_text: Mapping[int, str],
                    end_id: int, n_probs: int = DEFAULT_N_PROBS) -> dict[str, Any]:
    """The /completion request of one beam at one step (see the module docstring)."""
    body: dict[str, Any] = {
        "prompt": [int(t) for t in prompt_ids], "n_predict": 1, "temperature": 0.0, "n_probs": int(n_probs),
        "cache_prompt": True, "logit_bias": [[int(t), ALLOWED_BIAS] for t in allowed],
    }
    code_ids = [t for t in allowed if t != end_id]
    if code_ids:  # the end token is CONTROL (no text): it cannot be a grammar literal
        if len(code_ids) != len(allowed):
            raise ValueError("a step allows both code tokens and the end token; codes are fixed-length")
        body["grammar"] = step_grammar([token_text[int(t)] for t in code_ids])
    return body


@dataclass
class StepAnswer:
    """One /completion answer for one beam: exact logprobs of the allowed tokens it showed, and
    an upper bound on the logprob of every allowed token it did not show."""

    scores: dict[int, float]
    bound: float


def step_scores(data: Mapping[str, Any], allowed: Iterable[int]) -> StepAnswer:
    """The allowed tokens among top_logprobs plus the sampled token, with their full-vocab logprobs.
    Any other allowed token scores at most the lowest listed logprob (top_logprobs are the top of
    the whole vocabulary) and at most the sampled token's (the best allowed, by the bias).
    EngineError when the sampled token is not allowed."""
    allowed = {int(t) for t in allowed}
    try:
        first = data["completion_probabilities"][0]
        sampled, sampled_lp = int(first["id"]), float(first["logprob"])
        tops = [(int(t["id"]), float(t["logprob"])) for t in first.get("top_logprobs") or []]
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise EngineError(f"engine answer has no completion_probabilities[0] with id/logprob ({exc!r})") from None
    if sampled not in allowed:
        raise EngineError(f"engine sampled token {sampled} outside the allowed set {sorted(allowed)[:8]}... "
                          "(grammar or logit_bias ignored?)")
    out = {t: lp for t, lp in tops if t in allowed}
    out[sampled] = sampled_lp
    return StepAnswer(out, min([sampled_lp] + [lp for _, lp in tops]))


@dataclass
class _BeamStep:
    allowed: set[int]
    seen: dict[int, float] = field(default_factory=dict)
    bound: float = float("inf")  # upper bound on the logprob of allowed tokens not in `seen`
    asked: bool = False

    @property
    def unseen(self) -> list[int]:
        return sorted(self.allowed - set(self.seen))


@dataclass
class CodeSearch:
    """Beam search over a code trie, driven from outside: `requests()` lists the (beam, ids, allowed
    ids) to send, `feed()` takes their `StepAnswer`s; empty requests: done, `results()`.

    Ranking is `recommend.llm_recommender.beam_search`'s (HF beam search with length_penalty 0):
    of a step's candidates the best ones finish (end token, or the last step) when they rank within
    num_beams, the rest (up to num_beams) live on; it stops when no live beam can beat the k-th
    finished one. A step is exact before it advances: while some beam's unseen allowed tokens could
    (by their bound) still reach the top num_beams, that beam is asked again with the tokens seen
    so far left out of its grammar and bias, which yields its next-best allowed token exactly
    (at most `max_extra` such calls per step; past that the step advances as it is and counts in
    `inexact_steps`)."""

    trie: CodeTrie
    num_beams: int
    k: int
    banned: Mapping[int, int] | None = None
    max_extra: int | None = None

    def __post_init__(self):
        if self.k < 1 or self.num_beams < self.k:
            raise ValueError(f"need 1 <= k <= num_beams, got k={self.k}, num_beams={self.num_beams}")
        self.max_steps = self.trie.depth + 1
        self.max_extra = 2 * self.num_beams if self.max_extra is None else self.max_extra
        self.beams: list[tuple[list[int], float]] = [([], 0.0)]
        self.finished: list[tuple[list[int], float]] = []
        self.step, self.done, self.calls, self.extra_calls, self.inexact_steps = 0, False, 0, 0, 0
        self._open()

    def _open(self) -> None:
        self._state = [_BeamStep(set(self.trie.allowed_next(ids, self.banned))) for ids, _ in self.beams]
        self._extra = 0

    def _candidates(self) -> list[tuple[float, int, int]]:
        return sorted(((s + lp, b, t) for b, (_, s) in enumerate(self.beams)
                       for t, lp in self._state[b].seen.items()), key=lambda c: -c[0])

    def requests(self) -> list[tuple[int, list[int], list[int]]]:
        while not self.done:
            first = [(b, self.beams[b][0], sorted(st.allowed)) for b, st in enumerate(self._state) if not st.asked]
            if first:
                return first
            cands = self._candidates()
            floor = cands[self.num_beams - 1][0] if len(cands) >= self.num_beams else float("-inf")
            open_beams = [b for b, st in enumerate(self._state)
                          if st.unseen and self.beams[b][1] + st.bound > floor]
            if open_beams and self._extra < self.max_extra:
                open_beams = open_beams[:self.max_extra - self._extra]
                self._extra += len(open_beams)
                self.extra_calls += len(open_beams)
                return [(b, self.beams[b][0], self._state[b].unseen) for b in open_beams]
            if open_beams:
                self.inexact_steps += 1
            self._advance(cands)
        return []

    def feed(self, answers: Sequence[tuple[int, StepAnswer]]) -> None:
        for b, ans in answers:
            st = self._state[b]
            st.seen.update({t: lp for t, lp in ans.scores.items() if t in st.allowed})
            st.bound = min(st.bound, ans.bound)
            st.asked = True
            self.calls += 1

    def _advance(self, cands: list[tuple[float, int, int]]) -> None:
        end = self.trie.end_id
        live: list[tuple[list[int], float]] = []
        last = self.step == self.max_steps - 1
        for rank, (total, b, t) in enumerate(cands[:2 * self.num_beams]):
            ids = self.beams[b][0]
            if t == end or last:
                if rank < self.num_beams:
                    self.finished.append((ids if t == end else ids + [t], total))
                continue
            live.append((ids + [t], total))
            if len(live) == self.num_beams:
                break
        self.finished.sort(key=lambda x: -x[1])
        self.step += 1
        if not live or self.step >= self.max_steps or (
                len(self.finished) >= self.k and live[0][1] <= self.finished[self.k - 1][1]):
            self.done = True
        self.beams = live
        self._open()

    def results(self) -> list[tuple[str | None, float]]:
        return [(self.trie.code_of_ids(ids), score) for ids, score in self.finished[:self.k]]


def engine_topk_codes(post: Callable[[dict[str, Any]], Mapping[str, Any]], prompt_ids: Sequence[int],
                      trie: CodeTrie, token_text: Mapping[int, str], *, num_beams: int, k: int,
                      banned: Mapping[int, int] | None = None, n_probs: int = DEFAULT_N_PROBS
                      ) -> tuple[list[tuple[str | None, float]], CodeSearch]:
    """Top-k (code, score) by the search over a synchronous `post(body) -> /completion JSON`;
    also the finished search (calls, extra_calls, inexact_steps)."""
    search = CodeSearch(trie, num_beams, k, banned)
    while reqs := search.requests():
        search.feed([(b, step_scores(post(completion_body(list(prompt_ids) + ids, allowed, token_text,
                                                          trie.end_id, n_probs)), allowed))
                     for b, ids, allowed in reqs])
    return search.results(), search


def engine_prompt_ids(http, messages: Sequence[Mapping[str, str]]) -> list[int]:
    """The chat prompt as llama.cpp renders it with the GGUF's template (http: an httpx.Client on
    the engine root)."""
    rendered = _ok(http.post("/apply-template", json={"messages": list(messages)}), "/apply-template")["prompt"]
    return [int(t) for t in _ok(http.post("/tokenize", json={
        "content": rendered, "add_special": True, "parse_special": True}), "/tokenize")["tokens"]]


def _ok(resp, what: str) -> dict[str, Any]:
    if resp.status_code != 200:
        raise EngineError(f"{what}: engine answered {resp.status_code}: {resp.text[:200]}")
    return resp.json()


def check_served_tokens(http, token_ids: Mapping[str, int]) -> list[str]:
    """Problems (empty: fine): each code token string must /tokenize to exactly its one id."""
    problems = []
    for tok, tid in token_ids.items():
        got = _ok(http.post("/tokenize", json={"content": tok, "add_special": False}), "/tokenize")["tokens"]
        if got != [int(tid)]:
            problems.append(f"{tok} tokenizes to {got} in llama.cpp, expected [{tid}]")
    return problems


# ---------------------------------------------------------------- export

def _run_manifest(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "manifest.json"
    if not path.exists() or not (run_dir / "COMPLETE").exists():
        raise ExportError(f"{run_dir}: not a finished recommend.train_codes run (no manifest.json/COMPLETE)")
    m = json.loads(path.read_text())
    if m.get("variant") != "codes":
        raise ExportError(f"{run_dir}: variant {m.get('variant')!r}; only a 'codes' run has code tokens")
    for key in ("item_type", "table_version"):
        if not m.get(key):
            raise ExportError(f"{path}: no {key!r}")
    return m


def save_merged(model, tokenizer, out: Path) -> Path:
    """The merged model (float32, as the HF path scores) + tokenizer, atomically."""
    staging = out.with_name(f".{out.name}.staging-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    if not getattr(tokenizer, "chat_template", None):
        raise ExportError("the run's tokenizer has no chat template; the GGUF would carry none")
    try:
        staging.mkdir(parents=True)
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        tc = staging / "tokenizer_config.json"  # loading-time flags transformers writes back
        data = json.loads(tc.read_text())
        for key in ("is_local", "local_files_only"):
            data.pop(key, None)
        tc.write_text(json.dumps(data, indent=2) + "\n")
        shutil.rmtree(out, ignore_errors=True)
        os.rename(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def copy_table(item_type: str, version: str, home: Path) -> list[str]:
    """The id table's files under `home` laid out as `recommend.semantic_ids` reads them."""
    from recommend.semantic_ids import ids_dir

    src, dst = ids_dir(), ids_dir(home)
    copied = []
    for suffix in (".parquet", ".stats.json", ".codebook.npz"):
        f = src / f"{item_type}-{version}{suffix}"
        if f.exists():
            shutil.copy2(f, dst / f.name)
            copied.append(str((dst / f.name).relative_to(home.parent)))
    return copied


def load_export_table(export_dir: str | Path, manifest: Mapping[str, Any]):
    """The export's own copy of its id table (else the catalog's, for an older export)."""
    from recommend.semantic_ids import load_table

    home = Path(export_dir) / str(manifest.get("table_dir") or TABLE_DIR)
    if (home / "catalog" / "semantic_ids" / f"{manifest['item_type']}-{manifest['table_version']}.parquet").exists():
        return load_table(manifest["item_type"], manifest["table_version"], home=home)
    return load_table(manifest["item_type"], manifest["table_version"])


def check_gguf_tokens(gguf_path: Path, token_ids: Mapping[str, int]) -> list[str]:
    """Problems (empty: fine): each code token at its id in tokenizer.ggml.tokens, USER_DEFINED."""
    from finetune.export.quantize import gguf_metadata

    meta = gguf_metadata(gguf_path, keys=("tokenizer.ggml.tokens", "tokenizer.ggml.token_type"))
    tokens, types = meta.get("tokenizer.ggml.tokens") or [], meta.get("tokenizer.ggml.token_type") or []
    problems = []
    for tok, tid in token_ids.items():
        if tid >= len(tokens) or tokens[tid] != tok:
            where = tokens.index(tok) if tok in tokens else None
            problems.append(f"{tok}: GGUF token {tid} is {tokens[tid] if tid < len(tokens) else None!r} "
                            f"(the token is at {where})")
        elif tid < len(types) and int(types[tid]) != USER_DEFINED:
            problems.append(f"{tok}: GGUF token type {types[tid]}, expected USER_DEFINED ({USER_DEFINED})")
    return problems


def gate_prompts(item_type: str, table, run_dir: Path, n: int) -> list[dict[str, Any]]:
    """Up to n held-out prompts: test listeners (sorted) with their fit-frame history as codes,
    keeping only prompts whose text is not a training row's user message."""
    from recommend.evaluate import build_split
    from recommend.tasks import listener_sequences, next_code_prompt

    trained = set()
    rows = run_dir / "rows.jsonl"
    if rows.exists():
        for line in rows.read_text().splitlines():
            msgs = json.loads(line).get("messages") or []
            trained.update(m["content"] for m in msgs if m.get("role") == "user")
    split = build_split(item_type)
    seqs = listener_sequences(split.fit_frame("test"))
    out = []
    for lid in sorted(set(split.test["listener_id"])):
        hist = [table.code_of(x) for x in seqs.get(lid, [])]
        if not hist:
            continue
        messages = next_code_prompt(hist, item_type)
        if messages[-1]["content"] in trained:
            continue
        out.append({"listener_id": lid, "history_codes": hist, "messages": messages})
        if len(out) >= n:
            break
    return out


def export_code_model(run_dir: str | Path, out_dir: str | Path | None = None, outtype: str = "q8_0", *,
                      n_prompts: int = DEFAULT_PROMPTS, num_beams: int = DEFAULT_BEAMS,
                      min_agreement: float = MIN_AGREEMENT, force: bool = False) -> Path:
    """Merge, convert, check and gate a codes run (module docstring); returns the export folder."""
    import httpx
    import torch

    from linernotes.services.llamacpp import server
    from recommend.llm_recommender import chat_prompt_ids, code_trie, item_of, load_student, topk_codes
    from recommend.semantic_ids import load_table

    from finetune.export.convert import convert_hf_to_gguf

    t_start = time.monotonic()
    run_dir = Path(run_dir)
    qtype = OUTTYPES.get(outtype.lower())
    if qtype is None:
        raise ValueError(f"outtype {outtype!r}: choose from {sorted(OUTTYPES)}")
    out = Path(out_dir) if out_dir else run_dir / EXPORT_DIR
    if (out / COMPLETE).exists() and not force:
        return out
    run_m = _run_manifest(run_dir)
    item_type, version = run_m["item_type"], run_m["table_version"]
    table = load_table(item_type, version)
    out.mkdir(parents=True, exist_ok=True)
    (out / COMPLETE).unlink(missing_ok=True)
    table_files = copy_table(item_type, version, out / TABLE_DIR)
    timings: dict[str, float] = {}

    t0 = time.monotonic()
    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
    model, tok = load_student(run_dir, merge=True)
    merged = save_merged(model, tok, out / MERGED_DIR)
    timings["merge"] = round(time.monotonic() - t0, 1)
    log(f"[1/4] merged model: {merged} ({timings['merge']} s)")

    gguf = out / f"model-{qtype}.gguf"
    t0 = time.monotonic()
    info = convert_hf_to_gguf(merged, gguf, outtype.lower())
    timings["convert"] = round(time.monotonic() - t0, 1)
    log(f"[2/4] {gguf.name}: {gguf.stat().st_size / 1e6:.1f} MB ({timings['convert']} s)")

    vocab = list(table.token_vocab())
    token_ids = {t: int(tok.convert_tokens_to_ids(t)) for t in vocab}
    trie = code_trie(table, tok)
    token_text = {tid: t for t, tid in token_ids.items()}
    reasons = check_gguf_tokens(gguf, token_ids)
    log(f"[3/4] GGUF tokens: {len(token_ids)} code tokens, {len(reasons)} problem(s)")

    t0 = time.monotonic()
    prompts = gate_prompts(item_type, table, run_dir, n_prompts)
    results, agree, calls, inexact = [], 0, 0, 0
    template_ok = True
    srv = server(gguf, model_name="code-gate", n_parallel=1, n_threads=1, ctx_per_slot=1024,
                 api_key="code-gate-key")
    srv.start(timeout_s=180)
    try:
        with httpx.Client(base_url=srv.base_url, timeout=120.0,
                          headers={"Authorization": "Bearer code-gate-key"}) as http:
            reasons += check_served_tokens(http, token_ids)

            def post(body):
                return _ok(http.post("/completion", json=body), "/completion")

            for i, p in enumerate(prompts):
                hf_ids = chat_prompt_ids(tok, p["messages"])
                served_ids = engine_prompt_ids(http, p["messages"])
                if served_ids != hf_ids:
                    template_ok = False
                    reasons.append(f"prompt {i}: llama.cpp renders {len(served_ids)} tokens, HF {len(hf_ids)}")
                banned = trie.banned_counts(trie.ids_of_code(c, token_ids) for c in p["history_codes"])
                hf = topk_codes(model, hf_ids, trie, num_beams=num_beams, k=1, banned=banned)
                served, search = engine_topk_codes(post, hf_ids, trie, token_text, num_beams=num_beams, k=1,
                                                   banned=banned)
                n_calls = search.calls
                calls += n_calls
                inexact += search.inexact_steps
                same = bool(hf and served and hf[0][0] == served[0][0])
                agree += same
                results.append({"listener_id": p["listener_id"], "hf": hf[0] if hf else None,
                                "served": served[0] if served else None, "agree": same,
                                "engine_calls": n_calls})
                log(f"  gate {i + 1}/{len(prompts)}: hf {hf[0][0] if hf else None} served "
                    f"{served[0][0] if served else None} {'==' if same else '!='}")
    finally:
        srv.stop()
    timings["gate"] = round(time.monotonic() - t0, 1)
    agreement = agree / len(results) if results else 0.0
    if len(results) < min(10, n_prompts):
        reasons.append(f"only {len(results)} held-out prompts (wanted {n_prompts})")
    if agreement < min_agreement:
        reasons.append(f"top-1 agreement {agreement:.3f} < {min_agreement}")
    invalid = [r for r in results if r["served"] and item_of(table, r["served"][0]) is None]
    if invalid:
        reasons.append(f"{len(invalid)} served top-1 codes name no item")
    passed = not reasons
    log(f"[4/4] gate: {'pass' if passed else 'FAIL'}: agreement {agreement:.3f} on {len(results)} prompts "
        f"({calls} engine calls, {timings['gate']} s)")

    report = {"passed": passed, "agreement": agreement, "min_agreement": min_agreement, "prompts": len(results),
              "num_beams": num_beams, "template_matches": template_ok, "reasons": reasons,
              "engine_calls": calls, "inexact_steps": inexact, "results": results}
    write_json(out / GATE_FILE, {qtype: report})
    manifest = {
        "stage": "export", "task": TASK, "run": out.name, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "codes_run": str(run_dir.resolve()), "item_type": item_type, "table_version": version,
        "table_dir": TABLE_DIR, "table_files": table_files,
        "code_tokens": {"count": len(token_ids), "ids": token_ids}, "end_token_id": int(trie.end_id),
        "trie": {"codes": len(trie), "depth": trie.depth},
        "merged": {"dir": MERGED_DIR, "dtype": "float32"},
        "files": {gguf.name: {"type": qtype, **info, "sha256": sha256_file(gguf)}},
        "gate": {"enabled": True, "passed": passed, "n_prompts": len(results),
                 "results": {qtype: {k: report[k] for k in ("passed", "agreement", "min_agreement",
                                                            "template_matches", "reasons")}}},
        "timings": {**timings, "total": round(time.monotonic() - t_start, 1)},
        "versions": {k: package_version(k) for k in ("torch", "transformers", "peft", "gguf", "xllamacpp")},
    }
    write_json(out / "manifest.json", manifest)
    if not passed:
        raise ExportGateFailed(f"code export gate failed for {gguf}: " + "; ".join(reasons[:5]), report)
    (out / COMPLETE).write_text(time.strftime("%Y-%m-%dT%H:%M:%S"))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m finetune.export.codes", description=__doc__.split("\n")[0])
    ap.add_argument("run_dir")
    ap.add_argument("--out", default=None)
    ap.add_argument("--outtype", default="q8_0", choices=sorted(OUTTYPES))
    ap.add_argument("--prompts", type=int, default=DEFAULT_PROMPTS)
    ap.add_argument("--beams", type=int, default=DEFAULT_BEAMS)
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        out = export_code_model(args.run_dir, args.out, args.outtype, n_prompts=args.prompts,
                                num_beams=args.beams, force=args.force)
    except ExportGateFailed as exc:
        print(f"export: {exc}")
        return 1
    m = json.loads((out / "manifest.json").read_text())
    print(f"{out}: {m['item_type']} table {m['table_version']}, {m['code_tokens']['count']} code tokens, "
          f"gate agreement {m['gate']['results'][next(iter(m['gate']['results']))]['agreement']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
