"""Stage 3 export: merge, GGUF via llama.cpp's own converter, Python Q4_0, the export gate, the card.

The real export is of the base SmolLM2 (no adapter; an export of a trained run only adds the
merge, which has its own test with a LoRA adapter): one session-scoped export (~2 min on 2
cores) that every gate test reuses. The broken exports are copies of its Q8_0 file with one
metadata key changed, gated on two prompts.

Every test that fetches the llama-cpp-python sdist (pip, the registry), runs llama.cpp's
converter or starts llama.cpp carries the `integration` mark; the rest run in `make test-fast`.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import yaml

from finetune import export as ex  # noqa: E402
from finetune.card import model_card  # noqa: E402

MAX_NEW = 40
# Llama-2 chat format: a plausible template, wrong for this model.
LLAMA2_TEMPLATE = ("{% for message in messages %}{% if message['role'] == 'user' %}"
                   "{{ '[INST] ' + message['content'] + ' [/INST]' }}"
                   "{% elif message['role'] == 'system' %}{{ '<<SYS>>\\n' + message['content'] + '\\n<</SYS>>\\n\\n' }}"
                   "{% else %}{{ message['content'] + '</s>' }}{% endif %}{% endfor %}")
# ChatML that never opens the assistant turn: the model has to write the header itself.
NO_ASSISTANT_HEADER = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
                       "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}")


def _prompts():
    """Two golden prompts + the stop probes: long, untuned answers and short ones that end."""
    return ex.golden_prompts()[:2] + ex.stop_probe_prompts()


@pytest.fixture(scope="session")
def base_export(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "export-base"
    t0 = time.monotonic()
    ex.run_export(None, out, types=("Q8_0", "Q4_0"), gate=True, max_new_tokens=MAX_NEW, prompts=_prompts())
    (out / ".test_seconds").write_text(str(time.monotonic() - t0))
    return out


@pytest.fixture(scope="session")
def gate_doc(base_export) -> dict:
    return json.loads((base_export / ex.GATE_FILE).read_text())


@pytest.fixture(scope="session")
def small_prompts():
    return ex.golden_prompts()[:1] + ex.stop_probe_prompts()[:1]


@pytest.fixture(scope="session")
def small_reference(base_export, small_prompts):
    return ex.hf_reference(base_export / ex.MERGED_DIR, small_prompts, max_new_tokens=24)


def _broken_copy(base_export: Path, tmp_path: Path, **kv) -> Path:
    dst = tmp_path / "model-Q8_0.gguf"  # same type name: the Q8_0 thresholds apply
    ex.rewrite_gguf(base_export / "model-Q8_0.gguf", dst, None, kv_overrides=kv)
    return dst


# ---------------------------------------------------------------- the real export

@pytest.mark.integration
def test_export_layout_manifest_and_sizes(base_export):
    for name in ("merged/model.safetensors", "merged/tokenizer_config.json", "model-Q8_0.gguf", "model-Q4_0.gguf",
                 "gate.json", "manifest.json", "README.md", "COMPLETE"):
        assert (base_export / name).exists(), name
    assert not list(base_export.glob(".*intermediate*")), "the float intermediate is removed"
    m = json.loads((base_export / "manifest.json").read_text())
    assert m["converter"]["package"] == f"llama-cpp-python=={ex.LLAMA_CPP_PYTHON_VERSION}"
    for name, info in m["files"].items():
        path = base_export / name
        assert info["bytes"] == path.stat().st_size
        assert info["sha256"] == ex.sha256_file(path)
    q8, q4 = m["files"]["model-Q8_0.gguf"]["bytes"], m["files"]["model-Q4_0.gguf"]["bytes"]
    # 135M params: 8.5 bits/weight ~ 145 MB; 4.5 bits/weight (+ Q8_0 embeddings) ~ 92 MB
    assert 120e6 < q8 < 170e6 and 70e6 < q4 < 110e6 and q4 < 0.7 * q8
    assert m["gate"]["passed"] is True
    assert {"merge", "gguf_Q8_0", "gguf_Q4_0", "gate"} <= set(m["timings"])


@pytest.mark.integration
def test_q8_0_is_written_by_llama_cpp_converter_and_q4_0_by_python(base_export):
    from transformers import AutoTokenizer

    meta8 = ex.gguf_metadata(base_export / "model-Q8_0.gguf")
    meta4 = ex.gguf_metadata(base_export / "model-Q4_0.gguf")
    assert meta8["general.file_type"] == 7 and meta4["general.file_type"] == 2  # MOSTLY_Q8_0 / MOSTLY_Q4_0
    template = AutoTokenizer.from_pretrained(base_export / "merged").chat_template
    # every metadata KV is carried over to the 4-bit file, the chat template included
    assert meta8["tokenizer.chat_template"] == meta4["tokenizer.chat_template"] == template
    assert {k: v for k, v in meta8.items() if k != "general.file_type"} == \
           {k: v for k, v in meta4.items() if k != "general.file_type"}
    types = ex.gguf_tensor_types(base_export / "model-Q4_0.gguf")
    assert types["blk.0.attn_q.weight"] == "Q4_0" and types["blk.29.ffn_down.weight"] == "Q4_0"
    assert types["token_embd.weight"] == "Q8_0"  # tied embedding/output kept at 8 bits
    assert types["blk.0.attn_norm.weight"] == "F32" and types["output_norm.weight"] == "F32"
    assert set(ex.gguf_tensor_types(base_export / "model-Q8_0.gguf").values()) == {"Q8_0", "F32"}


@pytest.mark.integration
def test_real_export_passes_gate_with_stated_thresholds(gate_doc):
    for qtype in ("Q8_0", "Q4_0"):
        r = gate_doc[qtype]
        assert r["passed"], r["reasons"]
        assert r["min_agreement"] == ex.GATE_MIN_AGREEMENT[qtype]
        assert r["agreement"] >= ex.GATE_MIN_AGREEMENT[qtype]
        assert r["template_matches"] == r["n_prompts"] == 4
        assert r["forced_positions"] == sum(p["forced_positions"] for p in r["prompts"])
        assert r["agreement"] == round(r["forced_agreed"] / r["forced_positions"], 4)
        for p in r["prompts"]:
            assert p["prompt_tokens_llama"] == p["prompt_tokens_hf"]
            assert not any(m in p["llama_text"] for m in ex.CHAT_MARKERS)
            assert p["llama_finish"] in ("stop", "length")
            if p["hf_finish"] == "length":
                assert p["forced_positions"] == MAX_NEW
    # the stop probes end well inside the budget in HF, and llama.cpp predicts EOS there too
    assert gate_doc["Q8_0"]["hf_stopped"] >= 2
    assert gate_doc["Q8_0"]["eos_agreed"] == gate_doc["Q8_0"]["hf_stopped"]
    # 8-bit only flips where HF itself was nearly undecided; 4-bit drifts more
    assert gate_doc["Q8_0"]["max_divergence_margin"] is None or gate_doc["Q8_0"]["max_divergence_margin"] < 1.0
    assert gate_doc["Q8_0"]["agreement"] >= gate_doc["Q4_0"]["agreement"]


@pytest.mark.integration
def test_rerun_of_complete_export_is_skipped(base_export):
    before = (base_export / "model-Q8_0.gguf").stat().st_mtime_ns
    t0 = time.monotonic()
    assert ex.run_export(None, base_export, types=("Q8_0", "Q4_0"), prompts=_prompts()) == base_export
    assert time.monotonic() - t0 < 5
    assert (base_export / "model-Q8_0.gguf").stat().st_mtime_ns == before


@pytest.mark.integration
def test_model_card_of_the_export(base_export):
    text = (base_export / "README.md").read_text()
    assert text.startswith("---\n")
    front = yaml.safe_load(text.split("---\n")[1])
    assert front["license"] == "apache-2.0"
    assert front["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    for heading in ("## Data lineage", "## Training", "## Evaluation", "## MMLU guardrail", "### Export gate",
                    "## Intended use", "## Limitations", "## Licence"):
        assert heading in text, heading
    assert "| Q8_0 | yes |" in text and "| Q4_0 | yes |" in text


# ---------------------------------------------------------------- broken exports fail

@pytest.mark.integration
def test_wrong_chat_template_fails_gate(base_export, small_prompts, small_reference, tmp_path):
    broken = _broken_copy(base_export, tmp_path, **{"tokenizer.chat_template": LLAMA2_TEMPLATE})
    report_path = tmp_path / "gate.json"
    with pytest.raises(ex.ExportGateFailed) as err:
        ex.export_gate(broken, base_export / "merged", small_prompts, max_new_tokens=24,
                       reference=small_reference, report_path=report_path)
    report = err.value.report
    assert not report.passed and report.template_matches == 0
    assert any("chat template" in r for r in report.reasons)
    assert json.loads(report_path.read_text())["passed"] is False  # written even though it failed
    assert "chat template" in str(err.value)


@pytest.mark.integration
def test_template_without_assistant_header_fails_gate(base_export, small_prompts, small_reference, tmp_path):
    broken = _broken_copy(base_export, tmp_path, **{"tokenizer.chat_template": NO_ASSISTANT_HEADER})
    report = ex.export_gate(broken, base_export / "merged", small_prompts, max_new_tokens=24,
                            reference=small_reference, raise_on_fail=False)
    assert not report.passed and report.template_matches == 0
    # the model writes the missing header itself: a role header in the output
    assert any("role header" in p for r in report.prompts for p in r.problems)


@pytest.mark.integration
def test_wrong_end_of_generation_token_fails_gate(base_export, small_prompts, small_reference, tmp_path):
    from transformers import AutoTokenizer

    dot = AutoTokenizer.from_pretrained(base_export / "merged").convert_tokens_to_ids(".")
    broken = _broken_copy(base_export, tmp_path, **{"tokenizer.ggml.eos_token_id": dot})
    report = ex.export_gate(broken, base_export / "merged", small_prompts, max_new_tokens=24,
                            reference=small_reference, raise_on_fail=False)
    assert not report.passed and report.template_matches == len(small_prompts)  # prompt is fine
    assert any("no EOS of the HF model" in r for r in report.reasons)


@pytest.mark.integration
def test_unchanged_copy_passes_the_same_gate(base_export, small_prompts, small_reference, tmp_path):
    """Control for the broken-export tests: the copy machinery itself breaks nothing."""
    copy = _broken_copy(base_export, tmp_path)
    assert ex.sha256_file(copy) == ex.sha256_file(base_export / "model-Q8_0.gguf")
    report = ex.export_gate(copy, base_export / "merged", small_prompts, max_new_tokens=24,
                            reference=small_reference)
    assert report.passed and report.template_matches == len(small_prompts)


@pytest.mark.integration
def test_failed_gate_in_run_export_writes_report_and_no_complete(base_export, tmp_path):
    out = tmp_path / "export"
    out.mkdir()
    for name in ("merged", "model-Q8_0.gguf"):  # reuse the converted files: only the gate reruns
        src = base_export / name
        if src.is_dir():
            (out / name).mkdir()
            for f in src.iterdir():
                os.link(f, out / name / f.name)
        else:
            os.link(src, out / name)
    with pytest.raises(ex.ExportGateFailed):
        ex.run_export(None, out, types=("Q8_0",), max_new_tokens=16, prompts=ex.stop_probe_prompts(),
                      min_agreement={"Q8_0": 1.01})  # unreachable bar: the gate must fail
    assert not (out / "COMPLETE").exists() and not (out / "README.md").exists()
    gate = json.loads((out / "gate.json").read_text())
    assert gate["Q8_0"]["passed"] is False
    assert json.loads((out / "manifest.json").read_text())["gate"]["passed"] is False


# ---------------------------------------------------------------- pieces

def test_python_q4_0_and_q8_0_are_byte_identical_to_ggml():
    """The gguf package's quantizer vs ggml's own (ggml_quantize_chunk in xllamacpp's library)."""
    import ctypes

    import gguf
    import numpy as np
    import xllamacpp

    lib = ctypes.CDLL(str(Path(xllamacpp.__file__).with_name("xllamacpp.abi3.so")))
    try:
        fn = lib.ggml_quantize_chunk
    except AttributeError:
        pytest.skip("this xllamacpp build does not export ggml_quantize_chunk")
    fn.restype = ctypes.c_size_t
    fn.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                   ctypes.c_int64, ctypes.c_void_p]
    weights = np.random.default_rng(0).standard_normal((48, 576)).astype(np.float32)
    for qtype in (gguf.GGMLQuantizationType.Q4_0, gguf.GGMLQuantizationType.Q8_0):
        ours = gguf.quants.quantize(weights, qtype)
        theirs = np.zeros(ours.size, dtype=np.uint8)
        assert fn(int(qtype), weights.ctypes.data, theirs.ctypes.data, 0, 48, 576, None) == ours.nbytes
        assert np.array_equal(ours.reshape(-1), theirs), qtype.name


