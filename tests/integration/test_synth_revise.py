"""Generate, check, revise through the real llama.cpp server and the packaged SmolLM2:
2 candidates per pair, one revision round for the rejects, the yield report, and a
rerun that makes no model call."""

import pytest

from linernotes.config import SynthConfig
from synth.cache import CallCache
from synth.pipeline import load_records, run_synth

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_candidates_revision_and_yield_through_llamacpp(fixture_catalog_dir, tmp_path, isolated_home,
                                                        gguf_path, capsys):
    config = SynthConfig(item_types=["music", "book"], n_per_type=2, n_candidates=2, revise=True,
                         catalog_dir=str(fixture_catalog_dir), runs_dir=str(tmp_path), concurrency=2,
                         model_path=str(gguf_path), max_new_tokens=128)
    run = run_synth(config)
    manifest = run.manifest()
    y = manifest["yield"]
    with capsys.disabled():  # the numbers of this run, for the report (pytest -s)
        print("\nyield:", y)
    records = load_records(run)
    assert len(records) == 4 == y["pairs"] == manifest["counts"]["rows"]
    assert y["accepted"] == y["accepted_first_time"] + y["accepted_after_revision"]
    assert y["accepted"] == sum(r.metadata["accepted"] for r in records)
    assert y["attempts"]["candidate"] == 8
    assert y["attempts"]["revision"] == y["revised_pairs"] == 4 - y["accepted_first_time"]
    assert y["prompt_tokens"] > 0 and y["completion_tokens"] > 0 and y["model_s"] > 0
    assert y["first_round_candidates"] == 8
    if y["accepted"]:
        assert y["tokens_per_accepted"] > 0 and y["wall_s_per_accepted"] > 0
    calls = 8 + y["attempts"]["revision"]
    assert manifest["cache"]["miss"] == calls and manifest["cache"]["hit"] == 0
    for r in records:
        cands = r.metadata["candidates"]
        assert [c["seed"] for c in cands if c["kind"] == "candidate"] == [17, 18]
        assert {"grounding", "style", "safety"} <= set(r.gates)
        chosen = next(c for c in cands if c["attempt"] == r.metadata["chosen_attempt"])
        assert chosen["raw_output"] == r.raw_output and chosen["gates"] == {
            k: g.model_dump() for k, g in r.gates.items()}
        assert r.passed_all == r.metadata["accepted"]
        for c in cands:
            if c["kind"] == "revision":
                assert c["seed"] == 19 and "REVISION_DATA" in c["messages"][-1]["content"]
    assert any(len({c["raw_output"] for c in r.metadata["candidates"][:2]}) == 2 for r in records)
    assert "synth yield:" in capsys.readouterr().err

    again = run_synth(config, force=True)
    m2 = again.manifest()
    assert m2["cache"]["miss"] == 0 and m2["cache"]["hit"] == calls  # the rerun makes no model call
    assert m2["yield"]["accepted"] == y["accepted"]
    assert [r.explanation for r in load_records(again)] == [r.explanation for r in records]
    cache = CallCache(isolated_home / "teacher_cache.sqlite")
    assert cache.repeated_misses() == [] and cache.count() == calls
