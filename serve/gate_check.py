"""Serve a fine-tune export only when its export gate passed.

The export stage (`linernotes export`, finetune/export/) writes into the export folder:

    manifest.json  {"stage": "export", "files": {name: {"type", "sha256", ...}},
                    "gate": {"enabled", "passed", "results": {TYPE: {"passed", "reasons", ...}}}}
    gate.json      {TYPE: {"passed", "agreement", "reasons", ...}}   (only when the gate ran)

Both are read here as JSON on disk (no import of the export code). Rule, for the
GGUF the endpoint would load:

  * the packaged SmolLM2 (no model given) and a GGUF outside any export folder
    (no manifest.json/gate.json beside it, and not named model-<TYPE>.gguf) are
    served as they are: there is no export gate for them;
  * a GGUF of an export folder is served when the manifest's gate block says its
    type passed, and (when the manifest records a sha256) the file is still that
    file. The manifest decides over gate.json: a gate.json left from an earlier
    export does not count when the latest export skipped the gate. No manifest:
    gate.json decides.
  * anything else (gate failed, skipped, no result for the type, file changed,
    unreadable JSON) is refused with `UngatedModel`, naming the file and the
    verdict, unless the caller passes allow_ungated (`--allow-ungated`).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
GATE_FILE = "gate.json"
ALLOW_FLAG = "--allow-ungated"
_EXPORT_NAME = re.compile(r"^model-([A-Za-z0-9_]+)\.gguf$")


class UngatedModel(ValueError):
    """The model is a fine-tune export whose gate did not pass for this file."""


@dataclass(frozen=True)
class GateVerdict:
    path: Path
    is_export: bool      # False: not an export's GGUF, no gate applies
    passed: bool | None  # None: the gate was skipped or left no result for this file
    source: Path | None  # the JSON file the verdict was read from
    detail: str

    @property
    def servable(self) -> bool:
        return not self.is_export or self.passed is True

    def label(self) -> str:
        """Short text for pickers: 'gate passed', 'gate FAILED', 'gate skipped'..."""
        if not self.is_export:
            return "no export gate"
        return {True: "gate passed", False: "gate FAILED"}.get(self.passed, "gate not passed")


def _read_json(path: Path) -> tuple[Any, str | None]:
    try:
        return json.loads(path.read_text()), None
    except (OSError, ValueError) as exc:
        return None, f"{path} is unreadable ({type(exc).__name__}: {exc})"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def gate_verdict(gguf: str | Path, *, verify_hash: bool = True) -> GateVerdict:
    """What the export folder beside `gguf` says about this file's gate."""
    gguf = Path(gguf)
    folder = gguf.parent
    manifest_path, gate_path = folder / MANIFEST, folder / GATE_FILE
    named = _EXPORT_NAME.match(gguf.name)
    manifest, problem = (None, None)
    if manifest_path.exists():
        manifest, problem = _read_json(manifest_path)
        if problem:
            return GateVerdict(gguf, True, None, manifest_path, problem)
        if not isinstance(manifest, dict) or manifest.get("stage") != "export":
            manifest = None  # some other stage's manifest: not an export folder
    if manifest is None and not gate_path.exists():
        if named:
            return GateVerdict(gguf, True, None, None,
                               f"{gguf.name} is named like an export file but {folder} has no export "
                               f"{MANIFEST} or {GATE_FILE} (export it with `linernotes export`)")
        return GateVerdict(gguf, False, None, None, "not a fine-tune export")

    if manifest is not None:
        file_info = (manifest.get("files") or {}).get(gguf.name) or {}
        qtype = file_info.get("type") or (named.group(1) if named else None)
        gate = manifest.get("gate") or {}
        if not gate.get("enabled"):
            return GateVerdict(gguf, True, None, manifest_path,
                               f"{manifest_path}: the export gate was skipped (gate.enabled is "
                               f"{gate.get('enabled')!r})")
        result = (gate.get("results") or {}).get(qtype) if qtype else None
        if not isinstance(result, dict) or "passed" not in result:
            return GateVerdict(gguf, True, None, manifest_path,
                               f"{manifest_path}: no gate result for {gguf.name} (type {qtype!r})")
        if result["passed"] is not True:
            reasons = "; ".join(str(r) for r in result.get("reasons") or []) or "no reasons recorded"
            return GateVerdict(gguf, True, False, manifest_path,
                               f"{manifest_path}: export gate FAILED for {qtype}: {reasons}")
        want = file_info.get("sha256")
        if verify_hash and want and _sha256(gguf) != want:
            return GateVerdict(gguf, True, None, manifest_path,
                               f"{gguf} is not the file the gate passed ({manifest_path} records "
                               f"sha256 {want[:12]}...; the file changed after the export)")
        return GateVerdict(gguf, True, True, manifest_path,
                           f"{manifest_path}: export gate passed for {qtype}")

    gate_doc, problem = _read_json(gate_path)
    if problem:
        return GateVerdict(gguf, True, None, gate_path, problem)
    qtype = named.group(1) if named else None
    result = gate_doc.get(qtype) if isinstance(gate_doc, dict) and qtype else None
    if not isinstance(result, dict) or "passed" not in result:
        return GateVerdict(gguf, True, None, gate_path, f"{gate_path}: no gate result for {gguf.name}")
    if result["passed"] is not True:
        reasons = "; ".join(str(r) for r in result.get("reasons") or []) or "no reasons recorded"
        return GateVerdict(gguf, True, False, gate_path, f"{gate_path}: export gate FAILED for {qtype}: {reasons}")
    return GateVerdict(gguf, True, True, gate_path, f"{gate_path}: export gate passed for {qtype}")


def folder_verdict(folder: Path) -> GateVerdict:
    """The export's overall verdict (manifest gate.passed), for an engine serving merged/."""
    manifest_path = folder / MANIFEST
    manifest, problem = _read_json(manifest_path)
    if problem:
        return GateVerdict(folder, True, None, manifest_path, problem)
    gate = (manifest.get("gate") if isinstance(manifest, dict) else None) or {}
    if not gate.get("enabled"):
        return GateVerdict(folder, True, None, manifest_path, f"{manifest_path}: the export gate was skipped")
    passed = gate.get("passed") is True
    return GateVerdict(folder, True, passed, manifest_path,
                       f"{manifest_path}: export gate {'passed' if passed else 'FAILED'}")


def require_gated(model_path: str | Path | None, *, engine: str = "llamacpp",
                  allow_ungated: bool = False) -> GateVerdict | None:
    """Raise UngatedModel unless what would be served passed its export gate (see the module
    docstring). None: the packaged model. `engine` "vllm" with an export folder serves its
    merged/ HF model, the gate's own reference: the folder's overall verdict decides."""
    from serve.settings import choose_model_file

    if model_path is None:
        return None
    path = Path(model_path).expanduser()
    if engine == "vllm" and path.is_dir():
        if not (path / MANIFEST).exists():
            return None  # a Hugging Face model folder, not an export
        verdict = folder_verdict(path)
    else:
        verdict = gate_verdict(choose_model_file(path))
    if verdict.servable or allow_ungated:
        return verdict
    raise UngatedModel(f"refusing to serve {verdict.path}: {verdict.detail}. Re-export with the gate "
                       f"(`linernotes export`), serve a type that passed, or pass {ALLOW_FLAG} "
                       "(allow_ungated=True in Python) to serve it anyway.")
