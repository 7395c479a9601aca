"""notebooks/walkthrough.ipynb runs headless (nbclient) in its small mode: the whole loop
on the fixture catalog with the real parts (llama.cpp teacher, embeddings, LoRA steps,
report card, GGUF export + gate, the endpoint with the openai client), without Argilla."""

from __future__ import annotations

import json
import os

import pytest

from linernotes import paths

NOTEBOOK = paths.REPO_ROOT / "notebooks" / "walkthrough.ipynb"


def test_notebook_is_clean_json_without_outputs():
    nb = json.loads(NOTEBOOK.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code and all(not c.get("outputs") for c in code), "commit the notebook without outputs"


def _cell_outputs(nb, last: int = 3, limit: int = 6000) -> str:
    """The outputs (stream text, errors with tracebacks) of the last executed code cells."""
    import re

    ran = [c for c in nb.cells if c.cell_type == "code" and c.get("outputs")][-last:]
    parts = []
    for cell in ran:
        for o in cell.outputs:
            if o.get("output_type") == "error":
                parts.append(f"{o.get('ename')}: {o.get('evalue')}\n" + "\n".join(o.get("traceback", [])))
            elif o.get("output_type") == "stream":
                parts.append(o.get("text", ""))
    return re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(parts))[-limit:]


@pytest.mark.slow
@pytest.mark.integration
def test_walkthrough_runs_end_to_end(tmp_path, fixture_catalog_dir, monkeypatch):
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    monkeypatch.setenv("LINERNOTES_WALKTHROUGH", "small")
    monkeypatch.setenv("LINERNOTES_CATALOG_DIR", str(fixture_catalog_dir))
    monkeypatch.setenv("LINERNOTES_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    try:
        client.execute()
    except CellExecutionError as exc:
        # nbclient's message can carry an empty traceback; the cell's own outputs say what broke.
        pytest.fail(f"walkthrough cell failed: {exc.ename}: {exc.evalue}\n{_cell_outputs(nb)}")
    text = "\n".join(o.get("text", "") or json.dumps(o.get("data", {}))
                     for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "'small': True" in text
    runs = sorted(p.name.split("-")[0] for p in (tmp_path / "runs").iterdir())
    assert {"synth", "curate", "publish", "finetune"} <= set(runs)
    ft = next((tmp_path / "runs").glob("finetune-*"))
    assert (ft / "eval" / "report.json").exists() and (ft / "export" / "COMPLETE").exists()
    assert "chat:" in text and "explain:" in text and "gates passed:" in text
