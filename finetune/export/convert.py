"""HF folder -> GGUF and PEFT adapter -> GGUF adapter with llama.cpp's own converter
(run in a subprocess on the vendored gguf-py, see sdist.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from finetune.export.common import ExportError
from finetune.export.sdist import llama_cpp_converter
from linernotes import paths

# What each type is written from. Q8_0 straight from llama.cpp's converter; Q4_0 re-written in
# Python from the converter's BF16 file (lossless for a bfloat16 merged model).
CONVERTER_OUTTYPES = {"Q8_0": "q8_0", "BF16": "bf16", "F16": "f16", "F32": "f32"}


def _converter_env(converter: Path) -> dict[str, str]:
    env = dict(os.environ)
    # The vendored gguf-py first: the scripts need a newer gguf than the PyPI release.
    env["PYTHONPATH"] = os.pathsep.join([str(converter / "gguf-py"), str(converter)]
                                        + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    paths.use_offline_hub(env)
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


def _run_converter(cmd: list[str], converter: Path, what: str) -> float:
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=converter, env=_converter_env(converter), capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-25:])
        raise ExportError(f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n{tail}")
    return time.monotonic() - t0


def convert_hf_to_gguf(model_dir: str | Path, out_path: str | Path, outtype: str = "q8_0") -> dict[str, Any]:
    """llama.cpp's convert_hf_to_gguf.py on an HF folder; atomic (temp file, then rename)."""
    converter = llama_cpp_converter()
    # Absolute paths: the converter runs with its own folder as the working directory.
    out_path, model_dir = Path(out_path).resolve(), Path(model_dir).resolve()
    tmp = out_path.with_name(f".{out_path.name}.tmp-{os.getpid()}")
    cmd = [sys.executable, str(converter / "convert_hf_to_gguf.py"), str(model_dir),
           "--outtype", outtype, "--outfile", str(tmp)]
    try:
        seconds = _run_converter(cmd, converter, f"convert_hf_to_gguf ({outtype})")
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
    return {"seconds": round(seconds, 1), "bytes": out_path.stat().st_size, "tool": "convert_hf_to_gguf.py",
            "outtype": outtype}


def convert_lora_to_gguf(adapter_dir: str | Path, base_model_dir: str | Path, out_path: str | Path,
                         outtype: str = "f32") -> dict[str, Any]:
    """The PEFT adapter as a GGUF LoRA adapter (load it on the base GGUF with llama.cpp's --lora)."""
    converter = llama_cpp_converter()
    out_path = Path(out_path).resolve()
    adapter_dir, base_model_dir = Path(adapter_dir).resolve(), Path(base_model_dir).resolve()
    tmp = out_path.with_name(f".{out_path.name}.tmp-{os.getpid()}")
    cmd = [sys.executable, str(converter / "convert_lora_to_gguf.py"), str(adapter_dir),
           "--base", str(base_model_dir), "--outtype", outtype, "--outfile", str(tmp)]
    try:
        seconds = _run_converter(cmd, converter, "convert_lora_to_gguf")
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
    return {"seconds": round(seconds, 1), "bytes": out_path.stat().st_size, "tool": "convert_lora_to_gguf.py",
            "outtype": outtype}
