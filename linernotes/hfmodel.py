"""The packaged SmolLM2 GGUF as a Hugging Face safetensors folder.

vLLM on CPU cannot serve GGUF, and training wants plain tensors, so the
Q4_1 GGUF from `assets.smollm2_gguf()` is dequantized once with transformers
(`GgufConfig(dequantize=True)`) and saved with its tokenizer and ChatML chat
template under `paths.models_dir()/"SmolLM2-135M-Instruct-hf"`.

Saved in bfloat16: the dtype vLLM's CPU backend serves (`--dtype bfloat16`,
native on AVX512-BF16 CPUs like these), half the size of float32 (~270 MB vs
~540 MB; embeddings are tied so they are stored once). Q4_1 weights are
4-bit codes times an fp16 scale plus an fp16 offset, so bfloat16's 8-bit
mantissa loses little; training code can load it as float32 (`dtype=`).

The folder is written to a temp folder and renamed (atomic); later calls
return the cached folder at once. `python -m linernotes.hfmodel [--force]`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from pathlib import Path

from linernotes import assets, paths

FOLDER_NAME = "SmolLM2-135M-Instruct-hf"
SAVE_DTYPE = "bfloat16"
REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")
META_FILE = "linernotes_conversion.json"


def _complete(folder: Path) -> bool:
    return all((folder / f).exists() for f in REQUIRED_FILES) and (folder / META_FILE).exists()


def _lock(name: str):
    return paths.file_lock(paths.models_dir() / f".{name}.lock")


def smollm2_hf_dir(force: bool = False) -> Path:
    """Folder with config.json, model.safetensors (bf16), tokenizer + chat template."""
    final = paths.models_dir() / FOLDER_NAME
    if not force and _complete(final):
        return final
    with _lock(FOLDER_NAME):
        if not force and _complete(final):  # another process converted it meanwhile
            return final
        gguf_path = assets.smollm2_gguf()
        tmp = paths.models_dir() / f".{FOLDER_NAME}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            _convert(gguf_path, tmp)
            if final.exists():
                shutil.rmtree(final)
            os.rename(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def _convert(gguf_path: Path, out: Path) -> None:
    paths.use_offline_hub()
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    t0 = time.monotonic()
    folder, name = str(gguf_path.parent), gguf_path.name
    dtype = getattr(torch, SAVE_DTYPE)
    model = AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=name, quantization_config=GgufConfig(dequantize=True), dtype=dtype)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = _gguf_chat_template(gguf_path)
    tokenizer.model_max_length = model.config.max_position_embeddings  # 8192, not "infinite"

    # A plain model: no trace of the GGUF quantization in config.json (vLLM
    # would otherwise try to load it as a quantized checkpoint).
    for cfg in (model.config,):
        if hasattr(cfg, "quantization_config"):
            delattr(cfg, "quantization_config")
    for attr in ("hf_quantizer", "quantization_method"):
        if hasattr(model, attr):
            with contextlib.suppress(AttributeError):
                delattr(model, attr)
    model.config.dtype = dtype
    # ChatML: generation stops at <|im_end|> (id 2), which is also the pad.
    eos, pad, bos = tokenizer.eos_token_id, tokenizer.pad_token_id, tokenizer.bos_token_id
    model.config.eos_token_id = eos
    model.config.bos_token_id = bos
    model.config.pad_token_id = pad if pad is not None else eos
    model.generation_config.eos_token_id = eos
    model.generation_config.bos_token_id = bos
    model.generation_config.pad_token_id = model.config.pad_token_id

    out.mkdir(parents=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    _drop_keys(out / "config.json", ("quantization_config",))
    # Loading-time flags transformers writes back; not properties of the tokenizer.
    _drop_keys(out / "tokenizer_config.json", ("is_local", "local_files_only"))
    size = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
    meta = {
        "source_gguf": name,
        "source_bytes": gguf_path.stat().st_size,
        "dtype": SAVE_DTYPE,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "seconds": round(time.monotonic() - t0, 1),
        "folder_bytes": size,
    }
    (out / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    del model


def _drop_keys(path: Path, keys: tuple[str, ...]) -> None:
    data = json.loads(path.read_text())
    if any(k in data for k in keys):
        for k in keys:
            data.pop(k, None)
        path.write_text(json.dumps(data, indent=2) + "\n")


def _gguf_chat_template(gguf_path: Path) -> str:
    import gguf
    field = gguf.GGUFReader(str(gguf_path)).fields["tokenizer.chat_template"]
    return field.contents()


def main(argv: list[str] | None = None) -> int:
    import argparse
    ap = argparse.ArgumentParser(prog="python -m linernotes.hfmodel")
    ap.add_argument("--force", action="store_true", help="convert again even if cached")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    folder = smollm2_hf_dir(force=args.force)
    meta = json.loads((folder / META_FILE).read_text())
    print(f"{folder} ({meta['folder_bytes'] / 1e6:.0f} MB, {meta['dtype']}; "
          f"converted in {meta['seconds']}s; this call {time.monotonic() - t0:.1f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
