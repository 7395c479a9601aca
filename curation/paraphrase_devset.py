"""The hand-written paraphrase pair set (devsets/paraphrase/): read, convert, resolve.

The pairs are written by hand in `devsets/paraphrase/<split>.txt` (one block per
item and listener: the first note `A:`, then one line per second note, prefixed
by its class) and converted line for line into `<split>.jsonl`, the file every
tool reads. Conversion only numbers and labels rows; it writes no text.

Row: id, split, item_id, item_id_b (the second note's item; = item_id unless the
class is different_item / same_template_different_item), listener_id, a, b,
label ("duplicate" | "distinct"), class.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from linernotes.records import Item, Listener

DEVSET_DIR = Path(__file__).resolve().parent.parent / "devsets" / "paraphrase"
# dev, holdout and holdout2 are tuning splits (holdout and then holdout2 since 2026-12-04,
# after their misclassifications were read); holdout3 is the reported split: scored, never
# read while tuning.
TUNING_SPLITS = ("dev", "holdout", "holdout2")
REPORTED_SPLITS = ("holdout3",)
SPLITS = TUNING_SPLITS + REPORTED_SPLITS

DUPLICATE_CLASSES = ("surface_edit", "paraphrase")
DISTINCT_CLASSES = ("same_item_different_claim", "different_item", "same_template_different_item")
CODES = {"S": "surface_edit", "P": "paraphrase", "N": "same_item_different_claim",
         "D": "different_item", "T": "same_template_different_item"}
OTHER_ITEM_CLASSES = ("different_item", "same_template_different_item")


def parse_source(text: str, split: str) -> list[dict[str, Any]]:
    """Rows of a hand-written source file (format in the module docstring)."""
    rows: list[dict[str, Any]] = []
    item_id = listener_id = a = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("@"):
            parts = line[1:].split()
            if len(parts) != 3 or parts[0] != split:
                raise ValueError(f"line {lineno}: expected '@ {split} <item_id> <listener_id>', got {line!r}")
            _, item_id, listener_id = parts
            a = None
            continue
        if line.startswith("A:"):
            a = line[2:].strip()
            continue
        cls = CODES.get(line[:1])
        if cls is None or item_id is None or a is None:
            raise ValueError(f"line {lineno}: expected A:/S:/P:/N:/D <id>:/T <id>: inside a block, got {line!r}")
        head, sep, b = line.partition(": ")
        if not sep:
            raise ValueError(f"line {lineno}: no ': ' after the class code")
        head_parts = head.split()
        item_b = head_parts[1] if len(head_parts) > 1 else item_id
        if (cls in OTHER_ITEM_CLASSES) != (item_b != item_id):
            raise ValueError(f"line {lineno}: {cls} needs {'another' if cls in OTHER_ITEM_CLASSES else 'the same'} item")
        rows.append({"id": f"{split}-{len(rows) + 1:03d}", "split": split, "item_id": item_id,
                     "item_id_b": item_b, "listener_id": listener_id, "a": a, "b": b.strip(),
                     "label": "duplicate" if cls in DUPLICATE_CLASSES else "distinct", "class": cls})
    return rows


def has_split(split: str, folder: Path = DEVSET_DIR) -> bool:
    """Whether the split's converted pairs exist (holdout3 may not be written yet)."""
    return (folder / f"{split}.jsonl").exists()


def build_jsonl(split: str, folder: Path = DEVSET_DIR) -> Path:
    rows = parse_source((folder / f"{split}.txt").read_text(encoding="utf-8"), split)
    out = folder / f"{split}.jsonl"
    with out.open("w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    return out


def load_pairs(split: str = "all", folder: Path = DEVSET_DIR) -> list[dict[str, Any]]:
    """Pairs of one split, of "tuning" (dev + holdout + holdout2) or of "all" (every
    split whose file exists; a missing holdout3 is skipped, a missing named split is an error)."""
    if split == "all":
        splits = tuple(s for s in SPLITS if has_split(s, folder))
    elif split == "tuning":
        splits = TUNING_SPLITS
    else:
        splits = (split,)
    out = []
    for s in splits:
        if s not in SPLITS:
            raise ValueError(f"split {s!r}: expected one of {SPLITS}, 'tuning' or 'all'")
        if not has_split(s, folder):
            raise FileNotFoundError(f"{folder / (s + '.jsonl')}: split {s!r} not built "
                                    f"(write {s}.txt, then python -m curation.paraphrase_eval --build-jsonl)")
        with (folder / f"{s}.jsonl").open(encoding="utf-8") as fh:
            out += [json.loads(line) for line in fh if line.strip()]
    return out


def _clean(v: Any) -> Any:
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def resolve_records(pairs: list[dict[str, Any]], catalog_dir: Path | None = None
                    ) -> tuple[dict[str, Item], dict[str, Listener]]:
    """The real Item / Listener records the pairs name, read from the ingested catalog
    (only the rows needed: a filtered parquet read, not the whole catalog)."""
    import pandas as pd

    from linernotes import paths

    folder = Path(catalog_dir) if catalog_dir is not None else paths.catalog_dir()
    item_ids = sorted({p["item_id"] for p in pairs} | {p["item_id_b"] for p in pairs})
    listener_ids = sorted({p["listener_id"] for p in pairs})
    it = pd.read_parquet(folder / "items.parquet", filters=[("item_id", "in", item_ids)])
    ls = pd.read_parquet(folder / "listeners.parquet", filters=[("listener_id", "in", listener_ids)])
    items = {}
    for row in it.to_dict("records"):
        row = {k: _clean(v) for k, v in row.items()}
        row["genres"] = list(row.get("genres") if row.get("genres") is not None else [])
        if row.get("year") is not None:
            row["year"] = int(row["year"])
        items[row["item_id"]] = Item(**row)
    listeners = {}
    for row in ls.to_dict("records"):
        row = {k: _clean(v) for k, v in row.items() if k != "listener_type"}
        row["history"] = json.loads(row["history"]) if isinstance(row.get("history"), str) else []
        row["taste"] = list(row.get("taste") if row.get("taste") is not None else [])
        listeners[row["listener_id"]] = Listener(**row)
    return items, listeners


def build_all(folder: Path = DEVSET_DIR) -> list[Path]:
    """Convert every split whose hand-written .txt exists (holdout3 only once written)."""
    return [build_jsonl(s, folder) for s in SPLITS if (folder / f"{s}.txt").exists()]


if __name__ == "__main__":
    for out in build_all():
        print(out)
