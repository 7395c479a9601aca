"""The real endpoint: `python -m serve` in a subprocess over the packaged SmolLM2 GGUF
(llama.cpp engine), the fixture catalog, and the real `openai` client.

One endpoint for this module with 1 slot and no wait queue, so overload is easy
to provoke: a second simultaneous request is refused with 429. Small max_tokens
everywhere; model outputs are never compared to fixed strings.
"""

from __future__ import annotations

import asyncio
import json
import os
import time

import httpx
import openai
import pytest
from openai import AsyncOpenAI, OpenAI

from serve import metrics
from serve.app import client_examples, start_endpoint
from linernotes.domain.prompts import EXPLANATION_SCHEMA
from linernotes.domain.gates import GATE_NAMES

pytestmark = pytest.mark.integration

KEY = "integration-key-1"
MODEL = "smollm2-135m-instruct"


@pytest.fixture(scope="module")  # stopped (and checked) when this file is done
def endpoint(gguf_path, fixture_catalog_dir):
    handle = start_endpoint(gguf_path, api_keys=[KEY, "integration-key-2"],
                            catalog_dir=fixture_catalog_dir, slots=1, queue_size=0,
                            max_tokens_cap=1024, request_timeout_s=60, served_name=MODEL)
    import psutil

    # Process objects, not bare PIDs: is_running() also checks the start time,
    # so a PID reused later in a long session is not taken for the engine.
    engine_procs = psutil.Process(handle.pid).children(recursive=True)
    assert engine_procs  # the llama.cpp engine runs as a child process
    yield handle
    pid = handle.pid
    handle.stop()
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)

    def engine_alive() -> bool:
        for proc in engine_procs:
            try:
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    return True
            except psutil.NoSuchProcess:
                pass
        return False

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and engine_alive():
        time.sleep(0.2)
    assert not engine_alive(), "engine outlived the endpoint"


@pytest.fixture
def client(endpoint):
    return OpenAI(base_url=endpoint.base_url, api_key=KEY, max_retries=0, timeout=60)


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {KEY}"}


def scrape(endpoint) -> dict:
    resp = httpx.get(endpoint.root_url + "/metrics", headers=auth(), timeout=10)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    return metrics.parse_text(resp.text)


