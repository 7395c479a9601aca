"""Real Argilla stack (redis + osmem + argilla-server 2.8 + rq worker): push, annotate, pull, resolve.

Starts the stack with `linernotes.services.argilla.up()` (installs its venv on
first use, ~1 min) unless ARGILLA_API_URL/ARGILLA_API_KEY point at a server;
annotators submit through the REST API with their own API keys, exactly as
the UI does. Dataset names are unique per run (the SQLite database persists).
"""

from __future__ import annotations

import json
import os
import time
import uuid

import httpx
import pandas as pd
import pytest

from curation import label_stage
from curation import labeling as lb
from linernotes.services import argilla as svc

pytestmark = pytest.mark.integration


# the grounding gate's wording (linernotes.domain.gates.claims) for another catalog item's creator
WRONG_CREATOR = "\"Bill Evans\" is a catalog creator but not of this item or the listener's history"
# passes the grounding gate (history names are allowed) but is not about this item
OFF_ITEM_ROW, OFF_ITEM_NOTE = 5, "Because you play So What by Miles Davis, here is more of that mood."


def make_sample(n: int, pairs: int = 2, seed: int = 0) -> pd.DataFrame:
    """A curated-sample-shaped DataFrame; the first 2*pairs rows are two candidates per (item, listener)."""
    rows = []
    for i in range(n):
        item_i = i if i >= 2 * pairs else i // 2
        item = {"item_id": f"item{item_i}", "title": f"Night Train {item_i}", "creator": "Ada Lund",
                "collection": "Blue Hours", "year": 1990 + item_i % 30, "genres": ["jazz", "blues"],
                "item_type": ["song", "audiobook", "podcast"][item_i % 3]}
        listener = {"listener_id": f"L{i % 5}" if i >= 2 * pairs else "L0", "country": "SE",
                    "age_band": "25-34", "taste": ["jazz"],
                    "history": [{"title": "So What", "creator": "Miles Davis", "genres": ["jazz"]}]}
        rows.append({
            "record_id": f"rid-{seed}-{i:04d}", "item_id": item["item_id"], "item_type": item["item_type"],
            "item": json.dumps(item), "item_title": item["title"], "listener": json.dumps(listener),
            "explanation": (OFF_ITEM_NOTE if i == OFF_ITEM_ROW else
                            f"Because you play Miles Davis, try Night Train {item_i} by Ada Lund (v{i})."),
            "facts_used": ["title", "creator", "genres"],
            "gate_grounding": i % 5 != 3, "gate_style": True, "gate_safety": True,
            "gate_reasons": json.dumps({"grounding": [WRONG_CREATOR] if i % 5 == 3 else []}),
            "cluster": i % 4, "cluster_label": f"cluster {i % 4}", "model": "teacher-a",
            "prompt_version": "p1", "sample_reason": "cluster-stratified"})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def stack():
    if os.environ.get(svc.ENV_URL) and os.environ.get(svc.ENV_KEY):
        pytest.skip("external Argilla configured: this test needs the local stack's annotator keys")
    t0 = time.monotonic()
    s = svc.up()
    s.ready_s = time.monotonic() - t0
    print(f"\n[argilla] stack up in {s.ready_s:.1f}s")
    yield s
    pids = dict(s.pids)
    svc.down()
    left = {n: p for n, p in pids.items() if svc._pid_alive(p)}
    assert not left, f"processes survived down(): {left}"
    assert not svc.status()["running"]


@pytest.fixture(scope="module")
def owner(stack):
    return stack.client()


@pytest.fixture
def dataset_name(owner):
    """A fresh dataset name; the dataset is deleted afterwards (the SQLite database persists)."""
    name = f"test-{uuid.uuid4().hex[:8]}"
    yield name
    for n in (name, lb.pairs_dataset_name(name)):
        ds = owner.datasets(name=n)
        if ds is not None:
            ds.delete()


def _records(client, name):
    return list(client.datasets(name=name).records(with_suggestions=True, with_responses=True))


def _submit(stack, username: str, server_id, values: dict, status: str = "submitted"):
    h = {"X-Argilla-Api-Key": stack.annotator_api_keys[username]}
    body = {"values": {q: {"value": v} for q, v in values.items() if v is not None}, "status": status}
    r = httpx.post(f"{stack.api_url}/api/v1/records/{server_id}/responses", headers=h, json=body, timeout=30)
    assert r.status_code in (200, 201), r.text
    return r.json()


