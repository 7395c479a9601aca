"""llama.cpp's GGUF converter scripts, fetched once from the llama-cpp-python sdist.

Where the converter comes from: llama.cpp's `convert_hf_to_gguf.py` /
`convert_lora_to_gguf.py` ship in no wheel, only in the llama-cpp-python sdist
(`vendor/llama.cpp`). It is fetched once with `pip download --no-binary :all:`
(pinned version + sha256), and the scripts, their sibling `conversion/`
package and the vendored `gguf-py/` (PyPI's gguf lacks `LazyChunkedTensor`)
are extracted under `LINERNOTES_HOME/packages/`. They run in a subprocess with
PYTHONPATH on that gguf-py, so the venv's own `gguf` is left alone.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from finetune.export.common import ExportError, log, sha256_file
from linernotes import paths

# llama.cpp's converter, vendored in this sdist (there is no wheel on PyPI).
LLAMA_CPP_PYTHON_VERSION = "0.3.36"
LLAMA_CPP_PYTHON_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
_VENDOR = "vendor/llama.cpp"
_CONVERTER_MEMBERS = ("convert_hf_to_gguf.py", "convert_lora_to_gguf.py", "conversion/", "gguf-py/",
                      "LICENSE")


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
        log(f"fetching llama-cpp-python {LLAMA_CPP_PYTHON_VERSION} sdist (llama.cpp's GGUF converter)")
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


def vendored_gguf_version(converter: Path) -> str | None:
    m = re.search(r'^version\s*=\s*"([^"]+)"', (converter / "gguf-py" / "pyproject.toml").read_text()
                  if (converter / "gguf-py" / "pyproject.toml").exists() else "", re.M)
    return m.group(1) if m else None
