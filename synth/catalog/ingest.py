"""Catalog ingest: music (Chinook), books (Book-Crossing) and podcasts -> one
`Item` / `Listener` schema, written as

    items.parquet      one row per Item (genres as list<string>)
    listeners.parquet  one row per Listener (history as a JSON string)
    quarantine.jsonl   one bad source row per line: source, source_row, field, rule, error, raw
    report.json        per-source counts (cleaned / quarantined per bad-row rule), timings, notes, input hash

into `out_dir` (default `paths.catalog_dir()`). Re-running with the same inputs
(file names + sizes), sources and options reuses the existing output unless
`force=True`.

    python -m synth.catalog.ingest [--force] [--sources music book] [--out DIR] [--max-items N]
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Any

from linernotes import assets, paths
from linernotes.records import Item, Listener, content_hash
from synth.catalog import books, chinook, podcasts
from synth.catalog.common import (
    SOURCE_TYPES, SourceResult, find_file, listener_type, read_items, read_listeners, write_items,
    write_listeners,
)

INGEST_VERSION = 2  # bump when reader logic changes, so cached output is rebuilt

READERS: dict[str, Callable[[Path], SourceResult]] = {
    "music": chinook.read, "book": books.read, "podcast": podcasts.read,
}
ASSETS = {"music": assets.CHINOOK, "book": assets.BOOKS, "podcast": assets.PODCASTS}
INPUT_FILES = {"music": chinook.FILES, "book": books.FILES, "podcast": podcasts.FILES}
OUTPUTS = ("items.parquet", "listeners.parquet", "quarantine.jsonl", "report.json")


# --------------------------------------------------------------------------- report


@dataclass
class SourceCounts:
    read: int = 0            # source item rows looked at (tracks, books, shows)
    items: int = 0           # Items kept
    listeners: int = 0       # Listeners built
    quarantined: int = 0     # bad rows (any file of the source) sent to quarantine.jsonl
    skipped: int = 0         # rows left out on purpose (see skipped_by_reason)
    skipped_by_reason: dict[str, int] = field(default_factory=dict)
    cleaned_by_rule: dict[str, int] = field(default_factory=dict)      # values repaired (rows flow on)
    quarantined_by_rule: dict[str, int] = field(default_factory=dict)  # see synth.catalog.common
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


@dataclass
class IngestReport:
    out_dir: str
    sources: dict[str, SourceCounts]
    input_hash: str
    seconds: float = 0.0
    created_at: str = ""
    reused: bool = False     # True when an earlier, identical ingest was reused
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def totals(self) -> SourceCounts:
        t = SourceCounts()
        for c in self.sources.values():
            t.read += c.read
            t.items += c.items
            t.listeners += c.listeners
            t.quarantined += c.quarantined
            t.skipped += c.skipped
            t.seconds += c.seconds
        return t

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "IngestReport":
        data = dict(data)
        data["sources"] = {k: SourceCounts(**v) for k, v in data["sources"].items()}
        return cls(**data)

    def table(self):
        from rich.table import Table

        title = f"catalog ingest -> {self.out_dir}" + (" (reused)" if self.reused else "")
        table = Table(title=title)
        for col in ("source", "read", "items", "listeners", "quarantined", "skipped", "seconds"):
            table.add_column(col, justify="left" if col == "source" else "right")

        def add(name: str, c: SourceCounts, **kw) -> None:
            table.add_row(name, f"{c.read:,}", f"{c.items:,}", f"{c.listeners:,}", f"{c.quarantined:,}",
                          f"{c.skipped:,}", f"{c.seconds:.1f}", **kw)

        for name, c in self.sources.items():
            add(name, c)
        if len(self.sources) > 1:
            add("total", self.totals, style="bold")
        return table

    def _lines(self) -> list[str]:
        out = []
        for name, c in self.sources.items():
            for reason, n in c.skipped_by_reason.items():
                out.append(f"  {name}: skipped {n:,} - {reason}")
            for rule, n in c.cleaned_by_rule.items():
                out.append(f"  {name}: cleaned {n:,} values - {rule}")
            for rule, n in c.quarantined_by_rule.items():
                out.append(f"  {name}: quarantined {n:,} rows - {rule}")
            for note in c.notes:
                out.append(f"  {name}: {note}")
        return out

    def __str__(self) -> str:
        from rich.console import Console

        buf = io.StringIO()
        console = Console(file=buf, width=100, force_terminal=False, color_system=None)
        console.print(self.table())
        for line in self._lines():
            console.print(line)
        return buf.getvalue().rstrip("\n")

    def print(self) -> None:
        from rich.console import Console

        console = Console()
        console.print(self.table())
        for line in self._lines():
            console.print(line)


# --------------------------------------------------------------------------- ingest


def _roots(sources: Iterable[str], roots: Mapping[str, str | Path] | None) -> dict[str, Path]:
    out = {}
    for s in sources:
        if roots is not None and roots.get(s) is not None:
            out[s] = Path(roots[s])
        else:  # no folder given for this source: the PyPI package
            out[s] = assets.fetch(ASSETS[s])
    return out


def input_hash(roots: Mapping[str, Path], options: Mapping[str, Any]) -> str:
    """Hash of (source, file name, size) for every input file plus the options."""
    files = []
    for s in sorted(roots):
        for name in INPUT_FILES[s]:
            files.append((s, name, find_file(roots[s], name).stat().st_size))
    return content_hash(files, dict(options), INGEST_VERSION)


def _trim(res: SourceResult, max_items: int) -> None:
    """Keep the `max_items` most popular items (ties: source order); drop history
    entries of items that went, and listeners left with no history."""
    if len(res.items) <= max_items:
        return
    order = sorted(range(len(res.items)), key=lambda i: (-(res.items[i].popularity or 0), i))
    keep_idx = sorted(order[:max_items])
    res.skip("over max_items_per_source", len(res.items) - max_items)
    res.items = [res.items[i] for i in keep_idx]
    kept = {it.item_id for it in res.items}
    listeners = []
    for ls in res.listeners:
        history = [h for h in ls.history if h.item_id in kept]
        if history:
            listeners.append(ls.model_copy(update={"history": history}))
    res.listeners = listeners


def _by_rule(rows) -> dict[str, int]:
    out: dict[str, int] = {}
    for q in rows:
        out[q.rule] = out.get(q.rule, 0) + 1
    return dict(sorted(out.items()))


def _write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(path.name + ".partial")
    write(tmp)
    os.replace(tmp, path)


def ingest(sources: Iterable[str] = SOURCE_TYPES, out_dir: str | Path | None = None,
           roots: Mapping[str, str | Path] | None = None, max_items_per_source: int | None = None,
           force: bool = False) -> IngestReport:
    """Read the requested sources, validate every row into Items / Listeners,
    quarantine bad rows, and write the catalog into `out_dir` (replacing what was
    there). `roots` maps source ('music', 'book', 'podcast') to a folder holding
    that source's raw files in their package layout; None = the PyPI packages."""
    sources = tuple(dict.fromkeys(sources))
    unknown = [s for s in sources if s not in READERS]
    if unknown:
        raise ValueError(f"unknown sources {unknown}; choose from {list(READERS)}")
    out = Path(out_dir) if out_dir is not None else paths.catalog_dir()
    out.mkdir(parents=True, exist_ok=True)
    folders = _roots(sources, roots)
    options = {"sources": list(sources), "max_items_per_source": max_items_per_source}
    digest = input_hash(folders, options)

    report_path = out / "report.json"
    if not force and report_path.exists() and all((out / name).exists() for name in OUTPUTS):
        try:
            previous = IngestReport.from_dict(json.loads(report_path.read_text(encoding="utf-8")))
        except (ValueError, TypeError, KeyError):
            previous = None
        if previous is not None and previous.input_hash == digest:
            previous.reused = True
            previous.out_dir = str(out)
            return previous

    started = time.perf_counter()
    items: list[Item] = []
    listeners: list[Listener] = []
    quarantine = []
    counts: dict[str, SourceCounts] = {}
    for s in sources:
        t0 = time.perf_counter()
        res = READERS[s](folders[s])
        if max_items_per_source is not None:
            _trim(res, max_items_per_source)
        items.extend(res.items)
        listeners.extend(res.listeners)
        quarantine.extend(res.quarantine)
        counts[s] = SourceCounts(
            read=res.read, items=len(res.items), listeners=len(res.listeners),
            quarantined=len(res.quarantine), skipped=sum(res.skipped.values()),
            skipped_by_reason=dict(res.skipped), cleaned_by_rule=dict(sorted(res.cleaned.items())),
            quarantined_by_rule=_by_rule(res.quarantine), seconds=round(time.perf_counter() - t0, 2),
            notes=list(res.notes),
        )

    t0 = time.perf_counter()
    _write_atomic(out / "items.parquet", lambda p: write_items(items, p))
    _write_atomic(out / "listeners.parquet", lambda p: write_listeners(listeners, p))

    def _write_quarantine(p: Path) -> None:
        with p.open("w", encoding="utf-8") as fh:
            for q in quarantine:
                fh.write(q.to_json() + "\n")

    _write_atomic(out / "quarantine.jsonl", _write_quarantine)
    write_s = time.perf_counter() - t0
    report = IngestReport(
        out_dir=str(out), sources=counts, input_hash=digest,
        seconds=round(time.perf_counter() - started, 2),
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        options={**options, "write_seconds": round(write_s, 2)},
    )
    text = json.dumps(report.to_dict(), indent=2, ensure_ascii=False)
    _write_atomic(report_path, lambda p: p.write_text(text, encoding="utf-8"))
    return report


