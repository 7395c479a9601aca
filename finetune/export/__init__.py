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

One module per step: sdist.py (llama.cpp's converter, fetched from the llama-cpp-python sdist),
convert.py (HF/adapter -> GGUF with that converter), quantize.py (4-bit and GGUF re-writes in
Python), merge.py (adapter merged into the base model), reference.py (gate prompts and the HF
model's generations), gate.py (the export gate: llama.cpp vs merged HF), lineage.py, stage.py
(`run_export`, which runs them in order and writes the manifest) and cli.py.

A failed gate raises ExportGateFailed; gate.json holds the report and the export
gets no COMPLETE marker.

    python -m finetune.export --run runs/finetune-XXXX [--types Q8_0 Q4_0] [--no-gate]
    python -m finetune.export --base            # export the base model (no adapter)
"""

from __future__ import annotations

from finetune.export.cli import add_arguments, main, run_from_args
from finetune.export.common import (
    ADAPTER_GGUF, COMPLETE, EXPORT_DIR, GATE_FILE, MERGED_DIR, STAGE, ExportError, ExportGateFailed, sha256_file,
)
from finetune.export.convert import CONVERTER_OUTTYPES, convert_hf_to_gguf, convert_lora_to_gguf
from finetune.export.gate import (
    CHAT_MARKERS, GATE_MAX_FLIP_MARGIN, GATE_MIN_AGREEMENT, ROLE_HEADER, GateReport, PromptResult, export_gate,
)
from finetune.export.lineage import SMOLLM2_SOURCE, data_lineage
from finetune.export.merge import merge_adapter
from finetune.export.quantize import PYTHON_QUANT_TYPES, gguf_metadata, gguf_tensor_types, rewrite_gguf
from finetune.export.reference import (
    DEFAULT_MAX_NEW_TOKENS, STOP_PROBE_PROMPTS, HFGeneration, HFReference, gate_prompts, golden_prompts,
    hf_reference, stop_probe_prompts,
)
from finetune.export.sdist import (
    LLAMA_CPP_PYTHON_SHA256, LLAMA_CPP_PYTHON_VERSION, converter_root, llama_cpp_converter,
)
from finetune.export.stage import DEFAULT_TYPES, run_export

__all__ = [
    "ADAPTER_GGUF", "COMPLETE", "EXPORT_DIR", "GATE_FILE", "MERGED_DIR", "STAGE", "ExportError", "ExportGateFailed",
    "sha256_file", "CONVERTER_OUTTYPES", "convert_hf_to_gguf", "convert_lora_to_gguf",
    "CHAT_MARKERS", "GATE_MAX_FLIP_MARGIN", "GATE_MIN_AGREEMENT", "ROLE_HEADER", "GateReport", "PromptResult",
    "export_gate", "SMOLLM2_SOURCE", "data_lineage", "merge_adapter",
    "PYTHON_QUANT_TYPES", "gguf_metadata", "gguf_tensor_types", "rewrite_gguf",
    "DEFAULT_MAX_NEW_TOKENS", "STOP_PROBE_PROMPTS", "HFGeneration", "HFReference", "gate_prompts", "golden_prompts",
    "hf_reference", "stop_probe_prompts", "LLAMA_CPP_PYTHON_SHA256", "LLAMA_CPP_PYTHON_VERSION", "converter_root",
    "llama_cpp_converter", "DEFAULT_TYPES", "run_export", "add_arguments", "main", "run_from_args",
]
