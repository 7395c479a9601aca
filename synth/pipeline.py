"""The synth stage as a distilabel pipeline: load -> generate -> parse -> gates.

    LoadDataFromDicts   one row per (item, listener): record_id, item, listener, messages
    ChatGeneration      the teacher (synth.llm.*), every call through the call cache
    ParseExplanation    JSON answer -> explanation + facts_used; cache status, latency, tokens
    ApplyGates          grounding / style / safety, each with reasons

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
from synth.cache import CallCache, call_key

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
    """Teacher JSON -> explanation + facts_used; attaches the call's cache record."""

    backend: str
    model: str
    model_identity: str  # the same identity the LLM keyed its calls on (synth.cache)
    cache_path: str
    run_id: str
    response_schema: dict[str, Any] | None = None
    sampling_params: dict[str, Any]

    _cache: Any = PrivateAttr(default=None)

    @property
    def inputs(self) -> list[str]:
        return ["record_id", "messages", "generation"]

    @property
    def outputs(self) -> list[str]:
        return ["parsed", "parse_error", "explanation", "facts_used", "call"]

    def load(self) -> None:
        super().load()
        self._cache = CallCache(self.cache_path)

    def process(self, inputs: StepInput) -> StepOutput:  # type: ignore[override]
        from linernotes.domain.parsing import parse_explanation

        for row in inputs:
            key = call_key(self.backend, self.model, row["messages"], self.sampling_params,
                           self.response_schema, identity=self.model_identity)
            stored = self._cache.get(key)
            call = {"key": key, "cache": self._cache.first_event(key, self.run_id),
                    "sampling": self.sampling_params}
            if stored is not None:
                call.update(latency_s=stored.latency_s, finish_reason=stored.finish_reason,
                            input_tokens=stored.input_tokens, output_tokens=stored.output_tokens)
            parsed, error = parse_explanation(row.get("generation"))
            if row.get("generation") is None:
                error = f"teacher call failed: {self._cache.last_error(key) or 'no output'}"
            row["parsed"] = parsed is not None
            row["parse_error"] = error
            row["explanation"] = parsed["explanation"] if parsed else None
            row["facts_used"] = parsed["facts_used"] if parsed else []
            row["call"] = json.dumps(call)
        yield inputs


class ApplyGates(Step):
    """Grounding, style and safety gates; every verdict carries its reasons."""

    catalog_dir: str

    _index: Any = PrivateAttr(default=None)

    @property
    def inputs(self) -> list[str]:
        return ["item", "listener", "explanation", "facts_used"]

    @property
    def outputs(self) -> list[str]:
        return ["gates"]

    def load(self) -> None:
        super().load()
        self._index = load_gate_index(self.catalog_dir)

    def process(self, inputs: StepInput) -> StepOutput:  # type: ignore[override]
        from linernotes.domain.gates import run_gates

        for row in inputs:
            item = Item.model_validate_json(row["item"])
            listener = Listener.model_validate_json(row["listener"])
            gates = run_gates(row.get("explanation"), row.get("facts_used") or [], item, listener,
                              self._index)
            row["gates"] = json.dumps({k: g.model_dump() for k, g in gates.items()})
        yield inputs


def build_pipeline(rows: list[dict[str, Any]], config: SynthConfig, endpoint: Any, attempt: str,
                   catalog_dir: str):
    from distilabel.pipeline import Pipeline
    from distilabel.steps.tasks import ChatGeneration

    from synth.llm import CachedOpenAILLM, InProcessVLLM

    schema = EXPLANATION_SCHEMA if endpoint.structured else None
    cache_path = str(paths.cache_db())
    gen_kwargs = {"max_new_tokens": config.max_new_tokens, "temperature": config.temperature,
                  "top_p": config.top_p, "seed": config.seed}
    if endpoint.base_url is None:
        llm = InProcessVLLM(model=endpoint.model, model_identity=endpoint.identity,
                            cache_path=cache_path, run_id=attempt,
                            response_schema=schema, generation_kwargs=gen_kwargs)
    else:
        llm = CachedOpenAILLM(backend=endpoint.backend, model=endpoint.model,
                              model_identity=endpoint.identity,
                              base_url=endpoint.base_url, api_key=endpoint.api_key,
                              cache_path=cache_path, run_id=attempt, response_schema=schema,
                              max_in_flight=max(config.concurrency, 1), send_seed=endpoint.send_seed,
                              generation_kwargs=gen_kwargs)
    # Pipeline name from the config fingerprint: distilabel's own cache keys on
    # the name and returns an empty Distiset when an upstream step changed.
    with Pipeline(name=f"linernotes-synth-{config.fingerprint()}",
                  cache_dir=paths.sub("distilabel")) as pipeline:
        batch = max(config.concurrency, 1) * GENERATE_BATCH_FACTOR
        load = LoadDataFromDicts(name="load", data=rows, batch_size=batch)
        generate = ChatGeneration(name="generate", llm=llm, input_batch_size=batch,
                                  add_raw_output=True, add_raw_input=False)
        parse = ParseExplanation(name="parse", backend=endpoint.backend, model=endpoint.model,
                                 model_identity=endpoint.identity,
                                 cache_path=cache_path, run_id=attempt, response_schema=schema,
                                 sampling_params=sampling(config), input_batch_size=64)
        gate = ApplyGates(name="gates", catalog_dir=catalog_dir, input_batch_size=64)
        load >> generate >> parse >> gate
    return pipeline


