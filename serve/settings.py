"""What one endpoint serves and under which limits: `ServeSettings`, the model-file choice.

Everything is fixed when the endpoint starts (model file, catalog folder, keys,
limits); no request can change it. The "model" field of a request is only a
name that must match `served_name`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

ENV_API_KEYS = "LINERNOTES_API_KEYS"
DEFAULT_SERVED_NAME = "smollm2-135m-instruct"
# Export folders written by the fine-tune stage: smallest first (Q4_0 is ~half
# of Q8_0 and decodes faster on CPU; quality was gated at export time).
GGUF_PREFERENCE = ("model-Q4_0.gguf", "model-Q8_0.gguf")
ENGINES = ("auto", "llamacpp", "vllm")


@dataclass
class ServeSettings:
    """One endpoint's fixed configuration (CLI flags map 1:1 onto these fields)."""

    model_path: Path | None = None  # GGUF file or export folder as given; None: packaged SmolLM2
    served_name: str = DEFAULT_SERVED_NAME
    host: str = "127.0.0.1"
    port: int = 8000
    engine: str = "auto"
    api_keys: list[str] = field(default_factory=list)
    # Concurrency: `slots` requests run on the engine at once (= its parallel
    # slots), `queue_size` more may wait; anything beyond gets 429 at once.
    slots: int = 8
    queue_size: int = 8
    max_body_bytes: int = 256 * 1024
    max_tokens_cap: int = 512  # larger requested max_tokens are clamped, not refused
    default_max_tokens: int = 256  # when a request names none (llama.cpp would run to n_ctx)
    max_n: int = 1  # choices per request; more is a 400 (llama.cpp serves one anyway)
    request_timeout_s: float = 120.0  # queue wait + generation; 504 after
    engine_threads: int = 1  # llama.cpp threads (1 on 2-core machines: 2 collapsed ~10x under load)
    ctx_per_slot: int = 1536
    # llama.cpp keeps old prompts' KV in host RAM (8192 MiB by default): a long-running
    # endpoint caps it so its memory stays bounded.
    engine_cache_ram_mib: int | None = 512
    catalog_dir: Path | None = None  # None: no catalog (explain takes inline item/listener only)
    metrics_open: bool = False  # True: /metrics without a key (for a local Prometheus scraper)
    explain_max_tokens: int = 128
    allow_ungated: bool = False  # True: a fine-tune export served although its gate did not pass
    # /v1/recommend: a `python -m finetune.export.codes` folder, served by a second llama.cpp
    # engine; None: no recommend route (the main engine is the same either way)
    recommend_model: Path | None = None

    def __post_init__(self) -> None:
        if self.slots < 1:
            raise ValueError("slots must be at least 1")
        if self.queue_size < 0:
            raise ValueError("queue_size must be 0 or more")
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, not {self.engine!r}")
        if not self.api_keys:
            raise ValueError(f"no API key: set {ENV_API_KEYS} (comma-separated) or pass --api-key-file")
        if any(len(k) < 8 for k in self.api_keys):
            raise ValueError("API keys must be at least 8 characters")
        self.default_max_tokens = min(self.default_max_tokens, self.max_tokens_cap)

    @property
    def capacity(self) -> int:
        """Requests admitted at once (running + waiting)."""
        return self.slots + self.queue_size


def keys_from_env(environ: dict[str, str] | None = None) -> list[str]:
    raw = (environ if environ is not None else os.environ).get(ENV_API_KEYS, "")
    return [k.strip() for k in raw.split(",") if k.strip()]


def choose_model_file(path: str | Path) -> Path:
    """The GGUF to serve from a .gguf path or a fine-tune export folder.

    Folder: model-Q4_0.gguf, else model-Q8_0.gguf, else the only/first *.gguf
    (sorted, so the choice is stable). Raises FileNotFoundError with what was
    looked for.
    """
    path = Path(path).expanduser()
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ValueError(f"{path} is not a .gguf file")
        return path.resolve()
    if not path.is_dir():
        raise FileNotFoundError(f"model not found: {path}")
    for name in GGUF_PREFERENCE:
        if (path / name).is_file():
            return (path / name).resolve()
    found = sorted(p for p in path.glob("*.gguf") if p.is_file())
    if not found:
        raise FileNotFoundError(f"no .gguf file in {path} (looked for {', '.join(GGUF_PREFERENCE)}, *.gguf)")
    return found[0].resolve()


def default_served_name(model_path: Path | None) -> str:
    """Packaged model: its usual name; an export folder's GGUF: the folder's name."""
    if model_path is None:
        return DEFAULT_SERVED_NAME
    folder = model_path if model_path.is_dir() else model_path.parent
    if model_path.is_dir() or model_path.name in GGUF_PREFERENCE:
        # the fine-tune stage writes <run>/export/: name it after the run
        return folder.parent.name if folder.name == "export" else folder.name
    return model_path.stem
