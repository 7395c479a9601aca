"""`linernotes codes` and `linernotes recommend` (recommend/cli.py): the parser, the
delegation to recommend.semantic_ids, and a recommend run against stand-ins.

Stand-ins, all written to a tmp LINERNOTES_HOME / LINERNOTES_RUNS: a 12-song catalog
("Stand-in Song N"), a semantic-ID table coded by the real `semantic_ids.assign_codes`
from seeded random vectors (sizes 3 x 2 x 2), an interaction log for two listeners, and
a recommend-codes run folder whose student is a tiny random Llama (the real
`hf_topk_codes` beam search runs over it; SmolLM2 is `python -m recommend.train_codes`'s).
Shared with tests/test_notebook_recommend.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from linernotes import cli as linernotes_cli
from recommend import cli as rcli
from recommend import interactions, semantic_ids

SIZES = [3, 2, 2]
GENRES = ["Rock", "Jazz", "Latin"]
N_ITEMS = 12
# listener -> items in log order; A's three and B's six leave three items for nobody
STANDIN_LOG = {"music-customer:A": ["music:0", "music:4", "music:8"],
               "music-customer:B": ["music:1", "music:2", "music:3", "music:5", "music:6", "music:7"]}


def standin_items(n: int = N_ITEMS) -> pd.DataFrame:
    return pd.DataFrame({
        "item_id": [f"music:{i}" for i in range(n)], "item_type": "music",
        "title": [f"Stand-in Song {i}" for i in range(n)],
        "creator": [f"Stand-in Band {i % 4}" for i in range(n)],
        "collection": [f"Stand-in Album {i % 2}" for i in range(n)], "year": np.nan,
        "genres": [[GENRES[i % 3]] for i in range(n)], "publisher": None, "description": None})


def write_standin_table(home: Path, seed: int = 0) -> semantic_ids.SemanticIdTable:
    items = standin_items()
    vectors = np.random.default_rng(seed).normal(size=(len(items), 8)).astype(np.float32)
    frame, stats, codebook = semantic_ids.assign_codes(vectors, items["item_id"].tolist(), SIZES,
                                                       balanced=False, seed=seed, stats_sample=len(items))
    version = f"standin{seed}"
    stats.update({"item_type": "music", "version": version, "code_config": {"sizes": SIZES}})
    table = semantic_ids.SemanticIdTable("music", version, SIZES, frame, stats)
    semantic_ids.write_table(table, codebook, home)
    return table


def write_standin_home(home: Path) -> semantic_ids.SemanticIdTable:
    (home / "catalog").mkdir(parents=True, exist_ok=True)
    standin_items().to_parquet(home / "catalog" / "items.parquet", index=False)
    return write_standin_table(home)


def standin_log() -> pd.DataFrame:
    rows = [(lid, iid, float(n), np.nan) for lid, ids in STANDIN_LOG.items() for n, iid in enumerate(ids)]
    return pd.DataFrame(rows, columns=["listener_id", "item_id", "ts", "rating"])


def write_standin_run(runs: Path, table_version: str, name: str = "recommend-codes-music-standin") -> Path:
    run = runs / name
    (run / "adapter").mkdir(parents=True)
    (run / "adapter" / "adapter_config.json").write_text("{}")
    (run / "manifest.json").write_text(json.dumps({
        "stage": "recommend", "variant": "codes", "item_type": "music", "table_version": table_version,
        "steps": 1, "created": "2026-12-04T00:00:00"}))
    (run / "COMPLETE").write_text("2026-12-04T00:00:00")
    return run


@pytest.fixture
def standin_env(tmp_path, monkeypatch):
    home, runs = tmp_path / "home", tmp_path / "runs"
    monkeypatch.setenv("LINERNOTES_HOME", str(home))
    monkeypatch.setenv("LINERNOTES_RUNS", str(runs))
    runs.mkdir()
    table = write_standin_home(home)
    monkeypatch.setattr(interactions, "load_interactions", lambda item_type, **kw: standin_log())
    return home, runs, table


def tiny_student(table):
    """A random 2-layer Llama and a word-level tokenizer that has the table's code tokens."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = ["<pad>", "<|im_start|>", "<|im_end|>", "<unk>", "system", "user", "assistant"]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    hf = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<|im_end|>",
                                              unk_token="<unk>", bos_token=None)
    hf.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    hf.add_tokens(table.token_vocab())
    hf.chat_template = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
                        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(vocab_size=len(hf), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                                   pad_token_id=0, eos_token_id=2, bos_token_id=None, tie_word_embeddings=True)
    return transformers.LlamaForCausalLM(cfg).eval(), hf


# ---------------------------------------------------------------- parser


