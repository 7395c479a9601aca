"""Names of the export folder's files, the two export errors and small helpers
shared by the export modules (hashing, offline hub, package versions, JSON writes)."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from linernotes import paths

STAGE = "export"
EXPORT_DIR = "export"
MERGED_DIR = "merged"
GATE_FILE = "gate.json"
ADAPTER_GGUF = "adapter.gguf"
COMPLETE = "COMPLETE"


class ExportError(RuntimeError):
    """A step of the export (download, conversion, quantization) failed."""


class ExportGateFailed(RuntimeError):
    """The exported GGUF does not behave like the merged HF model. `report`: the gate's
    GateReport, or {type: GateReport} from run_export."""

    def __init__(self, message: str, report: Any = None):
        super().__init__(message)
        self.report = report


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def offline_env() -> None:
    paths.use_offline_hub()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def package_version(name: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str))
    os.replace(tmp, path)
