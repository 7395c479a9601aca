"""A labelled set of explanation pairs, and dedupe precision/recall measured on it.

`labelled_pairs(seed)` builds ~400 pairs deterministically from a hand-written,
catalog-like item list and hand-written phrasings of ten "claims" (what an
explanation says about an item):

positives (label 1: the second text is a duplicate of the first)
  surface     same item, same words; case, quotes, punctuation, spacing changed
  light       same item, one or two small edits: synonym swap, inserted adverb,
              punctuation change
  paraphrase  same item, same claim, a different hand-written phrasing
              (clauses reordered, synonyms)
negatives (label 0)
  near_miss   same claim, same phrasing, a DIFFERENT item (different item_id): only
              title/creator/year/genre differ ("X's latest single ..." vs "Y's ...")
  other_claim same item, a different claim (not a duplicate: it says something else)
  unrelated   different item, different claim

`evaluate_pairs(config)` runs the real dedupe (`DedupeIndex`, every pair its own
partition, so pairs never meet) per stage alone and for the combined pipeline, with and without
entity-awareness, and returns precision/recall/F1; `sweep(config)` gives P/R/F1
per threshold from the pair similarities (how the CurateConfig defaults were
chosen). `python -m curation.pairs` prints both.

`synthetic_explanations` / `synthetic_corpus` reuse the same phrasings with
generated entities for embedding measurement and the scale bench.
"""

from __future__ import annotations

import dataclasses
import json
import random
import re
from typing import Any

import numpy as np
import pandas as pd

# --------------------------------------------------------------------------- catalog