def test_parser_reads_recommend_and_codes_flags():
    ap = linernotes_cli.build_parser()
    args = ap.parse_args(["recommend", "--type", "podcast", "--listener-id", "podcast-user:7", "-k", "5",
                          "--run", "runs/x", "--json"])
    assert (args.item_type, args.listener_id, args.k, args.run, args.json, args.beams) == (
        "podcast", "podcast-user:7", 5, "runs/x", True, None)
    assert args.fn is linernotes_cli.cmd_recommend
    args = ap.parse_args(["codes", "stats", "--types", "music,book", "--version", "abc"])
    assert (args.action, args.types, args.version, args.fn) == ("stats", "music,book", "abc", linernotes_cli.cmd_codes)
    with pytest.raises(SystemExit):
        ap.parse_args(["recommend", "--type", "music"])  # --listener-id is required
    with pytest.raises(SystemExit):
        ap.parse_args(["codes", "rebuild"])


def test_codes_delegates_to_semantic_ids_main(monkeypatch):
    seen = []
    monkeypatch.setattr(semantic_ids, "main", lambda argv: seen.append(argv) or 0)
    assert linernotes_cli.main(["codes", "build", "--types", "music"]) == 0
    assert linernotes_cli.main(["codes", "stats"]) == 0
    assert linernotes_cli.main(["codes", "stats", "--version", "v1"]) == 0
    assert seen == [["build", "--types", "music"], ["stats"], ["stats", "--version", "v1"]]


def test_codes_stats_prints_the_standin_table(standin_env, capsys):
    _home, _runs, table = standin_env
    assert linernotes_cli.main(["codes", "stats", "--types", "music"]) == 0
    out = capsys.readouterr().out
    assert f"music {table.version}: {N_ITEMS} items, sizes {SIZES}" in out


# ---------------------------------------------------------------- recommend


