"""The serve package without a model: limits, metrics text, model-file choice, and the
app's HTTP behaviour over a stand-in engine (httpx.MockTransport).

The real engine (llama.cpp over the packaged GGUF) is in tests/integration/test_serve.py.
"""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from serve import limits, metrics
from serve.app import EndpointState, build_app, client_examples
from serve.limits import Admission, BodyTooLarge, Overloaded, apply_token_cap, key_matches
from serve.settings import ServeSettings, choose_model_file, default_served_name, keys_from_env
from linernotes.domain.gates import GATE_NAMES

KEY = "unit-test-key-1"
AUTH = {"Authorization": f"Bearer {KEY}"}


# --------------------------------------------------------------------------- auth


def test_key_matches_any_configured_key_only():
    keys = ["first-key-aaaa", "second-key-bbbb"]
    assert key_matches("first-key-aaaa", keys)
    assert key_matches("second-key-bbbb", keys)
    for bad in (None, "", "first-key-aaa", "first-key-aaaaa", "FIRST-KEY-AAAA", "x"):
        assert not key_matches(bad, keys)


def test_key_compare_is_constant_time_over_all_keys(monkeypatch):
    calls = []
    real = limits.hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(limits.hmac, "compare_digest", spy)
    assert key_matches("k1-aaaaaaaa", ["k1-aaaaaaaa", "k2-bbbbbbbb", "k3-cccccccc"])
    assert len(calls) == 3  # no early exit on the first match


def test_bearer_token_parsing():
    assert limits.bearer_token("Bearer abc") == "abc"
    assert limits.bearer_token("bearer  abc ") == "abc"
    assert limits.bearer_token("Basic abc") is None
    assert limits.bearer_token("Bearer ") is None
    assert limits.bearer_token(None) is None


def test_settings_need_a_key_and_env_keys_split():
    with pytest.raises(ValueError, match="API key"):
        ServeSettings(api_keys=[])
    with pytest.raises(ValueError, match="8 characters"):
        ServeSettings(api_keys=["short"])
    assert keys_from_env({"LINERNOTES_API_KEYS": " a-key-0001, ,b-key-0002 "}) == ["a-key-0001", "b-key-0002"]
    assert ServeSettings(api_keys=[KEY], slots=3, queue_size=2).capacity == 5


# --------------------------------------------------------------------------- body, tokens


async def _chunks(parts, consumed):
    for p in parts:
        consumed.append(p)
        yield p


def test_body_limit_refuses_declared_length_before_reading():
    consumed = []
    with pytest.raises(BodyTooLarge, match="exceeds"):
        asyncio.run(limits.read_limited_body(_chunks([b"x" * 10], consumed), "5000", 100))
    assert consumed == []  # nothing read


def test_body_limit_counts_chunked_bodies_and_passes_small_ones():
    consumed = []
    with pytest.raises(BodyTooLarge):
        asyncio.run(limits.read_limited_body(_chunks([b"x" * 60] * 5, consumed), None, 100))
    assert len(consumed) == 2  # stopped at the chunk that crossed the limit
    assert asyncio.run(limits.read_limited_body(_chunks([b"ab", b"cd"], []), "4", 4)) == b"abcd"
    with pytest.raises(BodyTooLarge, match="invalid"):
        asyncio.run(limits.read_limited_body(_chunks([], []), "lots", 4))


def test_token_cap_clamps_defaults_and_validates():
    body = {"max_tokens": 5000}
    assert apply_token_cap(body, 512, 256) == (512, True) and body == {"max_tokens": 512}
    body = {}
    assert apply_token_cap(body, 512, 256) == (256, False) and body["max_tokens"] == 256
    body = {"max_completion_tokens": 40, "max_tokens": 90}
    assert apply_token_cap(body, 512, 256) == (40, False)
    assert body == {"max_tokens": 40}  # the engine gets one field
    for bad in (0, -3, "12", 1.5, True):
        with pytest.raises(ValueError):
            apply_token_cap({"max_tokens": bad}, 512, 256)


# --------------------------------------------------------------------------- admission


def test_admission_bounds_running_and_waiting():
    async def scenario():
        adm = Admission(slots=1, queue_size=1)
        first = await adm.enter()
        waiter = asyncio.create_task(adm.enter())
        await asyncio.sleep(0)
        assert (adm.active, adm.waiting) == (1, 1)
        with pytest.raises(Overloaded) as info:  # slot and queue full: refused at once
            await asyncio.wait_for(adm.enter(), timeout=0.5)
        assert info.value.retry_after_s >= 1
        first.release()
        first.release()  # idempotent: must not free a second slot
        second = await asyncio.wait_for(waiter, 1)
        assert (adm.active, adm.waiting) == (1, 0)
        second.release()
        assert adm.active == 0 and adm._sem._value == 1

    asyncio.run(scenario())


