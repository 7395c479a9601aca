"""Where things live on disk.

Everything fetched or built (catalog packages, models, service virtualenvs,
the teacher-call cache) sits under one home folder, `LINERNOTES_HOME`, which
defaults to `.linernotes/` in the source checkout (git-ignored) and is reused
when present. Runs go to one runs root, `runs_dir()`: $LINERNOTES_RUNS, else
`runs/` in the checkout.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

# No model hub is reachable here: anything that tries one must fail fast, not hang.
HUB_OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")


def use_offline_hub(env: dict[str, str] | None = None) -> None:
    """Set the Hugging Face offline switches in env (default: os.environ) unless
    the caller set them; call before transformers/datasets are imported.

    Returns None on purpose: returning the mapping made it the value of a marimo
    setup cell, which printed the whole environment (tokens included) on the page."""
    env = os.environ if env is None else env
    for var in HUB_OFFLINE_VARS:
        env.setdefault(var, "1")


def home() -> Path:
    env = os.environ.get("LINERNOTES_HOME")
    if env:
        path = Path(env).expanduser()
    elif (REPO_ROOT / "pyproject.toml").exists():
        path = REPO_ROOT / ".linernotes"
    else:
        path = Path.home() / ".cache" / "linernotes"
    path.mkdir(parents=True, exist_ok=True)
    return path


def sub(name: str) -> Path:
    path = home() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def packages_dir() -> Path:
    """Downloaded PyPI archives and their extracted contents."""
    return sub("packages")


def models_dir() -> Path:
    return sub("models")


def catalog_dir() -> Path:
    """Ingested catalogs: items/listeners parquet + quarantine."""
    return sub("catalog")


def services_dir() -> Path:
    """Service virtualenvs (vLLM CPU, Argilla), one folder each."""
    return sub("services")


def cache_db() -> Path:
    return home() / "teacher_cache.sqlite"


def runs_dir() -> Path:
    """The one runs root: $LINERNOTES_RUNS, else `runs/` in the source checkout, else
    LINERNOTES_HOME/runs. Never the working directory: a notebook started in notebooks/
    and the CLI started in the checkout must find the same runs."""
    env = os.environ.get("LINERNOTES_RUNS")
    if env:
        path = Path(env).expanduser().resolve()
    elif (REPO_ROOT / "pyproject.toml").exists():
        path = REPO_ROOT / "runs"
    else:
        path = home() / "runs"
    path.mkdir(parents=True, exist_ok=True)
    return path


FIXTURES = REPO_ROOT / "tests" / "fixtures"


@contextlib.contextmanager
def file_lock(path: Path):
    """Exclusive lock on `path` across processes: a second installer or
    converter waits, then finds the first one's result."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
