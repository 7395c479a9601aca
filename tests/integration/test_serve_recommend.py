"""/v1/recommend end to end: the podcast id table, a tiny codes model (recommend.train_codes, 2 steps),
its GGUF export with the code gate (finetune.export.codes), and the real endpoint
(`python -m serve --recommend-model ...` via serve.launch.start_endpoint: the packaged SmolLM2 as
the main engine for notes, the code model on a second llama.cpp), called with httpx and the
openai client.

Sizing (a loaded 2-core box): the trained run and its export are kept under the runs folder,
named after the table version, and reused by later sessions (a complete run / export returns at
once); a first session trains ~2 x 30-70 s, exports ~1 min (merge, convert, a 10-prompt gate).
The catalog the endpoint loads is the podcast part of the ingested one (294 items), written to
a temporary folder, so start-up does not load 274k items.

The export is F32: on a 2-step model the code tokens sit in the far tail of the distribution,
where quantisation moves a code's total logprob by nats and flips the top-1 (measured on a 6-step
podcast run, 12 gate prompts: Q8_0 agreement 0.50, BF16 0.75, F32 1.00, scores within 0.28 nats),
so only F32 passes the gate this test asks for; a better-trained model is what Q8_0 needs.
"""

from __future__ import annotations

import os

import httpx
import pytest

pytestmark = pytest.mark.integration

KEY = "integration-recommend-key"
EXPORT_TYPE = "f32"


@pytest.fixture(scope="module")
def table():
    from recommend.semantic_ids import build, load_table, versions

    if not versions("podcast"):
        build("podcast")
    return load_table("podcast")


@pytest.fixture(scope="module")
def code_run(table):
    from linernotes import paths
    from recommend.train_codes import CodeTrainConfig, build_rows, load_catalog, train

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    config = CodeTrainConfig(item_type="podcast", steps=2, batch_size=4, max_length=256,
                             runs_dir=str(paths.runs_dir()),
                             run_name=f"recommend-codes-podcast-itest-{table.version}")
    split, items = load_catalog("podcast")
    rows = build_rows(config, split, items, table)
    return train(config, rows, table=table, items=items, log=print).path


@pytest.fixture(scope="module")
def export_dir(code_run):
    from finetune.export.codes import export_code_model

    return export_code_model(code_run, code_run / f"export-{EXPORT_TYPE}", EXPORT_TYPE, n_prompts=10)


@pytest.fixture(scope="module")
def podcast_catalog(tmp_path_factory):
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from linernotes import paths

    src = paths.catalog_dir()
    out = tmp_path_factory.mktemp("podcast-catalog")
    items = pq.read_table(src / "items.parquet")
    pq.write_table(items.filter(pc.equal(items["item_type"], "podcast")), out / "items.parquet")
    listeners = pq.read_table(src / "listeners.parquet")
    pq.write_table(listeners.filter(pc.equal(listeners["listener_type"], "podcast")), out / "listeners.parquet")
    return out


@pytest.fixture(scope="module")
def endpoint(export_dir, podcast_catalog):
    from serve.launch import start_endpoint

    handle = start_endpoint(None, api_keys=[KEY], catalog_dir=podcast_catalog, slots=2, queue_size=4,
                            request_timeout_s=300, recommend_model=export_dir)
    yield handle
    handle.stop()


def post(endpoint, body, timeout=300):
    return httpx.post(endpoint.root_url + "/v1/recommend", json=body, timeout=timeout,
                      headers={"Authorization": f"Bearer {KEY}"})


def test_export_carries_code_tokens_and_passed_its_gate(export_dir, table):
    import json

    m = json.loads((export_dir / "manifest.json").read_text())
    assert m["task"] == "recommend" and m["table_version"] == table.version
    assert set(m["code_tokens"]["ids"]) == set(table.token_vocab())
    gate = m["gate"]["results"][EXPORT_TYPE.upper()]
    assert gate["passed"] and gate["agreement"] >= 0.9 and gate["template_matches"]
    assert (export_dir / "COMPLETE").exists()


def test_recommend_by_listener_id_with_httpx(endpoint, table, podcast_catalog):
    from synth.catalog.ingest import load_catalog

    listener = next(ls for ls in load_catalog(podcast_catalog).listeners if len(ls.history) >= 2)
    health = httpx.get(endpoint.root_url + "/health", timeout=10).json()
    assert health["recommend"] == "podcast"
    resp = post(endpoint, {"listener_id": listener.listener_id, "k": 3})
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert len(data["items"]) == 3 and data["valid_code_rate"] == 1.0 and data["table_version"] == table.version
    history = {h.item_id for h in listener.history}
    for item in data["items"]:
        assert table.item_of(item["code"]) == item["item_id"] and item["item_id"] not in history
        assert item["title"] and isinstance(item["passed"], bool) and item["gates"]
        assert item["passed"] == all(g["passed"] for g in item["gates"].values())
    scores = [i["score"] for i in data["items"]]
    assert scores == sorted(scores, reverse=True)
    assert post(endpoint, {"listener_id": "nobody"}).status_code == 404
    assert post(endpoint, {"listener_id": listener.listener_id, "item_type": "music"}).status_code == 409


def test_recommend_with_the_openai_client(endpoint, table):
    from openai import OpenAI

    client = OpenAI(base_url=endpoint.base_url, api_key=KEY, max_retries=0, timeout=300)
    some = table.item_ids()[:2]
    resp = client.post("/recommend", cast_to=httpx.Response,
                       body={"listener": {"history": some}, "k": 4, "explain": False})
    data = resp.json()
    assert resp.status_code == 200 and len(data["items"]) == 4
    assert all(table.item_of(i["code"]) == i["item_id"] and i["item_id"] not in some for i in data["items"])
    assert all(i["explanation"] is None for i in data["items"])


def test_served_top1_equals_the_hf_paths_top1(endpoint, table, code_run):
    from finetune.export.codes import DEFAULT_BEAMS, gate_prompts
    from recommend.llm_recommender import chat_prompt_ids, code_trie, hf_topk_codes, load_student

    model, tok = load_student(code_run)
    trie = code_trie(table, tok)
    prompts = gate_prompts("podcast", table, code_run, 3)
    assert len(prompts) == 3
    agree = 0
    for p in prompts:
        history = [table.item_of(c) for c in p["history_codes"]]
        served = post(endpoint, {"listener": {"history": history}, "k": 1, "explain": False}).json()
        banned = trie.banned_counts(trie.ids_of_code(c, tok.convert_tokens_to_ids) for c in p["history_codes"])
        hf = hf_topk_codes(model, chat_prompt_ids(tok, p["messages"]), trie, num_beams=DEFAULT_BEAMS, k=1,
                           banned=banned)
        agree += served["items"][0]["code"] == hf[0][0]
    assert agree == 3
