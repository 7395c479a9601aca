"""The synth pipeline through a real vLLM (CPU) OpenAI server.

The server is the session's (tests/integration/conftest.py starts it once with
the same `vllm_cpu.server()` the backend uses); starting a second 4.5 GB vLLM
next to it would only cost time on 2 cores.
"""

import pytest

from linernotes.config import SynthConfig
from synth.pipeline import load_records, run_synth
from linernotes.domain.gates import GATE_NAMES

pytestmark = pytest.mark.integration


def test_pipeline_through_vllm_server(fixture_catalog_dir, tmp_path, isolated_home, vllm_server):
    config = SynthConfig(backend="vllm-server", n_per_type=2, catalog_dir=str(fixture_catalog_dir),
                         runs_dir=str(tmp_path), concurrency=6, base_url=vllm_server.base_url + "/v1",
                         model="smollm2-135m-instruct", max_new_tokens=128)
    run = run_synth(config)
    manifest = run.manifest()
    records = load_records(run)
    assert len(records) == 6
    assert manifest["backend"]["name"] == "vllm-server"
    assert manifest["backend"]["base_url"] == vllm_server.base_url + "/v1"
    assert manifest["cache"]["miss"] == 6
    assert manifest["counts"]["parse_rate"] >= 0.5
    assert all(r.metadata["call"]["output_tokens"] > 0 for r in records)
    assert all(set(r.gates) == set(GATE_NAMES) for r in records)