def wait_idle(endpoint, timeout_s: float = 5.0) -> float:
    """Seconds until the endpoint reports no request in flight (fails after timeout_s)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        health = httpx.get(endpoint.root_url + "/health", timeout=5).json()
        if health["in_flight"] == 0 and health["queue_depth"] == 0:
            return time.monotonic() - t0
        time.sleep(0.05)
    raise AssertionError(f"still busy after {timeout_s}s: {health}")


def test_models_and_chat(client, endpoint):
    assert [m.id for m in client.models.list().data] == [MODEL]
    out = client.chat.completions.create(model=MODEL, max_tokens=16, temperature=0,
                                         messages=[{"role": "user", "content": "Name one rock band."}])
    assert out.choices[0].message.content.strip()
    assert 0 < out.usage.completion_tokens <= 16
    other_key = OpenAI(base_url=endpoint.base_url, api_key="integration-key-2", max_retries=0)
    assert other_key.completions.create(model=MODEL, prompt="Once upon a time", max_tokens=8).choices[0].text


def test_streaming_chat(client):
    stream = client.chat.completions.create(model=MODEL, max_tokens=16, stream=True, temperature=0,
                                            messages=[{"role": "user", "content": "Say hello."}])
    pieces, finish = [], None
    for chunk in stream:
        if chunk.choices:
            pieces.append(chunk.choices[0].delta.content or "")
            finish = chunk.choices[0].finish_reason or finish
    assert sum(1 for p in pieces if p) >= 2  # arrived as several events
    assert "".join(pieces).strip()
    assert finish in ("stop", "length")


def test_streaming_completions(client):
    stream = client.completions.create(model=MODEL, prompt="The best rock album of 1971 is", max_tokens=12,
                                       stream=True, temperature=0)
    texts = [c.choices[0].text for c in stream if c.choices]
    assert sum(1 for t in texts if t) >= 2 and "".join(texts).strip()


def test_json_schema_response_format(client):
    out = client.chat.completions.create(
        model=MODEL, max_tokens=120, temperature=0,
        messages=[{"role": "user", "content": "Why would a metal fan like Metallica? Answer in JSON."}],
        response_format={"type": "json_schema",
                         "json_schema": {"name": "liner_note", "schema": EXPLANATION_SCHEMA}})
    text = out.choices[0].message.content
    if out.choices[0].finish_reason == "stop":  # a cut-off answer cannot be complete JSON
        data = json.loads(text)
        assert isinstance(data["explanation"], str) and isinstance(data["facts_used"], list)
    else:
        assert text.lstrip().startswith("{")


def test_401_without_or_with_wrong_key(endpoint):
    bad = OpenAI(base_url=endpoint.base_url, api_key="not-the-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model=MODEL, max_tokens=4, messages=[{"role": "user", "content": "hi"}])
    resp = httpx.post(endpoint.base_url + "/chat/completions", json={"messages": []}, timeout=10)
    assert resp.status_code == 401 and resp.headers["www-authenticate"] == "Bearer"
    assert httpx.get(endpoint.root_url + "/metrics", timeout=10).status_code == 401
    assert httpx.get(endpoint.root_url + "/health", timeout=10).status_code == 200  # open


def test_429_under_overload_then_recovers(endpoint):
    async def burst():
        aclient = AsyncOpenAI(base_url=endpoint.base_url, api_key=KEY, max_retries=0, timeout=60)

        async def one():
            try:
                await aclient.chat.completions.create(
                    model=MODEL, max_tokens=24, messages=[{"role": "user", "content": "Tell a joke."}])
                return "ok"
            except openai.RateLimitError as exc:
                return ("429", exc.response.headers.get("retry-after"))
            except Exception as exc:  # anything else is a failure of the test
                return ("other", repr(exc))

        try:
            return await asyncio.gather(*(one() for _ in range(5)))
        finally:
            await aclient.close()

    results = asyncio.run(burst())
    oks = [r for r in results if r == "ok"]
    refused = [r for r in results if isinstance(r, tuple) and r[0] == "429"]
    assert not [r for r in results if isinstance(r, tuple) and r[0] == "other"], results
    assert len(oks) >= 1 and len(refused) >= 1, results  # 1 slot, no queue
    assert all(r[1] and int(r[1]) >= 1 for r in refused)  # Retry-After on every 429
    wait_idle(endpoint)
    recovered = OpenAI(base_url=endpoint.base_url, api_key=KEY, max_retries=0).chat.completions.create(
        model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    assert recovered.choices[0].message.content is not None


def _catalog_pair(catalog_dir):
    """A real (item, listener) of the same type from the ingested fixture catalog."""
    from synth.catalog.ingest import load_catalog

    catalog = load_catalog(catalog_dir)
    listener = next(ls for ls in catalog.listeners_of_type("music") if ls.history)
    heard = {h.item_id for h in listener.history}
    item = next(it for it in catalog.items_of_type("music") if it.item_id not in heard)
    return item, listener


def test_explain_on_a_catalog_item(endpoint, fixture_catalog_dir):
    item, listener = _catalog_pair(fixture_catalog_dir)
    resp = httpx.post(endpoint.base_url + "/explain", headers=auth(), timeout=60,
                      json={"item_id": item.item_id, "listener_id": listener.listener_id,
                            "max_tokens": 96})
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert (data["item_id"], data["listener_id"]) == (item.item_id, listener.listener_id)
    assert set(data["gates"]) == set(GATE_NAMES)
    for verdict in data["gates"].values():
        assert isinstance(verdict["passed"], bool) and isinstance(verdict["reasons"], list)
        if not verdict["passed"]:
            assert verdict["reasons"]  # a failed gate says why
    if data["parsed"]:
        assert data["explanation"].strip() and isinstance(data["facts_used"], list)
    else:
        assert data["parse_error"] and not data["passed"]
    assert data["passed"] == (data["parsed"] and all(g["passed"] for g in data["gates"].values()))
    assert 0 < data["usage"]["completion_tokens"] <= 96 and data["usage"]["prompt_tokens"] > 50
    assert data["latency_ms"] >= data["engine_ms"] > 0
    assert data["prompt_version"].startswith("explain")

    unknown = httpx.post(endpoint.base_url + "/explain", headers=auth(), timeout=30,
                         json={"item_id": "music:does-not-exist", "listener_id": listener.listener_id})
    assert unknown.status_code == 404


def test_metrics_parse_and_count(endpoint, client):
    before = scrape(endpoint)
    client.chat.completions.create(model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    after = scrape(endpoint)
    route = "/v1/chat/completions"
    v = metrics.value
    assert v(after, "linernotes_requests_total", route=route, status="200") == \
        v(before, "linernotes_requests_total", route=route, status="200") + 1
    assert v(after, "linernotes_tokens_total", direction="out") > v(before, "linernotes_tokens_total", direction="out")
    assert v(after, "linernotes_tokens_total", direction="in") > v(before, "linernotes_tokens_total", direction="in")
    assert v(after, "linernotes_request_duration_seconds_count", route=route) >= 1
    assert v(after, "linernotes_in_flight") == 0 and v(after, "linernotes_queue_depth") == 0
    assert v(after, "linernotes_slots") == 1


# Never stops early: the schema needs >= 500 integers (>= 1000 tokens with the commas), so
# the grammar forbids EOS until the 1024-token cap. (`ignore_eos` did this before; the
# endpoint now refuses engine extensions.)
LONG = {"model": MODEL, "max_tokens": 1400,
        "messages": [{"role": "user", "content": "List many numbers."}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "numbers", "schema": {
            "type": "array", "items": {"type": "integer"}, "minItems": 500}}}}


def _quick_request_s(endpoint) -> float:
    """Time for a tiny request; with 1 engine slot it waits if the slot is still busy."""
    t0 = time.monotonic()
    resp = httpx.post(endpoint.base_url + "/chat/completions", headers=auth(), timeout=60,
                      json={"model": MODEL, "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]})
    assert resp.status_code == 200, resp.text
    return time.monotonic() - t0


def test_stream_disconnect_frees_the_slot(endpoint):
    with httpx.stream("POST", endpoint.base_url + "/chat/completions", headers=auth(), timeout=60,
                      json={**LONG, "stream": True}) as resp:
        assert resp.status_code == 200
        events = 0
        for line in resp.iter_lines():
            events += line.startswith("data:")
            if events >= 3:
                break  # leave mid-generation: the context manager closes the connection
    assert wait_idle(endpoint) < 3
    # 1024 tokens take well over 10 s here; a freed engine slot answers at once
    assert _quick_request_s(endpoint) < 6


def test_non_streaming_disconnect_frees_the_slot(endpoint):
    with pytest.raises(httpx.ReadTimeout):  # the client gives up and closes the connection
        httpx.post(endpoint.base_url + "/chat/completions", headers=auth(), json=LONG, timeout=1.5)
    assert wait_idle(endpoint) < 3
    assert _quick_request_s(endpoint) < 6
    samples = scrape(endpoint)
    assert metrics.value(samples, "linernotes_requests_total", route="/v1/chat/completions",
                         status="499") >= 1  # recorded as "client closed request"


def test_client_examples_work_against_the_endpoint(endpoint, fixture_catalog_dir):
    """The openai-python snippet from client_examples runs as printed."""
    item, listener = _catalog_pair(fixture_catalog_dir)
    text = client_examples(endpoint.base_url, KEY, model=MODEL)
    python = "\n".join(line for line in text.splitlines()
                       if not line.startswith(("curl", "  -", "#")))
    python = python.replace("max_tokens=48", "max_tokens=8")
    exec(compile(python, "<client_examples>", "exec"), {})