def test_admission_cancelled_waiter_leaves_the_queue():
    async def scenario():
        adm = Admission(slots=1, queue_size=1)
        held = await adm.enter()
        waiter = asyncio.create_task(adm.enter())
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert adm.waiting == 0
        held.release()
        again = await asyncio.wait_for(adm.enter(), 1)  # the slot was not leaked
        again.release()

    asyncio.run(scenario())


def test_retry_after_grows_with_recent_durations():
    adm = Admission(slots=2, queue_size=4)
    assert adm.retry_after_s() == 1
    for _ in range(5):
        adm.record_duration(6.0)
    adm.waiting = 3
    assert adm.retry_after_s() == 12  # 6 s each, 4 ahead over 2 slots


# --------------------------------------------------------------------------- metrics


def test_metrics_text_parses_and_histogram_is_consistent():
    m = metrics.Metrics(gauges={"in_flight": ("h", lambda: 2)})
    m.observe("/v1/chat/completions", 200, 0.3)
    m.observe("/v1/chat/completions", 200, 7.0)
    m.observe("/v1/chat/completions", 429, 0.001)
    m.add_tokens(100, 20)
    text = m.render()
    samples = metrics.parse_text(text)
    v = metrics.value
    route = "/v1/chat/completions"
    assert v(samples, "linernotes_requests_total", route=route, status="200") == 2
    assert v(samples, "linernotes_requests_total", route=route, status="429") == 1
    buckets = [(float(dict(labels)["le"]), val) for (name, labels), val in samples.items()
               if name == "linernotes_request_duration_seconds_bucket"]
    counts = [c for _, c in sorted(buckets)]
    assert counts == sorted(counts)  # cumulative
    assert counts[-1] == v(samples, "linernotes_request_duration_seconds_count", route=route) == 3
    assert v(samples, "linernotes_request_duration_seconds_bucket", route=route, le="0.5") == 2
    assert v(samples, "linernotes_tokens_total", direction="in") == 100
    assert v(samples, "linernotes_in_flight") == 2
    assert "# TYPE linernotes_request_duration_seconds histogram" in text
    with pytest.raises(ValueError):
        metrics.parse_text("not a metric line at all {")


def test_metrics_label_values_are_escaped():
    m = metrics.Metrics()
    m.observe('we"ird\\route', 200, 0.1)
    samples = metrics.parse_text(m.render())
    assert any(dict(labels).get("route") == 'we\\"ird\\\\route' for _, labels in samples)


# --------------------------------------------------------------------------- model file


def test_model_file_choice(tmp_path):
    export = tmp_path / "export-run7"
    export.mkdir()
    (export / "model-Q8_0.gguf").write_bytes(b"GGUF")
    assert choose_model_file(export).name == "model-Q8_0.gguf"
    (export / "model-Q4_0.gguf").write_bytes(b"GGUF")
    assert choose_model_file(export).name == "model-Q4_0.gguf"  # smaller one preferred
    assert default_served_name(choose_model_file(export)) == "export-run7"
    run_export = tmp_path / "finetune-abc123" / "export"  # the fine-tune stage's layout
    run_export.mkdir(parents=True)
    (run_export / "model-Q8_0.gguf").write_bytes(b"GGUF")
    assert default_served_name(run_export) == "finetune-abc123"
    assert default_served_name(choose_model_file(run_export)) == "finetune-abc123"

    other = tmp_path / "other"
    other.mkdir()
    (other / "b.gguf").write_bytes(b"GGUF")
    (other / "a.gguf").write_bytes(b"GGUF")
    assert choose_model_file(other).name == "a.gguf"  # stable: sorted
    assert choose_model_file(other / "b.gguf").name == "b.gguf"

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no .gguf"):
        choose_model_file(empty)
    with pytest.raises(FileNotFoundError):
        choose_model_file(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError):
        choose_model_file(tmp_path / "notes.txt")


# --------------------------------------------------------------------------- engine choice


