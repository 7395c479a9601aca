"""Helpers for the generate app (notebooks/01_generate.py).

The app stays a thin layer of widgets: everything it computes comes from here
or from `synth.pipeline`, so it can be tested without a browser or a model.

    catalog_dir() / load_catalog_safe()   which catalog the app shows (env override)
    ui_config()                           widget values -> a validated SynthConfig
    prompt_builder() / preview_table()    the planned (item, listener) pairs
    synth_argv() / stream_synth()         run the synth stage in a subprocess
    list_runs() / run_metrics()           finished runs and their manifest numbers
    records_frame() / filter_frame()      one table row per explanation
    gate_outcomes() / gate_chart()        pass/fail counts per gate and item type

Pipelines run in a subprocess on purpose: distilabel's `Pipeline.run()` installs
signal handlers, which fails outside the main thread (marimo runs cells in threads).
"""

from __future__ import annotations

import dataclasses
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from linernotes import paths
from linernotes.config import SynthConfig, load_config
from linernotes.domain.gates import GATE_NAMES
from linernotes.records import ExplanationRecord
from linernotes.runs import RunDir

ENV_CATALOG = "LINERNOTES_CATALOG_DIR"
ITEM_TYPES = ("music", "book", "podcast")
GATES = GATE_NAMES  # grounding, style, safety, usefulness
# Filters for the results table: label -> predicate over a records_frame row.
FILTERS = ("all rows", "any failure", "parse failed", *(f"failed {g}" for g in GATES), "passed all")


# --------------------------------------------------------------------------- catalog


def catalog_dir() -> Path:
    """The catalog the app reads: $LINERNOTES_CATALOG_DIR, else the ingested default."""
    env = os.environ.get(ENV_CATALOG)
    return Path(env).expanduser() if env else paths.catalog_dir()


def load_catalog_safe(path: str | Path) -> tuple[Any | None, str | None]:
    """(catalog, None) or (None, a sentence saying what is missing and how to get it)."""
    try:
        from synth.catalog.ingest import load_catalog
    except ImportError as exc:
        return None, f"catalog loader unavailable ({exc})"
    try:
        return load_catalog(path), None
    except FileNotFoundError as exc:
        return None, (f"no ingested catalog in {path} ({exc}); run `linernotes setup` "
                      f"or set {ENV_CATALOG}")
    except Exception as exc:  # a broken catalog must not take the app down
        return None, f"could not load the catalog in {path}: {type(exc).__name__}: {exc}"


def catalog_counts(catalog: Any) -> dict[str, dict[str, int]]:
    """{item_type: {"items": n, "listeners": n}} for the types the catalog holds."""
    out = {}
    for t in ITEM_TYPES:
        n_items, n_listeners = len(catalog.items_of_type(t)), len(catalog.listeners_of_type(t))
        if n_items or n_listeners:
            out[t] = {"items": n_items, "listeners": n_listeners}
    return out


# --------------------------------------------------------------------------- config


def ui_config(*, item_types: list[str], n_per_type: int, seed: int, backend: str,
              template: str | None, golden_examples: str | None, temperature: float,
              max_new_tokens: int, model: str | None = None, base_url: str | None = None,
              catalog: str | Path | None = None, runs: str | Path | None = None,
              **more: Any) -> SynthConfig:
    """Widget values -> SynthConfig (validated like CLI flags; ValueError says which field).

    catalog_dir and runs_dir are made absolute so the subprocess and the app
    agree on the run directory whatever their working directories.
    """
    if not item_types:
        raise ValueError("pick at least one item type")
    values: dict[str, Any] = {
        "item_types": list(item_types), "n_per_type": n_per_type, "seed": seed,
        "backend": backend, "template": _blank_none(template),
        "golden_examples": _blank_none(golden_examples), "temperature": temperature,
        "max_new_tokens": max_new_tokens, "model": _blank_none(model),
        "base_url": _blank_none(base_url),
        "catalog_dir": str(Path(catalog or catalog_dir()).resolve()),
        "runs_dir": str(Path(runs or paths.runs_dir()).resolve()),
        **more,
    }
    for key in ("template", "golden_examples"):
        if values[key] and not Path(values[key]).is_file():
            raise ValueError(f"{key}: file not found: {values[key]}")
    return load_config(SynthConfig, None, values)


def _blank_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


# --------------------------------------------------------------------------- preview


def prompt_builder(config: SynthConfig):
    from linernotes.domain.prompts import PromptBuilder

    return PromptBuilder.default(config.template, config.golden_examples, config.few_shot,
                                 config.max_words)