@pytest.fixture(scope="session")
def lora_adapter(tmp_path_factory):
    """A LoRA adapter with random (non-zero) weights on q/v: enough to check the merge."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from linernotes.hfmodel import smollm2_hf_dir

    base = smollm2_hf_dir()
    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32),
                           LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                      init_lora_weights=False, task_type="CAUSAL_LM"))
    out = tmp_path_factory.mktemp("adapter") / "adapter"
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(base).save_pretrained(out)
    return out, model.eval()


def test_merge_adapter_equals_base_plus_adapter(lora_adapter, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from linernotes.hfmodel import smollm2_hf_dir

    adapter_dir, peft_model = lora_adapter
    merged = ex.merge_adapter(adapter_dir, smollm2_hf_dir(), tmp_path / "merged", dtype="float32")
    assert merged == tmp_path / "merged" and not list(tmp_path.glob(".merged.staging*"))
    assert not (merged / "adapter_config.json").exists()
    tok = AutoTokenizer.from_pretrained(merged)
    assert tok.chat_template and "<|im_start|>" in tok.chat_template
    ids = tok.apply_chat_template([{"role": "user", "content": "Say hello."}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)["input_ids"]
    model = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32).eval()
    base = AutoModelForCausalLM.from_pretrained(smollm2_hf_dir(), dtype=torch.float32).eval()
    with torch.no_grad():
        got, want, plain = model(ids).logits, peft_model(input_ids=ids).logits, base(ids).logits
    assert torch.allclose(got, want, atol=2e-3, rtol=0)
    assert (got - plain).abs().max() > 0.1  # the adapter changed the model


@pytest.mark.integration
def test_adapter_as_gguf_lora(lora_adapter, tmp_path):
    from linernotes.hfmodel import smollm2_hf_dir

    adapter_dir, _ = lora_adapter
    info = ex.convert_lora_to_gguf(adapter_dir, smollm2_hf_dir(), tmp_path / "adapter.gguf")
    meta = ex.gguf_metadata(tmp_path / "adapter.gguf")
    assert meta["general.type"] == "adapter" and meta["adapter.type"] == "lora"
    assert meta["adapter.lora.alpha"] == 8
    types = ex.gguf_tensor_types(tmp_path / "adapter.gguf")
    assert "blk.0.attn_q.weight.lora_a" in types and "blk.0.attn_v.weight.lora_b" in types
    assert info["bytes"] > 0


def test_gate_prompts_are_zero_shot_golden_prompts():
    from linernotes.domain.prompts import load_golden

    golden = ex.golden_prompts()
    assert len(golden) == len(load_golden())
    for msgs in golden:
        assert [m["role"] for m in msgs] == ["system", "user"]
        assert "CATALOG_DATA" in msgs[1]["content"]
    assert ex.gate_prompts()[: len(golden)] == golden


def test_model_card_embeds_eval_report_and_mmlu_delta(tmp_path):
    ft_manifest = {"run": "finetune-abc-def", "created": "2026-11-22", "config_fingerprint": "abc",
                   "config": {"lora_r": 16, "lr": 2e-4, "train_data": "runs/publish-x/data/sft", "seed": 17},
                   "data": {"fingerprint": "def", "train_rows": 29, "train_examples": 29},
                   "global_step": 40, "first_loss": 2.1, "final_loss": 0.6}
    gate = {"Q8_0": {"passed": True, "agreement": 0.97, "min_agreement": 0.9, "template_matches": 6,
                     "n_prompts": 6, "exact_matches": 4, "eos_agreed": 5, "hf_stopped": 5,
                     "max_divergence_margin": 0.2, "max_new_tokens": 64}}
    eval_md = "# Eval report\n\nGrounding pass rate 0.81 (base 0.12).\n"
    eval_json = {"mmlu": {"before": {"accuracy": 0.30}, "after": {"accuracy": 0.28}, "ci95": [-0.05, 0.01],
                          "n": 100}}
    lineage = ex.data_lineage(ft_manifest, tmp_path / "finetune-abc-def")
    (tmp_path / "model-Q8_0.gguf").write_bytes(b"x" * 10)
    text = model_card(tmp_path, ft_manifest, eval_md, gate, lineage, eval_json=eval_json)
    front = yaml.safe_load(text.split("---\n")[1])
    assert front["license"] == "apache-2.0" and front["datasets"] == ["runs/publish-x/data/sft"]
    assert front["base_model_relation"] == "finetune"
    assert "## Eval report" in text and "Grounding pass rate 0.81" in text  # embedded, nested a level
    assert "| delta | -0.02 (95% CI -0.05, 0.01) |" in text
    assert "| Q8_0 | yes | 0.97 (0.9) | 6/6 | 4/6 | 5/5 | 0.2 |" in text
    assert "finetune-abc-def" in text and "| lora_r | 16 |" in text
    # no eval yet: the card says so instead of inventing numbers
    bare = model_card(tmp_path, ft_manifest, None, None, lineage)
    assert "No eval report was found" in bare and "No MMLU comparison was recorded" in bare
    assert "The gate was not run" in bare


def test_unknown_type_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown GGUF types"):
        ex.run_export(None, tmp_path / "x", types=("Q4_K_M",))


_LORA_CHAT = """
import json, sys, xllamacpp as xlc
base, lora = sys.argv[1], sys.argv[2]
p = xlc.CommonParams(); p.model.path = base; p.n_ctx = 1024; p.n_parallel = 1
p.cpuparams.n_threads = 1; p.cpuparams_batch.n_threads = 1; p.use_jinja = True
if lora:
    a = xlc.CommonAdapterLoraInfo(); a.path = lora; a.scale = 1.0; p.lora_adapters = [a]
