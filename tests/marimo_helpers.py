"""What every marimo app test checks: `marimo check` is clean, the app's own `test_*`
cells pass under pytest, and the app module loads for headless `app.run()`."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

from linernotes import paths


def load_module(notebook: Path):
    spec = importlib.util.spec_from_file_location(f"notebook_{notebook.stem}", notebook)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_app(notebook: Path):
    return load_module(notebook).app


def assert_marimo_check_clean(notebook: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "marimo", "check", str(notebook)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not proc.stdout.strip(), proc.stdout


def assert_test_cells_pass(notebook: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(notebook)],
                          capture_output=True, text=True, timeout=300, cwd=paths.REPO_ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "failed" not in proc.stdout
