"""curation.publish: Hub-layout folder round trip, dataset card, golden few-shot refresh, no network."""

from __future__ import annotations

import json
import shutil

import datasets
import pandas as pd
import pytest
import yaml

from curation import publish as pb
from linernotes.records import ExplanationRecord, GateResult, HistoryEntry, Item, Listener
from linernotes.runs import RunDir
from linernotes.domain.prompts import DEFAULT_GOLDEN, PromptBuilder, load_golden

SYSTEM = {"role": "system", "content": "You write liner notes."}
SHOT = [{"role": "user", "content": "few-shot user"}, {"role": "assistant", "content": "{}"}]


def _record(i: int, item_type: str, text: str, facts: list[str], ok: bool = True) -> ExplanationRecord:
    item = {"music": Item(item_id=f"music:{i}", item_type="music", title="Master Of Puppets", creator="Metallica",
                          collection="Master Of Puppets", genres=["Metal"], duration_s=515.0,
                          source="test", source_row=str(i)),
            "book": Item(item_id=f"book:{i}", item_type="book", title="The Hobbit", creator="J. R. R. Tolkien",
                         year=1937, source="test", source_row=str(i)),
            "podcast": Item(item_id=f"podcast:{i}", item_type="podcast", title="Science Vs",
                            genres=["Science", "Comedy"], source="test", source_row=str(i))}[item_type]
    listener = Listener(listener_id=f"L{i}", source="test", country="Germany", taste=["Metal"],
                        history=[HistoryEntry(item_id="h1", title="Enter Sandman", creator="Metallica",
                                              genres=["Metal"])])
    user = {"role": "user", "content": f"CATALOG_DATA {item.title} for L{i}"}
    return ExplanationRecord(
        record_id=f"r{i}", item=item, listener=listener, prompt_version="explain-v1@test",
        messages=[SYSTEM, *SHOT, user], backend="fake", model="teacher-x", parsed=True,
        explanation=text, facts_used=facts,
        gates={"grounding": GateResult(passed=ok), "style": GateResult(passed=True),
               "safety": GateResult(passed=True)})


@pytest.fixture
def run(tmp_path) -> RunDir:
    recs = [
        _record(0, "music", "Since Enter Sandman is on repeat, Metallica's Master Of Puppets is the next step.",
                ["Metallica", "Master Of Puppets", "Enter Sandman"]),
        _record(1, "music", "A pop song by Madonna for you.", ["Madonna"], ok=False),
        _record(2, "book", "After Enter Sandman, Tolkien's 1937 tale The Hobbit is a fine audiobook quest.",
                ["The Hobbit", "J. R. R. Tolkien", "1937"]),
        _record(3, "podcast", "Science Vs mixes science and comedy for your commute.",
                ["Science Vs", "Science", "Comedy"]),
        _record(4, "podcast", "Science Vs is a science show with a comic edge.", ["Science Vs"]),
    ]
    r = RunDir(tmp_path / "runs" / "synth-test")
    r.prepare()
    r.write_rows([x.to_row() for x in recs])
    r.write_manifest({"stage": "synth", "run": "synth-test", "created": "2026-01-02T03:04:05+0000",
                      "config": {"seed": 17, "backend": "fake"}, "config_fingerprint": "abc123def0",
                      "seed": 17, "backend": {"name": "fake", "model": "teacher-x"},
                      "prompt_version": "explain-v1@test"})
    r.mark_complete()
    return r