def test_engine_auto_is_llamacpp_without_gpu_and_vllm_command_builds(tmp_path, monkeypatch):
    from serve import engine

    monkeypatch.setattr(engine, "cuda_gpu_visible", lambda: False)
    assert engine.pick_engine("auto") == "llamacpp"
    monkeypatch.setattr(engine, "cuda_gpu_visible", lambda: True)
    monkeypatch.setenv("LINERNOTES_VLLM_PYTHON", "/opt/gpu-venv/bin/python")
    assert engine.pick_engine("auto") == "vllm"
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "config.json").write_text("{}")
    built = engine.build_engine(ServeSettings(model_path=hf, api_keys=[KEY], slots=6), "vllm")
    cmd = built.process.cmd
    assert cmd[0] == "/opt/gpu-venv/bin/python" and "vllm.entrypoints.openai.api_server" in cmd
    assert cmd[cmd.index("--max-num-seqs") + 1] == "6" and "--enforce-eager" not in cmd
    assert built.process.env["VLLM_API_KEY"] == built.api_key  # the engine is private
    assert built.process.host == "127.0.0.1" and built.process.proc is None  # not started
    export = tmp_path / "run" / "export"  # an export folder: vLLM serves its merged/ HF model
    (export / "merged").mkdir(parents=True)
    (export / "merged" / "config.json").write_text("{}")
    built = engine.build_engine(ServeSettings(model_path=export, api_keys=[KEY]), "vllm")
    assert built.model_path == (export / "merged").resolve()


def test_llamacpp_engine_gets_slots_threads_and_a_private_key(gguf_path):
    from serve.engine import build_engine

    built = build_engine(ServeSettings(model_path=gguf_path, api_keys=[KEY], slots=3,
                                       engine_threads=1), "llamacpp")
    cmd = built.process.cmd
    assert cmd[cmd.index("--parallel") + 1] == "3" and cmd[cmd.index("--threads") + 1] == "1"
    assert built.process.env["LLAMA_API_KEY"] == built.api_key and len(built.api_key) >= 24
    assert KEY not in " ".join(cmd)
    assert cmd[cmd.index("--cache-ram-mib") + 1] == "512"  # bounded prompt cache by default


# --------------------------------------------------------------------------- app over a stand-in engine


class StandIn:
    """A fake OpenAI engine: records requests, answers after `delay_s`."""

    def __init__(self, delay_s: float = 0.0, text: str = "hello there"):
        self.delay_s = delay_s
        self.text = text
        self.requests: list[dict] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/health":
            return httpx.Response(200, json={"status": "ok"})
        body = json.loads(request.content)
        self.requests.append(body)
        await asyncio.sleep(self.delay_s)
        if body.get("stream"):
            async def events():
                for word in self.text.split():
                    yield f'data: {{"choices":[{{"delta":{{"content":"{word}"}}}}]}}\n\n'.encode()
                yield b'data: {"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":2}}\n\n'
                yield b"data: [DONE]\n\n"
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=events())
        return httpx.Response(200, json={
            "choices": [{"index": 0, "message": {"role": "assistant", "content": self.text},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}})


def run_app(engine: StandIn, scenario, **settings_kw):
    """Run `scenario(client, state)` against the app in-process (ASGI transport)."""
    settings = ServeSettings(api_keys=[KEY, "other-key-2"], **settings_kw)
    state = EndpointState(settings=settings, engine_url="http://engine", engine_key="engine-secret")
    app = build_app(state)

    async def main():
        async with httpx.AsyncClient(base_url="http://engine", transport=httpx.MockTransport(engine),
                                     headers={"Authorization": "Bearer engine-secret"}) as upstream:
            state.upstream = upstream
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                         base_url="http://serve") as client:
                return await scenario(client, state)

    return asyncio.run(main())


def chat(**extra):
    return {"model": "smollm2-135m-instruct", "messages": [{"role": "user", "content": "hi"}], **extra}


def test_auth_required_except_health():
    async def scenario(client, state):
        no_key = await client.post("/v1/chat/completions", json=chat())
        wrong = await client.post("/v1/chat/completions", json=chat(), headers={"Authorization": "Bearer nope-nope"})
        metrics_closed = await client.get("/metrics")
        models_closed = await client.get("/v1/models")
        health = await client.get("/health")
        ok = await client.post("/v1/chat/completions", json=chat(), headers=AUTH)
        other = await client.get("/v1/models", headers={"Authorization": "Bearer other-key-2"})
        return no_key, wrong, metrics_closed, models_closed, health, ok, other

    engine = StandIn()
    no_key, wrong, metrics_closed, models_closed, health, ok, other = run_app(engine, scenario)
    for resp in (no_key, wrong, metrics_closed, models_closed):
        assert resp.status_code == 401
        assert resp.headers["www-authenticate"] == "Bearer"
        assert resp.json()["error"]["code"] == "invalid_api_key"
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert ok.status_code == 200 and other.status_code == 200
    assert len(engine.requests) == 1  # refused requests never reached the engine