# (item_id, type, title, creator, genre, year, duration_min, a history title the listener played)
CATALOG: list[tuple[str, str, str, str, str, int, int, str]] = [
    ("music:3153", "music", "The Trooper", "Iron Maiden", "heavy metal", 1983, 4, "Run to the Hills"),
    ("music:3160", "music", "Aces High", "Iron Maiden", "heavy metal", 1984, 5, "Run to the Hills"),
    ("music:1996", "music", "Bohemian Rhapsody", "Queen", "rock", 1975, 6, "Somebody to Love"),
    ("music:2001", "music", "Under Pressure", "Queen", "rock", 1981, 4, "Somebody to Love"),
    ("music:2300", "music", "Losing My Religion", "R.E.M.", "alternative rock", 1991, 4, "Everybody Hurts"),
    ("music:3280", "music", "One", "U2", "rock", 1991, 5, "With or Without You"),
    ("music:1620", "music", "You Shook Me", "Led Zeppelin", "blues rock", 1969, 6, "Dazed and Confused"),
    ("music:1751", "music", "Heroes", "David Bowie", "art rock", 1977, 6, "Starman"),
    ("music:696", "music", "Suzie-Q", "Creedence Clearwater Revival", "swamp rock", 1968, 8, "Proud Mary"),
    ("music:254", "music", "A Praieira", "Chico Science & Nação Zumbi", "manguebeat", 1996, 4, "Maracatu Atômico"),
    ("music:1680", "music", "Tempo Perdido", "Legião Urbana", "Brazilian rock", 1986, 5, "Eduardo e Mônica"),
    ("music:3090", "music", "Jump", "Van Halen", "hard rock", 1984, 4, "Panama"),
    ("music:2546", "music", "Sin", "Nine Inch Nails", "industrial", 1989, 4, "Closer"),
    ("music:4001", "music", "Blind Spots", "Silent Harbor", "metalcore", 2023, 3, "Sleepwalker"),
    ("music:4002", "music", "Glass Teeth", "Northbound Wolves", "metalcore", 2024, 3, "Sleepwalker"),
    ("music:4003", "music", "Desafinado", "Stan Getz & João Gilberto", "bossa nova", 1964, 4, "The Girl from Ipanema"),
    ("book:0140276904", "book", "The Bluest Eye", "Toni Morrison", "literary fiction", 1970, 420, "Beloved"),
    ("book:0345285549", "book", "The Elfstones of Shannara", "Terry Brooks", "epic fantasy", 1982, 900, "The Sword of Shannara"),
    ("book:0399148639", "book", "Mortal Prey", "John Sandford", "crime thriller", 2002, 600, "Rules of Prey"),
    ("book:0743211375", "book", "The Da Vinci Code", "Dan Brown", "mystery thriller", 2003, 780, "Angels & Demons"),
    ("book:0312278586", "book", "The Nanny Diaries", "Emma McLaughlin", "comic fiction", 2002, 540, "The Devil Wears Prada"),
    ("book:0440108268", "book", "The Bridge Across Forever", "Richard Bach", "memoir", 1984, 300, "Jonathan Livingston Seagull"),
    ("book:0836218620", "book", "Weirdos From Another Planet!", "Bill Watterson", "comics", 1990, 120, "Calvin and Hobbes"),
    ("book:0345438329", "book", "Big Stone Gap", "Adriana Trigiani", "women's fiction", 2000, 560, "Lucia, Lucia"),
    ("book:0345404769", "book", "Dragon Prince", "Melanie Rawn", "epic fantasy", 1988, 840, "The Sword of Shannara"),
    ("book:0679435328", "book", "The Angel of Darkness", "Caleb Carr", "historical mystery", 1997, 870, "The Alienist"),
    ("podcast:0a37", "podcast", "Who? Weekly", "Bobby Finger", "pop culture", 2016, 60, "Las Culturistas"),
    ("podcast:b4b6", "podcast", "The Kelly Roach Show", "Kelly Roach", "business", 2015, 35, "The Learning Leader Show"),
    ("podcast:1797", "podcast", "The Learning Leader Show", "Ryan Hawk", "business", 2015, 55, "How I Built This"),
    ("podcast:10c1", "podcast", "The Higherside Chats", "Greg Carlwood", "conspiracy", 2012, 90, "Mysterious Universe"),
    ("podcast:ce16", "podcast", "Kwik Brain", "Jim Kwik", "self-improvement", 2016, 20, "The Mindset Mentor"),
    ("podcast:66b5", "podcast", "This Past Weekend", "Theo Von", "comedy", 2016, 80, "The Tim Dillon Show"),
    ("podcast:5931", "podcast", "The Michael Knowles Show", "Michael Knowles", "politics", 2017, 45, "The Ben Shapiro Show"),
    ("podcast:37198", "podcast", "Slow Burn", "Leon Neyfakh", "history", 2017, 40, "Revisionist History"),
    ("podcast:7bf8", "podcast", "Happier with Gretchen Rubin", "Gretchen Rubin", "self-improvement", 2015, 30, "The Happiness Lab"),
    ("podcast:4afc", "podcast", "Wow in the World", "Mindy Thomas", "kids science", 2017, 25, "Brains On!"),
    # same title, different item (covers, namesakes): the text can differ in the creator only
    ("music:5001", "music", "Hurt", "Johnny Cash", "country", 2002, 4, "Ring of Fire"),
    ("music:5002", "music", "Hurt", "Nine Inch Nails", "industrial", 1994, 6, "Closer"),
    ("music:5003", "music", "Hallelujah", "Leonard Cohen", "folk", 1984, 5, "Suzanne"),
    ("music:5004", "music", "Hallelujah", "Jeff Buckley", "folk rock", 1994, 7, "Grace"),
    ("music:5009", "music", "Heroes", "Peter Gabriel", "art rock", 2010, 4, "Starman"),
    ("book:5005", "book", "Dune", "Frank Herbert", "science fiction", 1965, 1260, "Foundation"),
    ("podcast:5006", "podcast", "Dune", "Arrakis Radio", "science fiction", 2021, 50, "Foundation"),
]

NOUN = {"music": "track", "book": "book", "podcast": "show"}

