"""The labeling stage around Argilla: push a curated sample, pull the answers.

    push_curated(curate_run)          the curation run's review sample -> an Argilla dataset
    demo_annotate(stack, dataset)     DEMO STAND-IN FOR PEOPLE: scripted annotators answer via the API
    pull_and_resolve(dataset)         responses -> golden set, preference pairs, agreement -> runs/label-*/

The stand-in exists so `make demo` can run the whole loop unattended; it is
named as such everywhere it appears, and its answers are derived from the
gates plus deterministic disagreements, never presented as expert labels.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pandas as pd

from linernotes import paths
from linernotes.records import content_hash
from linernotes.runs import RunDir, package_versions

DEMO_STAND_IN = "demo stand-in annotator (scripted, not a person)"


def sample_frame(curate_run: RunDir | str | Path) -> pd.DataFrame:
    run = curate_run if isinstance(curate_run, RunDir) else RunDir(curate_run)
    return pd.read_parquet(run.path / "sample" / "review-00000-of-00001.parquet")


def default_dataset_name(curate_run: RunDir | str | Path) -> str:
    run = curate_run if isinstance(curate_run, RunDir) else RunDir(curate_run)
    return f"liner-notes-review-{run.name.split('-', 1)[-1]}"


def push_curated(curate_run: RunDir | str | Path, dataset_name: str | None = None,
                 client: Any = None) -> dict:
    from curation import labeling
    from linernotes.services import argilla

    client = client or argilla.client()
    name = dataset_name or default_dataset_name(curate_run)
    return labeling.push(sample_frame(curate_run), name, client)


def _demo_answer(annotator: int, record: dict) -> dict:
    """What a scripted annotator answers: the gates' suggestions, with the
    second annotator disagreeing on every fifth record (so agreement is not 1)."""
    suggestions = record.get("suggestions", {})
    idx = int(content_hash(record["id"]), 16)
    grounded = suggestions.get("grounded", "grounded")
    tone = suggestions.get("tone_ok", "yes")
    rating = 5 if grounded == "grounded" and tone == "yes" else 2
    if annotator == 1 and idx % 5 == 0:
        grounded = "unsupported_fact" if grounded == "grounded" else "grounded"
        rating = max(1, rating - 1)
    values: dict[str, Any] = {"rating": rating, "grounded": grounded, "tone_ok": tone}
    item = record.get("item") or {}
    if annotator == 0 and grounded != "grounded" and item.get("title"):
        # a scripted "correction" that uses catalog facts only: gives the demo
        # corrected-vs-original preference pairs
        by = f" by {item['creator']}" if item.get("creator") else ""
        genre = f" {item['genres'][0]}" if item.get("genres") else ""
        values["corrected_explanation"] = f"{item['title']}{by} is a{genre} pick worth a listen."
    fields = record.get("fields", {})
    if fields.get("other_explanation"):
        first = "this" if (idx + annotator) % 3 else "other"
        values["preference"] = [{"value": first, "rank": 1},
                                {"value": "other" if first == "this" else "this", "rank": 2}]
    return values


def demo_annotate(stack: Any, dataset_id: str, sample_df: pd.DataFrame,
                  annotators: tuple[str, ...] = ("annotator", "annotator2"), limit: int = 1000) -> dict:
    """DEMO STAND-IN FOR PEOPLE: each scripted annotator takes its queue from
    the API (as the UI does) and submits an answer per record."""
    import httpx

    from curation.labeling import to_records

    local = {r["id"]: r for r in to_records(sample_df)}  # gate suggestions by record id
    items = {str(rid): json.loads(item) for rid, item in zip(sample_df["record_id"], sample_df["item"])}

    submitted = {}
    for i, user in enumerate(annotators):
        headers = {"X-Argilla-Api-Key": stack.annotator_api_keys[user]}
        queue = httpx.post(f"{stack.api_url}/api/v1/me/datasets/{dataset_id}/records/search",
                           headers=headers, json={}, params={"limit": limit, "include": "suggestions"},
                           timeout=60)
        queue.raise_for_status()
        n = 0
        for item in queue.json()["items"]:
            record = item["record"]
            if any(r.get("user_id") for r in record.get("responses") or []):
                continue  # already answered by this user (a rerun)
            rid = str(record.get("external_id") or record["id"])
            known = local.get(rid, {})
            answer = _demo_answer(i, {"id": rid, "fields": record.get("fields", {}),
                                      "suggestions": known.get("suggestions", {}),
                                      "item": items.get(rid)})
            body = {"values": {q: {"value": v} for q, v in answer.items()}, "status": "submitted"}
            r = httpx.post(f"{stack.api_url}/api/v1/records/{record['id']}/responses",
                           headers=headers, json=body, timeout=30)
            if r.status_code == 409:  # answered before: keep the earlier answer
                continue
            r.raise_for_status()
            n += 1
        submitted[user] = n
    return {"who": DEMO_STAND_IN, "submitted": submitted}


def pull_and_resolve(dataset_name: str, client: Any = None, runs_dir: str | Path | None = None,
                     lineage: dict | None = None) -> RunDir:
    """Responses -> golden set + preference pairs + agreement, written as a label run."""
    from curation import labeling
    from linernotes.services import argilla

    client = client or argilla.client()
    t0 = time.perf_counter()
    responses = labeling.pull(dataset_name, client)
    out = labeling.resolve(responses)
    run = RunDir((Path(runs_dir) if runs_dir else paths.runs_dir()) / f"label-{dataset_name}")
    run.prepare()
    responses.to_parquet(run.path / "responses.parquet", index=False)
    out["golden"].to_parquet(run.path / "golden.parquet", index=False)
    out["pairs"].to_parquet(run.path / "pairs.parquet", index=False)
    out["resolved"].to_parquet(run.path / "resolved.parquet", index=False)
    (run.path / "agreement.json").write_text(json.dumps(out["agreement"], indent=2, default=str))
    run.write_manifest({
        "stage": "label", "run": run.name, "dataset": dataset_name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "versions": package_versions(),
        "counts": {"responses": int(len(responses)), "records": int(responses["record_id"].nunique())
                   if len(responses) else 0,
                   "golden": int(len(out["golden"])), "pairs": int(len(out["pairs"]))},
        "lineage": lineage or {}, "pull_s": round(time.perf_counter() - t0, 3)})
    run.mark_complete()
    return run
