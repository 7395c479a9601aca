"""`linernotes publish --repo-id X`: pushes with a token despite the CLI's HF_HUB_OFFLINE=1
(offline mode off for the push only), says what is needed without one; no network (HfApi stand-ins)."""

from __future__ import annotations

import os

import huggingface_hub
import pandas as pd
import pytest
from huggingface_hub import constants

from curation import hub_push
from curation import publish as pb


class StandInHub:
    """Records the HfApi calls and the offline switch as each call saw it."""

    def __init__(self, monkeypatch):
        self.calls = []
        hub = self

        def create_repo(self_api, repo_id, **kwargs):
            hub.calls.append(("create_repo", repo_id, kwargs, constants.HF_HUB_OFFLINE,
                              os.environ.get("HF_HUB_OFFLINE")))

        def upload_folder(self_api, **kwargs):
            hub.calls.append(("upload_folder", kwargs.get("repo_id"), kwargs, constants.HF_HUB_OFFLINE,
                              os.environ.get("HF_HUB_OFFLINE")))

        monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
        monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)


@pytest.fixture
def offline(monkeypatch):
    """The CLI's default: offline everywhere (env and the constant huggingface_hub read at import)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


def _raw() -> pd.DataFrame:
    """One generated row (a stand-in teacher answer), in the declared row format."""
    from linernotes.records import ExplanationRecord, Item, Listener

    rec = ExplanationRecord(
        record_id="r0", item=Item(item_id="book:0", item_type="book", title="The Hobbit",
                                  creator="J. R. R. Tolkien", source="test", source_row="0"),
        listener=Listener(listener_id="L0", source="test"), prompt_version="explain-v1@test",
        messages=[{"role": "user", "content": "why?"}], backend="stand-in", model="stand-in-teacher",
        parsed=True, explanation="A stand-in explanation.", facts_used=["The Hobbit"])
    return pd.DataFrame([rec.to_row()])


def test_push_with_token_turns_offline_off_for_the_push_only(tmp_path, monkeypatch, offline):
    hub = StandInHub(monkeypatch)
    monkeypatch.setenv("HF_TOKEN", "hf_stand_in_token")
    out = pb.publish(tmp_path / "pub", repo_id="someone/linernotes", raw=_raw())
    assert out["pushed"] is True and out["url"].endswith("someone/linernotes")
    (c_name, c_repo, c_kw, c_off, c_env), (u_name, u_repo, u_kw, u_off, u_env) = hub.calls
    assert (c_name, c_repo, c_kw["repo_type"], c_kw["token"]) == (
        "create_repo", "someone/linernotes", "dataset", "hf_stand_in_token")
    assert c_kw["exist_ok"] is True and c_kw["private"] is True
    assert (u_name, u_repo, u_kw["repo_type"], u_kw["token"]) == (
        "upload_folder", "someone/linernotes", "dataset", "hf_stand_in_token")
    assert u_kw["folder_path"] == str(out["folder"]) and (out["folder"] / "README.md").exists()
    assert (c_off, c_env, u_off, u_env) == (False, None, False, None)  # online during the push
    assert constants.HF_HUB_OFFLINE is True and os.environ["HF_HUB_OFFLINE"] == "1"  # and offline after


def test_offline_is_restored_when_the_push_fails(monkeypatch, offline, tmp_path):
    def failing(*a, **k):
        raise RuntimeError("stand-in hub error")

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", failing)
    with pytest.raises(RuntimeError, match="stand-in hub error"):
        hub_push.push_folder(tmp_path, "someone/x", "hf_stand_in_token")
    assert constants.HF_HUB_OFFLINE is True and os.environ["HF_HUB_OFFLINE"] == "1"


def test_no_token_says_what_is_needed(tmp_path, monkeypatch, offline):
    hub = StandInHub(monkeypatch)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    out = pb.publish(tmp_path / "pub", repo_id="someone/linernotes", raw=_raw())
    assert out["pushed"] is False and not hub.calls
    assert "HF_TOKEN" in out["message"] and "--token-file" in out["message"]


def test_token_file_and_env(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_from_env")
    assert hub_push.read_token() == "hf_from_env"
    f = tmp_path / "stand-in-token"
    f.write_text("hf_from_file\n")
    assert hub_push.read_token(f) == "hf_from_file"  # the file wins over the env
    with pytest.raises(FileNotFoundError, match="token-file"):
        hub_push.read_token(tmp_path / "missing")


def test_cli_publish_passes_the_token_file_not_argv(tmp_path, monkeypatch, capsys):
    from linernotes import cli

    seen = {}
    monkeypatch.setattr(cli, "_lineage", lambda label_run: ("label-run", "curate-run", "synth-run"))

    def stand_in_publish_runs(synth, curated, label, *, out_dir, repo_id, token):
        seen.update(repo_id=repo_id, token=token)
        return tmp_path / "pub"

    monkeypatch.setattr(pb, "publish_runs", stand_in_publish_runs)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    f = tmp_path / "stand-in-token"
    f.write_text("hf_from_file\n")
    assert cli.main(["publish", "--repo-id", "someone/x", "--token-file", str(f)]) == 0
    assert seen == {"repo_id": "someone/x", "token": "hf_from_file"}
    # No token anywhere: still written locally, exit 1 with what is needed.
    assert cli.main(["publish", "--repo-id", "someone/x"]) == 1
    err = capsys.readouterr().err
    assert "HF_TOKEN" in err and "--token-file" in err
    with pytest.raises(SystemExit):  # there is no way to give a token in argv
        cli.main(["publish", "--repo-id", "someone/x", "--token", "hf_x"])
