"""Run directories: outputs as a `datasets` parquet dataset + manifest + marker.

Layout of `runs/<run name>/`:
    data/train-00000-of-00001.parquet   the records (datasets / load_dataset("parquet"))
    quarantine.jsonl                    rows that could not be processed, with the reason
    manifest.json                       config, seed, versions, backend, counts, timings
    COMPLETE                            written last: a run without it is unfinished

A rerun of the same config finds COMPLETE and skips the work (datatrove-style).
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Iterable

from linernotes import paths

VERSIONED = ("linernotes", "distilabel", "datasets", "transformers", "torch", "openai",
             "xllamacpp", "pydantic", "marimo")


def package_versions(names: Iterable[str] = VERSIONED) -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    @classmethod
    def for_config(cls, config: Any, stage: str) -> "RunDir":
        base = Path(config.runs_dir) if getattr(config, "runs_dir", None) else paths.runs_dir()
        name = getattr(config, "run_name", None) or f"{stage}-{config.fingerprint()}"
        return cls(base / name)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def data_dir(self) -> Path:
        return self.path / "data"

    @property
    def parquet_path(self) -> Path:
        return self.data_dir / "train-00000-of-00001.parquet"

    @property
    def manifest_path(self) -> Path:
        return self.path / "manifest.json"

    @property
    def quarantine_path(self) -> Path:
        return self.path / "quarantine.jsonl"

    def is_complete(self) -> bool:
        return (self.path / "COMPLETE").exists()

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.path / "COMPLETE").unlink(missing_ok=True)

    def write_rows(self, rows) -> None:
        """Write rows (list of dicts or a DataFrame) as a parquet shard via
        `datasets` (atomic: temp file, then rename)."""
        import datasets

        self.data_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.parquet_path.with_suffix(".parquet.tmp")
        if isinstance(rows, list):
            ds = datasets.Dataset.from_list(rows)
        else:  # pandas: its dtypes type mostly-None columns, from_list cannot
            ds = datasets.Dataset.from_pandas(rows, preserve_index=False)
        ds.to_parquet(str(tmp))
        os.replace(tmp, self.parquet_path)

    def write_quarantine(self, entries: list[dict[str, Any]]) -> None:
        with open(self.quarantine_path, "w") as fh:
            for entry in entries:
                fh.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        tmp = self.manifest_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False, default=str))
        os.replace(tmp, self.manifest_path)

    def mark_complete(self) -> None:
        (self.path / "COMPLETE").write_text(time.strftime("%Y-%m-%dT%H:%M:%S"))

    def manifest(self) -> dict[str, Any]:
        return json.loads(self.manifest_path.read_text())

    def load_dataset(self):
        import datasets

        return datasets.load_dataset("parquet", data_files=str(self.parquet_path), split="train")


def base_manifest(stage: str, config: Any, run: RunDir) -> dict[str, Any]:
    return {
        "stage": stage,
        "run": run.name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": dataclasses.asdict(config),
        "config_fingerprint": config.fingerprint(),
        "seed": getattr(config, "seed", None),
        "versions": package_versions(),
        "host": {"platform": platform.platform(), "cpus": os.cpu_count(), "argv": sys.argv},
    }