# Ten claims x three phrasings. Phrasings of one claim say the same thing (paraphrases);
# different claims about the same item are different explanations (not duplicates).
CLAIMS: list[list[str]] = [
    ["{title} by {creator} is a {genre} rush that fits right next to your {hist} plays.",
     "If you keep playing {hist}, {creator}'s {title} brings the same {genre} rush.",
     "{creator}'s {title} delivers a {genre} rush that sits right beside {hist} in your rotation."],
    ["{creator}'s latest {noun}, {title}, is a {genre} standout from {year}.",
     "From {year}, {title} is the newest {genre} standout from {creator}.",
     "{title}, the {year} {genre} release by {creator}, is a real standout."],
    ["{title} is a calm {genre} pick for late nights, much like your {hist} favourites.",
     "For late nights, {creator}'s {title} offers the same calm {genre} feel as {hist}.",
     "Much like {hist}, {title} by {creator} is a quiet {genre} choice for the late hours."],
    ["A {genre} classic from {creator}: {title} still sounds fresh decades after {year}.",
     "Released in {year}, {creator}'s {title} remains a {genre} classic that still feels fresh.",
     "{title} has stayed a fresh-sounding {genre} classic since {creator} put it out in {year}."],
    ["Because you rated {hist} highly, {title} by {creator} should land the same way.",
     "You rated {hist} highly, so {creator}'s {title} is likely to land with you too.",
     "{title} by {creator} should hit home for someone who rated {hist} so well."],
    ["At {dur} minutes, {title} is a quick {genre} fix for your commute.",
     "{title} runs just {dur} minutes, a fast {genre} hit for the ride to work.",
     "A quick {genre} fix for the commute, {title} takes only {dur} minutes."],
    ["{creator} tells a vivid story in {title}, the kind of {genre} storytelling you enjoy.",
     "The vivid storytelling in {creator}'s {title} is exactly the {genre} craft you seem to enjoy.",
     "You seem to enjoy {genre} storytelling, and {title} by {creator} tells a vivid one."],
    ["{title} is an easy way into {creator}'s {genre} catalogue.",
     "For a first taste of {creator}'s {genre} work, start with {title}.",
     "If you are new to {creator}, {title} is a gentle {genre} entry point."],
    ["{title} blends {genre} with the hooks you keep coming back to in {hist}.",
     "Like {hist}, {creator}'s {title} mixes {genre} with hooks you keep returning to.",
     "The hooks you replay in {hist} turn up again in {title}, wrapped in {genre}."],
    ["{title} is one of the most played {genre} picks among listeners like you.",
     "Listeners with your taste play {creator}'s {title} more than almost any other {genre} pick.",
     "Among people who share your taste, {title} is a top {genre} choice."],
]

SYNONYMS = {
    "rush": "thrill", "fits": "sits", "calm": "gentle", "quick": "fast", "vivid": "lively",
    "classic": "staple", "easy": "simple", "latest": "newest", "standout": "highlight",
    "story": "tale", "hooks": "melodies", "fresh": "new", "quiet": "soft", "played": "streamed",
    "pick": "choice", "enjoy": "love", "start": "begin", "land": "connect", "gentle": "soft",
    "delivers": "brings", "offers": "gives", "blends": "mixes", "remains": "stays",
    "newest": "latest", "short": "brief", "favourites": "favorites", "top": "leading",
    "highly": "well", "real": "true", "plays": "spins",
}
ADVERBS = ["really", "truly", "honestly", "definitely", "easily"]


@dataclasses.dataclass(frozen=True)
class CatalogItem:
    item_id: str
    item_type: str
    title: str
    creator: str
    genre: str
    year: int
    duration_min: int
    hist: str

    def fill(self, phrasing: str, context: "CatalogItem | None" = None) -> str:
        """The phrasing about this item; `context` lends its genre/year/duration/history
        (a template reused for another item in the same listener context)."""
        c = context or self
        return phrasing.format(title=self.title, creator=self.creator, genre=c.genre,
                               year=c.year, dur=c.duration_min, hist=c.hist,
                               noun=NOUN[self.item_type])

    def item_json(self) -> str:
        return json.dumps({"item_id": self.item_id, "item_type": self.item_type, "title": self.title,
                           "creator": self.creator, "genres": [self.genre], "year": self.year})

    def listener_json(self) -> str:
        return json.dumps({"listener_id": "L", "history": [{"item_id": "h", "title": self.hist}]})


