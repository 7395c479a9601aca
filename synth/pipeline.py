"""The synth stage as a distilabel pipeline: load -> generate -> parse -> gates.

    LoadDataFromDicts   one row per (item, listener): record_id, item, listener, messages
    ChatGeneration      the teacher (synth.llm.*): n_candidates answers, every call cached
    ParseExplanation    each JSON answer -> explanation + facts_used; cache status, latency, tokens
    ApplyGates          every gate on every candidate, each with reasons

With `revise`, pairs with no passing candidate go through the same steps again
with a revision prompt (synth/revise.py); the gates choose one attempt per pair.

`run_synth(config)` plans the rows, starts the teacher backend, runs the
pipeline and writes a run directory (parquet + manifest + COMPLETE). A rerun
of a finished config is skipped; a rerun of a killed one repeats no completed
teacher call (the cache) and loses no row (all rows are planned up front).
"""

# No `from __future__ import annotations`: distilabel reads `StepInput` hints at runtime.

import json
import logging
import os
import random
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distilabel.steps import LoadDataFromDicts, Step, StepInput
from distilabel.typing import StepOutput
from pydantic import PrivateAttr

from linernotes import paths
from linernotes.config import SynthConfig
from linernotes.records import ExplanationRecord, GateResult, Item, Listener, content_hash
from linernotes.runs import RunDir, base_manifest
from linernotes.domain.gate_index import load_gate_index
from linernotes.domain.prompts import EXPLANATION_SCHEMA, PromptBuilder
from synth import revise
from synth.cache import CallCache, attempt_sampling, call_key
from synth.revise import FIRST, REVISION

log = logging.getLogger("linernotes.synth")
# Books: sample recommendations among the most-rated titles, as a recommender would.
POPULAR_POOL = 3000
# distilabel waits for a whole batch before the next: batches of a few times the
# in-flight limit keep the teacher busy while a batch's stragglers finish.
GENERATE_BATCH_FACTOR = 4


@dataclass
class PlannedRow:
    item: Item
    listener: Listener


def plan_rows(catalog: Any, config: SynthConfig) -> list[PlannedRow]:
    """Deterministic (seeded) choice of listeners and a recommended item for each.

    The item is of the listener's catalog type, not already in their history,
    and shares a genre with their taste when such items exist.
    """
    rng = random.Random(config.seed)
    planned: list[PlannedRow] = []
    for item_type in config.item_types:
        items = catalog.items_of_type(item_type)
        listeners = [lst for lst in catalog.listeners_of_type(item_type) if lst.history]
        if not items or not listeners:
            raise ValueError(f"catalog has no {item_type} items or listeners with history "
                             f"(items={len(items)}, listeners={len(listeners)})")
        pool = sorted(items, key=lambda it: (-(it.popularity or 0), it.item_id))[:POPULAR_POOL]
        chosen = rng.sample(listeners, k=min(config.n_per_type, len(listeners)))
        while len(chosen) < config.n_per_type:  # small catalogs: reuse listeners
            chosen.append(rng.choice(listeners))
        seen: set[tuple[str, str]] = set()
        for listener in chosen:
            heard = {h.item_id for h in listener.history}
            taste = {t.lower() for t in listener.taste}
            candidates = [it for it in pool if it.item_id not in heard]
            liked = [it for it in candidates if taste & {g.lower() for g in it.genres}]
            for _ in range(20):
                item = rng.choice(liked or candidates)
                if (item.item_id, listener.listener_id) not in seen:
                    break
            seen.add((item.item_id, listener.listener_id))
            planned.append(PlannedRow(item, listener))
    return planned


