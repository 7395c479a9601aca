"""Review of teacher explanations in Argilla (2.x SDK): push, pull, resolve.

One Argilla record per explanation in the curated review sample (one row of
the sample DataFrame). The record id is the sample's `record_id` (stable, from
content), so pushes are upserts: re-pushing creates no duplicates and
refreshes changed fields/metadata/suggestions, and a push interrupted half-way
then re-run ends with exactly the sample.

Datasets (`dataset_settings(kind=...)`; the record builders, cards and
suggestion rules are in `curation.label_records`):

* review (`<name>`): fields `item_card`, `listener` (markdown; missing values
  left out), `explanation`; questions `rating` (1-5), `grounded` (grounded /
  unsupported_fact / wrong_entity), `tone_ok` (yes / no),
  `corrected_explanation` (text, optional). No ranking question: most records
  have one candidate.
* pairs (`<name>-pairs`, only when the sample holds two candidates for one
  (item, listener)): fields `item_card`, `listener`, `candidate_a`,
  `candidate_b`; one required question `preference` (ranking of a / b).
* metadata: cluster, cluster_label, item_type, gate_grounding/style/safety
  (pass / fail / not run), gates_passed, on_item (the note names this item),
  teacher (model), prompt_version, sample_reason, item_id, listener_id, has_pair.
* suggestions from the automatic gates (agent `gates`), only where a gate
  judged this note against this item (`label_records.gate_suggestions`).
* no vectors: the local engine (osmem) stores vectors but cannot search them
  (no kNN), and the curated sample carries no embeddings; pass
  `with_vectors` for a real OpenSearch/Elasticsearch-backed Argilla.
* task distribution: `min_submitted=2` (two annotators per record); the demo
  asks for one more answer than its scripted stand-ins give, so records stay
  pending for the person who logs in (`label_stage.DEMO_MIN_SUBMITTED`).

Resolution rules (`resolve`), per record and question, over *submitted*
responses only (drafts and discards ignored):

1. an owner/admin ("editor") response wins outright (the reviewer in charge
   overrides);
2. otherwise the majority of annotators; ties: `rating` takes the lower
   value (conservative), labels stay unresolved (None), a tied preference
   produces no pair;
3. golden set: a record whose resolved corrected explanation exists ->
   that text (`source="corrected"`: owner's wins, and once an owner/admin
   answered only their correction counts; else the most frequent
   correction, ties -> the first annotator's in username order); else a
   record resolved as grounded, tone_ok=yes and rating >= `min_rating` ->
   the original explanation (`source="approved"`); everything else is out;
4. preference pairs: corrected (chosen) vs original (rejected) for every
   corrected record; and for two candidates of one (item, listener), the
   votes of the pairs dataset (and of any older `preference` answers on the
   review records) pooled, majority winner is chosen.

Provenance: each response row carries `answered_by` ("human" | "scripted",
see `label_stage`); resolved / golden / pair rows carry `label_source`
("human" | "scripted" | "mixed": who gave the answers they rest on).

Agreement (`agreement`, numpy only): per question, Cohen's kappa for the
two most active annotators (quadratic-weighted too for the rating),
Fleiss' kappa over records with the modal number of raters, Krippendorff's
alpha (nominal; interval for the rating; handles missing responses); per
annotator: responses, agreement with the resolved label, mean pairwise
Cohen's kappa with the others.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from typing import Any, Sequence

import numpy as np
import pandas as pd

# The record builders live in curation.label_records (no SDK); re-exported here.
from curation.label_records import (GATES, GROUNDED_LABELS, PAIR_VALUES, TONE_LABELS, gate_suggestions,
                                    item_card_md, listener_md, mentions_item, pair_index, pair_record_id,
                                    pairs_dataset_name, to_pair_records, to_records)

__all__ = ["GATES", "GROUNDED_LABELS", "PAIR_VALUES", "TONE_LABELS", "gate_suggestions", "item_card_md",
           "listener_md", "mentions_item", "pair_index", "pair_record_id", "pairs_dataset_name",
           "to_pair_records", "to_records", "push", "pull", "resolve", "agreement"]

QUESTIONS = ("rating", "grounded", "tone_ok", "corrected_explanation", "preference")
LABEL_QUESTIONS = ("rating", "grounded", "tone_ok", "preference")
EXPERT_ROLES = ("owner", "admin", "editor")
HUMAN, SCRIPTED = "human", "scripted"

GUIDELINES = """\
# Reviewing recommendation explanations

