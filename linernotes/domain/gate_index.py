"""The grounding gate's catalog index for an ingested catalog folder, cached on disk."""

from __future__ import annotations

import json
import os
from pathlib import Path


def load_gate_index(catalog_dir: str | Path):
    """The grounding gate's catalog index, built once per ingested catalog and
    pickled beside it (building it from 275k items takes seconds, loading ~1 s)."""
    import pickle

    from synth.catalog.ingest import load_catalog
    from linernotes.domain.gates import CatalogIndex

    catalog_dir = Path(catalog_dir)
    report = catalog_dir / "report.json"
    stamp = json.loads(report.read_text()).get("input_hash", "") if report.exists() else ""
    cached = catalog_dir / "gate_index.pkl"
    if cached.exists():
        try:
            with open(cached, "rb") as fh:
                saved_stamp, index = pickle.load(fh)
            if saved_stamp == stamp and stamp:
                return index
        except Exception:  # stale or partial file: rebuild below
            pass
    catalog = load_catalog(catalog_dir)
    index = CatalogIndex.from_items(catalog.items.values(), catalog.listeners)
    tmp = cached.with_suffix(f".tmp{os.getpid()}")
    with open(tmp, "wb") as fh:
        pickle.dump((stamp, index), fh, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, cached)
    return index
