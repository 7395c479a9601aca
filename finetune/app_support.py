"""Helpers for notebooks/04_finetune.py: runs, loss curves, training in a subprocess.

Training runs as `python -m finetune.train` in a subprocess (not in the app's
kernel thread): the app stays responsive, a stopped app does not leave a
half-trained model in memory, and the subprocess writes the same run folder
(checkpoints, train_log.jsonl) that the loss chart reads as it grows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from finetune.config import FinetuneConfig
from finetune.train import LOG_NAME, complete_runs, read_log
from linernotes import paths


def list_runs(stages: tuple[str, ...] = ("dpo", "finetune")) -> list[Path]:
    """Complete training runs (with an adapter), newest first."""
    return complete_runs(stages)


def train_argv(config: FinetuneConfig) -> list[str]:
    """`python -m finetune.train` with every config field as a flag (what the button runs)."""
    argv = [sys.executable, "-m", "finetune.train"]
    defaults = FinetuneConfig()
    for name, value in config.__dict__.items():
        if value is None or value == getattr(defaults, name):
            continue
        flag = "--" + name.replace("_", "-")
        if isinstance(value, list):
            argv += [flag, ",".join(map(str, value))]
        else:
            argv += [flag, str(value)]
    return argv


@dataclass
class TrainProgress:
    run_dir: Path
    steps: list[dict[str, Any]] = field(default_factory=list)
    max_steps: int | None = None
    returncode: int | None = None
    output: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def finished(self) -> bool:
        return self.returncode is not None

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and (self.run_dir / "COMPLETE").exists()

    def tail(self, n: int = 20) -> str:
        return "".join(self.output[-n:])


def stream_training(config: FinetuneConfig, train_rows_path: str, poll_s: float = 1.0) -> Iterator[TrainProgress]:
    """Run training in a subprocess; yield progress (step log so far) every `poll_s` and at the end."""
    from finetune.data import load_rows
    from finetune.train import run_dir_for

    run = run_dir_for(config, load_rows(train_rows_path))
    cfg = FinetuneConfig(**{**config.__dict__, "train_data": train_rows_path})
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    paths.use_offline_hub(env)
    t0 = time.monotonic()
    proc = subprocess.Popen(train_argv(cfg), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, cwd=paths.REPO_ROOT)
    progress = TrainProgress(run.path, max_steps=config.max_steps if config.max_steps > 0 else None)
    # A reader thread: the child's output must be drained or it blocks on a full pipe.
    reader = threading.Thread(target=lambda: progress.output.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    while True:
        progress.steps = read_log(run.path) if (run.path / LOG_NAME).exists() else []
        progress.elapsed_s = time.monotonic() - t0
        if proc.poll() is not None:
            reader.join(timeout=5)
            progress.returncode = proc.returncode
            progress.steps = read_log(run.path)
            yield progress
            return
        yield progress
        time.sleep(poll_s)


def loss_figure(steps: list[dict[str, Any]], title: str = "training loss", dpo_steps=None):
    """Loss per optimizer step (SFT, and DPO if given) as a plotly figure."""
    import plotly.graph_objects as go

    fig = go.Figure()
    xs = [s["step"] for s in steps if "loss" in s]
    fig.add_trace(go.Scatter(x=xs, y=[s["loss"] for s in steps if "loss" in s], mode="lines+markers",
                             name="SFT loss"))
    if dpo_steps:
        fig.add_trace(go.Scatter(x=[s["step"] for s in dpo_steps if "loss" in s],
                                 y=[s["loss"] for s in dpo_steps if "loss" in s],
                                 mode="lines+markers", name="DPO loss"))
    fig.update_layout(title=title, xaxis_title="optimizer step", yaxis_title="loss", height=360)
    return fig


def side_by_side(samples: list[dict[str, Any]]):
    """Base vs tuned explanation per held-out pair, with the grounding verdicts."""
    import pandas as pd

    rows = []
    for s in samples:
        rows.append({"item": f"{s.get('title')} / {s.get('creator')}", "listener": s["listener_id"],
                     "base": s["base"]["explanation"] or f"(unparsable) {s['base']['output'][:120]}",
                     "base grounded": s["base"]["grounding_passed"],
                     "tuned": s["tuned"]["explanation"] or f"(unparsable) {s['tuned']['output'][:120]}",
                     "tuned grounded": s["tuned"]["grounding_passed"]})
    return pd.DataFrame(rows)


def manifest(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else {}