Each record is **one sentence** a teacher model wrote to explain why an item
(song, audiobook or podcast) is recommended to a listener. Read the **item
card** (the only facts the sentence may use) and the **listener** panel.

1. **Rating (1-5)**: overall, would you show this sentence to the listener?
   5 = accurate, specific, natural; 3 = acceptable but generic or clumsy;
   1 = wrong, misleading or inappropriate.
2. **Grounded?** `Grounded` if the sentence is about the item on the card and
   every fact it states (title, creator, year, genre, collection, ...) is on
   the item card or in the listener's history. `Unsupported fact` if it
   states something not on the card (even if true in the world). `Wrong
   entity` if it names the wrong title/creator/item, or is about another item.
3. **Tone OK?** `Yes` if friendly, concise, not pushy, no sensitive
   inferences about the listener (age, country are context, not content).
4. **Corrected explanation** (optional): if the sentence is fixable, write
   the corrected single sentence, using only card facts. Leave empty if it
   is fine or beyond repair.

Suggestions come from automatic gates, and only where a gate checked this
sentence against this item; a question without a suggestion is yours alone.
Check them, do not trust them. Submit every record you can judge; discard
only if the card is unreadable.
"""

PAIR_GUIDELINES = """\
# Comparing two candidates

Two sentences were written for the same item and listener. Rank them, best
first: more accurate (only facts from the item card and the listener's
history), more specific, more natural. Tie-breaker: the shorter one.
"""


# ---------------------------------------------------------------- settings

def dataset_settings(guidelines: str | None = None, *, kind: str = "review", min_submitted: int = 2,
                     with_vectors: dict[str, int] | None = None):
    """`argilla.Settings` for the review dataset (`kind="review"`) or the pairs dataset
    (`kind="pairs"`: the only one with a ranking question). Needs the SDK, not a server."""
    import argilla as rg

    if kind not in ("review", "pairs"):
        raise ValueError(f"kind must be 'review' or 'pairs', not {kind!r}")
    gate_opts = ["pass", "fail", "not run"]
    context = [rg.TextField(name="item_card", title="Item card", use_markdown=True),
               rg.TextField(name="listener", title="Listener", use_markdown=True)]
    ids = [rg.TermsMetadataProperty(name="item_id", title="Item id", visible_for_annotators=False),
           rg.TermsMetadataProperty(name="listener_id", title="Listener id", visible_for_annotators=False),
           rg.TermsMetadataProperty(name="item_type", title="Item type"),
           rg.TermsMetadataProperty(name="teacher", title="Teacher model")]
    if kind == "pairs":
        fields = [*context, rg.TextField(name="candidate_a", title="Candidate A", use_markdown=False),
                  rg.TextField(name="candidate_b", title="Candidate B", use_markdown=False)]
        questions = [rg.RankingQuestion(name="preference", title="Rank the two candidates, best first",
                                        values=PAIR_VALUES, required=True)]
        metadata = [*ids, rg.TermsMetadataProperty(name="record_a", title="Record A", visible_for_annotators=False),
                    rg.TermsMetadataProperty(name="record_b", title="Record B", visible_for_annotators=False)]
    else:
        fields = [*context, rg.TextField(name="explanation", title="Explanation", use_markdown=False)]
        questions = [
            rg.RatingQuestion(name="rating", title="Overall quality (1-5)", values=[1, 2, 3, 4, 5]),
            rg.LabelQuestion(name="grounded", title="Grounded in the item card?", labels=GROUNDED_LABELS),
            rg.LabelQuestion(name="tone_ok", title="Tone OK?", labels=TONE_LABELS),
            rg.TextQuestion(name="corrected_explanation", title="Corrected explanation (optional)",
                            required=False, use_markdown=False),
        ]
        metadata = [
            rg.IntegerMetadataProperty(name="cluster", title="Cluster"),
            rg.TermsMetadataProperty(name="cluster_label", title="Cluster label"),
            *[rg.TermsMetadataProperty(name=g, title=g.replace("_", " "), options=gate_opts) for g in GATES],
            rg.TermsMetadataProperty(name="gates_passed", title="All gates passed", options=["yes", "no"]),
            rg.TermsMetadataProperty(name="on_item", title="Names this item", options=["yes", "no"]),
            rg.TermsMetadataProperty(name="prompt_version", title="Prompt version"),
            rg.TermsMetadataProperty(name="sample_reason", title="Why sampled"),
            rg.TermsMetadataProperty(name="has_pair", title="Two candidates", options=["yes", "no"]),
            *ids,
        ]
    vectors = [rg.VectorField(name=n, dimensions=d) for n, d in (with_vectors or {}).items()]
    text = guidelines or (PAIR_GUIDELINES if kind == "pairs" else GUIDELINES)
    return rg.Settings(fields=fields, questions=questions, metadata=metadata, vectors=vectors or None,
                       guidelines=text, distribution=rg.TaskDistribution(min_submitted=min_submitted))


# ---------------------------------------------------------------- push / pull

def get_or_create_dataset(dataset_name: str, client, workspace: str | None = None,
                          guidelines: str | None = None, *, kind: str = "review", min_submitted: int = 2):
    import argilla as rg
    ds = client.datasets(name=dataset_name, workspace=workspace)
    if ds is not None:
        return ds, False
    ws = workspace or (client.workspaces.default.name if client.workspaces else None)
    ds = rg.Dataset(name=dataset_name, workspace=ws, client=client,
                    settings=dataset_settings(guidelines, kind=kind, min_submitted=min_submitted))
    ds.create()
    return ds, True


def _drop_stale_suggestions(client, before: dict, recs: list[dict], agent: str) -> int:
    """Delete our agent's suggestions that a re-push no longer makes (a gate that now did not
    run, or passed on an off-item note): the server's upsert only adds or replaces them."""
    n = 0
    for rec in recs:
        old = before.get(rec["id"])
        if old is None:
            continue
        stale = [str(x.id) for x in old.suggestions
                 if x.agent == agent and x.question_name not in rec["suggestions"] and x.id is not None]
        if stale:
            r = client.http_client.delete(f"/api/v1/records/{old._server_id}/suggestions",
                                          params={"ids": ",".join(stale)})
            r.raise_for_status()
            n += len(stale)
    return n


