"""The recommend app (notebooks/06_recommend.py), headless.

(a) `marimo check` is clean;
(b) over a stand-in home (the 12-song stand-in catalog and code table of
    tests/test_recommend_cli.py) the app builds its stats, prefix pickers, tree and
    listener picker with the button unpressed, and says which command trains a run;
(c) with no table it names the build command instead of failing;
(d) the recommend cell, button pressed, shows a stand-in ranker's picks beside the
    listener's history;
(e) the app's helper functions.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from linernotes import paths
from marimo_helpers import assert_marimo_check_clean, load_app, load_module
from recommend import interactions
from recommend.tasks import MAX_HISTORY
from test_recommend_cli import N_ITEMS, STANDIN_LOG, standin_log, write_standin_home, write_standin_run
from test_recommend_cli import standin_env as standin_home  # noqa: F401 - the same stand-in home fixture

NOTEBOOK = paths.REPO_ROOT / "notebooks" / "06_recommend.py"


def _page(outputs) -> str:
    return " ".join(str(getattr(o, "text", o)) for o in outputs)


def test_marimo_check_is_clean():
    assert_marimo_check_clean(NOTEBOOK)


def test_app_builds_the_code_tree_and_pickers_without_loading_a_model(standin_home):
    _home, _runs, table = standin_home
    outputs, defs = load_app(NOTEBOOK).run()
    assert defs["item_type"] == "music" and defs["table"].version == table.version
    assert defs["level_stats"]["level"].tolist() == [1, 2, 3]
    assert defs["level1_summary"]["items"].sum() == N_ITEMS
    # the first level-1 option is the largest prefix; the level-2 picker starts at "all of it"
    first = defs["level1_ui"].value
    assert defs["level2_ui"].value == "" and defs["picked_prefix"] == first
    assert sorted(defs["prefix_items"]["item_id"]) == sorted(table.items_under(first))
    assert defs["level2_summary"]["items"].sum() == len(table.items_under(first))
    assert defs["tree"]["items"].sum() == N_ITEMS
    # no run yet: the page names the command, the listener picker is there, nothing loaded
    assert defs["codes_run"] is None and defs["ranker"] is None
    assert "python -m recommend.train_codes --type music" in defs["run_error"]
    assert defs["listener_ui"].value == "music-customer:B"
    assert defs["listener_history"] == STANDIN_LOG["music-customer:B"]
    assert (defs["history_table"]["in_prompt"] == "yes").sum() == min(6, MAX_HISTORY)
    assert defs["recommend_button"].value is False and "recommendations" not in defs
    assert "Press the button" in _page(outputs)


def test_app_finds_the_newest_run_and_makes_a_lazy_ranker(standin_home):
    _home, runs, table = standin_home
    run = write_standin_run(runs, table.version)
    _, defs = load_app(NOTEBOOK).run()
    assert defs["codes_run"].path == run and defs["run_error"] is None
    assert defs["rec_table"].version == table.version
    assert defs["ranker"]._model is None  # the student loads on the first call only


def test_no_table_names_the_build_command(tmp_path, monkeypatch):
    monkeypatch.setenv("LINERNOTES_HOME", str(tmp_path / "empty"))
    monkeypatch.setenv("LINERNOTES_RUNS", str(tmp_path / "runs"))
    outputs, defs = load_app(NOTEBOOK).run()
    assert defs["table"] is None
    assert "python -m recommend.semantic_ids build --types music" in defs["table_error"]
    assert "python -m recommend.semantic_ids build --types music" in _page(outputs)
    assert "level1_ui" not in defs and "recommendations" not in defs
    assert defs["type_ui"].value == "music"  # no type has a table: the first, labelled so
    assert "music (no table yet)" in load_module(NOTEBOOK).type_options()


def test_recommend_cell_shows_a_standin_rankers_picks(standin_home):
    _home, _runs, table = standin_home
    history = STANDIN_LOG["music-customer:A"]
    asked = []

    def standin_ranker(codes, k):
        """Stand-in for the student: the first k codes of items the listener lacks."""
        asked.append((list(codes), k))
        free = [table.code_of(i) for i in table.item_ids() if i not in history]
        return [(c, -float(n)) for n, c in enumerate(free[:k])]

    picks = {"listener_ui": SimpleNamespace(value="music-customer:A"), "k_ui": SimpleNamespace(value=3),
             "recommend_button": SimpleNamespace(value=True)}
    outputs, defs = load_app(NOTEBOOK).run(defs={"rec_table": table, "ranker": standin_ranker, **picks})
    assert asked == [([table.code_of(i) for i in history], 3)]
    recs = defs["recommendations"]
    expected = [i for i in table.item_ids() if i not in history][:3]
    assert recs["item_id"].tolist() == expected and recs["rank"].tolist() == [1, 2, 3]
    assert recs["title"].tolist() == [f"Stand-in Song {i.split(':')[1]}" for i in expected]
    assert set(recs["in_history"]) == {"no"}
    assert defs["history_table"]["item_id"].tolist() == history
    assert defs["history_table"]["in_prompt"].tolist() == ["yes"] * len(history)  # 3 <= MAX_HISTORY
    assert "/v1/recommend" in _page(outputs)


def test_app_helpers():
    module = load_module(NOTEBOOK)
    import pandas as pd

    levels = pd.DataFrame({"level": [1, 2], "utilisation": [1.0, 0.5], "entropy / log2 K": [0.9, 0.8]})
    fig = module.stats_figure(levels)
    assert {t.name for t in fig.data} == {"level 1", "level 2"}
    assert list(fig.data[1].y) == [0.5, 0.8]
    tree = pd.DataFrame({"level1": ["<a_0> Rock", "<a_0> Rock", "<a_1> Jazz"],
                         "level2": ["<a_0><b_0> Rock", "<a_0><b_1> Rock", "<a_1><b_0> Jazz"], "items": [2, 3, 4]})
    frame = pd.DataFrame({"rank": [1, 2], "creator": ["", " "], "title": ["A", ""]})
    assert list(module.shown_columns(frame, ["rank", "creator", "title", "score"])) == ["rank", "title"]
    tfig = module.tree_figure(tree, "music")
    values = dict(zip(tfig.data[0].ids, tfig.data[0].values))
    assert values["all music/<a_0> Rock"] == 5 and values["all music"] == 9