def build_rows(planned: list[PlannedRow], builder: PromptBuilder, config: SynthConfig,
               backend: str, model: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows for the pipeline, plus quarantine entries for pairs that cannot be prompted."""
    rows, quarantine = [], []
    version = builder.template.version_id
    for i, p in enumerate(planned):
        try:
            messages = builder.messages(p.item, p.listener)
        except Exception as exc:  # a bad row must not stop the others
            quarantine.append({"row": i, "item_id": p.item.item_id,
                               "listener_id": p.listener.listener_id,
                               "stage": "prompt", "error": f"{type(exc).__name__}: {exc}"})
            continue
        record_id = content_hash(p.item.item_id, p.listener.listener_id, version, backend, model,
                                 sampling(config))
        rows.append({"record_id": record_id, "item": p.item.model_dump_json(),
                     "listener": p.listener.model_dump_json(), "messages": messages,
                     "prompt_version": version})
    return rows, quarantine


def sampling(config: SynthConfig) -> dict[str, Any]:
    # Same names and order as synth.llm agenerate's kwargs: they form the cache key.
    return {"max_tokens": config.max_new_tokens, "temperature": config.temperature,
            "top_p": config.top_p, "seed": config.seed}


class ParseExplanation(Step):
    """Each candidate's JSON -> explanation + facts_used, with its call's cache record."""

    backend: str
    model: str
    model_identity: str  # the same identity the LLM keyed its calls on (synth.cache)
    cache_path: str
    run_id: str
    response_schema: dict[str, Any] | None = None
    sampling_params: dict[str, Any]
    attempt_offset: int = 0  # candidate k is attempt attempt_offset + k (synth.llm)
    kind: str = FIRST

    _cache: Any = PrivateAttr(default=None)

    @property
    def inputs(self) -> list[str]:
        return ["record_id", "messages", "generation"]

    @property
    def outputs(self) -> list[str]:
        return ["candidates"]

    def load(self) -> None:
        super().load()
        self._cache = CallCache(self.cache_path)

    def process(self, inputs: StepInput) -> StepOutput:  # type: ignore[override]
        from linernotes.domain.parsing import parse_explanation

        for row in inputs:
            gens = row.get("generation")
            gens = gens if isinstance(gens, list) else [gens]  # grouped: one per candidate
            metas = row.get("distilabel_metadata")
            metas = metas if isinstance(metas, list) else [metas] * len(gens)
            candidates = []
            for k, (text, meta) in enumerate(zip(gens, metas)):
                attempt = self.attempt_offset + k
                sampling_k = attempt_sampling(self.sampling_params, attempt)
                key = call_key(self.backend, self.model, row["messages"], sampling_k,
                               self.response_schema, identity=self.model_identity)
                stored = self._cache.get(key)
                call = {"key": key, "cache": self._cache.first_event(key, self.run_id),
                        "sampling": sampling_k}
                if stored is not None:
                    call.update(latency_s=stored.latency_s, finish_reason=stored.finish_reason,
                                input_tokens=stored.input_tokens, output_tokens=stored.output_tokens)
                parsed, error = parse_explanation(text)
                if text is None:
                    error = f"teacher call failed: {self._cache.last_error(key) or 'no output'}"
                candidates.append({
                    "attempt": attempt, "kind": self.kind, "round": 0, "seed": sampling_k.get("seed"),
                    "raw_output": text, "parsed": parsed is not None, "parse_error": error,
                    "explanation": parsed["explanation"] if parsed else None,
                    "facts_used": parsed["facts_used"] if parsed else [], "call": call,
                    "distilabel": meta or {}})
            row["candidates"] = json.dumps(candidates, default=str)
        yield inputs


class ApplyGates(Step):
    """Every gate on every candidate; each verdict carries its reasons."""

    catalog_dir: str

    _index: Any = PrivateAttr(default=None)

    @property
    def inputs(self) -> list[str]:
        return ["item", "listener", "candidates"]

    @property
    def outputs(self) -> list[str]:
        return ["candidates"]

    def load(self) -> None:
        super().load()
        self._index = load_gate_index(self.catalog_dir)

    def process(self, inputs: StepInput) -> StepOutput:  # type: ignore[override]
        from linernotes.domain.gates import run_gates

        for row in inputs:
            item = Item.model_validate_json(row["item"])
            listener = Listener.model_validate_json(row["listener"])
            candidates = json.loads(row["candidates"])
            for c in candidates:
                gates = run_gates(c["explanation"], c["facts_used"], item, listener, self._index)
                c["gates"] = {k: g.model_dump() for k, g in gates.items()}
                c["passed"] = revise.accepted(c)
            row["candidates"] = json.dumps(candidates, default=str)
        yield inputs


def build_pipeline(rows: list[dict[str, Any]], config: SynthConfig, endpoint: Any, attempt: str,
                   catalog_dir: str, *, n_generations: int = 1, attempt_offset: int = 0,
                   kind: str = FIRST, name_suffix: str = ""):
    """load >> generate (n_generations per row, attempts attempt_offset..) >> parse >> gates."""
    from distilabel.pipeline import Pipeline
    from distilabel.steps.tasks import ChatGeneration

    from synth.llm import CachedOpenAILLM, InProcessVLLM

    schema = EXPLANATION_SCHEMA if endpoint.structured else None
    cache_path = str(paths.cache_db())
    gen_kwargs = {"max_new_tokens": config.max_new_tokens, "temperature": config.temperature,
                  "top_p": config.top_p, "seed": config.seed}
    if endpoint.base_url is None:
        llm = InProcessVLLM(model=endpoint.model, model_identity=endpoint.identity,
                            cache_path=cache_path, run_id=attempt, attempt_offset=attempt_offset,
                            response_schema=schema, generation_kwargs=gen_kwargs)
    else:
        llm = CachedOpenAILLM(backend=endpoint.backend, model=endpoint.model,
                              model_identity=endpoint.identity,
                              base_url=endpoint.base_url, api_key=endpoint.api_key,
                              cache_path=cache_path, run_id=attempt, response_schema=schema,
                              attempt_offset=attempt_offset, max_in_flight=max(config.concurrency, 1), send_seed=endpoint.send_seed,
                              generation_kwargs=gen_kwargs)
    # Pipeline name from the config fingerprint: distilabel's own cache keys on
    # the name and returns an empty Distiset when an upstream step changed.
    with Pipeline(name=f"linernotes-synth-{config.fingerprint()}{name_suffix}",
                  cache_dir=paths.sub("distilabel")) as pipeline:
        batch = max(config.concurrency, 1) * GENERATE_BATCH_FACTOR
        load = LoadDataFromDicts(name="load", data=rows, batch_size=batch)
        # Grouped: one row per pair with a list of candidates, so the parse step
        # knows candidate k's attempt index (and so its cache key).
        generate = ChatGeneration(name="generate", llm=llm, input_batch_size=batch,
                                  num_generations=max(n_generations, 1), group_generations=True,
                                  add_raw_output=True, add_raw_input=False)
        parse = ParseExplanation(name="parse", backend=endpoint.backend, model=endpoint.model,
                                 model_identity=endpoint.identity,
                                 cache_path=cache_path, run_id=attempt, response_schema=schema,
                                 sampling_params=sampling(config), attempt_offset=attempt_offset,
                                 kind=kind, input_batch_size=64)
        gate = ApplyGates(name="gates", catalog_dir=catalog_dir, input_batch_size=64)
        load >> generate >> parse >> gate
    return pipeline


def _records(rows: list[dict[str, Any]], attempts: dict[str, list[dict[str, Any]]], endpoint: Any,
             config: SynthConfig) -> list[ExplanationRecord]:
    """One record per pair: the attempt the gates chose, every attempt in metadata."""
    records = []
    for row in rows:
        cands = attempts[row["record_id"]]
        chosen, ok = revise.choose(cands)
        gates = {k: GateResult(**v) for k, v in chosen["gates"].items()}
        meta = {"call": chosen["call"], "distilabel": chosen.get("distilabel") or {},
                "chosen_attempt": chosen["attempt"], "chosen_kind": chosen["kind"], "accepted": ok,
                "candidates": [{k: v for k, v in c.items() if k != "distilabel"} for c in cands]}
        records.append(ExplanationRecord(
            record_id=row["record_id"], item=Item.model_validate_json(row["item"]),
            listener=Listener.model_validate_json(row["listener"]),
            prompt_version=row["prompt_version"], messages=row["messages"],
            backend=endpoint.backend, model=endpoint.model, sampling=sampling(config),
            raw_output=chosen.get("raw_output"), parsed=chosen["parsed"],
            parse_error=chosen["parse_error"], explanation=chosen["explanation"],
            facts_used=chosen["facts_used"] or [], gates=gates, metadata=meta, task=config.task))
    return records


def summarize(records: list[ExplanationRecord], wall_s: float | None = None) -> dict[str, Any]:
    n = len(records)
    parsed = sum(r.parsed for r in records)
    out: dict[str, Any] = {"rows": n, "parsed": parsed, "parse_rate": round(parsed / n, 4) if n else 0.0,
                           "passed_all": sum(r.passed_all for r in records)}
    # Every gate key the rows carry (the gate set grows; the three are always there).
    names = list(dict.fromkeys(["grounding", "style", "safety", *(k for r in records for k in r.gates)]))
    for gate in names:
        out[f"{gate}_pass"] = sum(1 for r in records if r.gates.get(gate) and r.gates[gate].passed)
    out["by_type"] = {}
    for r in records:
        t = out["by_type"].setdefault(r.item.item_type, {"rows": 0, "parsed": 0, "passed_all": 0})
        t["rows"] += 1
        t["parsed"] += r.parsed
        t["passed_all"] += r.passed_all
    calls = [r.metadata.get("call", {}) for r in records]
    out["output_tokens"] = sum(c.get("output_tokens") or 0 for c in calls)
    out["input_tokens"] = sum(c.get("input_tokens") or 0 for c in calls)
    out["yield"] = revise.yield_report(records, wall_s)
    return out


class CallProgress:
    """A tqdm bar fed by the call cache's event log (distilabel's own logs are
    per batch and per step; this counts rows answered, cached or fresh)."""

    def __init__(self, db: Path, run_id: str, total: int, enabled: bool = True,
                 desc: str = "teacher calls"):
        self.db, self.run_id, self.total, self.enabled, self.desc = db, run_id, total, enabled, desc
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _watch(self) -> None:
        from tqdm import tqdm

        cache = CallCache(self.db)
        base = cache.stats(self.run_id)
        start = base["hit"] + base["miss"] + base["error"]
        with tqdm(total=self.total, desc=self.desc, unit="call", mininterval=1.0) as bar:
            while True:
                s = cache.stats(self.run_id)
                done = min(self.total, s["hit"] + s["miss"] + s["error"] - start)
                if done != bar.n:  # redraw on change only: CI logs get one line per step
                    bar.set_postfix(cached=s["hit"] - base["hit"], errors=s["error"] - base["error"],
                                    refresh=False)
                    bar.update(done - bar.n)
                if self._stop.wait(0.5):
                    break
        cache.close()

    def __enter__(self) -> "CallProgress":
        if self.enabled:
            self._thread = threading.Thread(target=self._watch, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)


def _run_pass(rows: list[dict[str, Any]], config: SynthConfig, endpoint: Any, attempt: str,
              catalog_dir: str, progress: bool, *, n_generations: int, attempt_offset: int,
              kind: str, name_suffix: str, desc: str) -> dict[str, dict[str, Any]]:
    """One pipeline pass; its output rows by record_id."""
    pipeline = build_pipeline(rows, config, endpoint, attempt, catalog_dir, n_generations=n_generations,
                              attempt_offset=attempt_offset, kind=kind, name_suffix=name_suffix)
    with CallProgress(paths.cache_db(), attempt, total=len(rows) * n_generations, enabled=progress,
                      desc=desc):
        distiset = pipeline.run(use_cache=False)
    out = list(distiset["default"]["train"]) if distiset else []
    return {row["record_id"]: row for row in out}


def revision_rows(rows: list[dict[str, Any]], attempts: dict[str, list[dict[str, Any]]],
                  reviser: Any) -> list[dict[str, Any]]:
    """Pairs with no accepted attempt -> rows whose messages ask the teacher to fix
    its best failing attempt, the gates' reasons quoted (as data, in the user turn)."""
    out = []
    for row in rows:
        cands = attempts.get(row["record_id"])
        if not cands or any(revise.accepted(c) for c in cands):
            continue
        best = revise.best_failing(cands)
        item = Item.model_validate_json(row["item"])
        listener = Listener.model_validate_json(row["listener"])
        messages = reviser.messages(item, listener, revise.previous_answer(best), revise.problems(best))
        out.append({**row, "messages": messages, "revised_from": best["attempt"]})
    return out


