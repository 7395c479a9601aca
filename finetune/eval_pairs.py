"""Held-out (item, listener) pairs for the report card, and the teacher's notes for them.

Held-out rule: pairs are planned from the catalog with the eval seed
(`synth.pipeline.plan_rows`, the same planner synth uses), then every pair
whose item the run trained on is dropped: item ids of the SFT rows (the
run's `train_data`), of the DPO preference rows (`preference_data`), and the
titles of the editors' golden examples (the demo trains on them; they carry
no item id). Items are disjoint from training, not only pairs.

Teacher notes (`teacher_notes`): the teacher's raw first attempt (attempt 0,
before any revision) is taken from the synth run when that run has a row for
exactly the same (item, listener); the other pairs are generated with the
configured teacher endpoint, with synth's few-shot prompt, JSON schema and
first-attempt sampling. Synth's rows that were left out of training are not
used as the held-out set: they are mostly the rows that failed the gates or
curation, so the teacher's rate on them would be biased low.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Sequence

from finetune.config import EvalConfig


def _data_item_ids(data: str | None) -> set[str]:
    if not data or not Path(data).exists():
        return set()
    from finetune.data import load_rows

    try:
        rows = load_rows(data)
    except (FileNotFoundError, ValueError):
        rows = []
    if not rows and Path(data).is_dir():  # a published folder: preferences sit beside sft
        import pyarrow.parquet as pq

        rows = [r for f in sorted(Path(data).glob("data/preferences/*.parquet"))
                for r in pq.read_table(f, columns=["item_id"]).to_pylist()]
    return {str(r.get("item_id")) for r in rows if r.get("item_id")}


def train_item_ids(run_dir: Path) -> set[str]:
    """Item ids the run trained on (SFT train_data and DPO preference_data from its manifest)."""
    manifest = json.loads((run_dir / "manifest.json").read_text()) if (run_dir / "manifest.json").exists() else {}
    config = manifest.get("config") or {}
    ids = _data_item_ids(config.get("train_data"))
    pref = config.get("preference_data")
    if pref and Path(pref).is_dir():
        import pyarrow.parquet as pq

        for f in sorted(Path(pref).glob("data/preferences/*.parquet")):
            ids |= {str(r["item_id"]) for r in pq.read_table(f, columns=["item_id"]).to_pylist() if r["item_id"]}
    elif pref:
        ids |= _data_item_ids(pref)
    return ids


def golden_titles() -> set[str]:
    """Lower-cased titles of the editors' golden examples (trained on, no item id)."""
    from linernotes.domain.prompts import PromptBuilder

    out = set()
    for ex in PromptBuilder.default(few_shot=0).golden:
        title = ex.item.get("title") if isinstance(ex.item, dict) else getattr(ex.item, "title", None)
        if title:
            out.add(str(title).strip().lower())
    return out


def heldout_pairs(catalog, config: EvalConfig, exclude_items: set[str],
                  exclude_titles: set[str] | None = None) -> list:
    """Seeded, distinct (item, listener) pairs per type, none with a training item.

    Plans 4x the wanted pairs and doubles that (to 64x) while too few survive the exclusions;
    a type that still falls short keeps what it has (the report counts pairs per type)."""
    from linernotes.config import SynthConfig
    from synth.pipeline import plan_rows

    titles = exclude_titles or set()
    out = []
    for item_type in config.item_types:
        fresh: list = []
        for factor in (4, 8, 16, 32, 64):
            plan = plan_rows(catalog, SynthConfig(seed=config.seed, item_types=[item_type],
                                                  n_per_type=config.n_per_type * factor))
            seen: set[tuple[str, str]] = set()
            fresh = []
            for p in plan:
                key = (p.item.item_id, p.listener.listener_id)
                if p.item.item_id in exclude_items or key in seen or \
                        (p.item.title or "").strip().lower() in titles:
                    continue
                seen.add(key)
                fresh.append(p)
            if len(fresh) >= config.n_per_type:
                break
        out.extend(fresh[: config.n_per_type])
    return out


# ---------------------------------------------------------------- teacher notes

def first_attempt(row: dict[str, Any]) -> str | None:
    """A generated row's first attempt (candidate 0), else its raw_output."""
    from linernotes.jsoncol import loads_json

    meta = row.get("metadata")
    meta = loads_json(meta, {}, expect=dict) if isinstance(meta, str) else (meta or {})
    for c in (meta or {}).get("candidates") or []:
        if c.get("attempt") == 0:
            return c.get("raw_output")
    return row.get("raw_output")


def synth_first_attempts(synth_run: Path | None) -> dict[tuple[str, str], str | None]:
    """{(item_id, listener_id): raw first attempt} of a synth run (empty without one)."""
    if synth_run is None:
        return {}
    from linernotes.runs import RunDir

    rows = RunDir(Path(synth_run)).read_rows("generated").to_pylist()
    return {(r["item_id"], r["listener_id"]): first_attempt(r) for r in rows}


def find_synth_run(config: EvalConfig) -> Path | None:
    if config.synth_run:
        return Path(config.synth_run)
    from linernotes.runs import RunDir

    found = RunDir.find("synth")
    return found.path if found is not None else None


def generate_teacher(endpoint, pairs: Sequence, concurrency: int = 4, seed: int = 17) -> tuple[list[str | None], list[float]]:
    """The teacher's first attempt for each pair: synth's few-shot prompt + JSON schema + sampling."""
    import time

    from openai import OpenAI

    from linernotes.config import SynthConfig
    from linernotes.domain.prompts import EXPLANATION_SCHEMA, PromptBuilder

    sc = SynthConfig(seed=seed)
    builder = PromptBuilder.default(sc.template, sc.golden_examples, sc.few_shot, sc.max_words)
    client = OpenAI(base_url=endpoint.base_url, api_key=endpoint.api_key, max_retries=2, timeout=300)

    def one(p) -> tuple[str | None, float]:
        kwargs: dict[str, Any] = {"model": endpoint.model, "messages": builder.messages(p.item, p.listener),
                                  "max_tokens": sc.max_new_tokens, "temperature": sc.temperature,
                                  "top_p": sc.top_p}
        if getattr(endpoint, "send_seed", True):
            kwargs["seed"] = sc.seed
        if getattr(endpoint, "structured", True):
            kwargs["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "liner_note", "schema": EXPLANATION_SCHEMA}}
        t = time.monotonic()
        try:
            reply = client.chat.completions.create(**kwargs)
            text = reply.choices[0].message.content
        except Exception as exc:  # one failed call is one failed note, not a failed report
            text = None
            print(f"teacher call failed for {p.item.item_id}: {type(exc).__name__}: {exc}")
        return text, time.monotonic() - t

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        results = list(pool.map(one, pairs))
    return [r[0] for r in results], [r[1] for r in results]
