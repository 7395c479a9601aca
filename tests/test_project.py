"""The project's own shape: design-card layout, environment.yml == pyproject."""

import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_design_card_layout():
    for name in ("notebooks", "curation", "synth", "finetune", "serve", "tests"):
        assert (ROOT / name).is_dir(), name
    for name in ("environment.yml", "README.md", "pyproject.toml", ".ci/run"):
        assert (ROOT / name).is_file(), name


def test_environment_yml_matches_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["name"] == "linernotes"
    deps = env["dependencies"]
    assert "python=3.11" in deps
    pip_section = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    env_pins = sorted(p for p in pip_section if not p.startswith("-e"))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert env_pins == sorted(project["dependencies"])
    assert project["requires-python"].startswith(">=3.11")


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci/run").read_text()
    assert "make test" in readme and "make demo" in readme
    assert "make test" in ci


def test_importing_packages_loads_no_heavy_modules():
    code = ("import sys, linernotes, linernotes.cli, linernotes.records, linernotes.config, "
            "linernotes.runs, linernotes.domain.prompts, linernotes.domain.gates, synth.cache, synth.backends, curation, finetune, serve\n"
            "heavy = [m for m in ('torch', 'vllm', 'unsloth', 'transformers') if m in sys.modules]\n"
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_cli_help_lists_commands():
    out = subprocess.run([sys.executable, "-m", "linernotes.cli", "--help"], capture_output=True,
                         text=True, check=True)
    for cmd in ("setup", "synth", "demo", "services"):
        assert cmd in out.stdout
