"""The generation engine behind the endpoint: a local OpenAI-compatible server subprocess.

CPU (default here): llama.cpp's own server via xllamacpp
(`linernotes.services.llamacpp.server`), which does continuous batching over
`slots` parallel slots, prompt caching and JSON-schema grammars.

CUDA GPU: vLLM's OpenAI-compatible server (`linernotes.services.vllm_cpu.server`
with a GPU interpreter from $LINERNOTES_VLLM_PYTHON, or the current one if it
has `vllm`). `auto` picks vLLM only when an NVIDIA GPU is visible *and* a vLLM
interpreter is found; nothing heavy is imported to decide. The vLLM path is
not exercised on the CPU machines this was built on.

The engine listens on 127.0.0.1 on a free port with a random key of its own,
so only the endpoint (which holds the key) can reach it.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from linernotes.services.process import ServerProcess

from serve.settings import ServeSettings, choose_model_file


def cuda_gpu_visible() -> bool:
    """An NVIDIA GPU is present (driver files or a working nvidia-smi); no torch import."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    if Path("/proc/driver/nvidia/gpus").is_dir() and any(Path("/proc/driver/nvidia/gpus").iterdir()):
        return True
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10)
            return out.returncode == 0 and "GPU" in out.stdout
        except (OSError, subprocess.TimeoutExpired):
            return False
    return False


def vllm_python() -> str | None:
    """Interpreter with (GPU) vLLM: $LINERNOTES_VLLM_PYTHON, else this one if it has vllm."""
    from linernotes.services.vllm_cpu import PYTHON_ENV

    if os.environ.get(PYTHON_ENV):
        return os.environ[PYTHON_ENV]
    if importlib.util.find_spec("vllm") is not None:  # finds, does not import
        import sys
        return sys.executable
    return None


def pick_engine(requested: str) -> str:
    if requested != "auto":
        return requested
    return "vllm" if cuda_gpu_visible() and vllm_python() else "llamacpp"


@dataclass
class Engine:
    kind: str  # "llamacpp" | "vllm"
    process: ServerProcess
    api_key: str
    model_path: Path

    @property
    def base_url(self) -> str:
        return self.process.base_url

    def start(self, timeout_s: float) -> "Engine":
        self.process.start(timeout_s=timeout_s)
        return self

    def stop(self) -> None:
        self.process.stop()


def resolve_model(settings: ServeSettings, kind: str) -> Path:
    """The file/folder the engine loads. llama.cpp: a GGUF (packaged SmolLM2 by default).
    vLLM: a Hugging Face folder (config.json, or an export's merged/), else a GGUF file."""
    if kind == "vllm" and settings.model_path is not None and Path(settings.model_path).is_dir():
        folder = Path(settings.model_path)
        for candidate in (folder, folder / "merged"):  # an export folder keeps the HF model in merged/
            if (candidate / "config.json").exists():
                return candidate.resolve()
    if settings.model_path is None:
        if kind == "vllm":
            from linernotes.hfmodel import smollm2_hf_dir  # converts once, cached
            return smollm2_hf_dir()
        from linernotes.assets import smollm2_gguf
        return smollm2_gguf()
    return choose_model_file(settings.model_path)


def build_engine(settings: ServeSettings, kind: str | None = None) -> Engine:
    """A not-yet-started engine process for `settings` (model, slots, threads)."""
    kind = kind or pick_engine(settings.engine)
    model = resolve_model(settings, kind)
    key = secrets.token_urlsafe(24)
    if kind == "llamacpp":
        from linernotes.services.llamacpp import server

        proc = server(model, model_name=settings.served_name, n_parallel=settings.slots,
                      n_threads=settings.engine_threads, ctx_per_slot=settings.ctx_per_slot,
                      api_key=key, cache_ram_mib=settings.engine_cache_ram_mib)
    elif kind == "vllm":
        from linernotes.services.vllm_cpu import server

        python = vllm_python()
        if python is None:
            raise RuntimeError("engine vllm: no interpreter with vLLM (set LINERNOTES_VLLM_PYTHON)")
        extra = ["--max-num-seqs", str(settings.slots)]
        tokenizer_args = []
        if model.suffix == ".gguf":  # vLLM reads a single-file GGUF with the tokenizer inside it
            tokenizer_args = ["--tokenizer", str(model.parent)] if (model.parent / "tokenizer.json").exists() else []
        proc = server(model, served_model_name=settings.served_name,
                      max_model_len=settings.ctx_per_slot, python=python,
                      enforce_eager=not cuda_gpu_visible(), extra_args=extra + tokenizer_args,
                      env={"VLLM_API_KEY": key})
    else:
        raise ValueError(f"unknown engine {kind!r}")
    return Engine(kind=kind, process=proc, api_key=key, model_path=model)