# --------------------------------------------------------------------------- load


@dataclass
class Catalog:
    """The ingested catalog: items by id, listeners in source order."""

    items: dict[str, Item]
    listeners: list[Listener]

    @cached_property
    def _items_by_type(self) -> dict[str, list[Item]]:
        out: dict[str, list[Item]] = {}
        for it in self.items.values():
            out.setdefault(it.item_type, []).append(it)
        return out

    @cached_property
    def _listeners_by_type(self) -> dict[str, list[Listener]]:
        out: dict[str, list[Listener]] = {}
        for ls in self.listeners:
            out.setdefault(listener_type(ls), []).append(ls)
        return out

    def items_of_type(self, item_type: str) -> list[Item]:
        return list(self._items_by_type.get(item_type, []))

    def listeners_of_type(self, item_type: str) -> list[Listener]:
        """Listeners of one source type ('music', 'book', 'podcast')."""
        return list(self._listeners_by_type.get(item_type, []))

    def by_id(self, item_id: str) -> Item:
        return self.items[item_id]

    def __len__(self) -> int:
        return len(self.items)


def load_catalog(dir: str | Path | None = None) -> Catalog:  # noqa: A002 - the agreed signature
    folder = Path(dir) if dir is not None else paths.catalog_dir()
    items_path = folder / "items.parquet"
    if not items_path.exists():
        raise FileNotFoundError(f"no catalog in {folder}; run synth.catalog.ingest.ingest() first")
    items = {it.item_id: it for it in read_items(items_path)}
    listeners = read_listeners(folder / "listeners.parquet")
    return Catalog(items=items, listeners=listeners)


def load_quarantine(dir: str | Path | None = None) -> list[dict[str, Any]]:
    folder = Path(dir) if dir is not None else paths.catalog_dir()
    path = folder / "quarantine.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sources", nargs="+", default=list(SOURCE_TYPES), choices=list(READERS))
    ap.add_argument("--out", default=None, help="output folder (default: LINERNOTES_HOME/catalog)")
    ap.add_argument("--max-items", type=int, default=None, help="keep the N most popular items per source")
    ap.add_argument("--force", action="store_true", help="re-ingest even if inputs are unchanged")
    args = ap.parse_args(argv)
    report = ingest(args.sources, out_dir=args.out, max_items_per_source=args.max_items, force=args.force)
    report.print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