def preview_table(planned: list[Any]) -> list[dict[str, Any]]:
    """One display row per planned (item, listener) pair."""
    rows = []
    for i, p in enumerate(planned):
        it, ls = p.item, p.listener
        rows.append({
            "row": i, "item_type": it.item_type, "item_id": it.item_id, "title": it.title,
            "creator": it.creator or "", "genres": ", ".join(it.genres),
            "listener_id": ls.listener_id, "country": ls.country or "",
            "age_band": ls.age_band or "", "history": len(ls.history),
            "taste": ", ".join(ls.taste),
        })
    return rows


# --------------------------------------------------------------------------- subprocess


def synth_argv(config: SynthConfig, *, force: bool = False,
               python: str | None = None) -> list[str]:
    """`python -m linernotes.cli synth --field value ...` reproducing `config` exactly."""
    argv = [python or sys.executable, "-m", "linernotes.cli", "synth"]
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if value is None:
            continue
        if isinstance(value, list):
            value = ",".join(str(v) for v in value)
        elif isinstance(value, bool):
            value = "true" if value else "false"
        argv += ["--" + f.name.replace("_", "-"), str(value)]
    if force:
        argv.append("--force")
    return argv


def run_dir_for(config: SynthConfig) -> RunDir:
    return RunDir.for_config(config, "synth")


@dataclass
class SynthProgress:
    """What the app shows while (and after) the subprocess runs."""

    run: RunDir
    planned: int
    lines: list[str] = field(default_factory=list)
    calls_done: int = 0  # cache hits + misses + errors logged for this run so far
    elapsed_s: float = 0.0
    returncode: int | None = None  # None while running

    @property
    def finished(self) -> bool:
        return self.returncode is not None

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.run.is_complete()

    def tail(self, n: int = 15) -> str:
        return "\n".join(self.lines[-n:])


def stream_synth(config: SynthConfig, *, force: bool = False, poll_s: float = 0.5,
                 env: dict[str, str] | None = None,
                 timeout_s: float | None = None) -> Iterator[SynthProgress]:
    """Run the synth stage in a subprocess and yield progress every `poll_s`.

    Progress counts the teacher-cache events logged under this run's name
    (one per row: hit, miss or error), so it works for every backend. The last
    item has `returncode` set. Closing the generator early (an interrupted
    cell) kills the subprocess's whole process group.
    """
    from linernotes.services.process import stop_group
    from synth.cache import CallCache

    run = run_dir_for(config)
    planned = len(config.item_types) * config.n_per_type
    cache = CallCache(paths.cache_db())
    before = sum(cache.stats_for_run(run.name).values())
    child_env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1", "TERM": "dumb",
                 "COLUMNS": "160", **(env or {})}
    proc = subprocess.Popen(synth_argv(config, force=force), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors="replace",
                            cwd=paths.REPO_ROOT, env=child_env, start_new_session=True)
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    progress = SynthProgress(run=run, planned=planned)
    t0 = time.monotonic()
    eof = False
    try:
        while True:
            deadline = time.monotonic() + poll_s
            while not eof:
                try:
                    line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if line is None:
                    eof = True
                elif line.strip():
                    _append_line(progress.lines, line)
            progress.elapsed_s = time.monotonic() - t0
            progress.calls_done = sum(cache.stats_for_run(run.name).values()) - before
            if eof and proc.poll() is not None:
                progress.returncode = proc.wait()
                yield progress
                return
            if timeout_s is not None and progress.elapsed_s > timeout_s:
                progress.lines.append(f"timed out after {timeout_s:.0f}s; stopping")
                stop_group(proc.pid)
                progress.returncode = proc.wait()
                yield progress
                return
            yield progress
    finally:
        if proc.poll() is None:
            stop_group(proc.pid)
            proc.wait()
        cache.close()


def _append_line(lines: list[str], line: str) -> None:
    """Append a log line; a progress-bar update (tqdm writes '\\r' refreshes, which
    arrive as lines) replaces the previous update of the same bar."""
    if "%|" in line and lines and "%|" in lines[-1]:
        if lines[-1].split(":", 1)[0] == line.split(":", 1)[0]:
            lines[-1] = line
            return
    lines.append(line)


# --------------------------------------------------------------------------- runs


def list_runs(runs: str | Path | None = None) -> list[RunDir]:
    """Complete synth runs (with a manifest) under `runs` (default: the runs root), newest first."""
    return [r for r in RunDir.find_all("synth", require="manifest.json", runs_dir=runs)
            if r.stage() == "synth"]