def catalog() -> list[CatalogItem]:
    return [CatalogItem(*row) for row in CATALOG]


# --------------------------------------------------------------------------- edits


def surface_edit(text: str, rng: random.Random) -> str:
    """Same words: change case, quotes, punctuation, spacing."""
    ops = rng.sample(["lower", "upper_first", "quotes", "bang", "spaces", "nodot", "commas"], k=2)
    out = text
    for op in ops:
        if op == "lower":
            out = out.lower()
        elif op == "upper_first":
            out = out.upper() if len(out) < 40 else out[0].upper() + out[1:].replace(",", " ,")
        elif op == "quotes":
            out = "\u201c" + out.rstrip(".!?") + "\u201d"
        elif op == "bang":
            out = out.rstrip(".!?") + "!"
        elif op == "spaces":
            out = re.sub(r" ", "  ", out, count=3) + " "
        elif op == "nodot":
            out = out.rstrip(".!?")
        elif op == "commas":
            out = out.replace(",", "")
    return out


def light_edit(text: str, rng: random.Random, n_edits: int = 1) -> str:
    """One or two small word edits: a synonym swap, an inserted adverb, or a ', truly' tail."""
    words = text.split(" ")
    for _ in range(n_edits):
        swappable = [i for i, w in enumerate(words) if re.sub(r"\W", "", w).lower() in SYNONYMS]
        op = rng.choice(["syn", "syn", "adverb", "tail"]) if swappable else rng.choice(["adverb", "tail"])
        if op == "syn":
            i = rng.choice(swappable)
            core = re.sub(r"\W", "", words[i])
            rep = SYNONYMS[core.lower()]
            words[i] = words[i].replace(core, rep.capitalize() if core[0].isupper() else rep)
        elif op == "adverb":
            i = rng.randrange(1, max(2, len(words) - 1))
            words.insert(i, rng.choice(ADVERBS))
        else:
            last = words[-1]
            punct = last[-1] if last and last[-1] in ".!?" else ""
            words[-1] = last.rstrip(".!?") + ", " + rng.choice(["truly", "for sure", "no question"]) + (punct or ".")
    return " ".join(words)


# --------------------------------------------------------------------------- pairs


@dataclasses.dataclass
class Pair:
    pair_id: int
    kind: str
    label: int
    a_item: CatalogItem
    a_text: str
    b_item: CatalogItem
    b_text: str

    @property
    def same_item(self) -> bool:
        return self.a_item.item_id == self.b_item.item_id

    def frame(self) -> pd.DataFrame:
        """The two-row frame `dedupe` sees (row b is the one that may be removed)."""
        rows = []
        for tag, item, text in (("a", self.a_item, self.a_text), ("b", self.b_item, self.b_text)):
            rows.append({"record_id": f"p{self.pair_id:04d}{tag}", "item_id": item.item_id,
                         "item_type": item.item_type, "item": item.item_json(),
                         "listener": item.listener_json(), "explanation": text,
                         # a is the better-gated one: the representative when merged
                         "passed_all": tag == "a", "gate_grounding": True,
                         "gate_style": tag == "a", "gate_safety": True})
        return pd.DataFrame(rows)


POSITIVE_KINDS = ("surface", "light", "paraphrase")
NEGATIVE_KINDS = ("near_miss", "other_claim", "unrelated")