def test_metrics_open_flag():
    async def scenario(client, state):
        return await client.get("/metrics")

    assert run_app(StandIn(), scenario, metrics_open=True).status_code == 200


def test_body_limit_model_name_and_n():
    async def scenario(client, state):
        big = await client.post("/v1/chat/completions", headers=AUTH,
                                json=chat(pad="x" * 5000))
        not_json = await client.post("/v1/chat/completions", headers=AUTH, content=b"{nope")
        wrong_model = await client.post("/v1/chat/completions", headers=AUTH,
                                        json={**chat(), "model": "/etc/passwd"})
        many = await client.post("/v1/chat/completions", headers=AUTH, json=chat(n=3))
        return big, not_json, wrong_model, many

    engine = StandIn()
    big, not_json, wrong_model, many = run_app(engine, scenario, max_body_bytes=2048)
    assert big.status_code == 413
    assert not_json.status_code == 400
    assert wrong_model.status_code == 404 and "smollm2-135m-instruct" in wrong_model.json()["error"]["message"]
    assert many.status_code == 400
    assert engine.requests == []


def test_max_tokens_is_clamped_before_the_engine():
    async def scenario(client, state):
        big = await client.post("/v1/chat/completions", headers=AUTH, json=chat(max_tokens=100000))
        unset = await client.post("/v1/completions", headers=AUTH,
                                  json={"model": "smollm2-135m-instruct", "prompt": "Once"})
        bad = await client.post("/v1/chat/completions", headers=AUTH, json=chat(max_tokens=-1))
        return big, unset, bad

    engine = StandIn()
    big, unset, bad = run_app(engine, scenario, max_tokens_cap=64, default_max_tokens=32)
    assert big.status_code == 200 and big.headers["x-linernotes-max-tokens"] == "64"
    assert unset.headers["x-linernotes-max-tokens"] == "32"
    assert [r["max_tokens"] for r in engine.requests] == [64, 32]
    assert bad.status_code == 400


def test_overload_gets_429_with_retry_after_and_recovers():
    async def scenario(client, state):
        burst = await asyncio.gather(*(client.post("/v1/chat/completions", headers=AUTH, json=chat())
                                       for _ in range(6)))
        after = await client.post("/v1/chat/completions", headers=AUTH, json=chat())
        text = (await client.get("/metrics", headers=AUTH)).text
        return burst, after, text, state.admission

    engine = StandIn(delay_s=0.3)
    burst, after, text, adm = run_app(engine, scenario, slots=1, queue_size=1)
    codes = sorted(r.status_code for r in burst)
    assert codes == [200, 200, 429, 429, 429, 429]  # 1 running + 1 queued, the rest refused
    for r in burst:
        if r.status_code == 429:
            assert int(r.headers["retry-after"]) >= 1
            assert r.json()["error"]["type"] == "rate_limit_error"
    assert after.status_code == 200
    assert adm.active == 0 and adm.waiting == 0
    samples = metrics.parse_text(text)
    assert metrics.value(samples, "linernotes_requests_total", route="/v1/chat/completions", status="429") == 4
    assert metrics.value(samples, "linernotes_requests_total", route="/v1/chat/completions", status="200") == 3
    assert metrics.value(samples, "linernotes_tokens_total", direction="out") == 9


def test_timeout_gives_504_and_frees_the_slot():
    async def scenario(client, state):
        t0 = time.monotonic()
        slow = await client.post("/v1/chat/completions", headers=AUTH, json=chat())
        return slow, time.monotonic() - t0, state.admission

    slow, elapsed, adm = run_app(StandIn(delay_s=5), scenario, request_timeout_s=0.5)
    assert slow.status_code == 504 and elapsed < 3
    assert adm.active == 0


