"""Push a dataset folder to the Hugging Face Hub, with offline mode off for the push only.

linernotes runs with $HF_HUB_OFFLINE=1 (the CLI and the Makefile set it) so
that no model or dataset load reaches the Hub by accident. An explicit
`linernotes publish --repo-id X` with a token is the one call that should:
`hub_online()` lifts offline mode around it and restores it after.

Tokens come from $HF_TOKEN or a file (`--token-file`), never the command line
(argv is visible to every user in `ps`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

OFFLINE_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")  # the two huggingface_hub reads
NO_TOKEN_HELP = ("needs a Hugging Face write token: set HF_TOKEN, or pass --token-file FILE "
                 "(a file holding the token; create one at https://huggingface.co/settings/tokens). "
                 "A token is never taken on the command line.")


def offline() -> bool:
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes", "on") for v in OFFLINE_ENV)


def read_token(token_file: str | os.PathLike | None = None) -> str | None:
    """The Hub token: the first line of token_file, else $HF_TOKEN, else None."""
    if token_file:
        path = Path(token_file).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"--token-file {path}: no such file")
        lines = path.read_text(encoding="utf-8").strip().splitlines()
        return lines[0].strip() if lines and lines[0].strip() else None
    return os.environ.get("HF_TOKEN") or None


class hub_online:
    """Hub offline mode off inside the block only. huggingface_hub reads
    $HF_HUB_OFFLINE once, at import, into `constants.HF_HUB_OFFLINE` (its HTTP
    hook asks `constants.is_offline_mode()`), so unsetting the variable after
    import changes nothing: flip the constant and the variables, restore both."""

    def __enter__(self) -> "hub_online":
        from huggingface_hub import constants

        self._constants, self._flag = constants, constants.HF_HUB_OFFLINE
        self._env = {v: os.environ.get(v) for v in OFFLINE_ENV}
        for v in OFFLINE_ENV:
            os.environ.pop(v, None)
        constants.HF_HUB_OFFLINE = False
        return self

    def __exit__(self, *exc) -> None:
        self._constants.HF_HUB_OFFLINE = self._flag
        for v, value in self._env.items():
            if value is not None:
                os.environ[v] = value


def push_folder(folder: str | os.PathLike, repo_id: str, token: str, *, private: bool = True,
                commit_message: str = "linernotes: publish labeled data") -> str:
    """Create (if needed) the dataset repo and upload folder; returns the repo URL."""
    from huggingface_hub import HfApi

    if offline():
        print("[publish] HF_HUB_OFFLINE is set (linernotes sets it so nothing else reaches the Hub); "
              "off for this push only", file=sys.stderr, flush=True)
    with hub_online():
        api = HfApi(token=token)
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True, token=token)
        info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="dataset",
                                 commit_message=commit_message, token=token)
    return str(getattr(info, "repo_url", None) or f"https://huggingface.co/datasets/{repo_id}")
