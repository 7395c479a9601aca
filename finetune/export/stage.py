"""`run_export`: merge, convert, quantize, gate and card one finetune run
(the folder layout is in the package docstring)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from finetune.export.common import (
    ADAPTER_GGUF, COMPLETE, EXPORT_DIR, GATE_FILE, MERGED_DIR, STAGE, ExportError, ExportGateFailed,
    folder_bytes, package_version, sha256_file, write_json,
)
from finetune.export.convert import CONVERTER_OUTTYPES, convert_hf_to_gguf, convert_lora_to_gguf
from finetune.export.gate import GateReport, export_gate
from finetune.export.lineage import SMOLLM2_SOURCE, data_lineage
from finetune.export.merge import merge_adapter, merged_complete, merged_float_type
from finetune.export.quantize import PYTHON_QUANT_TYPES, rewrite_gguf
from finetune.export.reference import DEFAULT_MAX_NEW_TOKENS, gate_prompts, hf_reference
from finetune.export.sdist import LLAMA_CPP_PYTHON_SHA256, LLAMA_CPP_PYTHON_VERSION, llama_cpp_converter, vendored_gguf_version
from linernotes import paths

DEFAULT_TYPES = ("Q8_0", "Q4_0")


class _Steps:
    """One line per export step with its time (rich on stderr)."""

    def __init__(self, total: int):
        from rich.console import Console

        self.console = Console(stderr=True, soft_wrap=True)
        self.total, self.i = total, 0

    def __call__(self, name: str):
        self.i += 1
        return self.console.status(f"[{self.i}/{self.total}] {name}")

    def done(self, name: str, seconds: float, note: str = "") -> None:
        self.console.print(f"[{self.i}/{self.total}] {name}: {seconds:.1f} s{(' ' + note) if note else ''}")


def run_export(finetune_run_dir: str | Path | None, out_dir: str | Path | None = None,
               types: Sequence[str] = DEFAULT_TYPES, gate: bool = True, *, force: bool = False,
               base_model_dir: str | Path | None = None, adapter_gguf: bool = True,
               max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
               prompts: Sequence[Sequence[Mapping[str, str]]] | None = None,
               min_agreement: Mapping[str, float] | None = None,
               keep_intermediate: bool = False) -> Path:
    """Merge, convert, quantize, gate and card a finetune run (None: the base model, no adapter).
    Returns the export folder; raises ExportGateFailed (after writing gate.json and the
    manifest, without COMPLETE) when a GGUF fails the gate."""
    from finetune.card import model_card

    t_start = time.monotonic()
    types = [t.upper() for t in types]
    unknown = [t for t in types if t not in CONVERTER_OUTTYPES and t not in PYTHON_QUANT_TYPES]
    if unknown:
        raise ValueError(f"unknown GGUF types {unknown}; choose from "
                         f"{sorted(CONVERTER_OUTTYPES) + list(PYTHON_QUANT_TYPES)}")
    run_path = Path(finetune_run_dir) if finetune_run_dir else None
    ft_manifest: dict[str, Any] = {}
    adapter = None
    if run_path is not None:
        if (run_path / "manifest.json").exists():
            ft_manifest = json.loads((run_path / "manifest.json").read_text())
        adapter = run_path / (ft_manifest.get("adapter") or "adapter")
        if not (adapter / "adapter_config.json").exists():
            raise ExportError(f"{run_path}: no trained adapter at {adapter} (is the run complete?)")
    if base_model_dir is None:
        base_model_dir = ft_manifest.get("base_model")
        if not base_model_dir or not Path(base_model_dir).exists():
            from linernotes.hfmodel import smollm2_hf_dir

            base_model_dir = smollm2_hf_dir()
    base_model_dir = Path(base_model_dir)
    out = Path(out_dir) if out_dir else (run_path / EXPORT_DIR if run_path else paths.runs_dir() / "export-base")
    if (out / COMPLETE).exists() and not force:
        return out
    out.mkdir(parents=True, exist_ok=True)
    (out / COMPLETE).unlink(missing_ok=True)

    n_steps = 1 + len(types) + (1 if adapter is not None and adapter_gguf else 0) + (1 if gate else 0) + 1
    step = _Steps(n_steps)
    timings: dict[str, float] = {}
    files: dict[str, dict[str, Any]] = {}

    merged = out / MERGED_DIR
    with step("merge adapter" if adapter else "copy base model"):
        t0 = time.monotonic()
        if force or not merged_complete(merged):
            merge_adapter(adapter, base_model_dir, merged)
        timings["merge"] = round(time.monotonic() - t0, 1)
    step.done("merged model", timings["merge"], str(merged))

    converter = llama_cpp_converter()
    intermediate: Path | None = None
    for qtype in types:
        path = out / f"model-{qtype}.gguf"
        with step(f"write {path.name}"):
            t0 = time.monotonic()
            if path.exists() and not force:  # written atomically: an existing file is whole
                info = {"bytes": path.stat().st_size, "reused": True}
            elif qtype in CONVERTER_OUTTYPES:
                info = convert_hf_to_gguf(merged, path, CONVERTER_OUTTYPES[qtype])
            else:
                float_type = merged_float_type(merged)
                if intermediate is None:
                    intermediate = out / f".model-{float_type}.intermediate.gguf"
                    if not intermediate.exists():
                        convert_hf_to_gguf(merged, intermediate, CONVERTER_OUTTYPES[float_type])
                info = rewrite_gguf(intermediate, path, qtype)
                info["source"] = f"{float_type} conversion by convert_hf_to_gguf.py"
            timings[f"gguf_{qtype}"] = round(time.monotonic() - t0, 1)
        files[path.name] = {"type": qtype, **info, "sha256": sha256_file(path)}
        step.done(path.name, timings[f"gguf_{qtype}"], f"{path.stat().st_size / 1e6:.1f} MB")
    if intermediate is not None and not keep_intermediate:
        intermediate.unlink(missing_ok=True)

    adapter_info: dict[str, Any] | None = None
    if adapter is not None and adapter_gguf:
        with step("write adapter.gguf"):
            t0 = time.monotonic()
            try:
                adapter_info = convert_lora_to_gguf(adapter, base_model_dir, out / ADAPTER_GGUF)
                adapter_info["sha256"] = sha256_file(out / ADAPTER_GGUF)
            except ExportError as exc:  # optional artefact: recorded, not fatal
                adapter_info = {"error": str(exc)[-2000:]}
            timings["adapter_gguf"] = round(time.monotonic() - t0, 1)
        step.done(ADAPTER_GGUF, timings["adapter_gguf"], "failed (see manifest)" if "error" in adapter_info else "")

    reports: dict[str, GateReport] = {}
    if gate:
        with step("export gate (llama.cpp vs merged HF model)"):
            t0 = time.monotonic()
            prompts = [list(p) for p in (prompts if prompts is not None else gate_prompts())]
            ref = hf_reference(merged, prompts, max_new_tokens=max_new_tokens)
            for qtype in types:
                path = out / f"model-{qtype}.gguf"
                reports[qtype] = export_gate(
                    path, merged, prompts, max_new_tokens=max_new_tokens, reference=ref, raise_on_fail=False,
                    min_agreement=(min_agreement or {}).get(qtype))
            timings["gate"] = round(time.monotonic() - t0, 1)
            timings["gate_hf_reference"] = ref.seconds
        gate_doc = {q: r.to_dict() for q, r in reports.items()}
        tmp = out / f".{GATE_FILE}.tmp"
        tmp.write_text(json.dumps(gate_doc, indent=2, ensure_ascii=False))
        os.replace(tmp, out / GATE_FILE)
        step.done("gate", timings["gate"], " ".join(
            f"{q}: {'pass' if r.passed else 'FAIL'} {r.agreement:.3f}" for q, r in reports.items()))
    failed = {q: r for q, r in reports.items() if not r.passed}

    manifest = {
        "stage": STAGE,
        "run": out.name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "finetune_run": str(run_path) if run_path else None,
        "adapter": str(adapter) if adapter else None,
        "base_model_dir": str(base_model_dir),
        "merged": {"dir": MERGED_DIR, "bytes": folder_bytes(merged), "dtype": merged_float_type(merged)},
        "files": files,
        "adapter_gguf": adapter_info,
        "converter": {"package": f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}",
                      "sdist_sha256": LLAMA_CPP_PYTHON_SHA256, "scripts": str(converter),
                      "gguf_py": vendored_gguf_version(converter)},
        "gate": {"enabled": gate, "passed": not failed if gate else None,
                 "max_new_tokens": max_new_tokens if gate else None,
                 "n_prompts": len(prompts) if gate and prompts is not None else None,
                 "results": {q: {"passed": r.passed, "agreement": r.agreement, "min_agreement": r.min_agreement,
                                 "exact_match_share": r.exact_match_share, "template_matches": r.template_matches,
                                 "eos_agreed": r.eos_agreed, "hf_stopped": r.hf_stopped, "reasons": r.reasons}
                             for q, r in reports.items()}},
        "timings": {**timings, "total": round(time.monotonic() - t_start, 1)},
        "versions": {k: package_version(k) for k in ("linernotes", "torch", "transformers", "peft", "gguf", "xllamacpp",
                                              "sentencepiece", "safetensors")},
        "lineage": data_lineage(ft_manifest, run_path) if run_path else {"base_model": SMOLLM2_SOURCE},
    }
    write_json(out / "manifest.json", manifest)
    if failed:
        raise ExportGateFailed("export gate failed: " + " | ".join(r.summary() for r in failed.values()),
                               {q: r for q, r in reports.items()})

    with step("model card"):
        eval_md, eval_json = _eval_report(run_path)
        card = model_card(out, ft_manifest, eval_md, {q: r.to_dict() for q, r in reports.items()},
                          manifest["lineage"], export_manifest=manifest, eval_json=eval_json)
        (out / "README.md").write_text(card)
    step.done("README.md", 0.0)
    (out / COMPLETE).write_text(time.strftime("%Y-%m-%dT%H:%M:%S"))
    return out


def _eval_report(run_path: Path | None) -> tuple[str | None, dict[str, Any] | None]:
    """`<run>/eval/report.md` and `report.json` when the eval stage wrote them."""
    if run_path is None:
        return None, None
    md, js = run_path / "eval" / "report.md", run_path / "eval" / "report.json"
    report_json = None
    if js.exists():
        try:
            report_json = json.loads(js.read_text())
        except ValueError:
            report_json = None
    return (md.read_text() if md.exists() else None), report_json