def test_streaming_passes_events_through_and_counts_usage():
    async def scenario(client, state):
        async with client.stream("POST", "/v1/chat/completions", headers=AUTH,
                                 json=chat(stream=True)) as resp:
            lines = [line async for line in resp.aiter_lines() if line]
            headers = resp.headers
        text = (await client.get("/metrics", headers=AUTH)).text
        return lines, headers, text, state.admission

    lines, headers, text, adm = run_app(StandIn(text="one two three"), scenario)
    assert headers["content-type"].startswith("text/event-stream")
    assert "content-length" not in headers
    assert lines[-1] == "data: [DONE]"
    words = [json.loads(line[5:])["choices"][0]["delta"]["content"] for line in lines[:3]]
    assert words == ["one", "two", "three"]
    samples = metrics.parse_text(text)
    assert metrics.value(samples, "linernotes_tokens_total", direction="in") == 7
    assert adm.active == 0


def test_explain_inline_builds_the_training_prompt_and_gates(tmp_path):
    from linernotes.domain.prompts import EXPLANATION_SCHEMA, PromptBuilder

    answer = json.dumps({"explanation": "Since Master Of Puppets is on repeat, Enter Sandman by "
                                        "Metallica is the next heavy hit.",
                         "facts_used": ["creator: Metallica"]})
    body = {"item": {"item_type": "music", "title": "Enter Sandman", "creator": "Metallica",
                     "genres": ["Metal"]},
            "listener": {"history": [{"item_id": "music:9", "title": "Master Of Puppets",
                                      "creator": "Metallica"}]}}

    async def scenario(client, state):
        ok = await client.post("/v1/explain", headers=AUTH, json=body)
        by_id = await client.post("/v1/explain", headers=AUTH, json={"item_id": "music:1",
                                                                     "listener_id": "x"})
        bad = await client.post("/v1/explain", headers=AUTH, json={"item": {"title": ""}, "listener": {}})
        return ok, by_id, bad, state

    engine = StandIn(text=answer)
    ok, by_id, bad, state = run_app(engine, scenario)
    assert ok.status_code == 200, ok.text
    data = ok.json()
    assert data["parsed"] and data["explanation"].startswith("Since Master Of Puppets")
    assert set(data["gates"]) == set(GATE_NAMES)
    assert data["passed"] == all(g["passed"] for g in data["gates"].values())
    assert data["usage"]["completion_tokens"] == 3 and data["latency_ms"] >= data["engine_ms"]
    sent = engine.requests[0]
    assert sent["response_format"]["json_schema"]["schema"] == EXPLANATION_SCHEMA
    item, listener = state.explainer.resolve(body)
    zero_shot = PromptBuilder(state.explainer.builder.template, [], 0).messages(item, listener)
    assert sent["messages"] == zero_shot and [m["role"] for m in zero_shot] == ["system", "user"]
    assert by_id.status_code == 404 and "no catalog" in by_id.json()["error"]["message"]
    assert bad.status_code == 400


def test_client_examples_are_runnable_text():
    text = client_examples("http://127.0.0.1:9/v1", "k-123456789", item_id="music:1",
                           listener_id="music-customer:1")
    assert "curl -s http://127.0.0.1:9/v1/chat/completions" in text
    assert "Authorization: Bearer k-123456789" in text and "/v1/explain" in text
    python = "\n".join(line for line in text.splitlines()
                       if not line.startswith(("curl", "  -")) and not line.startswith("#"))
    compile(python, "<examples>", "exec")  # the python part is valid code


def test_cli_registers_serve_with_env_and_file_keys(monkeypatch, tmp_path):
    from linernotes.cli import build_parser
    from serve.cli import settings_from_args

    monkeypatch.setenv("LINERNOTES_API_KEYS", "env-key-0001")
    key_file = tmp_path / "keys"
    key_file.write_text("# endpoint keys\nfile-key-0002\n\n")
    args = build_parser().parse_args(["serve", "--api-key-file", str(key_file), "--slots", "2",
                                      "--queue-size", "0", "--no-catalog", "--port", "8123"])
    settings = settings_from_args(args)
    assert settings.api_keys == ["env-key-0001", "file-key-0002"]
    assert (settings.slots, settings.queue_size, settings.port, settings.catalog_dir) == (2, 0, 8123, None)
    assert settings.host == "127.0.0.1" and settings.model_path is None


def test_bare_serve_generates_and_prints_a_key(monkeypatch, capsys):
    from linernotes.cli import build_parser
    from serve.cli import settings_from_args

    monkeypatch.delenv("LINERNOTES_API_KEYS", raising=False)
    settings = settings_from_args(build_parser().parse_args(["serve", "--no-catalog"]))
    assert len(settings.api_keys) == 1 and len(settings.api_keys[0]) >= 24
    assert settings.api_keys[0] in capsys.readouterr().err
    again = settings_from_args(build_parser().parse_args(["serve", "--no-catalog"]))
    assert again.api_keys != settings.api_keys  # random per run, never a fixed default