def labelled_pairs(seed: int = 17) -> list[Pair]:
    """~440 pairs: per item 1 surface, 2 light, 2 paraphrase positives; 100 near-misses
    (24 between namesakes: same title, other creator),
    72 other-claim and 60 unrelated negatives. Deterministic for a seed."""
    rng = random.Random(seed)
    items = catalog()
    pairs: list[Pair] = []

    def add(kind, label, a, at, b, bt):
        pairs.append(Pair(len(pairs), kind, label, a, at, b, bt))

    for it in items:
        claims = rng.sample(range(len(CLAIMS)), 5)
        base = it.fill(CLAIMS[claims[0]][0])
        add("surface", 1, it, base, it, surface_edit(base, rng))
        for c, n_edits in ((claims[1], 1), (claims[2], 2)):
            text = it.fill(CLAIMS[c][0])
            add("light", 1, it, text, it, light_edit(text, rng, n_edits))
        for c in claims[3:5]:
            p1, p2 = rng.sample(range(3), 2)
            add("paraphrase", 1, it, it.fill(CLAIMS[c][p1]), it, it.fill(CLAIMS[c][p2]))
    # near-misses: same claim and phrasing, another item; mostly in the same listener
    # context (genre/year/history copied), so only the entity (title and/or creator) differs
    namesakes: dict[str, list[CatalogItem]] = {}
    for it in items:
        namesakes.setdefault(it.title, []).append(it)
    same_title = [g for g in namesakes.values() if len(g) > 1]
    for k in range(100):
        if k < 24:
            a, b = rng.sample(same_title[k % len(same_title)], 2)
        else:
            a = items[k % len(items)]
            same_type = [o for o in items if o.item_type == a.item_type and o.item_id != a.item_id]
            close = [o for o in same_type if o.creator == a.creator or o.genre == a.genre]
            b = rng.choice(close) if close and rng.random() < 0.6 else rng.choice(same_type)
        c, p = rng.randrange(len(CLAIMS)), rng.randrange(3)
        bt = b.fill(CLAIMS[c][p], context=a if rng.random() < 0.7 else None)
        if rng.random() < 0.3:
            bt = surface_edit(bt, rng)
        add("near_miss", 0, a, a.fill(CLAIMS[c][p]), b, bt)
    for k in range(72):
        a = items[k % len(items)]
        c1, c2 = rng.sample(range(len(CLAIMS)), 2)
        add("other_claim", 0, a, a.fill(CLAIMS[c1][rng.randrange(3)]), a, a.fill(CLAIMS[c2][rng.randrange(3)]))
    for k in range(60):
        a, b = rng.sample(items, 2)
        c1, c2 = rng.sample(range(len(CLAIMS)), 2)
        add("unrelated", 0, a, a.fill(CLAIMS[c1][rng.randrange(3)]), b, b.fill(CLAIMS[c2][rng.randrange(3)]))
    return pairs


# --------------------------------------------------------------------------- evaluation


def _prf(pred: np.ndarray, label: np.ndarray) -> dict[str, float]:
    tp = int((pred & (label == 1)).sum())
    fp = int((pred & (label == 0)).sum())
    fn = int((~pred & (label == 1)).sum())
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4), "tp": tp, "fp": fp, "fn": fn}


def _pair_embeddings(pairs: list[Pair], config) -> np.ndarray:
    from curation.embed import Embedder

    texts = [t for p in pairs for t in (p.a_text, p.b_text)]
    emb = Embedder(config.embed_backend, batch_size=config.embed_batch_size)
    return emb.encode(texts).reshape(len(pairs), 2, -1)


STAGE_SETS = {"exact": ("exact",), "near": ("near",), "semantic": ("semantic",),
              "pipeline": ("exact", "near", "semantic")}


