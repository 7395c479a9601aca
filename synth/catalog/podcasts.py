"""Podcasts from `podcast-recommendation` (`podcast_recommendation/data/`):
podcast_sample_title.csv (podcast_id, title), categories_sample.csv
(podcast_id, category, category_id; several rows per show) and
ratings_sample.csv (podcast_id, rating 1-5, user_id, liked).

Item per show ("podcast:<podcast_id>"): title, genres = its category slugs in
file order (e.g. 'comedy', 'comedy-stand-up'), popularity = number of distinct
users who rated it. The source has no host/publisher, year or description.

Listener per rating user ("podcast-user:<user_id>"): history = rated shows,
best rating first (ties: popularity, id; max 10), taste = top 3 categories of
the shows they rated 4-5 (of all their shows if none).

Two title rows with one podcast_id collapse when the titles agree and are both
quarantined when they differ; text goes through the rules in
`synth.catalog.common`. The ratings file repeats many (user, show) pairs verbatim; repeats are dropped
(the last rating counts) and reported in the notes.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

from linernotes import assets
from synth.catalog import rules
from synth.catalog.common import (
    QuarantineRow, RowError, SourceResult, blank, build_item, build_listener, find_file,
    history_entry, parse_int, quarantine_row, too_high, too_low, top_counts, where,
)

SOURCE = assets.PODCASTS.name
TITLES, CATEGORIES, RATINGS = "podcast_sample_title.csv", "categories_sample.csv", "ratings_sample.csv"
FILES = (TITLES, CATEGORIES, RATINGS)
HISTORY_MAX = 10
TASTE_MAX = 3
LIKED = 4


def _rows(path: Path, res: SourceResult, required: tuple[str, ...]):
    """(line number, row dict) for each data row; rows with the wrong number of
    columns are quarantined. Line numbers count the header as row 1."""
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        header = [h.strip() for h in next(reader)]
        lacking = [c for c in required if c not in header]
        if lacking:
            raise ValueError(f"{path.name}: columns {lacking} missing (header {header})")
        for row in reader:
            if not row or not any(v.strip() for v in row):
                continue
            if len(row) != len(header):
                res.quarantine.append(quarantine_row(
                    f"{SOURCE}/{path.name}", where(path.name, reader.line_num),
                    [("row", f"row: expected {len(header)} columns, got {len(row)}")], {"columns": row}))
                continue
            yield reader.line_num, dict(zip(header, row))


def read(root: Path) -> SourceResult:
    res = SourceResult()

    # categories per show, in file order
    cats: dict[str, list[str]] = defaultdict(list)
    for line, r in _rows(find_file(root, CATEGORIES), res, ("podcast_id", "category")):
        pid = (r["podcast_id"] or "").strip()
        cat, problem = rules.screen(r["category"], "genres", res)
        if problem:
            res.quarantine.append(quarantine_row(
                f"{SOURCE}/{CATEGORIES}", where(CATEGORIES, line, f"podcast_id {pid}"), [problem[:2]], r,
                problem[2]))
            continue
        if not pid or not cat:
            field = "item_id" if not pid else "genres"
            res.quarantine.append(quarantine_row(
                f"{SOURCE}/{CATEGORIES}", where(CATEGORIES, line, f"podcast_id {pid}"),
                [(field, blank(field))], r))
            continue
        if cat not in cats[pid]:
            cats[pid].append(cat)

    # ratings: validate, then keep the last rating per (user, show)
    ratings: dict[tuple[str, str], tuple[int, int]] = {}  # (user, show) -> (rating, line)
    n_rows = 0
    for line, r in _rows(find_file(root, RATINGS), res, ("podcast_id", "rating", "user_id")):
        pid, uid = (r["podcast_id"] or "").strip(), (r["user_id"] or "").strip()
        loc = where(RATINGS, line, f"user_id {uid}, podcast_id {pid}")
        try:
            if not uid:
                raise RowError("listener_id", blank("listener_id"))
            if not pid:
                raise RowError("item_id", blank("item_id"))
            value = parse_int(r["rating"], "rating")
            if value is None:
                raise RowError("rating", blank("rating"))
            if value > 5:
                raise RowError("rating", too_high("rating", value, 5))
            if value < 1:
                raise RowError("rating", too_low("rating", value, 1))
        except RowError as exc:
            res.quarantine.append(quarantine_row(f"{SOURCE}/{RATINGS}", loc, [(exc.field, exc.message)], r))
            continue
        n_rows += 1
        ratings[(uid, pid)] = (value, line)
    repeats = n_rows - len(ratings)
    if repeats:
        res.notes.append(f"{repeats} of {n_rows} rating rows repeat an earlier (user, show) pair (dropped)")
    raters: dict[str, int] = defaultdict(int)
    for (_, pid) in ratings:
        raters[pid] += 1

    # shows
    items = {}
    first_line: dict[str, tuple[int, tuple, dict]] = {}  # pid -> (line, content key, raw row)
    conflicted: set[str] = set()
    n_bad = len(res.quarantine)
    qtitles = f"{SOURCE}/{TITLES}"
    for line, r in _rows(find_file(root, TITLES), res, ("podcast_id", "title")):
        res.read += 1
        pid = (r["podcast_id"] or "").strip()
        loc = where(TITLES, line, f"podcast_id {pid}")
        if not pid:
            res.quarantine.append(quarantine_row(qtitles, loc, [("item_id", blank("item_id"))], r))
            continue
        title, problem = rules.screen(r["title"], "title", res)
        key = rules.content_key(title)
        if pid in first_line:
            first, first_key, first_raw = first_line[pid]
            if key == first_key and pid not in conflicted:
                res.skip("duplicate podcast_id (same show as an earlier row)")
                continue
            clash = rules.conflict("item_id", f"podcast_id {pid}", first)
            res.quarantine.append(quarantine_row(qtitles, loc, [clash[:2]], r, clash[2]))
            if pid not in conflicted:
                conflicted.add(pid)
                if items.pop(pid, None) is not None:  # the earlier row is not trusted either
                    again = rules.conflict("item_id", f"podcast_id {pid}", line)
                    res.quarantine.append(quarantine_row(qtitles, where(TITLES, first, f"podcast_id {pid}"),
                                                         [again[:2]], first_raw, again[2]))
            continue
        first_line[pid] = (line, key, r)
        problems = [p for p in (problem, rules.placeholder_title(title)) if p]
        out = build_item(dict(
            item_id=f"podcast:{pid}", item_type="podcast",
            title=title if title is not None or r["title"] is None else "",
            genres=list(cats.get(pid, [])), popularity=float(raters.get(pid, 0)),
            source=SOURCE, source_row=loc,
        ), qtitles, r, problems)
        if isinstance(out, QuarantineRow):
            res.quarantine.append(out)
        else:
            items[pid] = out
    res.read += sum(1 for q in res.quarantine[n_bad:] if q.field == "row")  # malformed lines count as read
    res.items = list(items.values())
    orphans = len(set(cats) - set(first_line))
    if orphans:
        res.notes.append(f"{orphans} shows in {CATEGORIES} are not in {TITLES} (ignored)")
    no_cats = sum(1 for it in res.items if not it.genres)
    if no_cats:
        res.notes.append(f"{no_cats} kept shows have no category")
    unknown = sum(1 for (_, pid) in ratings if pid not in items)
    if unknown:
        res.notes.append(f"{unknown} ratings are of shows not kept (not in {TITLES} or quarantined; ignored)")

    # listeners
    by_user: dict[str, list[tuple[int, str, int]]] = defaultdict(list)
    for (uid, pid), (value, line) in ratings.items():
        if pid in items:
            by_user[uid].append((value, pid, line))
    for uid in sorted(by_user):
        rated = sorted(by_user[uid], key=lambda t: (-t[0], -(items[t[1]].popularity or 0), t[1]))
        liked = [items[pid] for v, pid, _ in rated if v >= LIKED] or [items[pid] for _, pid, _ in rated]
        listener = build_listener(dict(
            listener_id=f"podcast-user:{uid}", source=SOURCE, country=None, age_band=None,
            history=[history_entry(items[pid], float(v)) for v, pid, _ in rated[:HISTORY_MAX]],
            taste=top_counts((g for it in liked for g in it.genres), TASTE_MAX),
            source_row=where(RATINGS, min(line for _, _, line in rated), f"user_id {uid}"),
        ), f"{SOURCE}/{RATINGS}", {"user_id": uid}, res)
        if listener is not None:
            res.listeners.append(listener)
    return res
