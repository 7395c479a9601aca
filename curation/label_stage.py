"""The labeling stage around Argilla: push a curated sample, pull the answers.

    push_curated(curate_run)          the curation run's review sample -> Argilla datasets
    demo_annotate(stack, dataset)     DEMO STAND-IN FOR PEOPLE: scripted annotators answer via the API
    pull_and_resolve(dataset)         responses -> golden set, preference pairs, agreement -> runs/label-*/

The stand-in exists so `make demo` can run the whole loop unattended; it is
named as such everywhere it appears, and its answers are derived from the
gates plus deterministic disagreements, never presented as expert labels.

Provenance: `demo_annotate` writes a ledger of what it submitted
(`scripted_ledger_path(dataset_id)`: user -> "<review|pairs>:<record id>");
`pull_and_resolve` marks each response `answered_by` = "scripted" when the
ledger has it, else "human" (someone answered in Argilla), and the label run's
manifest says `label_source: {"human": n, "scripted": m}` with the account
names of each. Cards (curation.publish, finetune.card) follow that record.
Limitation: a person who later edits a scripted answer under the stand-in's
account is still counted as scripted.

The demo's datasets ask for `DEMO_MIN_SUBMITTED` answers per record, one more
than the scripted stand-ins give, so after the demo every record still waits
for a person: the owner account's first screen is the pending queue, with the
gates' suggestions, not "The task is completed!" (`owner_next_steps`).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pandas as pd

from linernotes import paths
from linernotes.records import content_hash
from linernotes.jsoncol import loads_obj
from linernotes.runs import RunDir, package_versions

DEMO_STAND_IN = "demo stand-in annotator (scripted, not a person)"
DEMO_ANNOTATORS = ("annotator", "annotator2")
DEMO_MIN_SUBMITTED = len(DEMO_ANNOTATORS) + 1  # one answer per record is left for a person


def sample_frame(curate_run: RunDir | str | Path) -> pd.DataFrame:
    run = curate_run if isinstance(curate_run, RunDir) else RunDir(curate_run)
    return run.read_rows("review_sample", "sample/review-00000-of-00001.parquet").to_pandas()


def default_dataset_name(curate_run: RunDir | str | Path) -> str:
    run = curate_run if isinstance(curate_run, RunDir) else RunDir(curate_run)
    return f"liner-notes-review-{run.name.split('-', 1)[-1]}"


def push_curated(curate_run: RunDir | str | Path, dataset_name: str | None = None,
                 client: Any = None, *, min_submitted: int = 2) -> dict:
    """The review sample -> Argilla (review dataset + pairs dataset when there are pairs).
    The demo passes `min_submitted=DEMO_MIN_SUBMITTED` (see the module doc)."""
    from curation import labeling
    from linernotes.services import argilla

    client = client or argilla.client()
    name = dataset_name or default_dataset_name(curate_run)
    return labeling.push(sample_frame(curate_run), name, client, min_submitted=min_submitted)


def owner_next_steps(api_url: str, owner: str, dataset_name: str, n_records: int, n_pairs: int = 0,
                     min_submitted: int = 2, scripted_users: tuple[str, ...] = DEMO_ANNOTATORS) -> list[str]:
    """What the demo tells the person who opens Argilla (no secrets: the password is printed
    by the caller's own credential line, if at all)."""
    waiting = min_submitted > len(scripted_users)
    lines = [f"Argilla UI: {api_url} - log in as `{owner}` (owner)."]
    if waiting:
        lines.append(f"Dataset `{dataset_name}`: {n_records} records wait for your review (Pending tab); "
                     f"the suggestions come from the automatic gates, and the answers already given are "
                     f"scripted demo labels (not human) by {', '.join(scripted_users)}.")
        if n_pairs:
            lines.append(f"Dataset `{dataset_name}-pairs`: {n_pairs} candidate pairs to rank.")
        lines.append("Your answers win over the scripted ones; `linernotes label pull` then records them as human.")
    else:
        lines.append(f"Dataset `{dataset_name}`: records with {min_submitted} answers leave the Pending queue "
                     "(Argilla's task distribution), so it may show \"The task is completed!\".")
    return lines


def _demo_answer(annotator: int, record: dict) -> dict:
    """What a scripted annotator answers: the gates' suggestions (a question without one gets
    the cautious answer), the second annotator disagreeing on every fifth record (so agreement
    is not 1). A pairs-dataset record (fields candidate_a / candidate_b) gets a ranking only."""
    idx = int(content_hash(record["id"]), 16)
    fields = record.get("fields", {})
    if "candidate_a" in fields:
        first = "a" if (idx + annotator) % 3 else "b"
        return {"preference": [{"value": first, "rank": 1}, {"value": "b" if first == "a" else "a", "rank": 2}]}
    suggestions = record.get("suggestions", {})
    grounded = suggestions.get("grounded", "unsupported_fact")
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
    return values


def scripted_ledger_path(dataset_id: str) -> Path:
    """Where `demo_annotate` records what its scripted stand-ins submitted, per review dataset id."""
    folder = paths.sub("labels") / "scripted"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{dataset_id}.json"


def _write_ledger(dataset_id: str, answered: dict[str, set[str]]) -> Path:
    path = scripted_ledger_path(dataset_id)
    old = json.loads(path.read_text()) if path.exists() else {}
    users = {u: set(v) for u, v in (old.get("answers") or {}).items()}
    for u, keys in answered.items():
        users.setdefault(u, set()).update(keys)
    body = {"who": DEMO_STAND_IN, "dataset_id": dataset_id,
            "answers": {u: sorted(v) for u, v in sorted(users.items())}}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(body, indent=1))
    os.replace(tmp, path)
    return path


