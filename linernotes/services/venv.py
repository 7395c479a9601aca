"""Service virtualenvs: create once, stream installer output, fail with its tail.

Shared by the vLLM CPU and Argilla installers (each keeps its own pins,
stamp and lock).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

# The machine's pip config lists two file:// indexes that lack most projects;
# pip warns "... is ignored" for each lookup.
_PIP_NOISE = "is ignored: it is neither a file nor a directory"


def run_streaming(cmd: list[str], env: dict | None = None) -> None:
    """Run a command, printing its output (minus pip's index noise); raise with the last lines."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, **(env or {})})
    assert proc.stdout is not None
    tail: list[str] = []
    for line in proc.stdout:
        if _PIP_NOISE in line:
            continue
        tail = (tail + [line.rstrip()])[-40:]
        print("    " + line.rstrip(), flush=True)
    if proc.wait() != 0:
        raise RuntimeError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n" + "\n".join(tail))


def prepare_venv(venv: Path, *, force: bool = False, base_python: str | None = None,
                 log: Callable[[str], None] = print) -> str:
    """(Re)create `venv` when forced or missing, drop old stamps, upgrade pip.
    Returns the venv's python."""
    python = venv / "bin" / "python"
    if force or not python.exists():
        shutil.rmtree(venv, ignore_errors=True)
        base = base_python or sys.executable
        log(f"creating venv {venv} with {base}")
        run_streaming([base, "-m", "venv", str(venv)])
    for old in venv.glob(".installed-*"):
        old.unlink()
    log("upgrading pip")
    run_streaming([str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
    return str(python)