def labels(raw: pd.DataFrame) -> dict:
    """A `curation.labeling.resolve`-shaped result: r1 corrected, r0/r2/r3 approved, r4 lost a ranking to r3."""
    by = raw.set_index("record_id")
    golden = pd.DataFrame([
        {"record_id": "r0", "item_id": "music:0", "listener_id": "L0", "teacher": "teacher-x",
         "explanation": by.at["r0", "explanation"], "original": by.at["r0", "explanation"],
         "source": "approved", "rating": 5},
        {"record_id": "r1", "item_id": "music:1", "listener_id": "L1", "teacher": "teacher-x",
         "explanation": "Metallica's Master Of Puppets is a heavy follow-up to Enter Sandman.",
         "original": by.at["r1", "explanation"], "source": "corrected", "rating": 2},
        {"record_id": "r2", "item_id": "book:2", "listener_id": "L2", "teacher": "teacher-x",
         "explanation": by.at["r2", "explanation"], "original": by.at["r2", "explanation"],
         "source": "approved", "rating": 4},
    ])
    pairs = pd.DataFrame([
        {"item_id": "music:1", "listener_id": "L1", "chosen": golden.explanation[1],
         "rejected": by.at["r1", "explanation"], "chosen_record_id": "r1", "rejected_record_id": "r1",
         "source": "correction", "votes_for": None, "votes_against": None},
        {"item_id": "podcast:3", "listener_id": "L3", "chosen": by.at["r3", "explanation"],
         "rejected": by.at["r4", "explanation"], "chosen_record_id": "r3", "rejected_record_id": "r4",
         "source": "ranking", "votes_for": 2, "votes_against": 0},
    ])
    for col in ("votes_for", "votes_against"):  # as labeling.resolve writes them
        pairs[col] = pairs[col].astype("Int64")
    resolved = pd.DataFrame({"record_id": ["r0", "r1", "r2", "r4"]})
    return {"golden": golden, "pairs": pairs, "resolved": resolved, "agreement": {}}


def test_sft_and_preference_rows(run):
    raw = pd.read_parquet(run.parquet_path)
    t = pb.tables_from_labels(labels(raw), raw)
    sft = {r["record_id"]: r for r in t["sft"]}
    # golden first (r0, r1, r2), then gated synthetic rows not reviewed (r3; r4 was reviewed)
    assert [r["record_id"] for r in t["sft"]] == ["r0", "r1", "r2", "r3"]
    assert [r["source"] for r in t["sft"]] == ["golden"] * 3 + ["gated_synthetic"]
    msgs = sft["r1"]["messages"]
    assert [m["role"] for m in msgs] == ["system", "user", "assistant"]  # few-shot turns dropped
    assert msgs[0] == SYSTEM and msgs[1]["content"] == "CATALOG_DATA Master Of Puppets for L1"
    answer = json.loads(msgs[2]["content"])
    assert answer["explanation"].startswith("Metallica's Master Of Puppets")
    assert answer["facts_used"] == ["Master Of Puppets", "Metallica"]  # Madonna is gone
    assert sft["r1"]["golden_source"] == "corrected" and sft["r1"]["item_type"] == "music"
    prefs = t["preferences"]
    assert [p["source"] for p in prefs] == ["correction", "ranking"]
    assert [m["role"] for m in prefs[0]["prompt"]] == ["system", "user"]
    assert json.loads(prefs[1]["chosen"][0]["content"])["explanation"].startswith("Science Vs mixes")
    assert json.loads(prefs[1]["rejected"][0]["content"])["explanation"].startswith("Science Vs is a")


