"""Stage 3 export: merge the LoRA adapter, write GGUF files, gate them against the HF model.

    python -m finetune.export --run runs/finetune-XXXX [--types Q8_0 Q4_0] [--no-gate]
    python -m finetune.export --base            # export the base model (no adapter)
"""

from __future__ import annotations

import argparse
import json
import sys

from finetune.export.common import ExportError, ExportGateFailed
from finetune.export.convert import CONVERTER_OUTTYPES
from finetune.export.quantize import PYTHON_QUANT_TYPES
from finetune.export.reference import DEFAULT_MAX_NEW_TOKENS
from finetune.export.stage import DEFAULT_TYPES, run_export

def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The export flags (shared by `python -m finetune.export` and `linernotes export`)."""
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", help="finetune run folder (runs/finetune-...) with adapter/ and manifest.json")
    src.add_argument("--base", action="store_true", help="export the base model (no adapter)")
    ap.add_argument("--out", help="export folder (default: <run>/export, or runs/export-base)")
    ap.add_argument("--types", nargs="+", default=list(DEFAULT_TYPES),
                    help=f"GGUF types (default {' '.join(DEFAULT_TYPES)}; converter: "
                         f"{', '.join(CONVERTER_OUTTYPES)}; Python quantizer: {', '.join(PYTHON_QUANT_TYPES)})")
    ap.add_argument("--no-gate", action="store_true", help="skip the llama.cpp vs HF gate")
    ap.add_argument("--no-adapter-gguf", action="store_true", help="do not write adapter.gguf")
    ap.add_argument("--max-new-tokens", type=int, default=DEFAULT_MAX_NEW_TOKENS)
    ap.add_argument("--min-agreement", action="append", default=[], metavar="TYPE=SHARE",
                    help="override a gate threshold, e.g. Q4_0=0.7 (default: GATE_MIN_AGREEMENT)")
    ap.add_argument("--base-model", help="HF base model folder (default: the run's, else packaged SmolLM2)")
    ap.add_argument("--keep-intermediate", action="store_true", help="keep the float GGUF used for 4-bit")
    ap.add_argument("--force", action="store_true", help="redo a complete export")


def run_from_args(args: argparse.Namespace, ap: argparse.ArgumentParser) -> int:
    mins = {}
    for item in args.min_agreement:
        key, _, val = item.partition("=")
        try:
            mins[key.upper()] = float(val)
        except ValueError:
            ap.error(f"--min-agreement {item!r}: expected TYPE=SHARE")
    try:
        out = run_export(None if args.base else args.run, args.out, args.types, gate=not args.no_gate,
                         force=args.force, base_model_dir=args.base_model, adapter_gguf=not args.no_adapter_gguf,
                         max_new_tokens=args.max_new_tokens, min_agreement=mins or None,
                         keep_intermediate=args.keep_intermediate)
    except ExportGateFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    m = json.loads((out / "manifest.json").read_text())
    for name, info in m["files"].items():
        res = (m["gate"]["results"] or {}).get(info["type"])
        gate_s = f", gate agreement {res['agreement']:.3f} (min {res['min_agreement']})" if res else ""
        print(f"{out / name}: {info['bytes'] / 1e6:.1f} MB{gate_s}")
    print(f"{out}: complete in {m['timings']['total']} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m finetune.export", description=__doc__.split("\n")[0])
    add_arguments(ap)
    return run_from_args(ap.parse_args(argv), ap)