def _upsert(ds, recs: list[dict], agent: str, batch_size: int, prune: bool) -> dict:
    import argilla as rg

    before = {str(r.id): r for r in ds.records(with_suggestions=True, with_responses=True)}
    records = [rg.Record(id=rec["id"], fields=rec["fields"], metadata=rec["metadata"],
                         suggestions=[rg.Suggestion(question_name=q, value=v, agent=agent)
                                      for q, v in rec["suggestions"].items()]) for rec in recs]
    ds.records.log(records, batch_size=batch_size)
    _drop_stale_suggestions(ds._client, before, recs, agent)  # the SDK has no call for it
    ids = {rec["id"] for rec in recs}
    extra = sorted(set(before) - ids)
    pruned = []
    if prune and extra:
        victims = [before[i] for i in extra if len(before[i].responses) == 0]
        if victims:
            ds.records.delete(victims)
            pruned = [str(r.id) for r in victims]
    total = sum(1 for _ in ds.records(with_suggestions=False, with_responses=False))
    return {"pushed": len(records), "created": len(ids - set(before)), "updated": len(ids & set(before)),
            "extra_ids": [i for i in extra if i not in pruned], "pruned": pruned, "total_on_server": total}


def push(sample_df: pd.DataFrame, dataset_name: str, client, *, workspace: str | None = None,
         batch_size: int = 256, prune: bool = False, agent: str = "gates", min_submitted: int = 2) -> dict:
    """Upsert the sample into `dataset_name` (created if missing), and its candidate pairs into
    `<dataset_name>-pairs` (only when the sample has pairs); idempotent.

    Records are keyed by `record_id`: a re-push updates fields, metadata and
    suggestions in place (responses are kept). Records on the server that are
    not in the sample are reported (`extra_ids`) and, with `prune=True`,
    deleted when nobody has responded to them. `min_submitted` applies to datasets
    created by this call. Returns the review dataset's counts plus `pairs` (the pairs
    dataset's counts, or None) and `pairs_dataset_id`.
    """
    t0 = time.monotonic()
    if sample_df["record_id"].duplicated().any():
        raise ValueError("sample_df has duplicate record_id values")
    ds, created = get_or_create_dataset(dataset_name, client, workspace, min_submitted=min_submitted)
    info = _upsert(ds, to_records(sample_df), agent, batch_size, prune)
    pair_recs = to_pair_records(sample_df)
    pairs_info, pairs_id = None, None
    if pair_recs:
        pds, pcreated = get_or_create_dataset(pairs_dataset_name(dataset_name), client, workspace,
                                              kind="pairs", min_submitted=min_submitted)
        pairs_info = {"dataset": pairs_dataset_name(dataset_name), "dataset_created": pcreated,
                      **_upsert(pds, pair_recs, agent, batch_size, prune)}
        pairs_id = str(pds.id)
    secs = time.monotonic() - t0
    return {"dataset": dataset_name, "dataset_id": str(ds.id), "workspace": ds.workspace.name,
            "dataset_created": created, **info, "pairs": pairs_info, "pairs_dataset_id": pairs_id,
            "seconds": round(secs, 2), "records_per_s": round(info["pushed"] / secs, 1) if secs else None}


