"""Base model + LoRA adapter merged into a plain HF folder (the gate's reference model)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from finetune.export.common import ExportError, offline_env, package_version


def merge_adapter(adapter_dir: str | Path | None, base_model_dir: str | Path, out_dir: str | Path, *,
                  dtype: str = "bfloat16") -> Path:
    """Base + LoRA adapter merged (PEFT merge_and_unload) into a plain HF folder: safetensors,
    config, generation config, tokenizer with its chat template. adapter_dir=None: the base
    model as it is. Merged in float32, saved in `dtype` (bfloat16: the base folder's dtype).
    Atomic: written to a staging folder, then renamed."""
    offline_env()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out_dir = Path(out_dir)
    staging = out_dir.with_name(f".{out_dir.name}.staging-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    # The adapter folder carries the tokenizer the run trained with (same chat template).
    tok_src = adapter_dir if adapter_dir and (Path(adapter_dir) / "tokenizer_config.json").exists() \
        else base_model_dir
    try:
        model = AutoModelForCausalLM.from_pretrained(str(base_model_dir), dtype=torch.float32)
        if adapter_dir is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
        model = model.to(getattr(torch, dtype))
        model.config.dtype = getattr(torch, dtype)
        tokenizer = AutoTokenizer.from_pretrained(str(tok_src))
        if not getattr(tokenizer, "chat_template", None):
            raise ExportError(f"tokenizer in {tok_src} has no chat template; the GGUF would carry none")
        staging.mkdir(parents=True)
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        # Loading-time flags transformers writes back; not properties of the tokenizer.
        tc = staging / "tokenizer_config.json"
        data = json.loads(tc.read_text())
        if any(k in data for k in ("is_local", "local_files_only")):
            for k in ("is_local", "local_files_only"):
                data.pop(k, None)
            tc.write_text(json.dumps(data, indent=2) + "\n")
        (staging / "linernotes_merge.json").write_text(json.dumps({
            "base_model": str(base_model_dir), "adapter": str(adapter_dir) if adapter_dir else None,
            "dtype": dtype, "peft": package_version("peft"), "transformers": package_version("transformers"),
        }, indent=2) + "\n")
        del model
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.rename(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir


def merged_complete(folder: Path) -> bool:
    return all((folder / f).exists() for f in ("config.json", "model.safetensors", "tokenizer_config.json",
                                                "linernotes_merge.json"))


def merged_float_type(merged: Path) -> str:
    cfg = json.loads((merged / "config.json").read_text())
    dtype = str(cfg.get("dtype") or cfg.get("torch_dtype") or "float32")
    return {"bfloat16": "BF16", "float16": "F16"}.get(dtype, "F32")
