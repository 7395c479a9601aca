"""/v1/recommend without a model: the engine-side trie beam search (finetune.export.codes.CodeSearch,
serve.recommend.ServedRecommender) over a stand-in code engine, and the route's request handling.

The stand-in (`StandInCodeEngine`, an httpx.MockTransport handler) is a toy language model, not
llama.cpp: seeded random logits over a small vocabulary, answering /completion the way llama.cpp
was measured to (top_logprobs and the sampled token's logprob from the raw full-vocab log-softmax;
the sampled token = argmax of logits + logit_bias among the tokens the grammar accepts). The
real engine is in tests/integration/test_serve_recommend.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import math
import random

import httpx
import pandas as pd
import pytest

from finetune.export.codes import CodeSearch, EngineError, completion_body, engine_topk_codes, step_scores
from recommend.grammar import GbnfMatcher
from recommend.semantic_ids import SemanticIdTable
from serve.recommend import RecommendError, RecommendService, ServedRecommender

KEY = "unit-test-key-1"
AUTH = {"Authorization": f"Bearer {KEY}"}
END_ID = 2
N_ORDINARY = 40  # plain vocabulary ids 0..39 ("<" pieces and words), 2 is the end token


def make_table(shape=((0, 0), (0, 1), (1, 0), (1, 2), (2, 1), (2, 2), (3, 0), (3, 3)), dedup_every=3):
    rows = []
    for n, (a, b) in enumerate(shape):
        d = 1 if n % dedup_every == dedup_every - 1 else 0
        rows.append({"item_id": f"podcast:{n}", "c1": a, "c2": b, "dedup": d, "code": f"<a_{a}><b_{b}><c_{d}>"})
    frame = pd.DataFrame(rows)
    return SemanticIdTable("podcast", "unit0001", [4, 4], frame, {})


def token_map(table) -> dict[str, int]:
    return {tok: 100 + i for i, tok in enumerate(table.token_vocab())}


class StandInCodeEngine:
    """A stand-in for the llama.cpp code engine (see the module docstring)."""

    def __init__(self, token_ids: dict[str, int], *, n_probs_cap: int | None = None, ordinary_boost: float = 0.0,
                 ignore_grammar: bool = False, split_token: str | None = None):
        self.token_ids = token_ids
        self.text = {i: t for t, i in token_ids.items()}
        self.vocab = list(range(N_ORDINARY)) + sorted(self.text)
        self.n_probs_cap, self.ordinary_boost = n_probs_cap, ordinary_boost
        self.ignore_grammar, self.split_token = ignore_grammar, split_token
        self.completions: list[dict] = []

    def logprobs(self, ids) -> dict[int, float]:
        seed = int(hashlib.sha256(json.dumps(list(ids)).encode()).hexdigest()[:12], 16)
        rng = random.Random(seed)
        logits = {t: rng.gauss(0, 2) + (self.ordinary_boost if t < N_ORDINARY and t != END_ID else 0.0)
                  for t in self.vocab}
        m = max(logits.values())
        z = m + math.log(sum(math.exp(v - m) for v in logits.values()))
        return {t: v - z for t, v in logits.items()}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else {}
        path = request.url.path
        if request.headers.get("authorization") != "Bearer code-engine-key":
            return httpx.Response(401, json={"error": "no key"})
        if path == "/apply-template":
            return httpx.Response(200, json={"prompt": json.dumps(body["messages"])})
        if path == "/tokenize":
            content = body["content"]
            if content == self.split_token:
                return httpx.Response(200, json={"tokens": [7, 8]})
            if content in self.token_ids:
                return httpx.Response(200, json={"tokens": [self.token_ids[content]]})
            if content == "<|im_end|>" and body.get("parse_special"):
                return httpx.Response(200, json={"tokens": [END_ID]})
            digest = hashlib.sha256(content.encode()).digest()
            return httpx.Response(200, json={"tokens": [1] + [10 + b % 30 for b in digest[:8]]})
        if path == "/completion":
            self.completions.append(body)
            lp = self.logprobs(body["prompt"])
            bias = {int(t): float(v) for t, v in body.get("logit_bias", [])}
            pool = list(self.vocab)
            if body.get("grammar") and not self.ignore_grammar:
                matcher = GbnfMatcher(body["grammar"])
                pool = [t for t in pool if t in self.text and matcher.matches(self.text[t])]
            if self.ignore_grammar:
                bias = {}
            sampled = max(pool, key=lambda t: lp[t] + bias.get(t, 0.0))
            n = min(body["n_probs"], self.n_probs_cap or body["n_probs"])
            tops = sorted(lp, key=lambda t: -lp[t])[:n]
            return httpx.Response(200, json={"completion_probabilities": [{
                "id": sampled, "token": self.text.get(sampled, "?"), "logprob": lp[sampled],
                "top_logprobs": [{"id": t, "token": self.text.get(t, "?"), "logprob": lp[t]} for t in tops]}]})
        return httpx.Response(404, json={"error": path})


def recommender(table, engine: StandInCodeEngine, **kw) -> ServedRecommender:
    rec = ServedRecommender("http://code-engine/v1", "code-engine-key", table, "podcast",
                            transport=httpx.MockTransport(engine), **kw)
    return rec.prepare(transport=httpx.MockTransport(engine))


def run(coro):
    return asyncio.run(coro)


def exhaustive_topk(engine: StandInCodeEngine, prompt: list[int], table, token_ids, k, banned_items=()):
    """Every unbanned code scored in full (tokens + end), best k."""
    scored = []
    for code, item in zip(table.codes(), table.item_ids()):
        if item in banned_items:
            continue
        ids = [token_ids[t] for t in (code.replace("><", ">|<").split("|"))]
        total = sum(engine.logprobs(prompt + ids[:i])[t] for i, t in enumerate(ids))
        total += engine.logprobs(prompt + ids)[END_ID]
        scored.append((code, total))
    return sorted(scored, key=lambda x: -x[1])[:k]


# --------------------------------------------------------------------------- the search


def test_search_is_exact_against_exhaustive_scoring_even_with_few_top_logprobs():
    table = make_table()
    ids = token_map(table)
    for n_probs_cap in (None, 3, 1):  # 1: the engine shows one token, the search must ask again
        engine = StandInCodeEngine(ids, n_probs_cap=n_probs_cap)
        rec = recommender(table, engine, num_beams=len(table.codes()))  # as many beams as codes: exhaustive
        out = run(rec.recommend([], k=5))
        prompt = run(rec.prompt_ids([]))
        want = exhaustive_topk(engine, prompt, table, ids, 5)
        assert [i["code"] for i in out["items"]] == [c for c, _ in want], n_probs_cap
        assert [i["score"] for i in out["items"]] == pytest.approx([round(s, 4) for _, s in want], abs=1e-3)
        assert out["valid_code_rate"] == 1.0
        if n_probs_cap == 1:
            assert out["extra_calls"] > 0 and out["inexact_steps"] == 0


def test_few_logprobs_give_the_same_beam_search_as_full_knowledge():
    """num_beams below the number of codes: the beam search is not exhaustive, but what the engine
    hides must not change it (the search asks again while a hidden token could rank)."""
    shape = list(itertools.product(range(4), range(4)))[:14]
    table = make_table(shape)
    ids = token_map(table)
    full = run(recommender(table, StandInCodeEngine(ids), num_beams=3).recommend(["podcast:4"], k=3))
    few = run(recommender(table, StandInCodeEngine(ids, n_probs_cap=2), num_beams=3).recommend(["podcast:4"], k=3))
    assert [i["code"] for i in few["items"]] == [i["code"] for i in full["items"]]
    assert few["engine_calls"] > full["engine_calls"]  # the extra, exclusion calls


def test_history_is_banned_codes_are_valid_and_k_come_back():
    table = make_table()
    ids = token_map(table)
    history = ["podcast:0", "podcast:3", "podcast:6"]
    out = run(recommender(table, StandInCodeEngine(ids)).recommend(history, k=5))
    got = [i["item_id"] for i in out["items"]]
    assert len(got) == 5 and len(set(got)) == 5
    assert not set(got) & set(history)
    assert all(table.item_of(i["code"]) == i["item_id"] for i in out["items"])
    scores = [i["score"] for i in out["items"]]
    assert scores == sorted(scores, reverse=True)
    everything = run(recommender(table, StandInCodeEngine(ids)).recommend(table.item_ids(), k=3))
    assert everything["items"] == [] and everything["valid_code_rate"] is None


def test_beams_never_die_when_the_top_logprobs_show_no_code_token():
    table = make_table()
    ids = token_map(table)
    engine = StandInCodeEngine(ids, ordinary_boost=12.0, n_probs_cap=5)  # the top 5 are all plain tokens
    out = run(recommender(table, engine, num_beams=5).recommend([], k=5))
    assert len(out["items"]) == 5
    assert all(table.item_of(i["code"]) for i in out["items"])
    first = engine.completions[0]
    shown = {t["id"] for t in engine(httpx.Request("POST", "http://x/completion", json=first,
                                                   headers={"authorization": "Bearer code-engine-key"})
                                     ).json()["completion_probabilities"][0]["top_logprobs"]}
    assert shown.isdisjoint(ids.values())  # the scenario holds: no code token among the shown ones


def test_every_engine_request_is_constrained_to_the_beams_allowed_tokens():
    table = make_table()
    ids = token_map(table)
    engine = StandInCodeEngine(ids, n_probs_cap=2)  # some exclusion calls too
    rec = recommender(table, engine)
    history = ["podcast:1"]
    run(rec.recommend(history, k=3))
    n_prompt = len(run(rec.prompt_ids([table.code_of(h) for h in history])))
    banned = rec.trie.banned_counts([rec.trie.ids_of_code(table.code_of(h), ids) for h in history])
    text = {i: t for t, i in ids.items()}
    assert engine.completions
    for body in engine.completions:
        assert body["n_predict"] == 1 and body["temperature"] == 0.0 and body["n_probs"] >= 1
        biased = {t for t, _ in body["logit_bias"]}
        allowed = set(rec.trie.allowed_next(body["prompt"][n_prompt:], banned))
        assert biased and biased <= allowed  # a beam's allowed tokens (less those already seen)
        if body.get("grammar"):
            matcher = GbnfMatcher(body["grammar"])
            assert {t for t in text if matcher.matches(text[t])} == biased and END_ID not in biased
        else:
            assert biased == {END_ID}  # the end step: only the end token, which has no text
    assert any(not b.get("grammar") for b in engine.completions)


def test_engine_that_ignores_the_grammar_is_an_error_not_a_result():
    table = make_table()
    engine = StandInCodeEngine(token_map(table), ignore_grammar=True, ordinary_boost=12.0)
    with pytest.raises(EngineError, match="outside the allowed set"):
        run(recommender(table, engine).recommend([], k=2))


def test_prepare_checks_each_code_token_is_one_engine_token():
    table = make_table()
    ids = token_map(table)
    rec = recommender(table, StandInCodeEngine(ids))
    assert rec.token_ids == ids and rec.end_id == END_ID and len(rec.trie) == len(table.codes())
    with pytest.raises(EngineError, match="not one"):
        recommender(table, StandInCodeEngine(ids, split_token="<a_1>"))
    wrong = dict(ids, **{"<b_0>": 999})
    with pytest.raises(EngineError, match="expected"):
        recommender(table, StandInCodeEngine(ids), token_ids=wrong, end_id=END_ID)


def test_sync_search_and_step_parsing():
    table = make_table()
    ids = token_map(table)
    engine = StandInCodeEngine(ids)
    rec = recommender(table, engine)
    prompt = run(rec.prompt_ids([]))

    def post(body):
        return engine(httpx.Request("POST", "http://x/completion", json=body,
                                    headers={"authorization": "Bearer code-engine-key"})).json()

    got, search = engine_topk_codes(post, prompt, rec.trie, rec.token_text, num_beams=8, k=4)
    assert [c for c, _ in got] == [c for c, _ in exhaustive_topk(engine, prompt, table, ids, 4)]
    assert search.calls == len(engine.completions)
    with pytest.raises(EngineError, match="completion_probabilities"):
        step_scores({"content": ""}, [1])
    with pytest.raises(ValueError, match="both code tokens and the end token"):
        completion_body([1], [END_ID, 100], {100: "<a_0>"}, END_ID)
    with pytest.raises(ValueError, match="num_beams"):
        CodeSearch(rec.trie, num_beams=2, k=3)


# --------------------------------------------------------------------------- the route


def small_catalog(table):
    from linernotes.records import HistoryEntry, Item, Listener
    from serve.explain import CatalogView

    items = {iid: Item(item_id=iid, item_type="podcast", title=f"Show {n}", creator=f"Host {n}",
                       genres=["Comedy"], source="unit", source_row=str(n))
             for n, iid in enumerate(table.item_ids())}
    listeners = {"podcast-user:1": Listener(listener_id="podcast-user:1", source="unit", history=[
        HistoryEntry(item_id="podcast:0", title="Show 0"), HistoryEntry(item_id="podcast:2", title="Show 2")])}
    return CatalogView(items=items, listeners=listeners, index=None, folder=None, load_s=0.0)


class MainStandIn:
    """A stand-in main engine: one JSON liner note per chat request."""

    def __init__(self):
        self.requests = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.requests.append(body)
        note = {"explanation": "A comedy show to try next, since comedy is in your history.",
                "facts_used": ["genres: Comedy"]}
        return httpx.Response(200, json={"choices": [{"message": {"content": json.dumps(note)},
                                                      "finish_reason": "stop"}],
                                         "usage": {"prompt_tokens": 5, "completion_tokens": 5}})


def run_route(scenario, *, with_recommender=True, with_catalog=True):
    from serve.app import EndpointState, build_app
    from serve.explain import Explainer
    from serve.settings import ServeSettings

    table = make_table()
    code_engine = StandInCodeEngine(token_map(table))
    main = MainStandIn()
    explainer = Explainer(small_catalog(table) if with_catalog else None)
    state = EndpointState(settings=ServeSettings(api_keys=[KEY]), engine_url="http://engine",
                          engine_key="engine-secret", explainer=explainer)
    if with_recommender:
        state.recommender = RecommendService(recommender(table, code_engine), explainer, "smollm2-135m-instruct")
    app = build_app(state)

    async def go():
        async with httpx.AsyncClient(base_url="http://engine", transport=httpx.MockTransport(main)) as upstream:
            state.upstream = upstream
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://serve") as c:
                return await scenario(c)

    return asyncio.run(go()), main, code_engine, table


def test_recommend_route_returns_k_valid_items_with_gated_notes():
    async def scenario(c):
        ok = await c.post("/v1/recommend", headers=AUTH, json={"listener_id": "podcast-user:1", "k": 3})
        quiet = await c.post("/v1/recommend", headers=AUTH, json={"listener": {"history": ["podcast:1"]},
                                                                  "explain": False, "k": 2})
        noauth = await c.post("/v1/recommend", json={"listener_id": "podcast-user:1"})
        return ok, quiet, noauth

    (ok, quiet, noauth), main, _, table = run_route(scenario)
    assert ok.status_code == 200, ok.text
    data = ok.json()
    items = data["items"]
    assert len(items) == 3 and data["valid_code_rate"] == 1.0 and data["table_version"] == "unit0001"
    assert not {i["item_id"] for i in items} & {"podcast:0", "podcast:2"}
    for i in items:
        assert table.item_of(i["code"]) == i["item_id"]
        assert i["title"] == f"Show {i['item_id'].split(':')[1]}" and i["creator"].startswith("Host")
        assert i["explanation"] and isinstance(i["passed"], bool)
        assert i["passed"] == all(g["passed"] for g in i["gates"].values())
    assert len(main.requests) == 3  # one note per item, on the main engine
    assert all(r["response_format"]["type"] == "json_schema" for r in main.requests)
    assert quiet.status_code == 200, quiet.text
    q = quiet.json()
    assert len(q["items"]) == 2 and all(i["explanation"] is None and i["gates"] is None for i in q["items"])
    assert "podcast:1" not in {i["item_id"] for i in q["items"]}
    assert len(main.requests) == 3  # explain false: no more notes
    assert noauth.status_code == 401


@pytest.mark.parametrize("body,status,words", [
    ({"listener_id": "podcast-user:1", "temperature": 1}, 400, "unsupported field"),
    ({"listener_id": "podcast-user:1", "k": 0}, 400, "k must be"),
    ({"listener_id": "podcast-user:1", "k": 21}, 400, "k must be"),
    ({"listener_id": "podcast-user:1", "k": True}, 400, "k must be"),
    ({"listener_id": "podcast-user:1", "explain": "yes"}, 400, "explain must be"),
    ({}, 400, "exactly one of listener_id"),
    ({"listener_id": "podcast-user:1", "listener": {"history": []}}, 400, "exactly one of listener_id"),
    ({"listener_id": "nobody"}, 404, "unknown listener_id"),
    ({"listener_id": "podcast-user:1", "item_type": "music"}, 409, "serves 'podcast'"),
    ({"listener": {"history": ["podcast:1", "podcast:nope"]}}, 400, "listener.history[1]"),
    ({"listener": {"history": "podcast:1"}}, 400, "must be a list"),
    ({"listener": {"history": [], "password": "x"}}, 400, "unsupported listener field"),
    ({"listener": {"history": [], "country": "x" * 500}}, 400, "listener.country"),
])
def test_recommend_request_validation(body, status, words):
    async def scenario(c):
        return await c.post("/v1/recommend", headers=AUTH, json=body)

    resp, main, code_engine, _ = run_route(scenario)
    assert resp.status_code == status, resp.text
    assert words in resp.json()["error"]["message"]
    assert main.requests == [] and code_engine.completions == []  # refused before any engine call


def test_recommend_without_a_model_or_catalog_says_what_to_pass():
    async def scenario(c):
        return await c.post("/v1/recommend", headers=AUTH, json={"listener_id": "podcast-user:1"})

    resp, *_ = run_route(scenario, with_recommender=False)
    assert resp.status_code == 409 and "--recommend-model" in resp.json()["error"]["message"]
    resp, *_ = run_route(scenario, with_catalog=False)
    assert resp.status_code == 409 and "no catalog" in resp.json()["error"]["message"]


def test_recommend_model_flag_reaches_settings_and_the_child_command(tmp_path, monkeypatch):
    from linernotes.cli import build_parser
    from linernotes.services import process
    from serve.cli import settings_from_args
    from serve.launch import start_endpoint

    monkeypatch.setenv("LINERNOTES_API_KEYS", KEY)
    plain = settings_from_args(build_parser().parse_args(["serve", "--no-catalog"]))
    assert plain.recommend_model is None  # no flag: no second engine
    with pytest.raises(FileNotFoundError, match="finetune.export.codes"):
        settings_from_args(build_parser().parse_args(["serve", "--no-catalog", "--recommend-model",
                                                      str(tmp_path)]))
    export = tmp_path / "export"
    export.mkdir()
    gguf = export / "model-Q8_0.gguf"
    gguf.write_bytes(b"GGUF")
    (export / "manifest.json").write_text(json.dumps({
        "stage": "export", "task": "recommend", "files": {gguf.name: {"type": "Q8_0"}},
        "gate": {"enabled": True, "passed": True, "results": {"Q8_0": {"passed": True}}}}))
    settings = settings_from_args(build_parser().parse_args(["serve", "--no-catalog", "--recommend-model",
                                                             str(export)]))
    assert settings.recommend_model == export.resolve()

    started = []

    class StandInProcess:  # records the command instead of starting a server
        def __init__(self, **kw):
            self.cmd, self.base_url, self.proc = kw["cmd"], "http://127.0.0.1:1", None

        def start(self, timeout_s):
            started.append(self.cmd)

    monkeypatch.setattr(process, "ServerProcess", StandInProcess)
    start_endpoint(None, port=1, recommend_model=export)
    assert started[0][started[0].index("--recommend-model") + 1] == str(export.resolve())
    start_endpoint(None, port=1)
    assert "--recommend-model" not in started[1]