def _responses_by_user(record, users: dict) -> list[dict]:
    per_user: dict[str, dict] = {}
    for resp in record.responses:
        uid = str(resp.user_id)
        d = per_user.setdefault(uid, {"user_id": uid, "status": str(getattr(resp.status, "value", resp.status))})
        d[resp.question_name] = resp.value
    out = []
    for uid, d in per_user.items():
        name, role = users.get(uid, (uid, "annotator"))
        out.append({**d, "username": name, "role": role})
    return out


COLUMNS = ["record_id", "item_id", "listener_id", "user_id", "username", "role", "status", *QUESTIONS,
           "pref_winner", "explanation", "other_explanation", "other_record_id", "teacher",
           "dataset", "argilla_record"]


def pull(dataset_name: str, client, *, workspace: str | None = None) -> pd.DataFrame:
    """One row per (record, user) response: record_id, username, role, status, and one column per question.

    Rows from the pairs dataset (`dataset == "pairs"`) carry the answer for candidate A:
    record_id = A's record, other_record_id = B's, `preference` the ranked values best first
    ('this' = A, 'other' = B) and `pref_winner` its first value. `argilla_record`: the record's
    id in its dataset. Record context columns: item_id, listener_id, explanation,
    other_explanation, other_record_id, teacher.
    """
    ds = client.datasets(name=dataset_name, workspace=workspace)
    if ds is None:
        raise KeyError(f"no dataset {dataset_name!r}")
    users = {str(u.id): (u.username, str(getattr(u.role, "value", u.role))) for u in client.users}
    rows = []
    recs = list(ds.records(with_suggestions=False, with_responses=True))
    pair_of: dict[tuple[str, str], list[str]] = defaultdict(list)
    for r in recs:
        pair_of[(r.metadata.get("item_id", ""), r.metadata.get("listener_id", ""))].append(str(r.id))
    for r in recs:
        ctx = {"record_id": str(r.id), "item_id": r.metadata.get("item_id"),
               "listener_id": r.metadata.get("listener_id"), "teacher": r.metadata.get("teacher"),
               "explanation": r.fields.get("explanation"), "other_explanation": r.fields.get("other_explanation"),
               "dataset": "review", "argilla_record": str(r.id)}
        group = pair_of[(ctx["item_id"] or "", ctx["listener_id"] or "")]
        ctx["other_record_id"] = next((o for o in group if o != ctx["record_id"]), None) if len(group) == 2 else None
        for d in _responses_by_user(r, users):
            row = {**ctx, **{q: None for q in QUESTIONS}, **d}
            row["preference"] = _ranking_order(row.get("preference"))  # older datasets asked it here
            row["pref_winner"] = row["preference"][0] if row["preference"] else None
            rows.append(row)
    pds = client.datasets(name=pairs_dataset_name(dataset_name), workspace=workspace)
    for r in (pds.records(with_suggestions=False, with_responses=True) if pds is not None else []):
        ctx = {"record_id": r.metadata.get("record_a"), "other_record_id": r.metadata.get("record_b"),
               "item_id": r.metadata.get("item_id"), "listener_id": r.metadata.get("listener_id"),
               "teacher": r.metadata.get("teacher"), "explanation": r.fields.get("candidate_a"),
               "other_explanation": r.fields.get("candidate_b"), "dataset": "pairs", "argilla_record": str(r.id)}
        for d in _responses_by_user(r, users):
            row = {**ctx, **{q: None for q in QUESTIONS}, **d}
            order = [{"a": "this", "b": "other"}.get(v, v) for v in (_ranking_order(row.get("preference")) or [])]
            row["preference"] = order or None
            row["pref_winner"] = order[0] if order else None
            rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def _ranking_order(value) -> list[str] | None:
    """SDK ranking value ([{'value': v, 'rank': n}] or [v, ...]) -> values best first."""
    if not value:
        return None
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return [d["value"] for d in sorted(value, key=lambda d: (d.get("rank") is None, d.get("rank") or 0))]
    return list(value)