# --------------------------------------------------------------------------- allow-listed engine body


def test_engine_extensions_are_refused_and_never_reach_the_engine():
    extensions = {"n_predict": 100000, "ignore_eos": True, "id_slot": 0,
                  "samplers": ["top_k"], "cache_prompt": False, "grammar": "root ::= \"x\""}

    async def scenario(client, state):
        chat_resp = await client.post("/v1/chat/completions", headers=AUTH,
                                      json=chat(max_tokens=10, **extensions))
        completion = await client.post("/v1/completions", headers=AUTH,
                                       json={"prompt": "Once", "max_tokens": 10, "n_predict": 100000})
        return chat_resp, completion

    engine = StandIn()
    chat_resp, completion = run_app(engine, scenario, max_tokens_cap=64)
    assert chat_resp.status_code == 400 and completion.status_code == 400
    message = chat_resp.json()["error"]["message"]
    for name in extensions:
        assert name in message
    assert "n_predict" in completion.json()["error"]["message"]
    assert engine.requests == []  # the token cap cannot be bypassed through the engine's own fields


def test_engine_gets_a_body_built_from_the_allow_list_with_the_cap():
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}

    async def scenario(client, state):
        ok = await client.post("/v1/chat/completions", headers=AUTH, json=chat(
            max_completion_tokens=10 ** 6, temperature=0.3, top_p=0.9, stop=["\n\n"], seed=7, n=1,
            presence_penalty=0.1, frequency_penalty=0.2, response_format=fmt, logprobs=False,
            user="someone"))
        completion = await client.post("/v1/completions", headers=AUTH,
                                       json={"prompt": "Once", "max_tokens": 5, "stream": False})
        return ok, completion

    engine = StandIn()
    ok, completion = run_app(engine, scenario, max_tokens_cap=64)
    assert ok.status_code == 200, ok.text
    assert ok.headers["x-linernotes-max-tokens"] == "64"
    assert ok.headers["x-linernotes-dropped-fields"] == "user"  # bookkeeping: dropped, and said so
    sent, sent_completion = engine.requests
    assert sent == {"model": "smollm2-135m-instruct", "messages": [{"role": "user", "content": "hi"}],
                    "max_tokens": 64, "temperature": 0.3, "top_p": 0.9, "stop": ["\n\n"], "seed": 7,
                    "n": 1, "presence_penalty": 0.1, "frequency_penalty": 0.2, "response_format": fmt,
                    "logprobs": False}
    assert sent_completion == {"model": "smollm2-135m-instruct", "prompt": "Once", "max_tokens": 5,
                               "stream": False}


def test_prompt_arrays_and_odd_messages_are_refused():
    async def scenario(client, state):
        bodies = [
            ("/v1/completions", {"prompt": ["one", "two", "three"]}),
            ("/v1/completions", {"prompt": [1, 2, 3]}),
            ("/v1/completions", {}),
            ("/v1/chat/completions", chat(messages=[{"role": "user", "content": "hi",
                                                     "tool_calls": []}])),
            ("/v1/chat/completions", chat(messages=[{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "http://x"}}]}])),
            ("/v1/chat/completions", chat(messages=[{"role": "tool", "content": "x"}])),
            ("/v1/chat/completions", chat(messages=[])),
            ("/v1/chat/completions", chat(temperature=9)),
            ("/v1/chat/completions", chat(stop=["a"] * 5)),
            ("/v1/chat/completions", chat(stream="yes")),
            ("/v1/chat/completions", chat(stream_options={"include_usage": True, "x": 1})),
            ("/v1/chat/completions", chat(response_format={"type": "grammar"})),
        ]
        return [(await client.post(path, headers=AUTH, json=body)) for path, body in bodies]

    engine = StandIn()
    responses = run_app(engine, scenario)
    assert [r.status_code for r in responses] == [400] * len(responses)
    assert "single string" in responses[0].json()["error"]["message"]
    assert "messages[0]: unsupported field(s) tool_calls" in responses[3].json()["error"]["message"]
    assert engine.requests == []


def test_text_parts_and_stream_options_pass():
    from serve.openai_fields import engine_body

    body = {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}], "name": "ann"}],
            "stream": True, "stream_options": {"include_usage": True}}
    out, limit, dropped = engine_body(body, "chat", cap=64, default_max_tokens=32)
    assert out["messages"] == body["messages"] and out["stream_options"] == {"include_usage": True}
    assert (limit, dropped, out["max_tokens"]) == (32, [], 32)


