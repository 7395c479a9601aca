"""Config recipes + CLI overrides; the teacher-call cache; parsing teacher JSON."""

import argparse
import os

import pytest

from linernotes.config import SynthConfig, add_dataclass_args, load_config, overrides_from_args
from synth.cache import CallCache, call_key, file_fingerprint, model_identity
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
    ident = "file:abc"
    base = call_key("llamacpp", "m", msgs, s, None, identity=ident)
    assert base == call_key("llamacpp", "m", msgs, dict(reversed(list(s.items()))), None, identity=ident)
    assert base != call_key("vllm-server", "m", msgs, s, None, identity=ident)
    assert base != call_key("llamacpp", "m2", msgs, s, None, identity=ident)
    assert base != call_key("llamacpp", "m", [{"role": "user", "content": "hi!"}], s, None, identity=ident)
    assert base != call_key("llamacpp", "m", msgs, {**s, "temperature": 0.8}, None, identity=ident)
    assert base != call_key("llamacpp", "m", msgs, s, None, identity="file:def")


def _stand_in_model(path, payload: bytes, mtime_ns: int):
    """A tiny file standing in for a GGUF (only its bytes and mtime matter here)."""
    path.write_bytes(payload)
    os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def test_same_served_name_other_model_file_is_a_cache_miss(tmp_path):
    # `--model-path other.gguf` with the default served name used to hit the first model's answers.
    first = _stand_in_model(tmp_path / "stand-in-a.gguf", b"GGUF stand-in model A", 1_000_000_000)
    other = _stand_in_model(tmp_path / "stand-in-b.gguf", b"GGUF stand-in model B", 1_000_000_000)
    msgs, s = [{"role": "user", "content": "hi"}], {"temperature": 0.7}
    key_a = call_key("llamacpp", "smollm2-135m-instruct", msgs, s, None, identity=model_identity(first))
    key_b = call_key("llamacpp", "smollm2-135m-instruct", msgs, s, None, identity=model_identity(other))
    assert key_a != key_b
    cache = CallCache(tmp_path / "c.sqlite")
    cache.put(key_a, "llamacpp", "smollm2-135m-instruct", {"messages": msgs}, "answer of A", "stop", 1, 1, 0.1)
    assert cache.get(key_b) is None
    assert cache.get(call_key("llamacpp", "smollm2-135m-instruct", msgs, s, None,
                              identity=model_identity(first))).output == "answer of A"


def test_model_identity_is_stable_and_follows_the_file(tmp_path):
    f = _stand_in_model(tmp_path / "stand-in.gguf", b"x" * 100, 2_000_000_000)
    first = model_identity(f)
    assert first.startswith("file:") and model_identity(str(f)) == first  # same file, same identity
    same_bytes = _stand_in_model(tmp_path / "stand-in-copy.gguf", b"x" * 100, 2_000_000_000)
    assert model_identity(same_bytes) == first  # identity is content + mtime, not the path
    other_bytes = _stand_in_model(tmp_path / "stand-in-y.gguf", b"y" * 100, 2_000_000_000)
    assert model_identity(other_bytes) != first  # same size and mtime, other bytes
    _stand_in_model(f, b"x" * 100, 3_000_000_000)  # rewritten: same bytes, new mtime
    assert model_identity(f) != first
    # Large file: the first and last MiB are hashed, so a change at the end is seen.
    zeros = b"\0" * (3 << 20)
    big = _stand_in_model(tmp_path / "stand-in-big.gguf", zeros, 5)
    big_tail = _stand_in_model(tmp_path / "stand-in-big-tail.gguf", zeros[:-4] + b"tail", 5)
    assert file_fingerprint(big) != file_fingerprint(big_tail)
    # A folder (HF model dir stand-in) is identified by its files.
    d = tmp_path / "stand-in-hf-dir"
    d.mkdir()
    (d / "config.json").write_text("{}")
    ident = model_identity(d)
    (d / "model.safetensors").write_bytes(b"w")
    assert model_identity(d) != ident


def test_remote_identity_is_base_url_and_name():
    assert model_identity(base_url="http://h:8/v1/", model="big") == "url:http://h:8/v1|big"
    assert model_identity(base_url="http://h:8/v1", model="big") != model_identity(
        base_url="http://other:8/v1", model="big")
    assert model_identity("org/hub-id-not-a-path") == "name:org/hub-id-not-a-path"


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


def test_one_fingerprint_rule_keeps_every_run_name():
    """The fingerprint helper replaced five copies; run names are `<stage>-<fingerprint>`, so the
    values of earlier runs are pinned (computed with the copies before the change)."""
    from finetune.config import DPOStageConfig, EvalConfig, FinetuneConfig
    from finetune.data import rows_fingerprint
    from finetune.dpo import _pref_fingerprint
    from linernotes.config import CurateConfig

    assert SynthConfig().fingerprint() == "758545a952"
    # curate runs were renamed on purpose when the dedupe rule gained claim_threshold (was d296a6432d)
    # and again with the claim-conflict veto and the 0.60 claim band (was 8b3471824b)
    assert CurateConfig().fingerprint() == "3eb7200aa7"
    assert FinetuneConfig(max_length=128).fingerprint() == "3089ba9918"
    assert FinetuneConfig(backend="unsloth", load_in_4bit=True, max_length=128).fingerprint() == "d88a4930a2"
    assert DPOStageConfig().fingerprint() == "b6a82562cf"
    # the report card's config grew on purpose (150 pairs, judge, guardrail suites, chat check): was bc1b95a478
    assert EvalConfig().fingerprint() == "5f6b996516"
    m = [{"role": "user", "content": "é"}, {"role": "assistant", "content": "ü"}]
    assert rows_fingerprint([{"messages": m}]) == "e0946a25dd"
    assert _pref_fingerprint([{"prompt": m[:1], "chosen": m[1:],
                               "rejected": [{"role": "assistant", "content": "ñ"}]}]) == "93607a078a"


def test_default_max_length_fits_real_rows():
    """Zero-shot SFT rows measure 323-513 tokens (SmolLM2 tokenizer); the old default of 128
    dropped every one when training without a recipe."""
    from finetune.config import FinetuneConfig

    assert FinetuneConfig().max_length >= 513


def test_runs_root_does_not_follow_the_working_directory(tmp_path, monkeypatch):
    """The walkthrough notebook (cwd notebooks/) wrote to notebooks/runs/: one root instead."""
    from linernotes import paths

    monkeypatch.delenv("LINERNOTES_RUNS", raising=False)
    monkeypatch.chdir(tmp_path)
    assert paths.runs_dir() == paths.REPO_ROOT / "runs"
    assert not (tmp_path / "runs").exists()
    monkeypatch.setenv("LINERNOTES_RUNS", "elsewhere")  # a relative setting is pinned once
    assert paths.runs_dir() == tmp_path / "elsewhere"
