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


# ------------------------------------------------------------ model identity in the cache key

class _StandInServer:
    """Stands in for linernotes.services.llamacpp.server(...): records the GGUF, starts nothing."""

    def __init__(self, model_path, **kwargs):
        self.cmd = ["python", "-m", "linernotes.services.llamacpp", "--model", str(model_path),
                    "--alias", kwargs.get("model_name", "?")]
        self.base_url = "http://127.0.0.1:1"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


def _stand_in_gguf(path, payload: bytes):
    path.write_bytes(payload)
    return path


def test_llamacpp_endpoint_identity_is_the_model_file(tmp_path, monkeypatch):
    from linernotes.services import llamacpp

    monkeypatch.setattr(llamacpp, "server", _StandInServer)
    a = _stand_in_gguf(tmp_path / "stand-in-a.gguf", b"GGUF A")
    b = _stand_in_gguf(tmp_path / "stand-in-b.gguf", b"GGUF B")
    idents = []
    for path in (a, b):  # same (default) served name, two model files
        with backends.teacher(SynthConfig(model_path=str(path))) as ep:
            assert ep.model == llamacpp.DEFAULT_MODEL_NAME and ep.identity.startswith("file:")
            idents.append(ep.identity)
    assert idents[0] != idents[1]


class _StandInChat:
    """Stands in for AsyncOpenAI().chat.completions: counts calls, answers with the model file's tag."""

    def __init__(self, answer: str):
        self.answer, self.calls = answer, 0
        self.completions = self

    async def create(self, **kwargs):
        from types import SimpleNamespace as NS

        self.calls += 1
        return NS(choices=[NS(message=NS(content=self.answer), finish_reason="stop")],
                  usage=NS(prompt_tokens=3, completion_tokens=2))


def test_other_model_file_same_name_is_not_served_from_cache(tmp_path):
    import asyncio

    from synth.cache import model_identity
    from synth.llm import CachedOpenAILLM

    cache = str(tmp_path / "calls.sqlite")
    msgs = [{"role": "user", "content": "why this record?"}]
    outputs = []
    for tag in ("A", "B", "A"):
        model_file = tmp_path / f"stand-in-{tag}.gguf"
        if not model_file.exists():
            _stand_in_gguf(model_file, f"GGUF {tag}".encode())
        llm = CachedOpenAILLM(backend="llamacpp", model="smollm2-135m-instruct",
                              base_url="http://127.0.0.1:1/v1", cache_path=cache,
                              model_identity=model_identity(model_file))
        llm.load()
        chat = _StandInChat(f"answer of {tag}")
        llm._client = type("StandInClient", (), {"chat": chat})()
        out = asyncio.run(llm.agenerate(msgs, seed=1))
        outputs.append((out["generations"][0], chat.calls))
    # B is called (not A's cached answer); A again is a cache hit (no call).
    assert outputs == [("answer of A", 1), ("answer of B", 1), ("answer of A", 0)]


# ------------------------------------------------------------ which key goes where

def test_openai_key_is_not_sent_to_a_local_or_other_url(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-secret")
    monkeypatch.delenv("LINERNOTES_TEACHER_API_KEY", raising=False)
    monkeypatch.delenv("LINERNOTES_TEACHER_BASE_URL", raising=False)
    for cfg in (SynthConfig(backend="openai-compatible", base_url="http://127.0.0.1:8080/v1", model="m"),
                SynthConfig(backend="openai-compatible", base_url="https://evil.example/v1", model="m"),
                SynthConfig(backend="llamacpp", base_url="http://127.0.0.1:9/v1", model="x"),
                SynthConfig(backend="vllm-server", base_url="http://10.0.0.2:8000/v1", model="x")):
        with backends.teacher(cfg) as ep:
            assert ep.api_key == "none", cfg.base_url
    cfg = SynthConfig(backend="openai-compatible", base_url="https://api.openai.com/v1", model="gpt")
    with backends.teacher(cfg) as ep:
        assert ep.api_key == "sk-openai-secret"


def test_teacher_key_goes_only_to_the_teacher_url(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("LINERNOTES_TEACHER_API_KEY", "sk-teacher-secret")
    monkeypatch.setenv("LINERNOTES_TEACHER_BASE_URL", "https://teacher.example/v1")
    with backends.teacher(SynthConfig(backend="openai-compatible", model="big")) as ep:
        assert (ep.base_url, ep.api_key) == ("https://teacher.example/v1", "sk-teacher-secret")
    with backends.teacher(SynthConfig(backend="openai-compatible", model="big",
                                      base_url="https://teacher.example/v1/")) as ep:
        assert ep.api_key == "sk-teacher-secret"  # same endpoint, trailing slash
    for url in ("http://127.0.0.1:9/v1", "https://other.example/v1"):
        with backends.teacher(SynthConfig(backend="openai-compatible", model="big", base_url=url)) as ep:
            assert ep.api_key == "none", url
    monkeypatch.delenv("LINERNOTES_TEACHER_BASE_URL")  # a key for no known URL is not sent
    with backends.teacher(SynthConfig(backend="openai-compatible", model="big",
                                      base_url="https://teacher.example/v1")) as ep:
        assert ep.api_key == "none"