def _records(rows: list[dict[str, Any]], endpoint: Any, config: SynthConfig) -> list[ExplanationRecord]:
    records = []
    for row in rows:
        gates = {k: GateResult(**v) for k, v in json.loads(row["gates"]).items()}
        call = json.loads(row["call"])
        meta = {"call": call, "distilabel": row.get("distilabel_metadata") or {}}
        records.append(ExplanationRecord(
            record_id=row["record_id"], item=Item.model_validate_json(row["item"]),
            listener=Listener.model_validate_json(row["listener"]),
            prompt_version=row["prompt_version"], messages=row["messages"],
            backend=endpoint.backend, model=endpoint.model, sampling=sampling(config),
            raw_output=row.get("generation"), parsed=row["parsed"], parse_error=row["parse_error"],
            explanation=row["explanation"], facts_used=row["facts_used"] or [], gates=gates,
            metadata=meta, task=config.task))
    return records


def summarize(records: list[ExplanationRecord]) -> dict[str, Any]:
    n = len(records)
    parsed = sum(r.parsed for r in records)
    out: dict[str, Any] = {"rows": n, "parsed": parsed, "parse_rate": round(parsed / n, 4) if n else 0.0,
                           "passed_all": sum(r.passed_all for r in records)}
    for gate in ("grounding", "style", "safety"):
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
    return out


class CallProgress:
    """A tqdm bar fed by the call cache's event log (distilabel's own logs are
    per batch and per step; this counts rows answered, cached or fresh)."""

    def __init__(self, db: Path, run_id: str, total: int, enabled: bool = True):
        self.db, self.run_id, self.total, self.enabled = db, run_id, total, enabled
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _watch(self) -> None:
        from tqdm import tqdm

        cache = CallCache(self.db)
        base = cache.stats(self.run_id)
        start = base["hit"] + base["miss"] + base["error"]
        with tqdm(total=self.total, desc="teacher calls", unit="row", mininterval=1.0) as bar:
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


def run_synth(config: SynthConfig, *, force: bool = False, catalog: Any = None,
              progress: bool = True) -> RunDir:
    """Plan, generate, parse, gate and write one run. Returns its RunDir."""
    from synth import backends
    from synth.catalog.ingest import load_catalog

    if config.task != "explain":
        # A task needs its template, parser and gates first (ARCHITECTURE.md "How to add a task").
        raise ValueError(f"config field 'task': {config.task!r} has no prompt template or gates yet; "
                         "only 'explain' can be generated")
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
    planned = plan_rows(catalog, config)
    timings["plan_s"] = time.perf_counter() - t0
    run.prepare()
    # Cache events are logged per attempt: a forced or resumed rerun reuses the
    # run's name, and its manifest must count only its own hits and misses.
    attempt = f"{run.name}@{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # torch after fork deadlocks otherwise
    os.environ.setdefault("DISTILABEL_LOG_LEVEL", "WARNING")  # progress comes from CallProgress
    t1 = time.perf_counter()
    with backends.teacher(config) as endpoint:
        timings["teacher_start_s"] = time.perf_counter() - t1
        rows, quarantine = build_rows(planned, builder, config, endpoint.backend, endpoint.model)
        pipeline = build_pipeline(rows, config, endpoint, attempt, catalog_dir)
        t2 = time.perf_counter()
        with CallProgress(paths.cache_db(), attempt, total=len(rows), enabled=progress):
            distiset = pipeline.run(use_cache=False)
        timings["pipeline_s"] = time.perf_counter() - t2
    out_rows = list(distiset["default"]["train"]) if distiset else []
    records = _records(out_rows, endpoint, config)
    got = {r.record_id for r in records}
    for row in rows:  # never lose a row silently
        if row["record_id"] not in got:
            quarantine.append({"record_id": row["record_id"], "stage": "pipeline",
                               "error": "row missing from pipeline output"})
    for r in records:
        if not r.parsed:
            quarantine.append({"record_id": r.record_id, "item_id": r.item.item_id,
                               "listener_id": r.listener.listener_id, "stage": "parse",
                               "error": r.parse_error, "raw_output": r.raw_output})
    run.write_rows([r.to_row() for r in records])
    run.write_quarantine(quarantine)
    cache = CallCache(paths.cache_db())
    timings["total_s"] = time.perf_counter() - t0
    summary = summarize(records)
    manifest = base_manifest("synth", config, run)
    manifest.update({
        "backend": {"name": endpoint.backend, "model": endpoint.model,
                    "base_url": endpoint.base_url, "structured_output": endpoint.structured,
                    "seed_sent": endpoint.send_seed,
                    "model_identity": endpoint.identity,
                    **(endpoint.info or {})},
        "prompt_version": builder.template.version_id,
        "catalog_dir": catalog_dir,
        "counts": {"planned": len(planned), "quarantined": len(quarantine), **summary},
        "cache": {"db": str(paths.cache_db()), "attempt": attempt, **cache.stats(attempt)},
        "timings": {k: round(v, 3) for k, v in timings.items()},
        "throughput": {"output_tokens_per_s": round(summary["output_tokens"] / timings["pipeline_s"], 2)
                       if timings["pipeline_s"] else None},
    })
    run.write_manifest(manifest)
    run.mark_complete()
    return run


def load_records(run: RunDir | str | Path) -> list[ExplanationRecord]:
    run = run if isinstance(run, RunDir) else RunDir(run)
    return [ExplanationRecord.from_row(r) for r in run.read_rows("generated").to_pylist()]
