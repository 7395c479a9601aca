"""`linernotes serve [MODEL]`: the bundled endpoint in the foreground (Ctrl-C stops it).

MODEL is a .gguf file or a fine-tune export folder (model-Q4_0.gguf preferred,
then model-Q8_0.gguf, then any *.gguf); none: the packaged SmolLM2 GGUF.
Keys come from $LINERNOTES_API_KEYS (comma-separated) or --api-key-file (one key
per line), never from the command line (where `ps` would show them); with
neither, a random key is generated and printed (the endpoint is never open).
A fine-tune export is served only if its export gate passed for that file (the
export folder's manifest.json / gate.json); --allow-ungated serves it anyway.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from serve.gate_check import ALLOW_FLAG, UngatedModel, require_gated
from serve.settings import ENV_API_KEYS, ServeSettings, keys_from_env


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = ServeSettings.__dataclass_fields__
    p.add_argument("model", nargs="?", default=None,
                   help="GGUF file or export folder (default: the packaged SmolLM2-135M GGUF)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=d["port"].default)
    p.add_argument("--engine", choices=("auto", "llamacpp", "vllm"), default="auto",
                   help="auto: vLLM on a CUDA GPU with vLLM installed, else llama.cpp")
    p.add_argument("--served-name", default=None,
                   help="model name clients send (default: packaged name or export folder name)")
    p.add_argument("--api-key-file", default=None,
                   help=f"file with accepted keys, one per line; adds to ${ENV_API_KEYS}")
    p.add_argument("--slots", type=int, default=d["slots"].default,
                   help="concurrent generations (= engine parallel slots)")
    p.add_argument("--queue-size", type=int, default=d["queue_size"].default,
                   help="requests that may wait for a slot; more get 429 + Retry-After")
    p.add_argument("--max-body-bytes", type=int, default=d["max_body_bytes"].default)
    p.add_argument("--max-tokens-cap", type=int, default=d["max_tokens_cap"].default,
                   help="larger max_tokens are clamped to this")
    p.add_argument("--timeout", type=float, default=d["request_timeout_s"].default,
                   dest="request_timeout_s", help="seconds per request incl. queue wait (504 after)")
    p.add_argument("--threads", type=int, default=d["engine_threads"].default, dest="engine_threads",
                   help="llama.cpp threads (1 is fastest on 2 busy cores)")
    p.add_argument("--ctx-per-slot", type=int, default=d["ctx_per_slot"].default)
    p.add_argument("--cache-ram-mib", type=int, default=d["engine_cache_ram_mib"].default,
                   dest="engine_cache_ram_mib", help="cap of llama.cpp's host-RAM prompt cache")
    cat = p.add_mutually_exclusive_group()
    cat.add_argument("--catalog", default=None,
                     help="ingested catalog folder for /v1/explain ids (default: LINERNOTES_HOME/catalog if present)")
    cat.add_argument("--no-catalog", action="store_true",
                     help="no catalog: /v1/explain takes inline item/listener objects only")
    p.add_argument("--metrics-open", action="store_true",
                   help="serve /metrics without a key (default: key required)")
    p.add_argument("--recommend-model", default=None,
                   help="code-model export folder (python -m finetune.export.codes): enables /v1/recommend "
                        "on a second llama.cpp engine")
    p.add_argument(ALLOW_FLAG, action="store_true", dest="allow_ungated",
                   help="serve a fine-tune export even if its export gate failed or was skipped")


def keys_from_file(path: str | None) -> list[str]:
    """Keys from a file, one per line (blank lines and '#' comments skipped)."""
    if not path:
        return []
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise ValueError(f"--api-key-file {path}: {exc.strerror}") from exc
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def settings_from_args(args: argparse.Namespace) -> ServeSettings:
    from linernotes import paths
    from serve.settings import choose_model_file, default_served_name

    model = Path(args.model).expanduser().resolve() if args.model else None
    if model is not None and args.engine != "vllm":
        choose_model_file(model)  # fail now, with what was looked for, not in the engine
    verdict = require_gated(model, engine=args.engine, allow_ungated=args.allow_ungated)
    if verdict is not None and not verdict.servable:  # allowed by the flag: say so loudly
        print(f"serve: WARNING serving an ungated export ({ALLOW_FLAG}): {verdict.detail}",
              file=sys.stderr, flush=True)
    recommend_model = None
    if getattr(args, "recommend_model", None):
        recommend_model = Path(args.recommend_model).expanduser().resolve()
        if not (recommend_model / "manifest.json").is_file():
            raise FileNotFoundError(f"--recommend-model {recommend_model}: no manifest.json (a folder written "
                                    "by `python -m finetune.export.codes`)")
        rec_verdict = require_gated(recommend_model, engine="llamacpp", allow_ungated=args.allow_ungated)
        if rec_verdict is not None and not rec_verdict.servable:
            print(f"serve: WARNING serving an ungated recommend model ({ALLOW_FLAG}): {rec_verdict.detail}",
                  file=sys.stderr, flush=True)
    if args.no_catalog:
        catalog = None
    elif args.catalog:
        catalog = Path(args.catalog)
    else:
        default = paths.catalog_dir()
        catalog = default if (default / "items.parquet").exists() else None
    keys = list(dict.fromkeys([*keys_from_env(), *keys_from_file(args.api_key_file)]))
    if not keys:
        # Like Jupyter's token: a bare `linernotes serve` works, and is still never open.
        import secrets

        keys = [secrets.token_urlsafe(24)]
        print(f"serve: no API key given (${ENV_API_KEYS} or --api-key-file); generated one for this run: "
              f"{keys[0]}", file=sys.stderr, flush=True)
    return ServeSettings(
        model_path=model, served_name=args.served_name or default_served_name(model),
        host=args.host, port=args.port, engine=args.engine, api_keys=keys, slots=args.slots,
        queue_size=args.queue_size, max_body_bytes=args.max_body_bytes,
        max_tokens_cap=args.max_tokens_cap, request_timeout_s=args.request_timeout_s,
        engine_threads=args.engine_threads, ctx_per_slot=args.ctx_per_slot,
        engine_cache_ram_mib=args.engine_cache_ram_mib, catalog_dir=catalog,
        metrics_open=args.metrics_open, allow_ungated=args.allow_ungated, recommend_model=recommend_model)


def run_from_args(args: argparse.Namespace) -> int:
    try:
        settings = settings_from_args(args)
    except (UngatedModel, ValueError, FileNotFoundError) as exc:
        print(f"serve: {exc}", file=sys.stderr)
        return 2
    from serve.runner import run_endpoint  # uvicorn, starlette: only when serving

    return run_endpoint(settings)


def main(argv: list[str] | None = None) -> int:
    """`python -m serve ...` (what `linernotes serve` and start_endpoint run)."""
    from linernotes import paths

    paths.use_offline_hub()
    parser = argparse.ArgumentParser(prog="linernotes serve", description=__doc__, allow_abbrev=False,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


def add_parser(sub) -> None:
    """Register `linernotes serve` on the top-level subparsers."""
    p = sub.add_parser("serve", help="serve a model: OpenAI-compatible + /v1/explain endpoint",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                       allow_abbrev=False)  # `--api-key X` must not pass as --api-key-file
    add_arguments(p)
    p.set_defaults(fn=run_from_args)