def load_scripted(dataset_id: str | None) -> dict[str, set[str]]:
    """username -> {"<review|pairs>:<record id>"} the scripted stand-ins submitted (empty if none)."""
    if not dataset_id:
        return {}
    path = scripted_ledger_path(dataset_id)
    if not path.exists():
        return {}
    return {u: set(v) for u, v in (json.loads(path.read_text()).get("answers") or {}).items()}


def _pairs_dataset_id(stack: Any, headers: dict, dataset_id: str) -> str | None:
    """The pairs dataset next to `dataset_id` (same name + "-pairs"), as the annotator sees it."""
    import httpx

    from curation.label_records import pairs_dataset_name

    try:
        me = httpx.get(f"{stack.api_url}/api/v1/me/datasets", headers=headers, timeout=30)
        me.raise_for_status()
        items = me.json().get("items", [])
        name = next((d["name"] for d in items if str(d.get("id")) == str(dataset_id)), None)
        return next((str(d["id"]) for d in items if name and d.get("name") == pairs_dataset_name(name)), None)
    except (httpx.HTTPError, KeyError, ValueError):
        return None


def demo_annotate(stack: Any, dataset_id: str, sample_df: pd.DataFrame,
                  annotators: tuple[str, ...] = DEMO_ANNOTATORS, limit: int = 1000,
                  pairs_dataset_id: str | None = None) -> dict:
    """DEMO STAND-IN FOR PEOPLE: each scripted annotator takes its queue from the API (as the
    UI does) in the review dataset and its pairs dataset (found by name when not given), submits
    an answer per record, and the ledger of scripted answers is written (`scripted_ledger_path`)."""
    import httpx

    from curation.labeling import to_records

    local = {r["id"]: r for r in to_records(sample_df)}  # gate suggestions by record id
    items = {str(rid): loads_obj(item) for rid, item in zip(sample_df["record_id"], sample_df["item"])}

    submitted, answered = {}, {}
    for i, user in enumerate(annotators):
        headers = {"X-Argilla-Api-Key": stack.annotator_api_keys[user]}
        if pairs_dataset_id is None:
            pairs_dataset_id = _pairs_dataset_id(stack, headers, dataset_id)
        n, keys = 0, set()
        for kind, ds_id in (("review", dataset_id), ("pairs", pairs_dataset_id)):
            if not ds_id:
                continue
            queue = httpx.post(f"{stack.api_url}/api/v1/me/datasets/{ds_id}/records/search",
                               headers=headers, json={}, params={"limit": limit, "include": "suggestions"},
                               timeout=60)
            queue.raise_for_status()
            for item in queue.json()["items"]:
                record = item["record"]
                rid = str(record.get("external_id") or record["id"])
                if any(r.get("user_id") for r in record.get("responses") or []):
                    keys.add(f"{kind}:{rid}")  # answered before by this user (a rerun)
                    continue
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
                keys.add(f"{kind}:{rid}")
                n += 1
        submitted[user], answered[user] = n, keys
    ledger = _write_ledger(dataset_id, answered)
    return {"who": DEMO_STAND_IN, "submitted": submitted, "scripted_users": list(annotators),
            "pairs_dataset_id": pairs_dataset_id, "ledger": str(ledger)}


