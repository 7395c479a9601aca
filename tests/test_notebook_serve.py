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
        assert set(result["gates"]) == {"grounding", "style", "safety"} and result["latency_ms"] > 0
        assert list(defs["comparison"]["model"]) == [playground.BASE_LABEL]
    finally:
        playground.ENDPOINTS.stop_all()
