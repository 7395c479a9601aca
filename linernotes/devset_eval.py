"""Score the gates on a hand-written dev set (devsets/<name>/{dev,dev2,holdout}.jsonl).

    python -m linernotes.devset_eval grounding --split dev|dev2|holdout|holdout2|holdout3|all
                                               [--show N] [--json PATH] [--catalog DIR]

Each row names an item and a listener of the ingested catalog, a note, the gate it is
scored against (`gate`) and whether that gate should pass or fail it (`expect`). The
rows are rebuilt into `Item` / `Listener` records from the catalog and judged with
`linernotes.domain.gates.run_gates` and a `CatalogIndex` over the same catalog, the way
synth's ApplyGates step does (full listener record, see devsets/grounding/README.md).

Positive = the row should fail; predicted positive = the row's named gate failed.
A row naming a gate that `run_gates` does not return (today: "usefulness") is counted
as "not scored", never as a hit or a miss. A malformed row or one whose ids are not in
the catalog is reported (file, line, field) and skipped, not fatal.

The gate engineer can call `load_rows`, `resolve`, `score` and `format_report` from
Python with any judge: `judge(row, item, listener) -> {gate name: GateResult | dict}`.

The rule of the set (changed 2026-12-04): `dev`, `dev2`, `holdout` and `holdout2` are tuning
splits (holdout became one on 2026-12-04, after its misses were read; holdout2 became one on
2026-12-04, second round); `holdout3` is the reported, never-tuned split. Like holdout and
holdout2, holdout3 prints no misclassified rows unless `--show` is given, so a tuning run never
shows its notes. A split whose file does not exist
yet is skipped with a note under `--split all` (naming it alone reports the missing file).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from linernotes.records import Item, Listener

DEVSETS_DIR = Path(__file__).resolve().parent.parent / "devsets"
# dev, dev2, holdout and holdout2 are tuning splits; holdout3 is the reported never-tuned one
# (devsets/grounding/README.md; holdout became a tuning split on 2026-12-04, holdout2 on
# 2026-12-04, second round).
SPLITS = ("dev", "dev2", "holdout", "holdout2", "holdout3")
# Splits whose misclassified rows are not printed unless asked (--show N): holdout3, the reported
# split, so a tuning run never shows its notes; holdout and holdout2 keep their old quiet default.
QUIET_SPLITS = ("holdout", "holdout2", "holdout3")
EXPECTS = ("pass", "fail")
GATES = ("grounding", "usefulness", "safety")
PASS_CLASSES = ("grounded", "grounded_tricky", "useful")
FAIL_CLASSES = ("wrong_entity", "relation", "listener_fact_moved", "near_name", "unsupported_claim",
                "listener_claim", "number", "vacuous")
CLASSES = PASS_CLASSES + FAIL_CLASSES
REQUIRED = ("id", "split", "item_id", "listener_id", "note", "facts_used", "expect", "gate", "class",
            "span", "why")

Judge = Callable[[dict[str, Any], Item, Listener], Mapping[str, Any]]


@dataclass
class Problem:
    """A row that could not be used: where it is and what is wrong with it."""

    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: field {self.field!r}: {self.message}"


def check_row(row: Any) -> tuple[str, str] | None:
    """(field, message) for the first thing wrong with a row, or None."""
    if not isinstance(row, dict):
        return "<row>", f"not a JSON object ({type(row).__name__})"
    for key in REQUIRED:
        if key not in row:
            return key, "missing"
    for key in ("id", "item_id", "listener_id", "note", "why"):
        if not isinstance(row[key], str) or not row[key].strip():
            return key, "must be a non-empty string"
    if row["split"] not in SPLITS:
        return "split", f"{row['split']!r} is not one of {SPLITS}"
    if row["expect"] not in EXPECTS:
        return "expect", f"{row['expect']!r} is not one of {EXPECTS}"
    if row["gate"] not in GATES:
        return "gate", f"{row['gate']!r} is not one of {GATES}"
    if row["class"] not in CLASSES:
        return "class", f"{row['class']!r} is not one of {CLASSES}"
    want = "pass" if row["class"] in PASS_CLASSES else "fail"
    if row["expect"] != want:
        return "expect", f"class {row['class']!r} expects {want!r}"
    if not isinstance(row["facts_used"], list):
        return "facts_used", "must be a list"
    if not isinstance(row["span"], str):
        return "span", "must be a string"
    if row["expect"] == "fail" and (not row["span"] or row["span"] not in row["note"]):
        return "span", "a failing row's span must occur verbatim in the note"
    return None


def load_rows(name: str = "grounding", split: str = "all",
              root: str | Path | None = None) -> tuple[list[dict[str, Any]], list[Problem]]:
    """Valid rows of devsets/<name>/<split>.jsonl (split "all": every split), plus problems.

    Under "all" a split file that does not exist is left out (see `present_splits`): a new
    split being written must not break scoring of the others. A split named alone and
    missing is a problem.
    """
    folder = Path(root) if root is not None else DEVSETS_DIR / name
    splits = present_splits(folder) if split == "all" else (split,)
    rows: list[dict[str, Any]] = []
    problems: list[Problem] = []
    for sp in splits:
        path = folder / f"{sp}.jsonl"
        if not path.exists():
            problems.append(Problem(str(path), 0, "<file>", "no such file"))
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.append(Problem(str(path), n, "<json>", str(exc)))
                continue
            bad = check_row(row)
            if bad is None and row["split"] != sp:
                bad = ("split", f"{row['split']!r} in {path.name}")
            if bad is not None:
                problems.append(Problem(str(path), n, *bad))
                continue
            rows.append({**row, "_file": str(path), "_line": n})
    return rows, problems


def present_splits(folder: str | Path) -> tuple[str, ...]:
    """The splits of SPLITS whose file exists in `folder`, in SPLITS order."""
    return tuple(sp for sp in SPLITS if (Path(folder) / f"{sp}.jsonl").exists())


def resolve(rows: Iterable[dict[str, Any]], items: Mapping[str, Item],
            listeners: Mapping[str, Listener]) -> tuple[list[tuple[dict[str, Any], Item, Listener]], list[Problem]]:
    """Rows with their catalog records; a row whose ids are missing becomes a problem."""
    out, problems = [], []
    for row in rows:
        where = (row.get("_file", "?"), row.get("_line", 0))
        item = items.get(row["item_id"])
        listener = listeners.get(row["listener_id"])
        if item is None:
            problems.append(Problem(*where, "item_id", f"{row['item_id']!r} not in the catalog"))
        elif listener is None:
            problems.append(Problem(*where, "listener_id", f"{row['listener_id']!r} not in the catalog"))
        else:
            out.append((row, item, listener))
    return out, problems


def _verdict(result: Any) -> tuple[bool, list[str]]:
    """(passed, reasons) of a GateResult or a plain dict."""
    if isinstance(result, Mapping):
        return bool(result.get("passed")), list(result.get("reasons") or [])
    return bool(result.passed), list(result.reasons or [])


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


@dataclass
class Report:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    not_scored: dict[str, int] = field(default_factory=dict)  # gate -> rows
    per_class: dict[str, dict[str, int]] = field(default_factory=dict)  # class -> {n, correct}
    per_gate: dict[str, dict[str, int]] = field(default_factory=dict)  # gate -> {n, correct}
    errors: list[dict[str, Any]] = field(default_factory=list)  # misclassified rows
    skipped: list[str] = field(default_factory=list)  # problems, as text

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    @property
    def precision(self) -> float | None:
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float | None:
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        if p is None or r is None or p + r == 0:
            return None if p is None or r is None else 0.0
        return 2 * p * r / (p + r)

    @property
    def false_alarm_rate(self) -> float | None:
        return _ratio(self.fp, self.fp + self.tn)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_scored": self.n, "tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn,
            "precision": self.precision, "recall": self.recall, "f1": self.f1,
            "false_alarm_rate": self.false_alarm_rate, "not_scored": self.not_scored,
            "per_class": {c: {**v, "rate": _ratio(v["correct"], v["n"])} for c, v in self.per_class.items()},
            "per_gate": {g: {**v, "rate": _ratio(v["correct"], v["n"])} for g, v in self.per_gate.items()},
            "skipped": self.skipped,
            "errors": self.errors,
        }


def score(cases: Iterable[tuple[dict[str, Any], Item, Listener]], judge: Judge,
          skipped: Iterable[Problem | str] = ()) -> Report:
    """Judge every (row, item, listener) and count against each row's named gate.

    `per_class[c]["correct"]` counts detected failures for failing classes and clean
    passes for passing ones, so its rate is the class recall / the class pass rate.
    """
    rep = Report(skipped=[str(p) for p in skipped])
    for row, item, listener in cases:
        gates = judge(row, item, listener)
        gate = row["gate"]
        if gate not in gates:
            rep.not_scored[gate] = rep.not_scored.get(gate, 0) + 1
            continue
        passed, reasons = _verdict(gates[gate])
        should_fail = row["expect"] == "fail"
        if should_fail and not passed:
            rep.tp += 1
        elif should_fail:
            rep.fn += 1
        elif not passed:
            rep.fp += 1
        else:
            rep.tn += 1
        correct = should_fail != passed
        for table, key in ((rep.per_class, row["class"]), (rep.per_gate, gate)):
            slot = table.setdefault(key, {"n": 0, "correct": 0})
            slot["n"] += 1
            slot["correct"] += int(correct)
        if not correct:
            rep.errors.append({"id": row["id"], "class": row["class"], "gate": gate, "expect": row["expect"],
                               "note": row["note"], "span": row["span"], "why": row["why"],
                               "gate_passed": passed, "reasons": reasons})
    return rep


def gates_judge(index: Any) -> Judge:
    """The production gates (`run_gates`) over `index`, as synth's ApplyGates calls them."""
    from linernotes.domain.gates import run_gates

    def judge(row: dict[str, Any], item: Item, listener: Listener) -> Mapping[str, Any]:
        return run_gates(row["note"], row.get("facts_used") or [], item, listener, index)

    return judge


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def format_report(title: str, rep: Report, show: int = 10) -> str:
    lines = [f"== {title}: {rep.n} rows scored"]
    lines.append(f"  precision {_fmt(rep.precision)}  recall {_fmt(rep.recall)}  F1 {_fmt(rep.f1)}  "
                 f"(tp {rep.tp} fp {rep.fp} fn {rep.fn} tn {rep.tn})")
    lines.append(f"  false-alarm rate on expected passes: {_fmt(rep.false_alarm_rate)} "
                 f"({rep.fp} of {rep.fp + rep.tn})")
    for gate, n in sorted(rep.not_scored.items()):
        lines.append(f"  not scored (no {gate} gate): {n} rows")
    if rep.skipped:
        lines.append(f"  skipped rows: {len(rep.skipped)}")
        lines += [f"    {p}" for p in rep.skipped[:20]]
    lines.append("  per class (fail classes: recall; pass classes: pass rate):")
    order = [c for c in CLASSES if c in rep.per_class]
    for c in order:
        v = rep.per_class[c]
        kind = "pass" if c in PASS_CLASSES else "fail"
        lines.append(f"    {c:<20} {kind}  {_fmt(_ratio(v['correct'], v['n']))}  ({v['correct']}/{v['n']})")
    if len(rep.per_gate) > 1:
        lines.append("  per gate: " + ", ".join(f"{g} {_fmt(_ratio(v['correct'], v['n']))} ({v['correct']}/{v['n']})"
                                                for g, v in sorted(rep.per_gate.items())))
    if show and rep.errors:
        lines.append(f"  misclassified ({len(rep.errors)}; showing {min(show, len(rep.errors))}):")
        for e in rep.errors[:show]:
            verdict = "passed" if e["gate_passed"] else "failed"
            lines.append(f"    [{e['id']}] {e['class']} expect {e['expect']}, {e['gate']} {verdict}: {e['note']}")
            if e["span"]:
                lines.append(f"        span: {e['span']!r} ({e['why']})")
            if e["reasons"]:
                lines.append(f"        reasons: {'; '.join(e['reasons'][:4])}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m linernotes.devset_eval", description=__doc__.split("\n\n")[0])
    ap.add_argument("name", help="devset folder under devsets/ (e.g. grounding)")
    ap.add_argument("--split", choices=(*SPLITS, "all"), default="dev")
    ap.add_argument("--show", type=int, default=None,
                    help="misclassified rows to print per split (default: 10 for the tuning splits, 0 for "
                         "holdout, holdout2 and holdout3 (holdout3 is the reported never-tuned split: "
                         "tuning runs must not read its rows)")
    ap.add_argument("--json", dest="json_path", help="write the numbers here")
    ap.add_argument("--catalog", help="ingested catalog folder (default: LINERNOTES_HOME/catalog)")
    ap.add_argument("--root", help="folder holding the split files (default: devsets/<name>)")
    args = ap.parse_args(argv)

    from linernotes import paths
    from linernotes.domain.gate_index import load_gate_index
    from synth.catalog.ingest import load_catalog

    rows, problems = load_rows(args.name, args.split, args.root)
    catalog_dir = Path(args.catalog) if args.catalog else paths.catalog_dir()
    try:
        catalog = load_catalog(catalog_dir)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    index = load_gate_index(catalog_dir)
    listeners = {lst.listener_id: lst for lst in catalog.listeners}
    cases, missing = resolve(rows, catalog.items, listeners)
    problems += missing
    for p in problems:
        print(f"skipped: {p}", file=sys.stderr)
    judge = gates_judge(index)

    folder = Path(args.root) if args.root else DEVSETS_DIR / args.name
    if args.split == "all":
        splits = present_splits(folder)
        for sp in SPLITS:
            if sp not in splits:
                print(f"note: split {sp} has no file {folder / (sp + '.jsonl')}; skipped")
    else:
        splits = (args.split,)
    out: dict[str, Any] = {"devset": args.name, "catalog": str(catalog_dir), "splits": {}}
    for sp in splits:
        sp_cases = [c for c in cases if c[0]["split"] == sp]
        sp_problems = [p for p in problems if Path(p.file).stem == sp]
        rep = score(sp_cases, judge, sp_problems)
        show = args.show if args.show is not None else (0 if sp in QUIET_SPLITS else 10)
        print(format_report(f"{args.name}/{sp}", rep, show))
        out["splits"][sp] = rep.to_dict()
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(out, indent=2, ensure_ascii=False), encoding="utf-8")
        print(f"wrote {args.json_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