def evaluate_pairs(config=None, pairs: list[Pair] | None = None,
                   embeddings: np.ndarray | None = None) -> dict[str, Any]:
    """P/R/F1 of `dedupe` on the labelled pairs, per stage alone and for the whole
    pipeline, with entity-awareness on and off.

    Returns {"n_pairs", "n_positive", "config": {...thresholds},
             "results": {"entity_aware"|"entity_blind": {stage: {precision, recall, f1, tp, fp, fn}}},
             "recall_by_kind" / "false_positives_by_kind": {mode: {stage: {kind: ...}}}}.
    """
    from curation.dedupe import DedupeIndex
    from linernotes.config import CurateConfig

    config = config or CurateConfig()
    pairs = pairs if pairs is not None else labelled_pairs(config.seed)
    if embeddings is None:
        embeddings = _pair_embeddings(pairs, config)
    labels = np.array([p.label for p in pairs])
    kinds = np.array([p.kind for p in pairs])
    out: dict[str, Any] = {
        "n_pairs": len(pairs), "n_positive": int(labels.sum()),
        "config": {"minhash_threshold": config.minhash_threshold, "minhash_num_perm": config.minhash_num_perm,
                   "shingle": config.shingle, "semantic_threshold": config.semantic_threshold,
                   "embed_backend": config.embed_backend},
        "results": {}, "recall_by_kind": {}, "false_positives_by_kind": {},
    }
    # one frame, one index per mode: each pair is its own partition, so pairs never meet
    # (same code paths as a two-row frame, hundreds of times faster)
    frame = pd.concat([p.frame() for p in pairs], ignore_index=True)
    part = np.repeat(np.arange(len(pairs)), 2)
    emb = np.asarray(embeddings, dtype=np.float32).reshape(len(pairs) * 2, -1)
    for mode, aware in (("entity_aware", True), ("entity_blind", False)):
        cfg = dataclasses.replace(config, entity_aware=aware)
        index = DedupeIndex.build(frame, emb, cfg, partition=part)
        res, rec_kind, fp_kind = {}, {}, {}
        for name, stages in STAGE_SETS.items():
            kept = index.apply(stages=stages, report_examples=0).df["kept"].to_numpy().reshape(-1, 2)
            pred = ~kept.all(axis=1)
            res[name] = _prf(pred, labels)
            rec_kind[name] = {k: round(float(pred[kinds == k].mean()), 3) for k in POSITIVE_KINDS}
            fp_kind[name] = {k: int(pred[kinds == k].sum()) for k in NEGATIVE_KINDS}
        out["results"][mode] = res
        out["recall_by_kind"][mode] = rec_kind
        out["false_positives_by_kind"][mode] = fp_kind
    return out


def pair_scores(config=None, pairs: list[Pair] | None = None,
                embeddings: np.ndarray | None = None) -> pd.DataFrame:
    """Per pair: label, kind, same_item, exact match, MinHash Jaccard estimate
    (config.shingle, config.minhash_num_perm) and embedding cosine."""
    from curation.dedupe import minhash_signatures, normalize_text
    from linernotes.config import CurateConfig

    config = config or CurateConfig()
    pairs = pairs if pairs is not None else labelled_pairs(config.seed)
    if embeddings is None:
        embeddings = _pair_embeddings(pairs, config)
    texts = [t for p in pairs for t in (p.a_text, p.b_text)]
    sig = minhash_signatures(texts, config.shingle, config.minhash_num_perm).reshape(len(pairs), 2, -1)
    return pd.DataFrame({
        "kind": [p.kind for p in pairs], "label": [p.label for p in pairs],
        "same_item": [p.same_item for p in pairs],
        "exact": [normalize_text(p.a_text) == normalize_text(p.b_text) for p in pairs],
        "jaccard": (sig[:, 0] == sig[:, 1]).mean(axis=1),
        "cosine": (embeddings[:, 0] * embeddings[:, 1]).sum(axis=1),
    })


def sweep(config=None, scores: pd.DataFrame | None = None,
          minhash: tuple[float, ...] = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
          semantic: tuple[float, ...] = (0.8, 0.82, 0.84, 0.85, 0.86, 0.88, 0.9, 0.92, 0.94, 0.96)) -> pd.DataFrame:
    """P/R/F1 per threshold from pair similarities (entity-aware and -blind), for the
    near stage alone, the semantic stage alone, and exact+near+semantic at the
    config's other threshold. Ignores LSH banding misses (evaluate_pairs does not)."""
    from linernotes.config import CurateConfig

    config = config or CurateConfig()
    s = scores if scores is not None else pair_scores(config)
    label = s["label"].to_numpy()
    rows = []
    for aware in (True, False):
        gate = s["same_item"].to_numpy() if aware else np.ones(len(s), dtype=bool)
        for t in minhash:
            near = (s["jaccard"].to_numpy() >= t) & gate
            comb = near | ((s["exact"].to_numpy() | (s["cosine"].to_numpy() >= config.semantic_threshold)) & gate)
            rows.append({"entity_aware": aware, "stage": "near", "threshold": t, **_prf(near, label),
                         "pipeline_f1": _prf(comb, label)["f1"], "pipeline_precision": _prf(comb, label)["precision"]})
        for t in semantic:
            sem = (s["cosine"].to_numpy() >= t) & gate
            comb = sem | ((s["exact"].to_numpy() | (s["jaccard"].to_numpy() >= config.minhash_threshold)) & gate)
            rows.append({"entity_aware": aware, "stage": "semantic", "threshold": t, **_prf(sem, label),
                         "pipeline_f1": _prf(comb, label)["f1"], "pipeline_precision": _prf(comb, label)["precision"]})
    return pd.DataFrame(rows)