def run_metrics(manifest: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers of a run, from its manifest."""
    counts = manifest.get("counts", {})
    cache = manifest.get("cache", {})
    backend = manifest.get("backend", {})
    return {
        "rows": counts.get("rows"),
        "parse_rate": counts.get("parse_rate"),
        "passed_all": counts.get("passed_all"),
        "output_tokens": counts.get("output_tokens"),
        "output_tokens_per_s": (manifest.get("throughput") or {}).get("output_tokens_per_s"),
        "pipeline_s": (manifest.get("timings") or {}).get("pipeline_s"),
        "cache_hit_miss_error": f"{cache.get('hit', 0)}/{cache.get('miss', 0)}/{cache.get('error', 0)}",
        "backend": f"{backend.get('name')} / {backend.get('model')}",
        "prompt_version": manifest.get("prompt_version"),
        "quarantined": counts.get("quarantined"),
        **yield_metrics(manifest),
    }


def yield_metrics(manifest: dict[str, Any]) -> dict[str, Any]:
    """What generate-check-revise bought (synth/revise.py); empty for runs made before it."""
    y = manifest.get("yield")
    if not y:
        return {}
    return {"accepted": f"{y['accepted']}/{y['pairs']}",
            "accepted_first_time_vs_revision": f"{y['accepted_first_time']} / {y['accepted_after_revision']}",
            "tokens_per_accepted": y.get("tokens_per_accepted"),
            "model_s_per_accepted": y.get("model_s_per_accepted"),
            "wall_s_per_accepted": y.get("wall_s_per_accepted"),
            "first_round_gate_failures": y.get("first_round_gate_failures")}


# --------------------------------------------------------------------------- results


def records_frame(records: list[ExplanationRecord]):
    """One row per explanation: item, listener, explanation, parse and gate verdicts."""
    import pandas as pd

    rows = []
    for r in records:
        call = r.metadata.get("call", {}) if isinstance(r.metadata, dict) else {}
        failed = [g for g in r.gates if not r.gates[g].passed]
        row = {
            "item_type": r.item.item_type, "title": r.item.title, "creator": r.item.creator or "",
            "listener_id": r.listener.listener_id, "explanation": r.explanation or "",
            "parsed": r.parsed, "parse_error": r.parse_error or "",
        }
        for g in GATES:
            row[g] = r.gates[g].passed if g in r.gates else None
        row.update({
            "passed_all": r.passed_all,
            "failed_gates": ", ".join(failed),
            "reasons": "; ".join(f"{g}: {reason}" for g, res in r.gates.items()
                                 for reason in res.reasons),
            "cache": call.get("cache") or "",
            "finish_reason": call.get("finish_reason") or "",
            "output_tokens": call.get("output_tokens"),
            "item_id": r.item.item_id, "record_id": r.record_id,
        })
        rows.append(row)
    columns = (["item_type", "title", "creator", "listener_id", "explanation", "parsed",
                "parse_error", *GATES, "passed_all", "failed_gates", "reasons", "cache",
                "finish_reason", "output_tokens", "item_id", "record_id"])
    return pd.DataFrame(rows, columns=columns)


def filter_frame(frame, which: str):
    """Rows of a records_frame matching one of FILTERS."""
    if which == "all rows":
        return frame
    if which == "any failure":
        return frame[~frame["passed_all"].astype(bool)]
    if which == "parse failed":
        return frame[~frame["parsed"].astype(bool)]
    if which == "passed all":
        return frame[frame["passed_all"].astype(bool)]
    if which.startswith("failed "):
        gate = which.removeprefix("failed ")
        return frame[frame[gate] == False]  # noqa: E712 (None = gate absent, not failed)
    raise ValueError(f"unknown filter {which!r}; known: {FILTERS}")


def gate_outcomes(records: list[ExplanationRecord]):
    """Long table: item_type, check (parse + each gate), outcome (pass/fail), count."""
    import pandas as pd

    counts: dict[tuple[str, str, str], int] = {}
    for r in records:
        checks = {"parse": r.parsed, **{g: res.passed for g, res in r.gates.items()}}
        for check, ok in checks.items():
            key = (r.item.item_type, check, "pass" if ok else "fail")
            counts[key] = counts.get(key, 0) + 1
    order = {c: i for i, c in enumerate(("parse", *GATES))}
    rows = [{"item_type": t, "check": c, "outcome": o, "count": n}
            for (t, c, o), n in counts.items()]
    rows.sort(key=lambda d: (d["item_type"], order.get(d["check"], 99), d["check"], d["outcome"]))
    return pd.DataFrame(rows, columns=["item_type", "check", "outcome", "count"])


def gate_chart(records: list[ExplanationRecord], title: str | None = None):
    """Stacked pass/fail bars per check, one panel per item type (plotly)."""
    import plotly.express as px

    data = gate_outcomes(records)
    fig = px.bar(data, x="check", y="count", color="outcome", facet_col="item_type",
                 color_discrete_map={"pass": "#2ca02c", "fail": "#d62728"},
                 category_orders={"check": ["parse", *GATES], "outcome": ["pass", "fail"]},
                 title=title or "parse and gate outcomes per item type", text="count")
    fig.update_layout(barmode="stack", height=380, margin={"t": 70, "b": 40})
    fig.for_each_annotation(lambda a: a.update(text=a.text.split("=")[-1]))
    return fig
