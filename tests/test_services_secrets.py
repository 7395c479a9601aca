"""Secrets: never in argv or logs, files 0600 from the first byte, masked in status, keys per URL."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from linernotes.services import argilla, credentials

SERVICES = Path(argilla.__file__).parent


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("LINERNOTES_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _secret_values(creds: dict) -> list[str]:
    return [v for c in creds.values() for k, v in c.items() if k in ("api_key", "password")]


# ------------------------------------------------------------------ argv and logs

def test_setup_argv_carries_no_secret(home):
    creds = argilla._credentials()
    batch = argilla.setup_batch(creds, "linernotes")
    argv = argilla.setup_argv("/stand-in/argilla-venv/bin/python")
    values = _secret_values(creds)
    assert values and all(any(v in cmd for cmd in batch) for v in values)  # the batch has them ...
    assert not [v for v in values if any(v in a for a in argv)]  # ... the command line none
    assert argv[-2:] == ["--batch", "-"]


STAND_IN_ARGILLA = textwrap.dedent("""
    import sys, types
    sys.path.insert(0, {services!r})
    engine = types.ModuleType("argilla_engine")      # stand-in: the real one needs argilla_server
    engine.install_engine = lambda: None
    cli = types.ModuleType("argilla_server.cli")      # stand-in CLI that echoes like argilla-server
    def app(args, prog_name, standalone_mode=True):
        if "--api-key" in args:
            print("User successfully created:")
            print(f"- api_key: {{args[args.index('--api-key') + 1]!r}}")
            print(f"password {{args[args.index('--password') + 1]}}", file=sys.stderr)
    cli.app = app
    sys.modules.update({{"argilla_engine": engine, "argilla_server": types.ModuleType("argilla_server"),
                        "argilla_server.cli": cli}})
    import argilla_launch
    raise SystemExit(argilla_launch.main(sys.argv[1:]))
