"""Run directories: outputs as a `datasets` parquet dataset + manifest + marker.

Layout of `runs/<run name>/`:
    data/train-00000-of-00001.parquet   the records (datasets / load_dataset("parquet"))
    quarantine.jsonl                    rows that could not be processed, with the reason
    manifest.json                       config, seed, versions, backend, counts, timings
    COMPLETE                            written last: a run without it is unfinished

A rerun of the same config finds COMPLETE and skips the work (datatrove-style).

The parquet files are written and read through their declared row kind
(`linernotes.rows`): `write_rows(rows, kind=...)`, `read_rows(kind)`.
`RunDir.find(stage, require=...)` is the one "newest complete run" rule: a run
of the stage (manifest `stage`, else the `<stage>-` name prefix) with a
COMPLETE marker and the required files, newest by manifest `created` time
(then the COMPLETE marker's time), ties broken by name.
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
from datetime import datetime
from typing import Any, Callable, Iterable, Sequence

from linernotes import paths

Require = str | Path | Sequence[str | Path] | Callable[["RunDir"], bool] | None
_STAMP_FORMATS = ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S")

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


def _stamp(text: Any) -> float | None:
    if not isinstance(text, str):
        return None
    for fmt in _STAMP_FORMATS:
        try:
            return datetime.strptime(text.strip(), fmt).timestamp()
        except ValueError:
            continue
    return None


class RunDir:
    def __init__(self, path: str | Path, kind: str | None = None):
        self.path = Path(path)
        self.kind = kind  # row kind of data/train-*.parquet (linernotes.rows), when known

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunDir) and self.path == other.path

    def __hash__(self) -> int:
        return hash(self.path)

    @classmethod
    def for_config(cls, config: Any, stage: str) -> "RunDir":
        from linernotes.rows import KIND_OF_STAGE

        base = Path(config.runs_dir) if getattr(config, "runs_dir", None) else paths.runs_dir()
        name = getattr(config, "run_name", None) or f"{stage}-{config.fingerprint()}"
        return cls(base / name, kind=KIND_OF_STAGE.get(stage))

    # ------------------------------------------------------------ finding runs

    def stage(self) -> str | None:
        """The stage named in the manifest, else None."""
        try:
            stage = self.manifest().get("stage") if self.manifest_path.exists() else None
        except (OSError, ValueError):
            return None
        return stage if isinstance(stage, str) else None

    def created(self) -> float:
        """When the run was made: manifest `created`, else the COMPLETE marker's time (0 unknown)."""
        try:
            stamp = _stamp(self.manifest().get("created")) if self.manifest_path.exists() else None
        except (OSError, ValueError):
            stamp = None
        if stamp is None and self.is_complete():
            stamp = _stamp((self.path / "COMPLETE").read_text())
        return stamp or 0.0

    def has(self, require: Require) -> bool:
        if require is None:
            return True
        if callable(require):
            return bool(require(self))
        if isinstance(require, (str, Path)):
            require = [require]
        return all((self.path / r).exists() for r in require)

    @classmethod
    def find_all(cls, stage: str | Sequence[str], require: Require = None,
                 runs_dir: str | Path | None = None) -> list["RunDir"]:
        """Complete runs of the stage(s) under the runs root that have `require` (a relative
        path, several, or a predicate on the RunDir), newest first."""
        from linernotes.rows import KIND_OF_STAGE

        stages = (stage,) if isinstance(stage, str) else tuple(stage)
        root = Path(runs_dir) if runs_dir else paths.runs_dir()
        if not root.is_dir():
            return []
        found = []
        for path in root.iterdir():
            if not path.is_dir():
                continue
            run = cls(path)
            if not run.is_complete():
                continue
            named = run.stage()
            of = named if named is not None else next(
                (s for s in stages if path.name.startswith(f"{s}-")), None)
            if of not in stages or not run.has(require):
                continue
            run.kind = KIND_OF_STAGE.get(of)
            found.append(run)
        return sorted(found, key=lambda r: (r.created(), r.name), reverse=True)

    @classmethod
    def find(cls, stage: str | Sequence[str], require: Require = None,
             runs_dir: str | Path | None = None) -> "RunDir | None":
        """The newest complete run of the stage(s) with `require`, or None (see find_all)."""
        found = cls.find_all(stage, require, runs_dir)
        return found[0] if found else None

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

    def write_rows(self, rows, kind: str | None = None, name: str | Path | None = None) -> Path:
        """Write rows (list of dicts or a DataFrame) as one parquet file with the declared schema
        of `kind` (default: the run's kind; see linernotes.rows), atomically. `name`: a file
        relative to the run folder instead of the data shard. Returns the file."""
        from linernotes import rows as row_kinds

        kind = kind or self.kind
        target = self.path / name if name else self.parquet_path
        if kind is None:  # undeclared table: types inferred (kept for ad-hoc tables only)
            import pyarrow as pa
            import pyarrow.parquet as pq

            target.parent.mkdir(parents=True, exist_ok=True)
            table = (pa.Table.from_pandas(rows, preserve_index=False) if hasattr(rows, "columns")
                     else pa.Table.from_pylist(list(rows)))
            tmp = target.with_name(target.name + ".tmp")
            pq.write_table(table, tmp)
            os.replace(tmp, target)
            return target
        return row_kinds.write_parquet(rows, target, kind)

    def read_rows(self, kind: str | None = None, name: str | Path | None = None):
        """The run's parquet (or `name`, relative to the run) read through the declared schema of
        `kind` -> pyarrow table (`.to_pandas()`, `.to_pylist()`). A missing required column or a
        column of the wrong type is an error naming the file and the column."""
        from linernotes import rows as row_kinds

        kind = kind or self.kind or row_kinds.KIND_OF_STAGE.get(self.stage() or "")
        if kind is None:
            raise ValueError(f"{self.path}: no row kind given and none known for this run")
        return row_kinds.read_parquet(self.path / name if name else self.parquet_path, kind)

    def write_quarantine(self, entries: list[dict[str, Any]]) -> None:
        with open(self.quarantine_path, "w") as fh:
            for entry in entries:
                fh.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
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


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def run_summary(run: RunDir) -> str:
    """One line about a run for `linernotes runs`, whatever its stage: manifests differ by stage
    (training runs have steps and losses, not `counts`), and a bad manifest is said, not raised."""
    if not run.manifest_path.exists():
        return "no manifest"
    try:
        m = run.manifest()
    except (OSError, ValueError) as exc:
        return f"manifest unreadable ({type(exc).__name__})"
    if not isinstance(m, dict):
        return "manifest unreadable (not an object)"
    stage = m.get("stage") or "?"
    counts = m.get("counts") if isinstance(m.get("counts"), dict) else {}
    data = m.get("data") if isinstance(m.get("data"), dict) else {}
    keys: dict[str, tuple[tuple[str, Any], ...]] = {
        "synth": (("rows", counts.get("rows")), ("parsed", counts.get("parsed")),
                  ("passed_all", counts.get("passed_all"))),
        "curate": (("rows", counts.get("rows_in")), ("kept", counts.get("kept")),
                   ("clusters", counts.get("clusters")), ("sample", counts.get("sample"))),
        "label": (("responses", counts.get("responses")), ("records", counts.get("records")),
                  ("golden", counts.get("golden")), ("pairs", counts.get("pairs"))),
        "publish": (("sft", counts.get("sft")), ("preferences", counts.get("preferences")),
                    ("raw", counts.get("raw_generations"))),
        "finetune": (("steps", m.get("global_step")), ("examples", data.get("train_examples")),
                     ("loss", m.get("final_loss")), ("backend", m.get("backend"))),
        "dpo": (("steps", m.get("global_step")), ("pairs", data.get("pairs")),
                ("loss", m.get("final_loss")), ("backend", m.get("backend"))),
    }
    fields = keys.get(stage) or tuple((k, v) for k, v in counts.items() if not isinstance(v, (dict, list)))
    shown = " ".join(f"{k}={_fmt(v)}" for k, v in fields if v is not None)
    return f"{stage:8s} {shown or '-'}"