# ---------------------------------------------------------------- resolve

def _is_missing(v) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v)) or (isinstance(v, str) and not v.strip())


def resolve_value(question: str, votes: Sequence[tuple[Any, str]]):
    """votes = [(value, role)] -> resolved value (expert wins, else majority; see module doc)."""
    votes = [(v, role) for v, role in votes if not _is_missing(v)]
    if not votes:
        return None
    expert = [v for v, role in votes if role in EXPERT_ROLES]
    if expert:  # experts outvote annotators (several experts: their majority)
        votes = [(v, "expert") for v in expert]
    counts = Counter(v for v, _ in votes).most_common()
    top = [v for v, c in counts if c == counts[0][1]]
    if len(top) == 1:
        return top[0]
    if question == "rating":
        return min(top)
    return None


def label_source(answered_by: Sequence, roles: Sequence) -> str | None:
    """Who the outcome rests on: the experts' answers when there are any (they win), else
    everyone's -> 'human' | 'scripted' | 'mixed' (None: provenance not recorded)."""
    pairs = [(a, r) for a, r in zip(answered_by, roles)]
    expert = [a for a, r in pairs if r in EXPERT_ROLES]
    kinds = {a if a in (HUMAN, SCRIPTED) else None for a in (expert or [a for a, _ in pairs])}
    if not kinds or None in kinds:
        return None
    return kinds.pop() if len(kinds) == 1 else "mixed"


def _review_rows(sub: pd.DataFrame) -> pd.DataFrame:
    return sub[sub["dataset"].fillna("review") != "pairs"] if "dataset" in sub.columns else sub