""")


def test_launcher_reads_the_batch_from_stdin_and_masks_what_the_server_echoes(home, tmp_path):
    creds = argilla._credentials()
    batch = argilla.setup_batch(creds, "linernotes")
    script = tmp_path / "stand_in_launch.py"
    script.write_text(STAND_IN_ARGILLA.format(services=str(SERVICES)))
    run = subprocess.run([sys.executable, str(script), "--batch", "-"], input=json.dumps(batch),
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    log = run.stdout + run.stderr
    assert "User successfully created" in log and "password" in log
    assert not [v for v in _secret_values(creds) if v in log]
    # The old form (batch JSON in argv, visible in `ps`) is refused.
    old = subprocess.run([sys.executable, str(script), "--batch", json.dumps(batch)],
                         capture_output=True, text=True, timeout=60)
    assert old.returncode == 2 and "stdin" in old.stderr


def test_up_logs_no_secret(home, monkeypatch, capsys):
    """What up() prints once the stack is ready: masked keys and where the file is."""
    creds = argilla._credentials()
    stack = argilla.ArgillaStack(api_url="http://127.0.0.1:1", owner_api_key=creds["argilla"]["api_key"],
                                 annotator_api_keys={a: creds[a]["api_key"] for a in argilla.ANNOTATORS},
                                 passwords={u: c["password"] for u, c in creds.items()}, pids={}, ports={})
    argilla._log_ready(stack, creds)
    out = capsys.readouterr().out
    assert str(argilla.credentials_path()) in out and "--show-secrets" in out
    assert not [v for v in _secret_values(creds) if v in out]


# ------------------------------------------------------------------ files

class _CreationWatch:
    """Wraps os.open / io.open: right after a file under `root` is opened for
    writing, records its permission bits (what another user could read while
    it is being written)."""

    def __init__(self, root: Path, monkeypatch):
        self.root, self.modes = str(root), []
        real_os_open, real_io_open = os.open, io.open

        def os_open(path, flags, mode=0o777, *a, **k):
            fd = real_os_open(path, flags, mode, *a, **k)
            if str(path).startswith(self.root) and flags & (os.O_WRONLY | os.O_RDWR):
                self.modes.append((str(path), stat.S_IMODE(os.fstat(fd).st_mode)))
            return fd

        def io_open(file, mode="r", *a, **k):
            fh = real_io_open(file, mode, *a, **k)
            if isinstance(file, (str, os.PathLike)) and str(file).startswith(self.root) \
                    and any(c in mode for c in "wax+"):
                self.modes.append((str(file), stat.S_IMODE(os.fstat(fh.fileno()).st_mode)))
            return fh

        monkeypatch.setattr(os, "open", os_open)
        monkeypatch.setattr(io, "open", io_open)


@pytest.fixture
def open_umask():
    old = os.umask(0)  # the worst case: nothing masks group/other bits
    yield
    os.umask(old)


def test_credentials_file_is_0600_from_creation(home, monkeypatch, open_umask):
    watch = _CreationWatch(home, monkeypatch)
    creds = argilla._credentials()
    path = argilla.credentials_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == creds
    assert watch.modes, "no write seen"
    assert all(mode == 0o600 for _, mode in watch.modes), watch.modes
    assert [p.name for p in path.parent.iterdir()] == ["credentials.json"]  # no temp file left


def test_write_private_replaces_atomically_and_tightens_old_files(tmp_path, monkeypatch, open_umask):
    target = tmp_path / "stack.json"
    target.write_text("old")
    target.chmod(0o644)  # as an older version left it
    watch = _CreationWatch(tmp_path, monkeypatch)
    credentials.write_private(target, '{"k": "v"}')
    assert target.read_text() == '{"k": "v"}' and stat.S_IMODE(target.stat().st_mode) == 0o600
    assert all(mode == 0o600 for _, mode in watch.modes) and watch.modes
    legacy = tmp_path / "legacy.json"
    legacy.write_text("{}")
    legacy.chmod(0o644)
    assert credentials.read_private(legacy) == "{}"
    assert stat.S_IMODE(legacy.stat().st_mode) == 0o600


# ------------------------------------------------------------------ status

STAND_IN_STATE = {"running": True, "api_url": "http://127.0.0.1:6900",
                  "owner_api_key": "argilla.OWNERSECRETKEY123456",
                  "annotator_api_keys": {"annotator": "annotator.ANNSECRETKEY123456"},
                  "passwords": {"argilla": "PASSWORDSECRET99"}, "pids": {"server": 1}, "ports": {"server": 6900}}
STAND_IN_SECRETS = ("OWNERSECRETKEY123456", "ANNSECRETKEY123456", "PASSWORDSECRET99")


def test_status_report_masks_unless_asked(monkeypatch):
    monkeypatch.setattr(argilla, "status", lambda: json.loads(json.dumps(STAND_IN_STATE)))
    masked = json.dumps(argilla.status_report())
    assert not [s for s in STAND_IN_SECRETS if s in masked]
    assert "http://127.0.0.1:6900" in masked and '"annotator"' in masked  # the rest stays readable
    shown = json.dumps(argilla.status_report(show_secrets=True))
    assert all(s in shown for s in STAND_IN_SECRETS)


def test_cli_services_status_masks(monkeypatch, capsys):
    from linernotes import cli

    monkeypatch.setattr(argilla, "status", lambda: json.loads(json.dumps(STAND_IN_STATE)))
    assert cli.main(["services", "status", "argilla"]) == 0
    out = capsys.readouterr().out
    assert "6900" in out and not [s for s in STAND_IN_SECRETS if s in out]
    assert cli.main(["services", "status", "argilla", "--show-secrets"]) == 0
    shown = capsys.readouterr().out
    assert all(s in shown for s in STAND_IN_SECRETS)


def test_mask_never_returns_the_value():
    assert credentials.mask("argilla.abcdefghijklmnop") == "argi…"
    assert credentials.mask("short") == "…" and credentials.mask(None) == "-"
    assert credentials.mask_secrets({"hf_token": "hf_abcdefghijkl", "n": 3}) == {"hf_token": "hf_a…", "n": 3}


# ------------------------------------------------------------------ keys per URL

@pytest.mark.parametrize("url,expected", [
    ("https://api.openai.com/v1", "sk-openai"),
    ("http://127.0.0.1:8080/v1", "none"),
    ("https://judge.example/v1", "none"),
    ("http://api.openai.com/v1", "none"),  # not TLS: not the place for the key
])
def test_judge_default_openai_key_only_for_openai(monkeypatch, url, expected):
    from finetune.config import EvalConfig
    from finetune.evaluate import judge_api_key

    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    cfg = EvalConfig(judge_base_url=url)
    assert cfg.judge_api_key_env == "OPENAI_API_KEY"  # the default name
    assert judge_api_key(cfg) == expected


def test_judge_named_key_goes_to_the_judge_url(monkeypatch):
    from finetune.config import EvalConfig
    from finetune.evaluate import judge_api_key

    monkeypatch.setenv("MY_JUDGE_KEY", "sk-judge")
    assert judge_api_key(EvalConfig(judge_base_url="https://judge.example/v1",
                                    judge_api_key_env="MY_JUDGE_KEY")) == "sk-judge"


def test_api_key_for_rules():
    env = {"K": "v", "OPENAI_API_KEY": "sk-o"}
    f = credentials.api_key_for
    assert f("http://a:1/v1", "K", environ=env) == "v"  # configured next to this URL
    assert f("http://a:1/v1", "K", for_url="http://a:1/v1/", environ=env) == "v"
    assert f("http://b:1/v1", "K", for_url="http://a:1/v1", environ=env) == "none"
    assert f("http://a:1/v1", "K", for_url=None, environ=env) == "none"
    assert f("http://a:1/v1", "OPENAI_API_KEY", environ=env) == "none"
    assert f("https://API.openai.com/v1", None, environ=env) == "sk-o"
    assert f(None, "K", environ=env) == "none"