# --------------------------------------------------------------------------- export gate


def _export(folder, *, enabled=True, passed=True, gate_json=None, types=("Q4_0",)):
    """An export folder as finetune/export writes it (GGUF bytes are a stand-in)."""
    import hashlib

    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for qtype in types:
        path = folder / f"model-{qtype}.gguf"
        path.write_bytes(b"GGUF stand-in " + qtype.encode())
        files[path.name] = {"type": qtype, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    results = {q: {"passed": passed, "agreement": 0.99 if passed else 0.5, "min_agreement": 0.9,
                   "reasons": [] if passed else ["agreement 0.500 < 0.9"]} for q in types} if enabled else {}
    (folder / "manifest.json").write_text(json.dumps({
        "stage": "export", "files": files,
        "gate": {"enabled": enabled, "passed": passed if enabled else None, "results": results}}))
    if gate_json is not None:
        (folder / "gate.json").write_text(json.dumps(gate_json))
    return folder


def test_gate_verdicts_from_the_export_folder(tmp_path):
    from serve.gate_check import UngatedModel, gate_verdict, require_gated

    good = _export(tmp_path / "good" / "export")
    assert require_gated(good).passed is True
    assert require_gated(None) is None  # the packaged model: no export gate
    plain = tmp_path / "mine.gguf"
    plain.write_bytes(b"GGUF")
    assert require_gated(plain).is_export is False  # a model brought by the user

    failed = _export(tmp_path / "failed" / "export", passed=False)
    with pytest.raises(UngatedModel) as info:
        require_gated(failed)
    message = str(info.value)
    assert str(failed / "manifest.json") in message and "FAILED" in message
    assert "agreement 0.500" in message and "--allow-ungated" in message
    assert require_gated(failed, allow_ungated=True).passed is False

    # skipped gate; a gate.json left from an earlier export does not count
    skipped = _export(tmp_path / "skipped" / "export", enabled=False,
                      gate_json={"Q4_0": {"passed": True}})
    with pytest.raises(UngatedModel, match="skipped"):
        require_gated(skipped)

    changed = _export(tmp_path / "changed" / "export")
    (changed / "model-Q4_0.gguf").write_bytes(b"GGUF swapped in later")
    with pytest.raises(UngatedModel, match="not the file the gate passed"):
        require_gated(changed)

    # per file: Q8_0 passed, Q4_0 has no result
    mixed = _export(tmp_path / "mixed" / "export", types=("Q8_0",))
    (mixed / "model-Q4_0.gguf").write_bytes(b"GGUF")
    with pytest.raises(UngatedModel, match="no gate result for model-Q4_0.gguf"):
        require_gated(mixed)  # the folder's preferred file is Q4_0
    assert require_gated(mixed / "model-Q8_0.gguf").passed is True

    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "model-Q4_0.gguf").write_bytes(b"GGUF")
    with pytest.raises(UngatedModel, match="no export manifest.json or gate.json"):
        require_gated(bare)
    (bare / "gate.json").write_text(json.dumps({"Q4_0": {"passed": False, "reasons": ["eos"]}}))
    assert gate_verdict(bare / "model-Q4_0.gguf").passed is False
    (bare / "gate.json").write_text("{broken")
    with pytest.raises(UngatedModel, match="unreadable"):
        require_gated(bare)


def test_serve_takes_no_key_on_the_command_line():
    """A key in argv is visible to every user of the machine (`ps`)."""
    from linernotes.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--api-key", "argv-key-0003"])


def test_cli_refuses_an_ungated_export_unless_allowed(tmp_path, capsys, monkeypatch):
    from linernotes.cli import build_parser
    from serve.cli import run_from_args, settings_from_args

    failed = _export(tmp_path / "run" / "export", passed=False)
    monkeypatch.setenv("LINERNOTES_API_KEYS", KEY)
    argv = ["serve", str(failed), "--no-catalog"]
    assert run_from_args(build_parser().parse_args(argv)) == 2  # before any engine starts
    err = capsys.readouterr().err
    assert "refusing to serve" in err and str(failed / "manifest.json") in err
    settings = settings_from_args(build_parser().parse_args(argv + ["--allow-ungated"]))
    assert settings.allow_ungated and settings.model_path == failed.resolve()
    assert "WARNING serving an ungated export" in capsys.readouterr().err