srv = xlc.Server(p)
r = srv.handle_chat_completions({"messages": [{"role": "user", "content": "Say hello."}],
                                 "max_tokens": 12, "temperature": 0})
print("RESULT " + json.dumps(r["choices"][0]["message"]["content"]))
"""


@pytest.mark.integration
def test_adapter_gguf_loads_on_the_base_gguf(base_export, lora_adapter, tmp_path):
    """llama.cpp applies adapter.gguf on top of the exported base GGUF (and it changes the output)."""
    import subprocess
    import sys

    from linernotes.hfmodel import smollm2_hf_dir

    adapter_gguf = tmp_path / "adapter.gguf"
    ex.convert_lora_to_gguf(lora_adapter[0], smollm2_hf_dir(), adapter_gguf)

    def chat(lora: str) -> str:
        proc = subprocess.run([sys.executable, "-c", _LORA_CHAT, str(base_export / "model-Q8_0.gguf"), lora],
                              capture_output=True, text=True, timeout=300)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        assert proc.returncode == 0 and lines, proc.stderr[-2000:]
        return json.loads(lines[-1][len("RESULT "):])

    assert chat(str(adapter_gguf)) != chat("")


@pytest.mark.integration
def test_converter_takes_paths_relative_to_the_callers_directory(base_export, monkeypatch):
    """The converter runs in its own folder; a relative run path (`linernotes export --run
    runs/X`) must still name the caller's folders."""
    monkeypatch.chdir(base_export.parent)
    info = ex.convert_hf_to_gguf(Path(base_export.name) / ex.MERGED_DIR, Path("relative-Q8_0.gguf"), "q8_0")
    out = base_export.parent / "relative-Q8_0.gguf"
    assert out.exists() and info["bytes"] == (base_export / "model-Q8_0.gguf").stat().st_size
    out.unlink()


def test_model_card_of_a_dpo_run_names_its_pairs_and_sft_run(tmp_path):
    from finetune.card import model_card

    manifest = {"stage": "dpo", "run": "dpo-abc-def", "sft_run": "runs/finetune-123",
                "config": {"preference_data": str(tmp_path / "publish-x"), "beta": 0.1},
                "data": {"pairs": 22, "quarantined": 0, "fingerprint": "f00"}}
    lineage = ex.data_lineage(manifest, tmp_path / "dpo-abc-def")
    assert lineage["train_data"].endswith("publish-x") and lineage["preference_pairs"] == 22
    text = model_card(tmp_path, manifest, None, None, lineage)
    assert "| preference pairs | 22 |" in text and "runs/finetune-123" in text
    assert "training rows / examples" not in text