def _pending_for_me(stack, api_key: str, dataset_id: str) -> int:
    """How many records `api_key`'s user has in the UI's Pending tab: no response from that user
    and the record not completed by the task distribution."""
    body = {"filters": {"and": [
        {"type": "terms", "scope": {"entity": "response", "property": "status"}, "values": ["pending"]},
        {"type": "terms", "scope": {"entity": "record", "property": "status"}, "values": ["pending"]}]}}
    r = httpx.post(f"{stack.api_url}/api/v1/me/datasets/{dataset_id}/records/search", json=body,
                   headers={"X-Argilla-Api-Key": api_key}, params={"limit": 1}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["total"]


def test_push_annotate_pull_resolve(stack, owner, dataset_name):
    name = dataset_name
    df = make_sample(10, pairs=2)
    info = lb.push(df, name, owner)
    assert info["created"] == 10 and info["total_on_server"] == 10
    recs = {str(r.id): r for r in _records(owner, name)}
    # review records: no ranking question, no second candidate
    review_ds = owner.datasets(name=name)
    assert [q.name for q in review_ds.settings.questions] == ["rating", "grounded", "tone_ok",
                                                              "corrected_explanation"]
    assert "other_explanation" not in recs["rid-0-0000"].fields
    # honest suggestions: the gate named another item's creator -> wrong_entity; an off-item
    # note the gate passed gets no "grounded" suggestion (and on_item says so)
    assert recs["rid-0-0003"].suggestions["grounded"].value == "wrong_entity"
    assert recs["rid-0-0000"].suggestions["grounded"].value == "grounded"
    off = recs[f"rid-0-{OFF_ITEM_ROW:04d}"]
    assert {x.question_name: x.value for x in off.suggestions} == {"tone_ok": "yes"}
    assert off.metadata["on_item"] == "no" and off.metadata["gate_grounding"] == "pass"
    # the two (item, listener) groups with two candidates -> the pairs dataset, ranking a/b
    assert info["pairs"]["pushed"] == 2 and info["pairs"]["total_on_server"] == 2
    pairs_ds = owner.datasets(name=name + "-pairs")
    assert str(pairs_ds.id) == info["pairs_dataset_id"]
    assert [q.name for q in pairs_ds.settings.questions] == ["preference"]
    prec = {str(r.id): r for r in pairs_ds.records(with_responses=True)}
    assert set(prec) == {"rid-0-0000__vs__rid-0-0001", "rid-0-0002__vs__rid-0-0003"}
    p01 = prec["rid-0-0000__vs__rid-0-0001"]
    assert (p01.fields["candidate_a"], p01.fields["candidate_b"]) == (df.explanation[0], df.explanation[1])

    # annotators see their queue (they cannot list records: /me/.../search)
    ds_id = info["dataset_id"]
    for user in ("annotator", "annotator2"):
        key = stack.annotator_api_keys[user]
        assert _pending_for_me(stack, key, ds_id) == 10
        assert _pending_for_me(stack, key, info["pairs_dataset_id"]) == 2

    resp_ids = {}
    for rid, r in recs.items():
        i = int(rid.rsplit("-", 1)[1])
        a1 = {"rating": 5 if i % 5 != 3 else 2, "grounded": "grounded" if i % 5 != 3 else "wrong_entity",
              "tone_ok": "yes"}
        a2 = dict(a1)
        if i == 6:
            a2["rating"] = 4
        if i == 7:  # disagreement on grounding
            a2["grounded"] = "unsupported_fact"
        if i == 3:
            a2["corrected_explanation"] = "Because you play Miles Davis, try Night Train 3 (Blue Hours)."
        resp_ids[rid] = _submit(stack, "annotator", r._server_id, a1)["id"]
        _submit(stack, "annotator2", r._server_id, a2)
    # pair (0,1): both rank A first; pair (2,3): annotators split -> no ranking pair
    rank = lambda first: [{"value": first, "rank": 1}, {"value": "b" if first == "a" else "a", "rank": 2}]
    for pid, (f1, f2) in {"rid-0-0000__vs__rid-0-0001": ("a", "a"),
                          "rid-0-0002__vs__rid-0-0003": ("a", "b")}.items():
        _submit(stack, "annotator", prec[pid]._server_id, {"preference": rank(f1)})
        _submit(stack, "annotator2", prec[pid]._server_id, {"preference": rank(f2)})
    # updating a response (a scripted update in stock argilla) works too: rating 5 -> 4
    h = {"X-Argilla-Api-Key": stack.annotator_api_keys["annotator"]}
    upd = httpx.put(f"{stack.api_url}/api/v1/responses/{resp_ids['rid-0-0009']}", headers=h, timeout=30,
                    json={"values": {"rating": {"value": 4}, "grounded": {"value": "grounded"},
                                     "tone_ok": {"value": "yes"}}, "status": "submitted"})
    assert upd.status_code == 200, upd.text

    # the search index saw the responses: progress counts completed records (min_submitted=2)
    owner_h = {"X-Argilla-Api-Key": stack.owner_api_key}
    for dsid, n in ((ds_id, 10), (info["pairs_dataset_id"], 2)):
        p = httpx.get(f"{stack.api_url}/api/v1/datasets/{dsid}/progress", headers=owner_h, timeout=30).json()
        assert p["completed"] == n, p

    responses = lb.pull(name, owner)
    assert len(responses) == 24 and set(responses.username) == {"annotator", "annotator2"}
    assert (responses.dataset == "pairs").sum() == 4
    out = lb.resolve(responses)
    golden = out["golden"].set_index("record_id")
    assert golden.at["rid-0-0003", "source"] == "corrected"
    assert "rid-0-0007" not in golden.index  # grounded tie -> unresolved -> not golden
    assert "rid-0-0008" not in golden.index  # wrong_entity, rating 2
    assert len(golden) == 8
    resolved = out["resolved"].set_index("record_id")
    assert len(resolved) == 10  # pair answers are not review records
    assert resolved.at["rid-0-0009", "rating"] == 4  # 4 vs 5: tie -> lower
    pairs = out["pairs"]
    ranking = pairs[pairs.source == "ranking"]
    assert list(zip(ranking.chosen_record_id, ranking.rejected_record_id)) == [("rid-0-0000", "rid-0-0001")]
    assert list(zip(ranking.chosen, ranking.rejected)) == [(df.explanation[0], df.explanation[1])]
    assert list(ranking.votes_for) == [2] and list(ranking.votes_against) == [0]
    assert (pairs.source == "correction").sum() == 1
    ag = out["agreement"]
    assert ag["questions"]["grounded"]["cohen_kappa"]["n"] == 10
    assert 0 < ag["questions"]["grounded"]["cohen_kappa"]["kappa"] < 1
    assert set(ag["annotators"]) == {"annotator", "annotator2"}
    print("\n[argilla] agreement:", json.dumps(ag["questions"], default=str)[:600])


def test_no_pairs_dataset_without_two_candidates(stack, owner, dataset_name):
    df = make_sample(6, pairs=0, seed=3)
    info = lb.push(df, dataset_name, owner)
    assert info["total_on_server"] == 6
    assert info["pairs"] is None and info["pairs_dataset_id"] is None
    assert owner.datasets(name=dataset_name + "-pairs") is None
    assert lb.pull(dataset_name, owner).empty


def test_demo_stand_ins_leave_records_pending_for_the_owner(stack, owner, dataset_name, tmp_path):
    """min_submitted = DEMO_MIN_SUBMITTED: after the scripted stand-ins answer, every record is still
    in the owner's Pending queue; their answers are recorded as scripted, the owner's as human."""
    name = dataset_name
    df = make_sample(6, pairs=1, seed=4)
    info = lb.push(df, name, owner, min_submitted=label_stage.DEMO_MIN_SUBMITTED)
    assert info["pairs"]["pushed"] == 1
    # the pairs dataset is found by name through the annotator's /me/datasets
    done = label_stage.demo_annotate(stack, info["dataset_id"], df)
    assert done["pairs_dataset_id"] == info["pairs_dataset_id"]
    assert done["submitted"] == {"annotator": 7, "annotator2": 7}  # 6 review records + 1 pair each
    owner_key = stack.owner_api_key
    assert _pending_for_me(stack, owner_key, info["dataset_id"]) == 6
    assert _pending_for_me(stack, owner_key, info["pairs_dataset_id"]) == 1
    for user in ("annotator", "annotator2"):  # the stand-ins have nothing left
        assert _pending_for_me(stack, stack.annotator_api_keys[user], info["dataset_id"]) == 0
    review = list(owner.datasets(name=name).records())
    assert {r.status for r in review} == {"pending"}

    label = label_stage.pull_and_resolve(name, owner, runs_dir=tmp_path / "runs")
    m = label.manifest()
    assert m["label_source"] == {"human": 0, "scripted": 14}
    assert m["annotators"] == {"human": [], "scripted": ["annotator", "annotator2"]}
    assert "not a person" in m["scripted_by"]
    golden = pd.read_parquet(label.path / "golden.parquet")
    assert len(golden) and set(golden.label_source) == {"scripted"}

    # the owner answers one record in the UI (rejects the off-item note, no correction): a human
    # answer, and it wins
    rid = f"rid-4-{OFF_ITEM_ROW:04d}"
    sid = next(r._server_id for r in review if str(r.id) == rid)
    r = httpx.post(f"{stack.api_url}/api/v1/records/{sid}/responses",
                   headers={"X-Argilla-Api-Key": owner_key}, timeout=30,
                   json={"values": {"rating": {"value": 1}, "grounded": {"value": "wrong_entity"},
                                    "tone_ok": {"value": "yes"}}, "status": "submitted"})
    assert r.status_code in (200, 201), r.text
    assert _pending_for_me(stack, owner_key, info["dataset_id"]) == 5
    label = label_stage.pull_and_resolve(name, owner, runs_dir=tmp_path / "runs2")
    m = label.manifest()
    assert m["label_source"] == {"human": 1, "scripted": 14}
    assert m["annotators"]["human"] == [svc.OWNER]
    resolved = pd.read_parquet(label.path / "resolved.parquet").set_index("record_id")
    assert resolved.at[rid, "label_source"] == "human" and resolved.at[rid, "rating"] == 1
    assert resolved.at[rid, "grounded"] == "wrong_entity"
    # the owner rejected the note and wrote no correction: the stand-in's scripted correction
    # does not become golden (nor a pair) under the owner's name
    golden = pd.read_parquet(label.path / "golden.parquet")
    assert rid not in set(golden.record_id)
    pairs = pd.read_parquet(label.path / "pairs.parquet")
    assert rid not in set(pairs[pairs.source == "correction"].chosen_record_id)


def test_repush_and_interrupted_push(stack, owner, dataset_name):
    name = dataset_name
    df = make_sample(12, pairs=1, seed=1)
    first = lb.push(df.iloc[:6], name, owner)  # an interrupted push: only half made it
    assert first["total_on_server"] == 6
    full = lb.push(df, name, owner)
    assert (full["created"], full["updated"], full["total_on_server"]) == (6, 6, 12)
    # change a gate -> suggestion updated in place, no duplicate
    df2 = df.copy()
    df2["gate_grounding"] = df2["gate_grounding"].astype(object)
    df2.loc[0, "gate_grounding"] = False
    df2.loc[0, "gate_reasons"] = json.dumps({"grounding": ["year 1999 is not on the item card"]})
    df2.loc[1, "gate_grounding"] = None  # the gate did not run on this one after all
    again = lb.push(df2, name, owner)
    assert again["total_on_server"] == 12 and again["created"] == 0
    assert again["pairs"]["total_on_server"] == 1 and again["pairs"]["created"] == 0
    recs = {str(r.id): r for r in _records(owner, name)}
    assert len(recs) == 12 and set(recs) == set(df.record_id)
    sugg = lambda rid: {x.question_name: x.value for x in recs[rid].suggestions}
    assert sugg(df.record_id[0])["grounded"] == "unsupported_fact"  # was "grounded"
    assert "grounded" not in sugg(df.record_id[1])  # a stale "grounded" suggestion does not linger
    assert recs[df.record_id[1]].metadata["gate_grounding"] == "not run"


def test_rates_200_records(stack, owner, dataset_name):
    """Push/pull rates for ~200 records (printed; loose floor only)."""
    name = dataset_name
    df = make_sample(200, pairs=10, seed=2)
    t0 = time.monotonic()
    info = lb.push(df, name, owner)
    push_s = time.monotonic() - t0
    recs = _records(owner, name)
    for r in recs[:50]:
        for u in ("annotator", "annotator2"):
            _submit(stack, u, r._server_id, {"rating": 4, "grounded": "grounded", "tone_ok": "yes"})
    t0 = time.monotonic()
    responses = lb.pull(name, owner)
    pull_s = time.monotonic() - t0
    st = svc.status()
    print(f"\n[argilla] push 200: {push_s:.1f}s ({200 / push_s:.0f} rec/s); "
          f"pull 200 (100 responses): {pull_s:.1f}s ({200 / pull_s:.0f} rec/s); rss_mb {st['rss_mb']}")
    assert info["total_on_server"] == 200 and len(responses) == 100