def test_start_endpoint_checks_the_gate_before_starting(tmp_path, monkeypatch):
    from linernotes.services import process
    from serve.gate_check import UngatedModel
    from serve.launch import start_endpoint

    started = []

    class StandInProcess:  # records the command instead of starting a server
        def __init__(self, **kw):
            self.cmd, self.base_url, self.proc = kw["cmd"], "http://127.0.0.1:1", None

        def start(self, timeout_s):
            started.append(self.cmd)

    monkeypatch.setattr(process, "ServerProcess", StandInProcess)
    failed = _export(tmp_path / "run" / "export", passed=False)
    with pytest.raises(UngatedModel):
        start_endpoint(failed, port=1)
    assert started == []
    start_endpoint(failed, port=1, allow_ungated=True)
    assert "--allow-ungated" in started[0]
    start_endpoint(_export(tmp_path / "ok" / "export"), port=1)
    assert "--allow-ungated" not in started[1]


def test_playground_refuses_ungated_exports_and_labels_them(tmp_path):
    from serve import playground

    _export(tmp_path / "finetune-bad" / "export", passed=False)
    _export(tmp_path / "finetune-good" / "export")
    labels = sorted(playground.find_exports(tmp_path))
    assert labels == ["finetune-bad/export (model-Q4_0.gguf, gate FAILED)",
                      "finetune-good/export (model-Q4_0.gguf, gate passed)"]
    with pytest.raises(playground.UngatedModel):
        playground.Endpoints().get(tmp_path / "finetune-bad" / "export" / "model-Q4_0.gguf", None)


def test_python_m_serve_has_the_allow_ungated_flag():
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "serve", "--help"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and "--allow-ungated" in proc.stdout


# --------------------------------------------------------------------------- inline explain bounds


def test_inline_explain_bodies_get_the_records_bounds():
    item = {"item_type": "music", "title": "Enter Sandman", "creator": "Metallica"}
    huge_country = "X" * 200_000
    cases = {
        "listener.country": {"item": item, "listener": {"country": huge_country}},
        "listener.taste": {"item": item, "listener": {"taste": [f"genre {i}" for i in range(5000)]}},
        "listener.history": {"item": item, "listener": {"history": [
            {"item_id": f"music:{i}", "title": f"Song {i}"} for i in range(500)]}},
        "listener.history.0.title": {"item": item, "listener": {"history": [
            {"item_id": "music:1", "title": "T" * 5000}]}},
        "item.title": {"item": {**item, "title": "T" * 10_000}, "listener": {}},
        "item.item_type": {"item": {**item, "item_type": "film"}, "listener": {}},
    }

    async def scenario(client, state):
        out = {}
        for field_name, body in cases.items():
            out[field_name] = await client.post("/v1/explain", headers=AUTH, json=body)
        out["unknown"] = await client.post("/v1/explain", headers=AUTH,
                                           json={"item": item, "listener": {}, "n_predict": 9})
        return out

    engine = StandIn()
    responses = run_app(engine, scenario)
    for field_name, resp in responses.items():
        assert resp.status_code == 400, (field_name, resp.text[:200])
        message = resp.json()["error"]["message"]
        assert len(message) < 2000  # the offending value is never echoed back
        if field_name != "unknown":
            assert message.startswith(f"invalid {field_name.split('.')[0]}: {field_name}:"), message
    assert "n_predict" in responses["unknown"].json()["error"]["message"]
    assert engine.requests == []


def test_client_examples_without_a_key_read_it_from_the_environment(tmp_path):
    """The form for pages and terminals: no key in the text, the snippets read $LINERNOTES_ENDPOINT_KEY."""
    from serve.launch import KEY_ENV, save_key

    text = client_examples("http://127.0.0.1:9/v1", item_id="music:1", listener_id="music-customer:1")
    assert '"Authorization: Bearer $LINERNOTES_ENDPOINT_KEY"' in text
    assert "os.environ['LINERNOTES_ENDPOINT_KEY']" in text and "import os" in text
    python = "\n".join(line for line in text.splitlines()
                       if not line.startswith(("curl", "  -")) and not line.startswith("#"))
    compile(python, "<examples>", "exec")
    line = save_key("k-secret-0001", tmp_path / "serve" / "app.key")
    assert line.startswith(f"export {KEY_ENV}=$(cat ") and "k-secret-0001" not in line
    key_file = tmp_path / "serve" / "app.key"
    assert key_file.read_text() == "k-secret-0001" and (key_file.stat().st_mode & 0o777) == 0o600