def test_folder_round_trip_and_card(run, tmp_path):
    raw = pd.read_parquet(run.parquet_path)
    t = pb.tables_from_labels(labels(raw), raw)
    folder = pb.build_hub_folder(tmp_path / "hub", sft=t["sft"], preferences=t["preferences"], raw=raw,
                                 lineage_runs=[run], name="linernotes test", licence_notes=pb.LICENCE_NOTES)
    for c in ("sft", "preferences", "raw_generations"):
        assert (folder / "data" / c / "train-00000-of-00001.parquet").exists()
    # a fresh cache: `datasets` keys a local folder's cache by folder name + config, not content
    cache = str(tmp_path / "hf-cache")
    sft = datasets.load_dataset(str(folder), "sft", split="train", cache_dir=cache)
    assert sft.to_list() == t["sft"]
    prefs = datasets.load_dataset(str(folder), "preferences", split="train", cache_dir=cache)
    assert prefs.to_list() == t["preferences"]
    assert pb.load_table(folder, "sft").to_list() == t["sft"]  # no stale cache either
    raw_back = datasets.load_dataset(str(folder), "raw_generations", split="train", cache_dir=cache)
    assert raw_back.num_rows == len(raw) and raw_back["record_id"] == list(raw["record_id"])

    front = pb.read_card_front_matter(folder)
    assert [c["config_name"] for c in front["configs"]] == ["sft", "preferences", "raw_generations"]
    card = (folder / "README.md").read_text()
    assert "### `sft` (4 rows)" in card and "### `preferences` (2 rows)" in card
    assert "### `raw_generations` (5 rows)" in card
    assert "| `messages` | `list<{role: string, content: string}>` |" in card
    # lineage from the manifest
    for token in ("synth-test", "abc123def0", "fake / teacher-x", "explain-v1@test", "2026-01-02"):
        assert token in card, token
    assert "Ziegler" in card and "Apache-2.0" in card and "MIT" in card

    # rebuilding without raw removes its stale shard and config
    pb.build_hub_folder(folder, sft=t["sft"], lineage_runs=[run])
    assert not (folder / "data" / "raw_generations" / "train-00000-of-00001.parquet").exists()
    assert [c["config_name"] for c in pb.read_card_front_matter(folder)["configs"]] == ["sft"]
    # an empty table is left out too (datasets cannot load a split with no rows), and said so
    pb.build_hub_folder(folder, sft=t["sft"], preferences=[])
    assert [c["config_name"] for c in pb.read_card_front_matter(folder)["configs"]] == ["sft"]
    assert "no rows this time (left out): `preferences`" in (folder / "README.md").read_text()


def test_publish_without_token_stays_local(run, tmp_path, monkeypatch):
    import huggingface_hub

    def boom(*a, **k):
        raise AssertionError("network used")

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", boom)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", boom)
    raw = pd.read_parquet(run.parquet_path)
    out = pb.publish(tmp_path / "pub", repo_id="someone/linernotes", raw=raw, lineage_runs=[run])
    assert out["pushed"] is False and "no token" in out["message"]
    assert (tmp_path / "pub" / "README.md").exists()
    # With a token the push happens even under HF_HUB_OFFLINE: tests/test_publish_hub.py.


def test_refresh_golden_examples(run, tmp_path):
    raw = pd.read_parquet(run.parquet_path)
    path = tmp_path / "golden.yaml"
    shutil.copy(DEFAULT_GOLDEN, path)
    import itertools

    # the file's leading comment block (section comments further down belong to the entries)
    header = list(itertools.takewhile(lambda line: line.startswith("#"), DEFAULT_GOLDEN.read_text().splitlines()))
    before = load_golden(path)
    n = pb.refresh_golden_examples(labels(raw)["golden"], path, per_type=2, raw=raw)
    assert n == 3  # r0, r1 (music), r2 (book)
    text = path.read_text()
    assert text.splitlines()[: len(header)] == header
    ex = load_golden(path)
    by_type = {t: [e.answer["explanation"] for e in ex if e.item_type == t] for t in ("music", "book", "podcast")}
    # music: corrected first, then approved; the hand-written music entries are replaced
    assert by_type["music"][0].startswith("Metallica's Master Of Puppets is a heavy")
    assert by_type["music"][1].startswith("Since Enter Sandman is on repeat, Metallica's Master Of Puppets is")
    # book: one golden row, one hand-written entry fills the second place; podcast untouched
    assert by_type["book"][0].startswith("After Enter Sandman") and len(by_type["book"]) == 2
    assert by_type["podcast"] == [e.answer["explanation"] for e in before if e.item_type == "podcast"]
    # deterministic and idempotent
    first = path.read_text()
    pb.refresh_golden_examples(labels(raw)["golden"], path, per_type=2, raw=raw)
    assert path.read_text() == first
    # the synth prompt uses them as few-shot turns
    builder = PromptBuilder.default(golden_path=path)
    rec = ExplanationRecord.from_row(raw.iloc[0].to_dict() | {"facts_used": list(raw.iloc[0]["facts_used"])})
    msgs = builder.messages(rec.item, rec.listener)
    shots = [json.loads(m["content"])["explanation"] for m in msgs if m["role"] == "assistant"]
    assert shots == by_type["music"][:2]


