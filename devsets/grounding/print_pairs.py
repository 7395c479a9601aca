"""Print the (item, listener) pairs a writer reads before hand-writing grounding rows.

    python devsets/grounding/print_pairs.py pairs --seeds 505 606 707 [--n-per-type 12]
    python devsets/grounding/print_pairs.py find "Madonna" [--field creator] [--type music]
    python devsets/grounding/print_pairs.py emit --out devsets/grounding/holdout2.jsonl TUPLES.py [...]

`pairs` prints each planned pair the way the teacher's prompt shows it (Item.facts() and
linernotes.domain.prompts.listener_context, first five history entries), skipping items that
occur in any existing split (item ids only: the writer must not read other splits' notes).
`find` looks a name up in the catalog so that every wrong name in a failing row is a real name
of another row. `emit` turns hand-typed tuples (a Python file holding `ROWS`, optionally `DROP`: note prefixes
written but left out) into JSON lines with ids and fields; it generates no text.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

GROUNDING = Path(__file__).resolve().parent
EXISTING_SPLITS = ("dev", "dev2", "holdout", "holdout2", "holdout3")


def _used_item_ids() -> set[str]:
    used: set[str] = set()
    for split in EXISTING_SPLITS:
        path = GROUNDING / f"{split}.jsonl"
        if not path.exists():  # a split still being written
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                used.add(json.loads(line)["item_id"])
    return used


def print_pairs(seeds: list[int], n_per_type: int) -> None:
    from linernotes.config import SynthConfig
    from linernotes.domain.prompts import listener_context
    from synth.catalog.ingest import load_catalog
    from synth.pipeline import plan_rows

    catalog = load_catalog()
    used = _used_item_ids()
    shown: set[str] = set()
    for seed in seeds:
        for row in plan_rows(catalog, SynthConfig(seed=seed, n_per_type=n_per_type)):
            item_id = row.item.item_id
            if item_id in used or item_id in shown:
                continue
            shown.add(item_id)
            print(f"=== seed {seed}  {item_id}  {row.listener.listener_id}")
            print("item:", json.dumps(row.item.facts(), ensure_ascii=False))
            print("listener:", json.dumps(listener_context(row.listener), ensure_ascii=False))


def find(text: str, field: str, item_type: str | None, limit: int) -> None:
    import pandas as pd

    from linernotes import paths

    items = pd.read_parquet(paths.catalog_dir() / "items.parquet")
    if item_type:
        items = items[items["item_type"] == item_type]
    hits = items[items[field].fillna("").astype(str).str.contains(text, case=False, regex=False)]
    cols = [c for c in ("item_id", "title", "creator", "collection", "publisher", "year") if c in items]
    print(f"{len(hits)} rows with {field} containing {text!r}")
    print(hits[cols].head(limit).to_string(index=False))


PASS_CLASSES = {"grounded", "grounded_tricky", "useful"}
FAIL_CLASSES = {"wrong_entity", "relation", "near_name", "listener_fact_moved", "unsupported_claim",
                "listener_claim", "number", "vacuous"}


def _literal_assignments(path: Path) -> dict:
    """NAME = <literal> assignments of a tuple file, read as data (ast.literal_eval), never run."""
    import ast

    out = {}
    for node in ast.parse(path.read_text(encoding="utf-8"), str(path)).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError as exc:
                raise ValueError(f"{path}:{node.lineno}: {node.targets[0].id} is not a literal ({exc})") from exc
    if "ROWS" not in out:
        raise ValueError(f"{path}: no ROWS = [...] list")
    return out


def emit(paths_in: list[str], out: str, split: str) -> None:
    rows: list[dict] = []
    for path in paths_in:
        ns = _literal_assignments(Path(path))
        drop = ns.get("DROP", [])
        for n, tup in enumerate(ns["ROWS"]):
            item_id, listener_id, cls, note, facts_used, span, why, *rest = tup
            if any(note.startswith(d) for d in drop):
                continue
            where = f"{path} tuple {n}"
            if cls not in PASS_CLASSES | FAIL_CLASSES:
                raise ValueError(f"{where}: unknown class {cls!r}")
            expect = "pass" if cls in PASS_CLASSES else "fail"
            if expect == "fail" and (not span or span not in note):
                raise ValueError(f"{where}: span {span!r} is not in the note")
            if expect == "pass" and span:
                raise ValueError(f"{where}: a pass row has a span")
            rows.append({"id": "", "split": split, "item_id": item_id, "listener_id": listener_id, "note": note,
                         "facts_used": list(facts_used), "expect": expect,
                         "gate": rest[0] if rest else "grounding", "class": cls, "span": span, "why": why})
    for i, row in enumerate(rows, 1):
        row["id"] = f"{split}-{i:03d}"
    with open(out, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} rows to {out}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pairs")
    p.add_argument("--seeds", type=int, nargs="+", required=True)
    p.add_argument("--n-per-type", type=int, default=12)
    f = sub.add_parser("find")
    f.add_argument("text")
    f.add_argument("--field", default="creator")
    f.add_argument("--type", dest="item_type")
    f.add_argument("--limit", type=int, default=15)
    e = sub.add_parser("emit")
    e.add_argument("tuples", nargs="+")
    e.add_argument("--out", required=True)
    e.add_argument("--split", default="holdout2")
    args = parser.parse_args(argv)
    if args.cmd == "pairs":
        print_pairs(args.seeds, args.n_per_type)
    elif args.cmd == "emit":
        emit(args.tuples, args.out, args.split)
    else:
        find(args.text, args.field, args.item_type, args.limit)


if __name__ == "__main__":
    main()