def resolve(responses: pd.DataFrame, *, min_rating: int = 4) -> dict:
    """Responses (from `pull`) -> {'golden': DataFrame, 'pairs': DataFrame, 'resolved': DataFrame, 'agreement': dict}."""
    sub = responses[responses["status"] == "submitted"].copy() if len(responses) else responses
    sub = sub.sort_values(["record_id", "username"]) if len(sub) else sub
    if len(sub) and "answered_by" not in sub.columns:
        sub["answered_by"] = None
    review = _review_rows(sub) if len(sub) else sub
    resolved, golden, pairs = [], [], []
    for rid, g in (review.groupby("record_id", sort=True) if len(review) else []):
        first = g.iloc[0]
        rec = {"record_id": rid, "item_id": first["item_id"], "listener_id": first["listener_id"],
               "explanation": first["explanation"], "other_record_id": first.get("other_record_id"),
               "teacher": first.get("teacher"), "n_submitted": len(g),
               "label_source": label_source(g["answered_by"], g["role"])}
        for q in ("rating", "grounded", "tone_ok", "pref_winner"):
            rec[q] = resolve_value(q, list(zip(g[q], g["role"])))
        rec["rating"] = None if rec["rating"] is None else int(rec["rating"])
        corr = [(str(v).strip(), role, u) for v, role, u in zip(g["corrected_explanation"], g["role"], g["username"])
                if not _is_missing(v) and str(v).strip() != str(first["explanation"]).strip()]
        correction = None
        if g["role"].isin(EXPERT_ROLES).any():
            # an expert answered: only an expert's correction counts (an annotator's would
            # otherwise become golden under the expert's label_source, against their verdict)
            correction = next((c for c, role, _ in corr if role in EXPERT_ROLES), None)
        elif corr:
            counts = Counter(c for c, _, _ in corr)
            best = max(counts.values())
            correction = next(c for c, _, _ in corr if counts[c] == best)  # first by username
        rec["corrected_explanation"] = correction
        if correction:
            rec["golden"], rec["golden_source"] = correction, "corrected"
        elif rec["grounded"] == "grounded" and rec["tone_ok"] == "yes" and (rec["rating"] or 0) >= min_rating:
            rec["golden"], rec["golden_source"] = rec["explanation"], "approved"
        else:
            rec["golden"], rec["golden_source"] = None, None
        resolved.append(rec)
        if rec["golden"] is not None:
            golden.append({k: rec[k] for k in ("record_id", "item_id", "listener_id", "teacher")}
                          | {"explanation": rec["golden"], "original": rec["explanation"],
                             "source": rec["golden_source"], "rating": rec["rating"],
                             "label_source": rec["label_source"]})
        if correction:
            pairs.append({"item_id": rec["item_id"], "listener_id": rec["listener_id"],
                          "chosen": correction, "rejected": rec["explanation"],
                          "chosen_record_id": rid, "rejected_record_id": rid, "source": "correction",
                          "votes_for": None, "votes_against": None, "label_source": rec["label_source"]})
    pairs += preference_pairs(sub)
    pairs_df = pd.DataFrame(pairs, columns=["item_id", "listener_id", "chosen", "rejected", "chosen_record_id",
                                            "rejected_record_id", "source", "votes_for", "votes_against",
                                            "label_source"])
    for col in ("votes_for", "votes_against"):  # None (corrections) + counts: stay integers, not float
        pairs_df[col] = pairs_df[col].astype("Int64")
    res_df = pd.DataFrame(resolved)
    return {"golden": pd.DataFrame(golden, columns=["record_id", "item_id", "listener_id", "teacher",
                                                    "explanation", "original", "source", "rating",
                                                    "label_source"]),
            "pairs": pairs_df,
            "resolved": res_df,
            "agreement": agreement(sub, res_df)}