def test_refresh_skips_rows_that_fail_the_gates(run, tmp_path):
    raw = pd.read_parquet(run.parquet_path)
    path = tmp_path / "golden.yaml"
    shutil.copy(DEFAULT_GOLDEN, path)
    bad = pd.DataFrame([{"record_id": "r1", "explanation": "A pop song by Madonna for you.",
                         "original": "A pop song by Madonna for you.", "source": "approved", "rating": 5}])
    assert pb.refresh_golden_examples(bad, path, raw=raw) == 0
    assert [e.answer for e in load_golden(path)] == [e.answer for e in load_golden(DEFAULT_GOLDEN)]


def test_publish_runs_from_run_directories(run, tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    raw = pd.read_parquet(run.parquet_path)
    lab = labels(raw)
    label_run = RunDir(tmp_path / "runs" / "label-test")
    label_run.prepare()
    for key in ("golden", "pairs", "resolved"):
        lab[key].to_parquet(label_run.path / f"{key}.parquet", index=False)
    label_run.write_manifest({"stage": "label", "run": "label-test", "created": "2026-01-03T00:00:00+0000"})
    label_run.mark_complete()
    folder = pb.publish_runs(run, None, label_run, tmp_path / "pub")
    assert pb.load_table(folder, "sft").to_list() == pb.tables_from_labels(lab, raw)["sft"]
    assert pb.load_table(folder, "preferences").num_rows == 2
    card = (folder / "README.md").read_text()
    assert "label-test" in card and "synth-test" in card


def _label_run(tmp_path, raw, label_source, name="label-test"):
    lab = labels(raw)
    run = RunDir(tmp_path / "runs" / name)
    run.prepare()
    for key in ("golden", "pairs", "resolved"):
        lab[key].to_parquet(run.path / f"{key}.parquet", index=False)
    run.write_manifest({"stage": "label", "run": name, "created": "2026-01-03T00:00:00+0000",
                        **({"label_source": label_source} if label_source is not None else {})})
    run.mark_complete()
    return run


@pytest.mark.parametrize("source, human", [({"human": 0, "scripted": 24}, False),
                                           ({"human": 12, "scripted": 0}, True),
                                           (None, False)])
def test_card_says_who_labeled(run, tmp_path, monkeypatch, source, human):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    raw = pd.read_parquet(run.parquet_path)
    folder = pb.publish_runs(run, None, _label_run(tmp_path, raw, source), tmp_path / "pub")
    card = (folder / "README.md").read_text()
    tags = pb.read_card_front_matter(folder)["tags"]
    assert ("human-feedback" in tags) is human
    assert ("expert" in card.lower()) is human
    if source and source["scripted"]:
        assert "scripted demo labels (not human)" in card and "scripted-demo-labels" in tags
    if human:
        assert "reviewed by experts" in card


def test_model_card_follows_the_label_runs(tmp_path):
    from finetune.card import model_card

    ft = {"run": "finetune-1", "config": {"backend": "peft"}}

    def card(source):
        up = [{"source": "README.md", "runs": [{"run": "label-x", "stage": "label", "label_source": source}]}]
        return model_card(tmp_path, ft, None, None, {"train_data": "pub", "upstream": up})

    scripted = card({"human": 0, "scripted": 10})
    front = yaml.safe_load(scripted.split("---")[1])
    assert "human-feedback" not in front["tags"] and "expert" not in scripted.lower()
    assert "scripted demo labels (not human)" in scripted
    human = card({"human": 10, "scripted": 0})
    assert "human-feedback" in yaml.safe_load(human.split("---")[1])["tags"] and "expert" in human.lower()
    unknown = model_card(tmp_path, ft, None, None, {"train_data": "pub"})
    assert "expert" not in unknown.lower()
