"""A real vLLM server (CPU venv) serving the converted SmolLM2, via `openai`."""

from __future__ import annotations

import json
import os
import time

import pytest

from linernotes.services import vllm_cpu

pytestmark = pytest.mark.integration

MODEL = vllm_cpu.DEFAULT_SERVED_NAME

EXPLANATION_SCHEMA = {
    "type": "object",
    "properties": {
        "explanation": {"type": "string"},
        "facts_used": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["explanation", "facts_used"],
}


def test_server_command_and_env(vllm_server):
    cmd = vllm_server.cmd
    assert cmd[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    for flag in ("--model", "--served-model-name", "--host", "--port", "--max-model-len", "--dtype"):
        assert flag in cmd
    assert "--enforce-eager" in cmd
    assert vllm_server.host == "127.0.0.1"
    assert vllm_server.env["VLLM_CPU_KVCACHE_SPACE"] == "2"
    assert vllm_server.log_path.parent.name == "logs"
    # Its own process group, so stop() can end every worker.
    assert os.getpgid(vllm_server.proc.pid) == vllm_server.proc.pid
    print(f"\n[vllm] ready in {getattr(vllm_server, 'ready_s', float('nan')):.0f}s at {vllm_server.base_url}")


def test_models_lists_served_name(vllm_client):
    assert [m.id for m in vllm_client.models.list().data] == [MODEL]


def test_chat_completion_uses_chat_template(vllm_client):
    messages = [{"role": "user", "content": "Name one famous jazz trumpet player."}]
    t0 = time.monotonic()
    r = vllm_client.chat.completions.create(model=MODEL, messages=messages, max_tokens=64, temperature=0)
    dt = time.monotonic() - t0
    text = r.choices[0].message.content
    assert text and text.strip()
    # ChatML template applied: the reply is the assistant turn only, no markers,
    # and generation stopped at <|im_end|> (eos) well before the limit.
    assert "<|im_start|>" not in text and "<|im_end|>" not in text
    assert r.choices[0].finish_reason == "stop"
    # The server's template adds SmolLM's default system prompt (ChatML):
    # far more prompt tokens than the 9 words of the user message.
    assert r.usage.prompt_tokens > 20
    print(f"\n[vllm] {r.usage.completion_tokens} tokens in {dt:.2f}s "
          f"({r.usage.completion_tokens / dt:.1f} tok/s): {text[:80]!r}")


def test_json_schema_response_format(vllm_client):
    messages = [
        {"role": "system", "content": "You answer with one short JSON object: a one-sentence "
                                      "explanation and the list of facts you used."},
        {"role": "user", "content": 'Listener likes: Miles Davis. Recommended album: Kind of Blue. '
                                    'Facts: ["Kind of Blue is by Miles Davis", "genre: Jazz"]. '
                                    'Why might they like it?'},
    ]
    r = vllm_client.chat.completions.create(
        model=MODEL, messages=messages, max_tokens=400, temperature=0,
        response_format={"type": "json_schema",
                         "json_schema": {"name": "explanation", "schema": EXPLANATION_SCHEMA}},
    )
    assert r.choices[0].finish_reason == "stop", r.choices[0].message.content
    data = json.loads(r.choices[0].message.content)
    assert set(data) >= {"explanation", "facts_used"}
    assert isinstance(data["explanation"], str)
    assert isinstance(data["facts_used"], list)
    assert all(isinstance(f, str) for f in data["facts_used"])


def test_stop_ends_process_group(vllm_server):
    """Runs last in this module: stop() must leave no process of the group."""
    pid = vllm_server.proc.pid
    pid_path = vllm_server.pid_path
    assert pid_path.exists()
    # API server + engine core + worker share the group (spawned children).
    members = [p for p in os.listdir("/proc") if p.isdigit() and _pgid(int(p)) == pid]
    assert len(members) >= 2, members
    vllm_server.stop()
    assert not process_group_alive(pid)
    assert not vllm_server.healthy()
    assert not pid_path.exists()


def process_group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except (ProcessLookupError, PermissionError):
        return None