def preference_pairs(sub: pd.DataFrame) -> list[dict]:
    """Pool the ranking votes on a candidate pair (pairs dataset, and any older `preference`
    answers on both review records); majority (or expert) winner is chosen."""
    if not len(sub):
        return []
    sub = sub[sub["pref_winner"].notna() & sub["other_record_id"].notna()]
    if "answered_by" not in sub.columns:
        sub = sub.assign(answered_by=None)
    text = dict(zip(sub["record_id"], sub["explanation"]))
    text.update({o: e for o, e in zip(sub["other_record_id"], sub["other_explanation"]) if o not in text})
    votes: dict[tuple, list[tuple[str, str, Any]]] = defaultdict(list)
    meta = {}
    for r in sub.itertuples():
        a, b = sorted([r.record_id, r.other_record_id])
        winner = r.record_id if r.pref_winner == "this" else r.other_record_id
        votes[(a, b)].append((winner, r.role, r.answered_by))
        meta[(a, b)] = (r.item_id, r.listener_id)
    out = []
    for (a, b), v in sorted(votes.items()):
        expert = [w for w, role, _ in v if role in EXPERT_ROLES]
        pool = expert or [w for w, _, _ in v]
        c = Counter(pool)
        if c[a] == c[b]:
            continue
        win, lose = (a, b) if c[a] > c[b] else (b, a)
        out.append({"item_id": meta[(a, b)][0], "listener_id": meta[(a, b)][1],
                    "chosen": text.get(win), "rejected": text.get(lose),
                    "chosen_record_id": win, "rejected_record_id": lose, "source": "ranking",
                    "votes_for": c[win], "votes_against": c[lose],
                    "label_source": label_source([x for _, _, x in v], [role for _, role, _ in v])})
    return out


# ---------------------------------------------------------------- agreement math (numpy)

def cohen_kappa(a: Sequence, b: Sequence, labels: Sequence | None = None, weights: str | None = None) -> float:
    """Cohen's kappa of two raters on the same items; weights None | 'linear' | 'quadratic' (ordered labels)."""
    a, b = list(a), list(b)
    if len(a) != len(b) or not a:
        raise ValueError("need two equally long, non-empty rating lists")
    labels = list(labels) if labels is not None else sorted(set(a) | set(b), key=lambda x: (str(type(x)), x))
    idx = {lab: i for i, lab in enumerate(labels)}
    k = len(labels)
    obs = np.zeros((k, k))
    for x, y in zip(a, b):
        obs[idx[x], idx[y]] += 1
    obs /= obs.sum()
    exp = np.outer(obs.sum(1), obs.sum(0))
    i, j = np.indices((k, k))
    if weights is None:
        w = (i != j).astype(float)
    elif weights == "linear":
        w = np.abs(i - j) / max(k - 1, 1)
    elif weights == "quadratic":
        w = ((i - j) / max(k - 1, 1)) ** 2
    else:
        raise ValueError(weights)
    denom = (w * exp).sum()
    if denom == 0:
        return 1.0 if (w * obs).sum() == 0 else 0.0
    return float(1 - (w * obs).sum() / denom)


def fleiss_kappa(counts) -> float:
    """Fleiss' kappa from an (items x categories) matrix of rater counts (same number of raters per item)."""
    m = np.asarray(counts, dtype=float)
    n = m.sum(1)
    if not np.allclose(n, n[0]) or n[0] < 2:
        raise ValueError("every item needs the same number (>= 2) of ratings")
    n = n[0]
    p_j = m.sum(0) / m.sum()
    p_i = ((m * m).sum(1) - n) / (n * (n - 1))
    p_bar, p_e = p_i.mean(), (p_j ** 2).sum()
    if p_e == 1:
        return 1.0
    return float((p_bar - p_e) / (1 - p_e))


