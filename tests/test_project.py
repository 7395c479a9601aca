"""The project's own shape: design-card layout, environment.yml == pyproject."""

import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_design_card_layout():
    for name in ("notebooks", "curation", "synth", "recommend", "finetune", "serve", "tests"):
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
            "linernotes.runs, linernotes.domain.prompts, linernotes.domain.gates, synth.cache, synth.backends, curation, recommend, finetune, serve\n"
            "heavy = [m for m in ('torch', 'vllm', 'unsloth', 'transformers', 'implicit', 'ray') if m in sys.modules]\n"
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_cli_help_lists_commands():
    out = subprocess.run([sys.executable, "-m", "linernotes.cli", "--help"], capture_output=True,
                         text=True, check=True)
    for cmd in ("setup", "synth", "demo", "services"):
        assert cmd in out.stdout


def test_offline_hub_switch_is_set_in_one_place():
    """Library code turns the Hugging Face offline switches on through
    `linernotes.paths.use_offline_hub` only, never variable by variable."""
    import re

    pattern = re.compile(r"""setdefault\(\s*["'](HF_HUB_OFFLINE|TRANSFORMERS_OFFLINE|HF_DATASETS_OFFLINE)|"""
                         r"""["'](HF_HUB_OFFLINE|TRANSFORMERS_OFFLINE)["']\s*:\s*["']1""")
    offenders = []
    for folder in ("linernotes", "synth", "curation", "recommend", "finetune", "serve", "notebooks", "bench"):
        for path in (ROOT / folder).rglob("*.py"):
            if path == ROOT / "linernotes" / "paths.py" or path.parent.name == "services":
                continue  # paths.py is the switch; services/ spell out their child processes' env
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if pattern.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{n}")
    assert not offenders, offenders


# The rooms, lowest first: a room may import the rooms before it, never one after it.
LAYERS = ("linernotes", "synth", "curation", "recommend", "finetune", "serve")


def _import_graph() -> dict[str, dict[str, str]]:
    """module -> {imported project module: "file:line"} for linernotes/ synth/ curation/
    finetune/ serve/, counting every import statement (function-level ones too).
    An import names the module it loads (`from a.b import c`: a.b.c when that is a module,
    else a.b); parent packages are not edges, so re-exports in an __init__ are no cycle."""
    import ast

    files = {}
    for folder in LAYERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            files[name] = path
    modules = set(files)

    def known(dotted: str) -> str | None:
        while dotted and dotted not in modules:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    graph: dict[str, dict[str, str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = graph.setdefault(name, {})
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [known(a.name) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                targets = [known(f"{base}.{a.name}") if f"{base}.{a.name}" in modules else known(base)
                           for a in node.names]
            for t in targets:
                if t and t != name:
                    edges.setdefault(t, f"{path.relative_to(ROOT)}:{node.lineno}")
    return graph


def test_no_import_cycles():
    """No two project modules import each other, directly or through others, even with the
    import hidden inside a function (a cycle there only waits for someone to hoist it)."""
    graph = _import_graph()
    # Tarjan's strongly connected components: every component of 2+ modules holds a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    report = [" <-> ".join(c) + ": " + ", ".join(f"{a} -> {b} ({graph[a][b]})" for a in c for b in graph[a]
                                                  if b in c) for c in cycles]
    assert not cycles, "\n".join(report)


def test_rooms_import_only_the_rooms_below_them():
    """synth <- curation <- recommend <- finetune <- serve (ARCHITECTURE.md). linernotes/ is left
    out as an importer: it holds the entry points (cli, demo, devset_eval), which reach every room
    from inside functions."""
    rank = {room: n for n, room in enumerate(LAYERS)}
    upward = [f"{a} -> {b} ({where})" for a, edges in _import_graph().items() for b, where in edges.items()
              if a.split(".")[0] != "linernotes" and rank[b.split(".")[0]] > rank[a.split(".")[0]]]
    assert not upward, "\n".join(upward)
