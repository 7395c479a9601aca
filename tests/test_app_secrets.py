"""No marimo app shows the process environment: each app is exported to HTML headless
(`marimo export html` runs every cell; the costly ones sit behind unpressed run buttons)
with planted secrets in its environment, and no secret-like value may appear in the page.

Before the fix the setup cells ended with `paths.use_offline_hub()`, which returned
`os.environ`: the page opened with `environ({... 'HF_TOKEN': ...})`.
"""

from __future__ import annotations

import html
import json
import os
import re
import secrets
import subprocess
import sys

import pytest

from linernotes import paths

APPS = ("01_generate.py", "02_curate.py", "03_label.py", "04_finetune.py", "05_serve.py")
SECRET_NAME = re.compile(r"TOKEN|KEY|SECRET|PASSW|CREDENTIAL|AUTH", re.I)


def planted_env() -> dict[str, str]:
    """Fresh random values (letters, digits, '-': they survive HTML/JSON escaping as is)."""
    def value(prefix: str) -> str:
        return prefix + secrets.token_hex(12)

    return {"LINERNOTES_TEST_SECRET": value("sk-test-"), "HF_TOKEN": value("hf_"),
            "OPENAI_API_KEY": value("sk-"), "ARGILLA_API_KEY": value("argilla-"),
            # not secret-named: a dump of the whole environment would show it too
            "LINERNOTES_TEST_PLAIN": value("plain-")}


def leaked_values(page: str, env: dict[str, str]) -> dict[str, str]:
    """{name: value} of secret-like (or planted) variables of length >= 8 found in `page`,
    raw or after undoing HTML entities and JSON escapes."""
    decoded = html.unescape(page)
    variants = [page, decoded, decoded.encode("utf-8", "replace").decode("unicode_escape", "replace")]
    suspects = {k: v for k, v in env.items()
                if len(v) >= 8 and (SECRET_NAME.search(k) or k.startswith("LINERNOTES_TEST_"))}
    return {k: v for k, v in suspects.items() if any(v in text for text in variants)}


def test_leak_check_sees_an_escaped_environment_dump():
    env = planted_env()
    page = html.escape(json.dumps(repr(dict(env))))  # what marimo made of os.environ
    assert set(leaked_values(page, env)) == set(env)
    assert leaked_values("<p>nothing here</p>", env) == {}


def test_use_offline_hub_returns_nothing():
    env: dict[str, str] = {"HF_TOKEN": "hf_not_shown_123"}
    assert paths.use_offline_hub(env) is None
    assert env["HF_HUB_OFFLINE"] == "1"


@pytest.mark.parametrize("app", APPS)
def test_rendered_app_shows_no_environment_value(app, fixture_catalog_dir, tmp_path):
    planted = planted_env()
    env = {**os.environ, **planted, "LINERNOTES_CATALOG_DIR": str(fixture_catalog_dir),
           "LINERNOTES_RUNS": str(tmp_path / "runs")}
    env.pop("LINERNOTES_LABEL_RESPONSES", None)  # the label app as a person opens it
    out = tmp_path / f"{app}.html"
    proc = subprocess.run([sys.executable, "-m", "marimo", "export", "html",
                           str(paths.REPO_ROOT / "notebooks" / app), "-o", str(out), "-f"],
                          capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    assert out.exists(), proc.stdout[-2000:] + proc.stderr[-2000:]
    page = out.read_text(errors="replace")
    assert "environ(" not in html.unescape(page)
    leaked = leaked_values(page, {**os.environ, **planted})
    assert not leaked, f"{app} shows environment values of {sorted(leaked)}"
