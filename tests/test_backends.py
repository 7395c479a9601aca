"""Backend registry and the in-process vLLM backend's behaviour without vLLM."""

import importlib.util

import pytest

from linernotes.config import SynthConfig
from synth import backends


def test_registry_lists_the_four_backends():
    assert backends.names() == ["llamacpp", "openai-compatible", "vllm", "vllm-server"]


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown backend 'gpt-9'.*llamacpp"):
        with backends.teacher(SynthConfig(backend="gpt-9")):
            pass


def test_openai_compatible_needs_url_and_model(monkeypatch):
    monkeypatch.delenv("LINERNOTES_TEACHER_BASE_URL", raising=False)
    with pytest.raises(ValueError, match="base_url"):
        with backends.teacher(SynthConfig(backend="openai-compatible", model="m")):
            pass
    with pytest.raises(ValueError, match="needs model"):
        with backends.teacher(SynthConfig(backend="openai-compatible", base_url="http://x/v1")):
            pass


def test_openai_compatible_reads_key_from_named_env(monkeypatch):
    monkeypatch.setenv("MY_TEACHER_KEY", "sk-test")
    cfg = SynthConfig(backend="openai-compatible", base_url="http://h/v1", model="big",
                      api_key_env="MY_TEACHER_KEY")
    with backends.teacher(cfg) as ep:
        assert (ep.base_url, ep.model, ep.api_key) == ("http://h/v1", "big", "sk-test")


def test_existing_llamacpp_server_is_used_not_started():
    cfg = SynthConfig(base_url="http://127.0.0.1:9/v1", model="x")
    with backends.teacher(cfg) as ep:
        assert ep.base_url == "http://127.0.0.1:9/v1" and ep.info is None


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_inprocess_vllm_imports_without_vllm_and_says_how_to_install(tmp_path):
    from synth.llm import InProcessVLLM  # must import cleanly

    llm = InProcessVLLM(model="some/model", cache_path=str(tmp_path / "c.sqlite"))
    with pytest.raises(RuntimeError, match="pip install vllm"):
        llm.load()
    with backends.teacher(SynthConfig(backend="vllm", model_path="some/model")) as ep:
        assert ep.base_url is None and ep.model == "some/model"