def test_recommend_runs_the_hf_path_and_never_returns_history(standin_env, monkeypatch, capsys):
    _home, runs, table = standin_env
    run = write_standin_run(runs, table.version)
    from recommend import llm_recommender

    student = tiny_student(table)
    monkeypatch.setattr(llm_recommender, "load_student", lambda run_dir: student)
    assert linernotes_cli.main(["recommend", "--listener-id", "music-customer:B", "-k", "4", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["run"] == str(run) and result["table_version"] == table.version
    assert [h["item_id"] for h in result["history"]] == STANDIN_LOG["music-customer:B"]
    recs = result["recommendations"]
    assert [r["rank"] for r in recs] == [1, 2, 3, 4]
    # six of twelve items are banned: the four come from the other six, each a real code
    history = set(STANDIN_LOG["music-customer:B"])
    assert all(r["item_id"] and r["item_id"] not in history and r["in_history"] == "no" for r in recs)
    assert all(table.code_of(r["item_id"]) == r["code"] for r in recs)
    assert all(r["title"] == f"Stand-in Song {r['item_id'].split(':')[1]}" for r in recs)
    assert len({r["code"] for r in recs}) == 4
    scores = [r["score"] for r in recs]
    assert scores == sorted(scores, reverse=True)
    # the text form names every pick
    assert linernotes_cli.main(["recommend", "--listener-id", "music-customer:B", "-k", "4"]) == 0
    text = capsys.readouterr().out
    assert all(r["code"] in text for r in recs) and "in history: no" in text


def test_recommend_uses_the_table_the_run_was_trained_on(standin_env):
    home, runs, table = standin_env
    write_standin_run(runs, table.version)
    newer = write_standin_table(home, seed=1)  # a rebuild with other inputs: a new version
    assert semantic_ids.latest("music") == newer.version != table.version
    asked = []

    def ranker(codes, k):
        asked.append(list(codes))
        return [(table.code_of("music:11"), -0.5)]

    found = rcli.resolve_run("music")
    assert rcli.run_table(found, "music").version == table.version
    result = rcli.recommend_listener("music", "music-customer:A", 1, ranker=ranker,
                                     table=rcli.run_table(found, "music"))
    assert asked == [[table.code_of(i) for i in STANDIN_LOG["music-customer:A"]]]
    assert result["recommendations"][0]["item_id"] == "music:11"


def test_a_run_on_a_deleted_table_is_skipped_or_refused(standin_env, capsys):
    """A run trained on a table version that is no longer built would name other items."""
    _home, runs, table = standin_env
    good = write_standin_run(runs, table.version, name="recommend-codes-music-old")
    stale = write_standin_run(runs, "gone0000", name="recommend-codes-music-new")
    manifest = json.loads((stale / "manifest.json").read_text())
    (stale / "manifest.json").write_text(json.dumps({**manifest, "created": "2026-12-05T00:00:00"}))
    assert rcli.codes_runs("music")[0].path == stale  # the newest ...
    assert rcli.resolve_run("music").path == good     # ... is skipped for the newest usable one
    with pytest.raises(rcli.NotBuilt, match="music-gone0000, which is not under"):
        rcli.resolve_run("music", stale)
    import shutil

    shutil.rmtree(good)
    assert linernotes_cli.main(["recommend", "--listener-id", "music-customer:A"]) == 2
    err = capsys.readouterr().err
    assert str(stale) in err and "python -m recommend.train_codes --type music" in err


def test_recommend_rows_report_what_the_ranker_returned():
    """A pluggable ranker may return a history item or a code of no item: the rows say so."""
    table = semantic_ids.SemanticIdTable("music", "standin", [2, 2], pd.DataFrame({
        "item_id": ["music:0", "music:1"], "c1": [0, 1], "c2": [0, 0], "dedup": [0, 0],
        "code": ["<a_0><b_0><c_0>", "<a_1><b_0><c_0>"]}))
    items = standin_items(2).set_index("item_id", drop=False)
    rows = rcli.recommend_rows(lambda codes, k: [("<a_0><b_0><c_0>", -1.0), ("<a_1><b_1><c_0>", -2.0), (None, -3.0)],
                               table, items, ["music:0"], k=3)
    assert [(r["item_id"], r["in_history"], r["title"]) for r in rows] == [
        ("music:0", "yes", "Stand-in Song 0"), ("", "no", ""), ("", "no", "")]
    assert rows[1]["code"] == "<a_1><b_1><c_0>"
    with pytest.raises(ValueError, match="k must be"):
        rcli.recommend_rows(lambda c, k: [], table, items, [], k=0)


def test_missing_pieces_name_the_command_that_makes_them(standin_env, tmp_path, monkeypatch, capsys):
    _home, runs, table = standin_env
    assert linernotes_cli.main(["recommend", "--listener-id", "music-customer:A"]) == 2
    assert "python -m recommend.train_codes --type music" in capsys.readouterr().err
    with pytest.raises(rcli.NotBuilt, match="python -m recommend.semantic_ids build --types podcast"):
        rcli.load_code_table("podcast")
    with pytest.raises(rcli.NotBuilt, match="not a complete recommend-codes run"):
        rcli.resolve_run("music", tmp_path / "nowhere")
    write_standin_run(runs, table.version)
    with pytest.raises(ValueError, match="'music-customer:Z': no music listener with history"):
        rcli.recommend_listener("music", "music-customer:Z", ranker=lambda c, k: [], table=table)
    assert linernotes_cli.main(["recommend", "--type", "podcast", "--listener-id", "p"]) == 2
    assert "recommend-codes-podcast" in capsys.readouterr().err


# ---------------------------------------------------------------- the code tree helpers


def test_prefix_summaries_count_every_item_once(standin_env):
    _home, _runs, table = standin_env
    items = rcli.load_items_frame("music")
    level1 = rcli.prefix_summary(table, items, 1)
    assert level1["items"].sum() == N_ITEMS
    assert set(level1["prefix"]) == {f"<a_{d}>" for d in table.frame["c1"]}
    first = level1.iloc[0]
    under = rcli.items_under(table, items, first["prefix"])
    assert len(under) == first["items"] and all(c.startswith(first["prefix"]) for c in under["code"])
    genres = under["genres"].value_counts()
    assert first["top genres"].startswith(f"{genres.index[0]} ({genres.iloc[0]})")
    level2 = rcli.prefix_summary(table, items, 2, parent=int(first["digit"]))
    assert level2["items"].sum() == first["items"]
    assert all(p.startswith(first["prefix"]) for p in level2["prefix"])
    tree = rcli.tree_frame(table, items)
    assert tree["items"].sum() == N_ITEMS and len(tree) == table.frame.groupby(["c1", "c2"]).ngroups
    flat = rcli.tree_frame(table, items, max_leaves=1)  # too many leaves: level 1 only
    assert len(flat) == len(level1) and (flat["level1"] == flat["level2"]).all()
    options = rcli.prefix_options(level1)
    counts = [int(label.split()[1]) for label in options]
    assert counts == sorted(counts, reverse=True) and set(options.values()) == set(level1["prefix"])
    with pytest.raises(ValueError, match="level 3"):
        rcli.prefix_summary(table, items, 3)


def test_level_stats_and_listener_options(standin_env):
    _home, _runs, table = standin_env
    levels = rcli.level_stats_frame(table.stats)
    assert levels["level"].tolist() == [1, 2, 3] and levels["K"].tolist() == SIZES
    assert levels["utilisation"].between(0, 1).all()
    items = rcli.load_items_frame("music")
    options = rcli.listener_options(rcli.load_histories("music"), items)
    assert list(options.values()) == ["music-customer:B", "music-customer:A"]  # longest history first
    assert list(options)[1] == "music-customer:A  (3 items: Rock, Jazz)"
    assert list(rcli.listener_options(rcli.load_histories("music"), items, limit=1).values()) == ["music-customer:B"]