def run_synth(config: SynthConfig, *, force: bool = False, catalog: Any = None,
              progress: bool = True) -> RunDir:
    """Plan, generate (n candidates), gate, revise the rejects, write one run. Returns its RunDir."""
    from linernotes.domain.revise_prompt import RevisePrompt
    from synth import backends
    from synth.catalog.ingest import load_catalog

    if config.task != "explain":
        # A task needs its template, parser and gates first (ARCHITECTURE.md "How to add a task").
        raise ValueError(f"config field 'task': {config.task!r} has no prompt template or gates yet; "
                         "only 'explain' can be generated")
    if config.n_candidates < 1 or config.max_revisions < 0:
        raise ValueError(f"config fields 'n_candidates' (>= 1) and 'max_revisions' (>= 0): got "
                         f"{config.n_candidates}, {config.max_revisions}")
    run = RunDir.for_config(config, "synth")
    if run.is_complete() and not force:
        log.info("run %s is complete; skipping (use force to redo)", run.name)
        return run
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    catalog_dir = config.catalog_dir or str(paths.catalog_dir())
    catalog = catalog or load_catalog(catalog_dir)
    builder = PromptBuilder.default(config.template, config.golden_examples, config.few_shot,
                                    config.max_words)
    reviser = RevisePrompt.load(config.revise_template, config.max_words) if config.revise else None
    planned = plan_rows(catalog, config)
    timings["plan_s"] = time.perf_counter() - t0
    run.prepare()
    # Cache events are logged per attempt: a forced or resumed rerun reuses the
    # run's name, and its manifest must count only its own hits and misses.
    attempt = f"{run.name}@{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # torch after fork deadlocks otherwise
    os.environ.setdefault("DISTILABEL_LOG_LEVEL", "WARNING")  # progress comes from CallProgress
    n = config.n_candidates
    t1 = time.perf_counter()
    with backends.teacher(config) as endpoint:
        timings["teacher_start_s"] = time.perf_counter() - t1
        rows, quarantine = build_rows(planned, builder, config, endpoint.backend, endpoint.model)
        t2 = time.perf_counter()
        first = _run_pass(rows, config, endpoint, attempt, catalog_dir, progress, n_generations=n,
                          attempt_offset=0, kind=FIRST, name_suffix="", desc="teacher calls")
        timings["pipeline_s"] = time.perf_counter() - t2
        attempts = {rid: json.loads(r["candidates"]) for rid, r in first.items()}
        for rnd in range(1, (config.max_revisions if config.revise else 0) + 1):
            todo = revision_rows(rows, attempts, reviser)
            if not todo:
                break
            t3 = time.perf_counter()
            got = _run_pass(todo, config, endpoint, attempt, catalog_dir, progress, n_generations=1,
                            attempt_offset=n + rnd - 1, kind=REVISION, name_suffix=f"-revise{rnd}",
                            desc=f"revision {rnd} calls")
            timings["revise_s"] = timings.get("revise_s", 0.0) + time.perf_counter() - t3
            for row in todo:
                out = got.get(row["record_id"])
                if out is None:  # kept as it was; the quarantine says why it has no revision
                    quarantine.append({"record_id": row["record_id"], "stage": f"revise{rnd}",
                                       "error": "row missing from revision output"})
                    continue
                for c in json.loads(out["candidates"]):
                    c.update(round=rnd, revised_from=row["revised_from"], messages=row["messages"],
                             revise_version=reviser.version_id)
                    attempts[row["record_id"]].append(c)
    kept = [row for row in rows if row["record_id"] in attempts]
    for row in rows:  # never lose a row silently
        if row["record_id"] not in attempts:
            quarantine.append({"record_id": row["record_id"], "stage": "pipeline",
                               "error": "row missing from pipeline output"})
    records = _records(kept, attempts, endpoint, config)
    for r in records:
        if not r.parsed:
            quarantine.append({"record_id": r.record_id, "item_id": r.item.item_id,
                               "listener_id": r.listener.listener_id, "stage": "parse",
                               "error": r.parse_error, "raw_output": r.raw_output})
    run.write_rows([r.to_row() for r in records])
    run.write_quarantine(quarantine)
    cache = CallCache(paths.cache_db())
    timings["total_s"] = time.perf_counter() - t0
    summary = summarize(records, wall_s=timings["pipeline_s"] + timings.get("revise_s", 0.0))
    yield_ = summary.pop("yield")
    manifest = base_manifest("synth", config, run)
    manifest.update({
        "backend": {"name": endpoint.backend, "model": endpoint.model,
                    "base_url": endpoint.base_url, "structured_output": endpoint.structured,
                    "seed_sent": endpoint.send_seed,
                    "model_identity": endpoint.identity,
                    **(endpoint.info or {})},
        "prompt_version": builder.template.version_id,
        "revise_version": reviser.version_id if reviser else None,
        "catalog_dir": catalog_dir,
        "counts": {"planned": len(planned), "quarantined": len(quarantine), **summary},
        "yield": yield_,
        "cache": {"db": str(paths.cache_db()), "attempt": attempt, **cache.stats(attempt)},
        "timings": {k: round(v, 3) for k, v in timings.items()},
        # every completion token of every attempt over the passes' time (= the chosen rows'
        # tokens over pipeline_s when there is one candidate and no revision)
        "throughput": {"output_tokens_per_s": round(yield_["completion_tokens"] / yield_["wall_s"], 2)
                       if yield_["wall_s"] else None},
    })
    run.write_manifest(manifest)
    run.mark_complete()
    if progress:
        print(revise.format_yield(yield_), file=sys.stderr)
    return run


def load_records(run: RunDir | str | Path) -> list[ExplanationRecord]:
    run = run if isinstance(run, RunDir) else RunDir(run)
    return [ExplanationRecord.from_row(r) for r in run.read_rows("generated").to_pylist()]
