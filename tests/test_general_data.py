"""General chat rows (finetune.general_data) and their mix into SFT rows (finetune.data_mix).

Unit tests run on a small stand-in corpus folder and a stand-in tokenizer (one
id per word, ChatML-like framing) so they need no package and no model; the
tests marked `integration` read the real chatterbot-corpus wheel (pip download
on first use) with the student's real tokenizer."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from finetune import data_mix, general_data
from finetune.data import tokenize_example
from finetune.data_mix import mix_general_rows

STAND_IN_CORPUS = {
    "trivia": [["What is the smallest country in the world?", "Vatican City"],
               ["Which planet is known as the red planet?", "Mars"],
               ["Which planet is known as the red planet?", "Mars"],  # the real corpus repeats rows
               ["What is the capital of Australia?", "Canberra"],  # a chat-check prompt, verbatim
               ["what's the capital city of australia", "Canberra"],  # and a near-duplicate
               ["Only a prompt"]],
    "conversations": [["Hello", "Hi there!", "How are you?", "Fine, thanks.", "Bye"]],
    "coding": [["can you reverse a list in Python?", "Use `xs[::-1]` or `xs.reverse()`."]]
              + [[f"what does error code {i} mean?", f"Code {i} means the request failed. " * (1 + i % 4)]
                 for i in range(40)],
    "humor": [["tell me a joke", "Why did the chicken cross the road?"]],  # a file left out
}
CHECK_PROMPTS = ["What is the capital of Australia?", "How do I boil an egg so the yolk stays soft?"]


class StandInTokenizer:
    """Stand-in for the student's tokenizer: one id per whitespace word, each turn framed
    like ChatML, so prompt-prefix and length logic can be tested without a model."""

    def apply_chat_template(self, messages, tokenize=True, add_generation_prompt=False, return_dict=True):
        ids = []
        for m in messages:
            ids += [1, len(m["role"])] + [7 + len(w) for w in m["content"].split()] + [2]
        if add_generation_prompt:
            ids += [1, len("assistant")]
        return {"input_ids": ids}


@pytest.fixture
def corpus_dir(tmp_path):
    import yaml

    for stem, convs in STAND_IN_CORPUS.items():
        (tmp_path / f"{stem}.yml").write_text(yaml.safe_dump({"categories": [stem], "conversations": convs}))
    return tmp_path


def _general(corpus_dir, max_length=768):
    return general_data.load_general_rows(StandInTokenizer(), max_length, CHECK_PROMPTS, folder=corpus_dir)


def _task_rows(n):
    return [{"item_id": f"i{k}", "task": "explain",
             "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": f"item {k}"},
                          {"role": "assistant", "content": json.dumps({"explanation": f"note {k}"})}]}
            for k in range(n)]


def test_rows_are_well_formed_and_skip_left_out_files(corpus_dir):
    g = _general(corpus_dir)
    assert g.rows and g.files == ["coding.yml", "conversations.yml", "trivia.yml"]
    for row in g.rows:
        msgs = row["messages"]
        assert row["task"] == general_data.TASK and row["source"].startswith("chatterbot-corpus==1.3.3:")
        assert [m["role"] for m in msgs] == ["user", "assistant"] * (len(msgs) // 2)
        assert all(m["content"].strip() for m in msgs)
        tokenize_example(msgs, StandInTokenizer())  # trainable as is
    assert not any("joke" in m["content"] for r in g.rows for m in r["messages"])
    multi = [r for r in g.rows if len(r["messages"]) > 2]
    assert len(multi) == 1 and len(multi[0]["messages"]) == 4  # the trailing "Bye" has no answer
    assert g.dropped_duplicate == 1 and g.dropped_invalid == 1  # repeated row; prompt without answer


def test_chat_check_prompts_and_near_duplicates_are_excluded(corpus_dir):
    g = _general(corpus_dir)
    users = [m["content"] for r in g.rows for m in r["messages"] if m["role"] == "user"]
    assert g.dropped_overlap == 2
    assert not any(general_data.near_duplicate(u, p) for u in users for p in CHECK_PROMPTS)
    # a "what is X" question is not a duplicate of another "what is Y" one
    assert not general_data.near_duplicate("what is chemistry", "What is photosynthesis?")
    assert general_data.near_duplicate("Explain in two sentences why the sky is blue",
                                       "Explain why the sky is blue in two sentences.")


def test_length_filter_uses_the_template_token_count(corpus_dir):
    full = _general(corpus_dir)
    lengths = [len(tokenize_example(r["messages"], StandInTokenizer())["input_ids"]) for r in full.rows]
    cut = sorted(lengths)[len(lengths) // 2]
    short = _general(corpus_dir, max_length=cut)
    assert len(short.rows) == sum(n <= cut for n in lengths) < len(full.rows)
    assert short.dropped_too_long == len(full.rows) - len(short.rows)


@pytest.mark.parametrize("n_task,fraction", [(70, 0.3), (20, 0.5), (50, 0.1)])
def test_mix_fraction_holds_and_task_rows_keep_their_order(corpus_dir, n_task, fraction):
    task = _task_rows(n_task)
    mixed, info = data_mix.mix_rows(task, fraction, seed=3, general=_general(corpus_dir))
    general = [r for r in mixed if r.get("task") == general_data.TASK]
    assert [r for r in mixed if r.get("task") != general_data.TASK] == task
    assert len(general) == info["general_rows"] == round(n_task * fraction / (1 - fraction))
    assert abs(len(general) / len(mixed) - fraction) < 0.02
    assert info["source"]["package"] == "chatterbot-corpus" and info["task_rows"] == n_task


def test_mix_is_deterministic_by_seed(corpus_dir):
    g = _general(corpus_dir)
    a, _ = data_mix.mix_rows(_task_rows(30), 0.3, seed=1, general=g)
    b, _ = data_mix.mix_rows(_task_rows(30), 0.3, seed=1, general=g)
    c, _ = data_mix.mix_rows(_task_rows(30), 0.3, seed=2, general=g)
    assert a == b and a != c


def test_mix_reports_a_shortfall_and_zero_is_a_no_op(corpus_dir):
    g = _general(corpus_dir)
    mixed, info = data_mix.mix_rows(_task_rows(200), 0.5, seed=0, general=g)
    assert info["general_rows"] == len(g.rows) and info["shortfall"] == 200 - len(g.rows)
    task = _task_rows(5)
    same, info0 = mix_general_rows(task, SimpleNamespace(seed=0, max_length=768))  # no general_mix field yet
    assert same == task and info0["general_rows"] == 0
    with pytest.raises(ValueError):
        data_mix.n_general_for(10, 1.0)


def test_config_hook_reads_general_mix(corpus_dir, monkeypatch):
    g = _general(corpus_dir)
    monkeypatch.setattr(general_data, "load_general_rows", lambda tokenizer, max_length: g)
    cfg = SimpleNamespace(general_mix=0.25, seed=5, max_length=768, base_model=None)
    mixed, info = mix_general_rows(_task_rows(30), cfg, tokenizer=StandInTokenizer())
    assert info["general_rows"] == 10 and len(mixed) == 40 and info["seed"] == 5


# ----------------------------------------------------------------------------- the real package

@pytest.fixture(scope="module")
def real_general():
    return general_data.load_general_rows()


@pytest.mark.integration
def test_real_corpus_rows_fit_the_student_and_miss_the_chat_check(real_general):
    from finetune import chat_check

    g = real_general
    assert g.available > 1500 and len(g.rows) > 400  # 1,726 conversations, most of them repeats
    tok = general_data.student_tokenizer()
    assert max(len(tokenize_example(r["messages"], tok)["input_ids"]) for r in g.rows) <= 768
    prompts = [p["prompt"] for p in chat_check.load_prompts()]
    users = [m["content"] for r in g.rows for m in r["messages"] if m["role"] == "user"]
    assert not any(general_data.near_duplicate(u, p) for u in users for p in prompts)
    assert g.source()["files"] == [f"{s}.yml" for s in sorted(general_data.KEEP_FILES)]


@pytest.mark.integration
def test_real_mix_is_deterministic(real_general):
    task = _task_rows(140)
    a, info = data_mix.mix_rows(task, 0.3, seed=17, general=real_general)
    b, _ = data_mix.mix_rows(task, 0.3, seed=17, general=real_general)
    assert a == b and info["general_rows"] == 60 and info["achieved_fraction"] == 0.3