def krippendorff_alpha(data, level: str = "nominal") -> float:
    """Krippendorff's alpha from a (raters x units) table; None/NaN = missing. level: nominal | interval."""
    rows = [[None if _is_missing(v) else v for v in row] for row in data]
    units = list(zip(*rows))
    values = sorted({v for u in units for v in u if v is not None}, key=lambda x: (str(type(x)), x))
    if len(values) < 2:
        return 1.0 if values else float("nan")
    idx = {v: i for i, v in enumerate(values)}
    k = len(values)
    o = np.zeros((k, k))  # coincidence matrix
    for u in units:
        vals = [idx[v] for v in u if v is not None]
        m_u = len(vals)
        if m_u < 2:
            continue
        c = np.bincount(vals, minlength=k).astype(float)
        o += (np.outer(c, c) - np.diag(c)) / (m_u - 1)
    n_c = o.sum(1)
    n = n_c.sum()
    if n <= 1:
        return float("nan")
    if level == "nominal":
        d = 1.0 - np.eye(k)
    elif level == "interval":
        x = np.array(values, dtype=float)
        d = (x[:, None] - x[None, :]) ** 2
    else:
        raise ValueError(level)
    d_o = (o * d).sum() / n
    d_e = (np.outer(n_c, n_c) * d).sum() / (n * (n - 1))
    if d_e == 0:
        return 1.0
    return float(1 - d_o / d_e)


def agreement(sub: pd.DataFrame, resolved: pd.DataFrame | None = None) -> dict:
    """Agreement per question and per annotator over submitted responses (see module doc)."""
    out: dict = {"questions": {}, "annotators": {}}
    if not len(sub):
        return out
    ann = sub[~sub["role"].isin(EXPERT_ROLES)]
    users = list(ann["username"].value_counts().index)
    res = resolved.set_index("record_id") if resolved is not None and len(resolved) else None
    for q in LABEL_QUESTIONS:
        col = "pref_winner" if q == "preference" else q
        table = ann.pivot_table(index="username", columns="record_id", values=col, aggfunc="first") \
            if ann[col].notna().any() else None
        if table is None:
            continue
        table = table.reindex(users).astype(object).where(table.notna(), None)
        qa: dict = {"n_records": int(table.notna().sum(axis=0).ge(2).sum())}
        if len(users) >= 2:
            u1, u2 = users[:2]
            both = table.loc[[u1, u2]].dropna(axis=1)
            if both.shape[1]:
                qa["cohen_kappa"] = {"raters": [u1, u2], "n": int(both.shape[1]),
                                     "kappa": cohen_kappa(both.loc[u1], both.loc[u2])}
                if q == "rating":
                    qa["cohen_kappa"]["kappa_quadratic"] = cohen_kappa(
                        both.loc[u1], both.loc[u2], labels=[1, 2, 3, 4, 5], weights="quadratic")
        n_r = table.notna().sum(axis=0)
        if len(n_r) and n_r.max() >= 2:
            mode = int(n_r[n_r >= 2].mode().max())
            cols = table.loc[:, n_r == mode]
            cats = sorted({v for v in cols.values.ravel() if v is not None}, key=str)
            if cats:
                counts = np.array([[sum(1 for v in cols[c] if v == cat) for cat in cats] for c in cols.columns])
                qa["fleiss_kappa"] = {"raters_per_item": mode, "n": int(len(cols.columns)),
                                      "kappa": fleiss_kappa(counts)}
        qa["krippendorff_alpha"] = krippendorff_alpha(table.values.tolist(),
                                                      "interval" if q == "rating" else "nominal")
        out["questions"][q] = qa
    for u in users:
        mine = ann[ann["username"] == u]
        stats: dict = {"n_submitted": int(len(mine))}
        for q in ("rating", "grounded", "tone_ok"):
            if res is not None and q in res:
                pairs = [(v, res.at[r, q]) for r, v in zip(mine["record_id"], mine[q])
                         if not _is_missing(v) and r in res.index and not _is_missing(res.at[r, q])]
                stats[f"{q}_agree_resolved"] = (float(np.mean([a == b for a, b in pairs])) if pairs else None)
            ks = []
            for other in users:
                if other == u:
                    continue
                a = ann[ann["username"] == u].set_index("record_id")[q].dropna()
                b = ann[ann["username"] == other].set_index("record_id")[q].dropna()
                common = a.index.intersection(b.index)
                if len(common):
                    ks.append(cohen_kappa(a[common], b[common]))
            stats[f"{q}_mean_kappa"] = float(np.mean(ks)) if ks else None
        out["annotators"][u] = stats
    return out
