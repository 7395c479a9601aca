"""Real llama.cpp server (xllamacpp) + real openai client + the distilabel pipeline."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from openai import OpenAI

from linernotes.config import SynthConfig
from linernotes.runs import RunDir
from linernotes.services.llamacpp import server
from synth.cache import CallCache
from synth.pipeline import load_records, run_synth
from linernotes.domain.prompts import EXPLANATION_SCHEMA
from linernotes.domain.gates import GATE_NAMES

pytestmark = pytest.mark.integration


def test_llamacpp_server_chat_and_json_schema(gguf_path):
    with server(gguf_path, n_parallel=2) as srv:
        client = OpenAI(base_url=srv.base_url + "/v1", api_key="none")
        assert [m.id for m in client.models.list().data] == ["smollm2-135m-instruct"]
        out = client.chat.completions.create(
            model="smollm2-135m-instruct", max_tokens=24, temperature=0,
            messages=[{"role": "user", "content": "Name one rock band."}])
        assert out.choices[0].message.content.strip()
        assert out.usage.completion_tokens > 0
        out = client.chat.completions.create(
            model="smollm2-135m-instruct", max_tokens=80, temperature=0,
            messages=[{"role": "user", "content": "Explain why AC/DC suits a rock fan."}],
            response_format={"type": "json_schema",
                             "json_schema": {"name": "liner_note", "schema": EXPLANATION_SCHEMA}})
        text = out.choices[0].message.content
        if out.choices[0].finish_reason == "stop":  # a truncated answer cannot be complete JSON
            data = json.loads(text)
            assert set(data) >= {"explanation", "facts_used"}
        else:
            assert text.lstrip().startswith("{")
        pid = srv.proc.pid
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)  # the whole process group is gone


def test_sigterm_with_generation_in_flight_exits_within_seconds(gguf_path):
    """llama.cpp's teardown waits for a running generation (up to max_tokens, minutes
    on CPU); SIGTERM must still end the server promptly, or a stopped endpoint leaves
    its engine behind."""
    import threading

    import httpx

    from linernotes.services.llamacpp import SHUTDOWN_GRACE_S

    srv = server(gguf_path, n_parallel=1).start()
    outcome: dict[str, object] = {}

    def long_generation():
        try:
            outcome["status"] = httpx.post(
                srv.base_url + "/v1/chat/completions", timeout=120,
                json={"messages": [{"role": "user", "content": "Tell a long story."}],
                      "max_tokens": 1024, "ignore_eos": True}).status_code
        except httpx.HTTPError as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=long_generation, daemon=True)
    worker.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # wait until the slot is actually generating
        slots = httpx.get(srv.base_url + "/slots", timeout=5).json()
        if any(s.get("is_processing") for s in slots):
            break
        time.sleep(0.1)
    else:
        srv.stop()
        pytest.fail("the generation never started")
    proc = srv.proc
    t0 = time.monotonic()
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=SHUTDOWN_GRACE_S + 7)
    finally:
        srv.stop()
    assert time.monotonic() - t0 < SHUTDOWN_GRACE_S + 7
    worker.join(timeout=10)
    assert "error" in outcome  # the request was cut, not completed


def test_pipeline_through_llamacpp(fixture_catalog_dir, tmp_path, isolated_home, gguf_path):
    config = SynthConfig(n_per_type=3, catalog_dir=str(fixture_catalog_dir), runs_dir=str(tmp_path),
                         concurrency=4, model_path=str(gguf_path), max_new_tokens=128)
    run = run_synth(config)
    manifest = run.manifest()
    records = load_records(run)
    assert len(records) == 9 == manifest["counts"]["rows"]
    assert {r.item.item_type for r in records} == {"music", "book", "podcast"}
    assert manifest["backend"]["name"] == "llamacpp"
    assert manifest["cache"]["miss"] == 9 and manifest["cache"]["hit"] == 0
    assert manifest["counts"]["parse_rate"] >= 0.5  # schema-constrained; truncation may cut a few
    for r in records:
        assert set(r.gates) == set(GATE_NAMES)
        assert r.metadata["call"]["cache"] == "miss"
        assert r.metadata["call"]["output_tokens"] > 0
        assert r.sampling["temperature"] == config.temperature
        assert r.raw_output is not None
        if not r.parsed:
            assert r.parse_error
    # a finished config is skipped; force reruns from the cache (all hits, no calls)
    assert run_synth(config).manifest()["created"] == manifest["created"]
    again = run_synth(config, force=True).manifest()
    assert again["cache"]["hit"] == 9 and again["cache"]["miss"] == 0
    assert again["cache"]["attempt"] != manifest["cache"]["attempt"]
    assert all(r.metadata["call"]["cache"] == "hit" for r in load_records(run))
    assert CallCache(isolated_home / "teacher_cache.sqlite").repeated_misses() == []


def test_sigkill_mid_run_then_resume_loses_nothing_repeats_nothing(fixture_catalog_dir, tmp_path,
                                                                  isolated_home, gguf_path):
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "linernotes.cli", "synth", "--catalog-dir", str(fixture_catalog_dir),
           "--runs-dir", str(runs), "--n-per-type", "6", "--concurrency", "2",
           "--model-path", str(gguf_path), "--max-new-tokens", "128"]
    env = {**os.environ, "LINERNOTES_HOME": str(isolated_home)}
    db = isolated_home / "teacher_cache.sqlite"
    proc = subprocess.Popen(cmd, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    done_before_kill = 0
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if db.exists():
            done_before_kill = CallCache(db).count()
            if done_before_kill >= 4:
                break
        time.sleep(0.2)
    assert proc.poll() is None, "run finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its distilabel workers, no cleanup
    proc.wait()
    done_before_kill = CallCache(db).count()
    assert 4 <= done_before_kill < 18
    run_dir = next(runs.iterdir())
    assert not RunDir(run_dir).is_complete()

    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, timeout=600)
    run = RunDir(run_dir)
    assert run.is_complete()
    records = load_records(run)
    assert len(records) == 18  # no row lost
    cache = CallCache(db)
    assert cache.repeated_misses() == []  # no completed call repeated
    resumed = run.manifest()["cache"]
    assert resumed["hit"] == done_before_kill  # every completed call reused
    assert resumed["miss"] == 18 - done_before_kill  # only the rest was called
    assert cache.count() == 18


def test_openai_compatible_backend_with_key(fixture_catalog_dir, tmp_path, isolated_home,
                                            gguf_path, monkeypatch):
    """Any OpenAI-compatible URL + key: here a keyed llama.cpp server stands for a hosted teacher."""
    monkeypatch.setenv("HOSTED_TEACHER_KEY", "sk-local-test")
    with server(gguf_path, n_parallel=2, api_key="sk-local-test", model_name="hosted-teacher") as srv:
        config = SynthConfig(backend="openai-compatible", base_url=srv.base_url + "/v1",
                             model="hosted-teacher", api_key_env="HOSTED_TEACHER_KEY",
                             item_types=["music"], n_per_type=2, concurrency=2,
                             catalog_dir=str(fixture_catalog_dir), runs_dir=str(tmp_path))
        records = load_records(run_synth(config))
        assert len(records) == 2
        assert all(r.raw_output for r in records)
        assert all(r.backend == "openai-compatible" and r.model == "hosted-teacher" for r in records)
        # a wrong key is an error row (kept, reason recorded), not a crash
        monkeypatch.setenv("HOSTED_TEACHER_KEY", "wrong")
        bad = load_records(run_synth(SynthConfig(**{**config.__dict__, "seed": 99})))
        assert len(bad) == 2 and not any(r.parsed for r in bad)
        assert all("teacher call failed" in r.parse_error for r in bad)
        assert all("401" in r.parse_error or "uthentication" in r.parse_error for r in bad)
