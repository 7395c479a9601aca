"""GGUF re-writing and 4-bit quantization in Python (the `gguf` package), GGUF metadata.

4-bit: llama.cpp's `llama-quantize` is not available (no binary here, and the
xllamacpp wheel does not export `llama_model_quantize`). The `gguf` package
quantizes Q4_0 in numpy, byte-identical to ggml's own `ggml_quantize_chunk`
(tests/test_export.py checks that against the copy inside xllamacpp). K-quants
have no Python quantizer, so the 4-bit type is Q4_0. Like llama-quantize, which
keeps the output matrix at higher precision (Q6_K), the tied embedding/output
matrix stays at Q8_0; norms and other 1-D tensors stay F32.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from finetune.export.common import package_version

PYTHON_QUANT_TYPES = ("Q4_0", "Q4_1", "Q5_0", "Q5_1")


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
            "tool": f"gguf {package_version('gguf')} (Python)", "source": src.name, "tensor_types": counts}


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
