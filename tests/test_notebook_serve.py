"""The serve playground (notebooks/05_serve.py), headless.

(a) `marimo check` is clean and the app's own `test_*` functions pass;
(b) `app.run()` over the fixture catalog builds the pickers with the button
    unpressed: no endpoint starts, no model loads;
(c) integration: the button pressed (overridden) starts a real endpoint over the
    packaged GGUF and shows a gated liner note with its latency.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from linernotes import paths
from marimo_helpers import assert_marimo_check_clean, assert_test_cells_pass, load_app
from linernotes.domain.gates import GATE_NAMES

NOTEBOOK = paths.REPO_ROOT / "notebooks" / "05_serve.py"


def _load_app():
    return load_app(NOTEBOOK)


def test_marimo_check_is_clean():
    assert_marimo_check_clean(NOTEBOOK)


def test_notebook_test_cells_pass():
    assert_test_cells_pass(NOTEBOOK)


def test_app_builds_pickers_without_starting_anything(fixture_catalog_dir, tmp_path, monkeypatch):
    from serve import playground

    monkeypatch.setenv("LINERNOTES_CATALOG_DIR", str(fixture_catalog_dir))
    monkeypatch.setenv("LINERNOTES_RUNS", str(tmp_path / "runs"))
    _, defs = _load_app().run()
    assert defs["catalog"] is not None, defs["catalog_error"]
    assert defs["exports"] == {}  # no fine-tune export in the empty runs folder
    item_id, listener_id = defs["item_ui"].value, defs["listener_ui"].value
    assert item_id in defs["catalog"].items
    assert defs["picked_listener"].listener_id == listener_id
    assert defs["picked_item"].item_type == defs["item_type_ui"].value
    assert defs["start_button"].value is False
    assert "results" not in defs and not playground.ENDPOINTS.handles  # nothing started


def test_exports_are_found_with_the_preferred_quantization(tmp_path):
    from serve import playground

    folder = tmp_path / "finetune-abc" / "export"
    folder.mkdir(parents=True)
    (folder / "model-Q8_0.gguf").write_bytes(b"GGUF")
    (folder / "model-Q4_0.gguf").write_bytes(b"GGUF")
    found = playground.find_exports(tmp_path)
    assert list(found.values()) == [folder / "model-Q4_0.gguf"]


@pytest.mark.integration
def test_button_serves_and_explains(fixture_catalog_dir, tmp_path, monkeypatch):
    from serve import playground

    monkeypatch.setenv("LINERNOTES_CATALOG_DIR", str(fixture_catalog_dir))
    monkeypatch.setenv("LINERNOTES_RUNS", str(tmp_path / "runs"))
    try:
        _, defs = _load_app().run(defs={"start_button": SimpleNamespace(value=True)})
        result = defs["results"][playground.BASE_LABEL]
        assert "error" not in result, result
        assert result["item_id"] == defs["picked_item"].item_id
        assert set(result["gates"]) == set(GATE_NAMES) and result["latency_ms"] > 0
        assert list(defs["comparison"]["model"]) == [playground.BASE_LABEL]
    finally:
        playground.ENDPOINTS.stop_all()


def test_button_refuses_an_ungated_export_and_says_why(fixture_catalog_dir, tmp_path, monkeypatch):
    """The tuned export failed its gate: the app starts only the base model (stand-ins for
    the endpoint and the call here) and the tuned row names the manifest's verdict."""
    import json

    from serve import launch, playground

    runs = tmp_path / "runs"
    export = runs / "finetune-bad" / "export"
    export.mkdir(parents=True)
    (export / "model-Q4_0.gguf").write_bytes(b"GGUF stand-in")
    (export / "manifest.json").write_text(json.dumps({"stage": "export", "files": {}, "gate": {
        "enabled": True, "passed": False,
        "results": {"Q4_0": {"passed": False, "reasons": ["agreement 0.41 < 0.9"]}}}}))
    started = []

    def stand_in_endpoint(model_path, **kw):
        started.append(model_path)
        return SimpleNamespace(base_url="http://127.0.0.1:9/v1", api_key="stand-in-key",
                               served_name="smollm2-135m-instruct",
                               process=SimpleNamespace(healthy=lambda: True))

    monkeypatch.setattr(launch, "start_endpoint", stand_in_endpoint)
    monkeypatch.setattr(playground, "explain_via", lambda handle, *a, **kw: {
        "explanation": "A stand-in note.", "passed": True, "latency_ms": 1.0, "gates": {}})
    monkeypatch.setattr(playground, "ENDPOINTS", playground.Endpoints())
    monkeypatch.setenv("LINERNOTES_CATALOG_DIR", str(fixture_catalog_dir))
    monkeypatch.setenv("LINERNOTES_RUNS", str(runs))
    from synth.catalog.ingest import load_catalog

    # the pick cell's widgets, overridden together (marimo wants all of a cell's names)
    items, listeners = playground.pair_options(load_catalog(fixture_catalog_dir), "music")
    picks = {"item_options": items, "item_ui": SimpleNamespace(value=next(iter(items.values()))),
             "listener_options": listeners,
             "listener_ui": SimpleNamespace(value=next(iter(listeners.values()))),
             "max_tokens_ui": SimpleNamespace(value=32),
             "tuned_ui": SimpleNamespace(value=str(export / "model-Q4_0.gguf")),
             "allow_ungated_ui": SimpleNamespace(value=False)}
    monkeypatch.setenv("LINERNOTES_HOME", str(tmp_path / "home"))
    outputs, defs = _load_app().run(defs={"start_button": SimpleNamespace(value=True), **picks})
    assert started == [None]  # the base model only
    # the "call it yourself" box reads the key from a 0600 file, never shows it
    page = " ".join(str(getattr(o, "text", o)) for o in outputs)
    assert "LINERNOTES_ENDPOINT_KEY" in page and "stand-in-key" not in page
    assert (tmp_path / "home" / "serve" / "app-base-packaged-smollm2.key").read_text() == "stand-in-key"
    error = defs["results"]["tuned"]["error"]
    assert "refusing to serve" in error and str(export / "manifest.json") in error
    assert "agreement 0.41" in error
    assert "gate FAILED" in next(iter(defs["exports"]))
