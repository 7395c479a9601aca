"""Config recipes + CLI overrides; the teacher-call cache; parsing teacher JSON."""

import argparse

import pytest

from linernotes.config import SynthConfig, add_dataclass_args, load_config, overrides_from_args
from synth.cache import CallCache, call_key
from linernotes.domain.parsing import parse_explanation


def test_recipe_then_flags_override(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("n_per_type: 5\nitem_types: [music]\ntemperature: 0.2\n")
    parser = argparse.ArgumentParser()
    add_dataclass_args(parser, SynthConfig)
    args = parser.parse_args(["--n-per-type", "7", "--item-types", "music,book",
                              "--structured-output", "false"])
    cfg = load_config(SynthConfig, recipe, overrides_from_args(args, SynthConfig))
    assert cfg.n_per_type == 7 and cfg.item_types == ["music", "book"]
    assert cfg.temperature == 0.2 and cfg.structured_output is False


def test_config_errors_name_the_field(tmp_path):
    with pytest.raises(ValueError, match="n_per_type"):
        load_config(SynthConfig, None, {"n_per_type": "many"})
    with pytest.raises(ValueError, match="unknown SynthConfig field"):
        load_config(SynthConfig, None, {"n_per_typo": 3})


def test_fingerprint_ignores_where_not_what():
    a = SynthConfig()
    assert a.fingerprint() == SynthConfig(runs_dir="/x", concurrency=2).fingerprint()
    assert a.fingerprint() != SynthConfig(temperature=0.1).fingerprint()


def test_cache_key_covers_backend_model_prompt_sampling():
    msgs = [{"role": "user", "content": "hi"}]
    s = {"temperature": 0.7, "max_tokens": 10}
    base = call_key("llamacpp", "m", msgs, s, None)
    assert base == call_key("llamacpp", "m", msgs, dict(reversed(list(s.items()))), None)
    assert base != call_key("vllm-server", "m", msgs, s, None)
    assert base != call_key("llamacpp", "m2", msgs, s, None)
    assert base != call_key("llamacpp", "m", [{"role": "user", "content": "hi!"}], s, None)
    assert base != call_key("llamacpp", "m", msgs, {**s, "temperature": 0.8}, None)


def test_cache_persists_and_logs(tmp_path):
    db = tmp_path / "c.sqlite"
    cache = CallCache(db)
    cache.put("k1", "b", "m", {"x": 1}, '{"explanation": "x"}', "stop", 10, 5, 0.5)
    cache.log("k1", "run1", "miss")
    cache.close()
    again = CallCache(db)  # a new process would see the same
    hit = again.get("k1")
    assert hit.output == '{"explanation": "x"}' and hit.output_tokens == 5
    again.log("k1", "run2", "hit")
    assert again.stats("run2") == {"hit": 1, "miss": 0, "error": 0}
    assert again.repeated_misses() == []
    again.log("k1", "run2", "miss")
    assert again.repeated_misses() == [("k1", 2)]


@pytest.mark.parametrize("text,ok", [
    ('{"explanation": "Great rock.", "facts_used": ["Rock"]}', True),
    ('Sure! {"explanation": "Great rock.", "facts_used": "Rock"} hope it helps', True),
    ('{"explanation": "", "facts_used": []}', False),
    ('{"explanation": "Great', False),
    ("no json at all", False),
    ('["a list"]', False),
    (None, False),
])
def test_parse_explanation(text, ok):
    parsed, error = parse_explanation(text)
    assert (parsed is not None) == ok
    assert (error is None) == ok
    if ok:
        assert parsed["facts_used"] == ["Rock"]


def test_stats_for_run_counts_every_attempt(tmp_path):
    cache = CallCache(tmp_path / "c.sqlite")
    cache.log("k1", "synth-abc@20261122T1-1", "miss")
    cache.log("k2", "synth-abc@20261122T2-2", "hit")
    cache.log("k3", "synth-abcd@20261122T2-2", "hit")  # another run: not counted
    assert cache.stats_for_run("synth-abc") == {"hit": 1, "miss": 1, "error": 0}
