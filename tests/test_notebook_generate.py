"""The generate app (notebooks/01_generate.py), headless.

(a) `marimo check` is clean and the app's own `test_*` functions pass under pytest;
(b) `app.run()` builds the preview from the committed fixture catalog and opens
    a finished run from ./runs, with the Generate button unpressed (so no
    subprocess, no model);
(c) `marimo run --headless` serves the app over HTTP on 127.0.0.1, then stops.

The app reads its catalog from $LINERNOTES_CATALOG_DIR and its runs from
$LINERNOTES_RUNS; the tests point both at temp folders (the fixture is ingested
once per session), so they never depend on `linernotes setup`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from linernotes import paths
from linernotes.records import ExplanationRecord, GateResult
from linernotes.runs import RunDir, base_manifest
from linernotes.services.process import free_port, stop_group
from marimo_helpers import assert_marimo_check_clean, assert_test_cells_pass, load_app

NOTEBOOK = paths.REPO_ROOT / "notebooks" / "01_generate.py"
FIXTURE = paths.FIXTURES / "catalog"
SOURCES = ("music", "book", "podcast")


@pytest.fixture(scope="session")
def fixture_catalog(tmp_path_factory) -> Path:
    from synth.catalog.ingest import ingest

    out = tmp_path_factory.mktemp("catalog")
    ingest(SOURCES, out_dir=out, roots={s: FIXTURE / s for s in SOURCES})
    return out


def _fake_run(runs: Path, catalog_dir: Path) -> RunDir:
    """A finished synth run written without a teacher: 2 rows per type, one fails style."""
    from linernotes.config import SynthConfig
    from synth.catalog.ingest import load_catalog
    from synth.pipeline import plan_rows, summarize

    config = SynthConfig(n_per_type=2, catalog_dir=str(catalog_dir), runs_dir=str(runs),
                         run_name="synth-fake")
    planned = plan_rows(load_catalog(catalog_dir), config)
    records = []
    for i, p in enumerate(planned):
        style_ok = i % 2 == 0
        records.append(ExplanationRecord(
            record_id=f"r{i}", item=p.item, listener=p.listener, prompt_version="v1@test",
            messages=[{"role": "user", "content": "x"}], backend="llamacpp", model="fake",
            parsed=True, explanation=f"Because you liked {p.listener.history[0].title}.",
            facts_used=[], metadata={"call": {"cache": "miss", "output_tokens": 10}},
            gates={"grounding": GateResult(passed=True),
                   "style": GateResult(passed=style_ok, reasons=[] if style_ok else ["too long"]),
                   "safety": GateResult(passed=True)}))
    run = RunDir.for_config(config, "synth")
    run.prepare()
    run.write_rows([r.to_row() for r in records])
    manifest = base_manifest("synth", config, run)
    manifest.update({"counts": {"planned": len(planned), "quarantined": 0, **summarize(records)},
                     "cache": {"hit": 0, "miss": len(records), "error": 0},
                     "timings": {"pipeline_s": 2.0}, "throughput": {"output_tokens_per_s": 30.0},
                     "backend": {"name": "llamacpp", "model": "fake"}, "prompt_version": "v1@test"})
    run.write_manifest(manifest)
    run.mark_complete()
    return run


def _load_app():
    return load_app(NOTEBOOK)


def test_marimo_check_is_clean():
    assert_marimo_check_clean(NOTEBOOK)


def test_notebook_test_cells_pass():
    assert_test_cells_pass(NOTEBOOK)


def test_app_runs_headless_with_preview_and_results(fixture_catalog, tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    fake = _fake_run(runs, fixture_catalog)
    monkeypatch.setenv("LINERNOTES_CATALOG_DIR", str(fixture_catalog))
    monkeypatch.setenv("LINERNOTES_RUNS", str(runs))
    started = time.monotonic()
    outputs, defs = _load_app().run()
    assert time.monotonic() - started < 120

    # the catalog and the config come from the widgets' defaults
    assert defs["catalog"] is not None, defs["catalog_error"]
    config = defs["config"]
    assert defs["config_error"] is None and config is not None
    assert config.catalog_dir == str(fixture_catalog.resolve())
    assert config.item_types == list(SOURCES) and config.backend == "llamacpp"

    # preview: the planned pairs and the exact chat messages of the first row
    planned = defs["planned"]
    assert len(planned) == len(SOURCES) * config.n_per_type
    assert len(defs["preview"].data) == len(planned)
    messages = defs["preview_messages"]
    assert messages[0]["role"] == "system" and messages[-1]["role"] == "user"
    assert json.dumps(planned[0].item.title, ensure_ascii=False)[1:-1] in messages[-1]["content"]
    assert messages == defs["builder"].messages(planned[0].item, planned[0].listener)

    # the Generate button was not pressed: nothing ran, no run directory for this config
    assert defs["run_button"].value is False
    assert not RunDir.for_config(config, "synth").path.exists()
    assert sorted(p.name for p in runs.iterdir()) == [fake.name]

    # results: the finished run opened from the dropdown, its rows, filters and chart
    assert defs["run_ui"].value == str(fake.path)
    records, frame = defs["records"], defs["results_frame"]
    assert len(records) == len(frame) == len(SOURCES) * 2
    assert defs["metrics"]["output_tokens_per_s"] == 30.0
    assert defs["metrics"]["parse_rate"] == 1.0
    assert list(defs["shown"]["record_id"]) == list(frame["record_id"])  # filter: all rows
    assert (frame["style"] == False).sum() == 3  # noqa: E712


def test_app_without_catalog_explains_itself(tmp_path, monkeypatch):
    monkeypatch.setenv("LINERNOTES_CATALOG_DIR", str(tmp_path / "nothing"))
    monkeypatch.setenv("LINERNOTES_RUNS", str(tmp_path / "runs"))
    _, defs = _load_app().run()
    assert defs["catalog"] is None
    assert "linernotes setup" in defs["catalog_error"]
    assert "planned" not in defs  # the preview stopped instead of failing


@pytest.mark.integration
def test_marimo_run_serves_http(fixture_catalog, tmp_path):
    port = free_port()
    env = {**os.environ, "LINERNOTES_CATALOG_DIR": str(fixture_catalog),
           "LINERNOTES_RUNS": str(tmp_path / "runs")}
    log = open(tmp_path / "marimo.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "marimo", "run", str(NOTEBOOK), "--headless",
                             "--host", "127.0.0.1", "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                resp = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
                status = resp.status_code
                if status == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        assert status == 200, (tmp_path / "marimo.log").read_text(errors="replace")[-3000:]
        assert "marimo" in resp.text.lower()
    finally:
        stop_group(proc.pid)
        proc.wait(timeout=30)
        log.close()
    assert proc.poll() is not None


@pytest.mark.integration
@pytest.mark.slow
def test_generate_button_runs_synth_in_a_subprocess(fixture_catalog, tmp_path, monkeypatch):
    """Generate pressed (run_button overridden): `linernotes synth` runs in a subprocess on
    the packaged SmolLM2 (llama.cpp), 1 row per type, and the results section opens it."""
    from types import SimpleNamespace

    from linernotes.assets import smollm2_gguf
    from synth import app_support

    runs = tmp_path / "runs"
    gguf = smollm2_gguf()  # resolved in the usual home: the fresh one below has no packages
    monkeypatch.setenv("LINERNOTES_CATALOG_DIR", str(fixture_catalog))
    monkeypatch.setenv("LINERNOTES_RUNS", str(runs))
    monkeypatch.setenv("LINERNOTES_HOME", str(tmp_path / "home"))  # fresh teacher cache
    config = app_support.ui_config(item_types=list(SOURCES), n_per_type=1, seed=3,
                                   backend="llamacpp", template=None, golden_examples=None,
                                   temperature=0.7, max_new_tokens=64, catalog=fixture_catalog,
                                   runs=runs, model_path=str(gguf))
    _, defs = _load_app().run(defs={"config": config, "config_error": None,
                                    "run_button": SimpleNamespace(value=True)})
    run = RunDir.for_config(config, "synth")
    assert run.is_complete(), sorted(p.name for p in runs.iterdir()) if runs.exists() else runs
    assert defs["run_ui"].value == str(run.path)
    assert len(defs["records"]) == len(SOURCES)
    assert defs["manifest"]["cache"]["miss"] == len(SOURCES)
    assert set(defs["results_frame"]["item_type"]) == set(SOURCES)
    assert not (tmp_path / "home" / "packages").exists() or not any(
        (tmp_path / "home" / "packages").iterdir())  # nothing was downloaded