def mark_provenance(responses: pd.DataFrame, scripted: dict[str, set[str]]) -> pd.DataFrame:
    """Add `answered_by`: "scripted" where the ledger has (user, "<dataset>:<record>"), else "human"."""
    out = responses.copy()
    kinds = out["dataset"].fillna("review") if "dataset" in out.columns else pd.Series("review", index=out.index)
    recs = out["argilla_record"] if "argilla_record" in out.columns else out["record_id"]
    out["answered_by"] = ["scripted" if f"{k}:{r}" in scripted.get(str(u), set()) else "human"
                          for u, k, r in zip(out["username"], kinds, recs)]
    return out


def provenance_summary(responses: pd.DataFrame) -> dict:
    """{'label_source': {'human': n, 'scripted': m}, 'annotators': {'human': [...], 'scripted': [...]}}
    over submitted responses."""
    sub = responses[responses["status"] == "submitted"] if len(responses) else responses
    by = sub["answered_by"] if len(sub) else pd.Series(dtype=object)
    names = {k: sorted(set(sub.loc[by == k, "username"].astype(str))) if len(sub) else []
             for k in ("human", "scripted")}
    out = {"label_source": {k: int((by == k).sum()) for k in ("human", "scripted")}, "annotators": names}
    if out["label_source"]["scripted"]:
        out["scripted_by"] = DEMO_STAND_IN
    return out


def pull_and_resolve(dataset_name: str, client: Any = None, runs_dir: str | Path | None = None,
                     lineage: dict | None = None, scripted: dict[str, set[str]] | None = None) -> RunDir:
    """Responses -> golden set + preference pairs + agreement, written as a label run.
    `scripted`: username -> {"<review|pairs>:<record id>"} answered by a script; default: the
    ledger `demo_annotate` wrote for this dataset (none: every answer counts as human)."""
    from curation import labeling
    from linernotes.services import argilla

    client = client or argilla.client()
    t0 = time.perf_counter()
    if scripted is None:
        ds = client.datasets(name=dataset_name)
        scripted = load_scripted(str(ds.id) if ds is not None else None)
    responses = mark_provenance(labeling.pull(dataset_name, client), scripted)
    out = labeling.resolve(responses)
    run = RunDir((Path(runs_dir) if runs_dir else paths.runs_dir()) / f"label-{dataset_name}")
    run.prepare()
    # each table through its declared row kind (linernotes.rows)
    run.write_rows(responses, kind="response", name="responses.parquet")
    run.write_rows(out["golden"], kind="golden", name="golden.parquet")
    run.write_rows(out["pairs"], kind="label_pair", name="pairs.parquet")
    run.write_rows(out["resolved"], kind="review", name="resolved.parquet")
    (run.path / "agreement.json").write_text(json.dumps(out["agreement"], indent=2, default=str))
    run.write_manifest({
        "stage": "label", "run": run.name, "dataset": dataset_name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "versions": package_versions(),
        "counts": {"responses": int(len(responses)), "records": int(responses["record_id"].nunique())
                   if len(responses) else 0,
                   "golden": int(len(out["golden"])), "pairs": int(len(out["pairs"]))},
        **provenance_summary(responses),
        "lineage": lineage or {}, "pull_s": round(time.perf_counter() - t0, 3)})
    run.mark_complete()
    return run
