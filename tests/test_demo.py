"""The demo's orchestration (linernotes/demo.py), the walkthrough that must run the same
stages on the same rows, and the set-up script's failure handling."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
from pathlib import Path

from linernotes import demo, paths

STAGES = {"setup", "synthesize", "curate", "label", "publish", "finetune", "report_card", "export"}
# Stage internals a notebook cell must not call directly: it would drift from the demo.
INTERNALS = {"run_synth", "run_curate", "train_sft", "train_dpo", "run_export", "evaluate",
             "golden_example_rows", "load_rows", "publish_runs", "demo_label", "cmd_setup"}


def _calls(tree: ast.AST) -> tuple[set[str], set[str]]:
    """(attributes called on `demo`, bare or attribute names called anywhere)."""
    on_demo, names = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Attribute):
                names.add(f.attr)
                if isinstance(f.value, ast.Name) and f.value.id == "demo":
                    on_demo.add(f.attr)
            elif isinstance(f, ast.Name):
                names.add(f.id)
    return on_demo, names


def test_walkthrough_runs_the_demo_stage_functions():
    nb = json.loads((paths.REPO_ROOT / "notebooks" / "walkthrough.ipynb").read_text())
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    on_demo, names = _calls(ast.parse(code))
    assert STAGES <= on_demo, f"walkthrough skips demo stages {STAGES - on_demo}"
    assert not (names & INTERNALS), f"walkthrough calls stage internals {names & INTERNALS}"


def test_demo_run_chains_the_same_stage_functions():
    src = Path(demo.__file__).read_text()
    run_fn = next(n for n in ast.parse(src).body if isinstance(n, ast.FunctionDef) and n.name == "run")
    _, names = _calls(run_fn)
    # stages run through run()'s `timed(name, stage_fn, ...)`, which records seconds per stage
    timed = {a.id for node in ast.walk(run_fn) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Name) and node.func.id == "timed"
             for a in node.args if isinstance(a, ast.Name)}
    assert (STAGES | {"serve"}) <= names | timed


def test_training_rows_are_the_published_table_plus_golden_examples(tmp_path):
    from finetune.data import golden_example_rows

    golden = golden_example_rows()
    rows = demo.training_rows(tmp_path)  # a publish folder without an sft table
    assert golden and rows == golden


def _fake_project(tmp_path: Path, failing: str) -> Path:
    """A copy of the bootstrap script beside a stand-in `.venv/bin/python` that fails
    `pip install` when its arguments contain `failing` and succeeds at everything else."""
    root = tmp_path / "proj"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(paths.REPO_ROOT / "scripts" / "bootstrap.sh", root / "scripts" / "bootstrap.sh")
    (root / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    bin_dir = root / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    fake = bin_dir / "python"
    fake.write_text("#!/usr/bin/env bash\n"
                    f'if [[ "$*" == *"pip install"*"{failing}"* ]]; then\n'
                    '  echo "ERROR: stand-in pip: no matching distribution" >&2; exit 1\nfi\nexit 0\n')
    fake.chmod(0o755)
    return root


def test_bootstrap_stops_on_a_pip_failure_and_does_not_mark_the_install_done(tmp_path):
    root = _fake_project(tmp_path, failing="-e .")
    out = subprocess.run(["bash", "scripts/bootstrap.sh"], cwd=root, capture_output=True, text=True,
                         env={**os.environ, "PYTHON": "python3"})
    assert out.returncode != 0
    assert "FAILED" in out.stderr and "no matching distribution" in out.stdout + out.stderr
    assert not list((root / ".venv").glob(".installed-*"))


def test_bootstrap_marks_a_good_install_done(tmp_path):
    root = _fake_project(tmp_path, failing="nothing-fails")
    out = subprocess.run(["bash", "scripts/bootstrap.sh"], cwd=root, capture_output=True, text=True,
                         env={**os.environ, "PYTHON": "python3"})
    assert out.returncode == 0, out.stderr
    assert len(list((root / ".venv").glob(".installed-*"))) == 1