def format_table(result: dict[str, Any]) -> str:
    lines = [f"{result['n_pairs']} pairs ({result['n_positive']} duplicates); "
             f"thresholds: {json.dumps(result['config'])}",
             f"{'mode':<13} {'stage':<9} {'P':>6} {'R':>6} {'F1':>6} {'tp':>4} {'fp':>4} {'fn':>4}"]
    for mode, res in result["results"].items():
        for stage, m in res.items():
            lines.append(f"{mode:<13} {stage:<9} {m['precision']:>6.3f} {m['recall']:>6.3f} {m['f1']:>6.3f} "
                         f"{m['tp']:>4} {m['fp']:>4} {m['fn']:>4}")
    lines.append("recall by positive kind / false positives by negative kind (pipeline):")
    for mode in result["results"]:
        lines.append(f"  {mode}: recall {result['recall_by_kind'][mode]['pipeline']}  "
                     f"fp {result['false_positives_by_kind'][mode]['pipeline']}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- synthetic texts


_FIRST = ["Silent", "Northbound", "Velvet", "Paper", "Crimson", "Hollow", "Golden", "Midnight", "Static",
          "Electric", "Broken", "Lunar", "Wild", "Glass", "Iron", "Neon", "Quiet", "Burning", "Frozen", "Distant"]
_SECOND = ["Harbor", "Wolves", "Engines", "Saints", "Rivers", "Tigers", "Echoes", "Lanterns", "Machines",
           "Hearts", "Orchards", "Pilots", "Ghosts", "Parade", "Canyon", "Sparrows", "Radios", "Comets"]
_TITLE_A = ["Blind", "Glass", "Slow", "Bright", "Last", "Hidden", "Open", "Falling", "Lost", "Golden",
            "Northern", "Empty", "Silver", "Secret", "Endless", "Paper", "Second", "Late", "Wide", "Cold"]
_TITLE_B = ["Spots", "Teeth", "Burn", "Lights", "Dance", "Rooms", "Roads", "Skies", "Letters", "Hours",
            "Waves", "Streets", "Lines", "Gardens", "Summer", "Promises", "Signals", "Fires", "Tides", "Maps"]
_GENRES = ["metalcore", "indie pop", "synthwave", "blues rock", "bossa nova", "hip hop", "folk", "jazz",
           "epic fantasy", "crime thriller", "true crime", "comedy", "business", "history", "memoir",
           "self-improvement", "drum and bass", "post-punk", "soul", "ambient"]
_HIST = ["Run to the Hills", "Starman", "Closer", "Proud Mary", "Panama", "Beloved", "The Alienist",
         "How I Built This", "Brains On!", "Everybody Hurts", "Dazed and Confused", "Somebody to Love"]


def synthetic_items(n: int, seed: int = 17) -> list[CatalogItem]:
    """n distinct generated catalog items (title x creator x genre combinations)."""
    rng = random.Random(seed)
    types = ["music", "book", "podcast"]
    out = []
    for i in range(n):
        t = types[i % 3]
        title = f"{_TITLE_A[i % 20]} {_TITLE_B[(i // 20) % 20]}"
        if i >= 400:
            title += f" {['Part', 'Vol.', 'Book', 'Season'][(i // 400) % 4]} {i // 1600 + 2}"
        creator = f"{_FIRST[(i * 7) % 20]} {_SECOND[(i * 13 + i // 20) % 18]}"
        out.append(CatalogItem(f"{t}:syn{i:06d}", t, title, creator, rng.choice(_GENRES),
                               rng.randrange(1960, 2026), rng.randrange(2, 90), rng.choice(_HIST)))
    return out


def synthetic_explanations(n: int, seed: int = 17) -> list[str]:
    """n explanation-like texts: catalog + generated items x claims x phrasings, some lightly edited."""
    rng = random.Random(seed)
    items = catalog() + synthetic_items(max(0, n // 10), seed)
    out = []
    for _ in range(n):
        it = rng.choice(items)
        text = it.fill(rng.choice(rng.choice(CLAIMS)))
        if rng.random() < 0.3:
            text = light_edit(text, rng)
        out.append(text)
    return out


def synthetic_corpus(n: int, seed: int = 17, dup_rate: float = 0.15, rows_per_item: int = 8) -> pd.DataFrame:
    """A synth-run-like frame of n rows with planted duplicates.

    ~n/rows_per_item items; each row is (item, claim, phrasing); a `dup_rate` share
    of rows are planted duplicates of an earlier row of the same item, split evenly
    between surface edits (exact), light edits (near) and other phrasings
    (semantic); column `planted` says which ("" for originals). Gate columns are
    random so the representative rule has something to choose by.
    """
    rng = random.Random(seed)
    items = synthetic_items(max(1, n // rows_per_item), seed)
    rows: list[dict[str, Any]] = []
    by_item: dict[str, list[int]] = {}
    for r in range(n):
        planted = ""
        if rows and rng.random() < dup_rate:
            it = items[rng.randrange(len(items))]
            if by_item.get(it.item_id):
                src = rows[rng.choice(by_item[it.item_id])]
                planted = rng.choice(["exact", "near", "semantic"])
                if planted == "exact":
                    text = surface_edit(src["explanation"], rng)
                elif planted == "near":
                    text = light_edit(src["explanation"], rng)
                else:
                    c, p = src["_claim"]
                    text = it.fill(CLAIMS[c][(p + 1 + rng.randrange(2)) % 3])
                claim = src["_claim"]
            else:
                planted = ""
        if not planted:
            it = items[rng.randrange(len(items))]
            claim = (rng.randrange(len(CLAIMS)), rng.randrange(3))
            text = it.fill(CLAIMS[claim[0]][claim[1]])
            if rng.random() < 0.5:
                text = light_edit(text, rng, n_edits=2)
        g = [rng.random() < 0.8, rng.random() < 0.7, rng.random() < 0.97]
        rows.append({"record_id": f"{r:08x}{rng.getrandbits(32):08x}", "item_id": it.item_id,
                     "item_type": it.item_type, "item": it.item_json(), "listener": it.listener_json(),
                     "explanation": text, "gate_grounding": g[0], "gate_style": g[1], "gate_safety": g[2],
                     "passed_all": all(g), "planted": planted, "_claim": claim})
        by_item.setdefault(it.item_id, []).append(r)
    return pd.DataFrame(rows).drop(columns=["_claim"])


def main(argv: list[str] | None = None) -> None:
    import argparse
    import os
    import time

    from linernotes.config import CurateConfig, add_dataclass_args, overrides_from_args, load_config

    from linernotes import paths

    paths.use_offline_hub()
    p = argparse.ArgumentParser(description="dedupe precision/recall on the labelled pair set")
    p.add_argument("--sweep", action="store_true", help="also print P/R/F1 per threshold")
    add_dataclass_args(p, CurateConfig)
    a = p.parse_args(argv)
    config = load_config(CurateConfig, None, overrides_from_args(a, CurateConfig))
    pairs = labelled_pairs(config.seed)
    t0 = time.perf_counter()
    emb = _pair_embeddings(pairs, config)
    result = evaluate_pairs(config, pairs, emb)
    print(format_table(result))
    print(f"({time.perf_counter() - t0:.1f}s)")
    if a.sweep:
        pd.set_option("display.width", 200)
        table = sweep(config, pair_scores(config, pairs, emb))
        print(table.drop(columns=["tp", "fp", "fn"]).to_string(index=False))


if __name__ == "__main__":
    main()
