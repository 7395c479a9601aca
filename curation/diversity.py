"""How varied the liner notes are: one JSON-ready dict per set of rows.

    diversity_report(df) -> {
        "rows", "texts",                     rows given / rows with a non-empty text
        "unique_sentence_ratio",             distinct normalised sentences / texts
        "distinct_1", "distinct_2",          distinct word uni-/bigrams / all of them (corpus level)
        "mean_words", "median_words", "mean_chars",
        "per_type": {item_type: n},
        "template_collapse": {"method", "summary", "templates"}: `template_collapse`, sentence
                                             shapes shared by many items
        "clusters": [{"cluster", "label", "size", "share"}],   when a `cluster` column exists
        "kept": {the same keys, over rows with kept == True},   when a `kept` column exists
    }

Sentences are compared after case-folding, whitespace collapsing and dropping
end punctuation. Words are runs of letters/digits (apostrophes inside kept).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections import Counter
from typing import Any, Sequence

import numpy as np
import pandas as pd

from curation.dedupe import (
    _as_text, _components, jaccard_estimate, lsh_candidates, minhash_signatures, normalize_text,
)
from linernotes.jsoncol import loads_obj

WORD_RE = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_SPACE = re.compile(r"\s+")


def _texts(df, text_column: str) -> list[str]:
    if text_column not in df.columns:
        raise ValueError(f"no {text_column!r} column to measure")
    return [t for t in df[text_column].tolist() if isinstance(t, str) and t.strip()]


def normalise_sentence(text: str) -> str:
    return _SPACE.sub(" ", text.casefold()).strip().rstrip(".!?… ").strip()


def words(text: str) -> list[str]:
    return WORD_RE.findall(text.casefold())


def distinct_n(texts: list[str], n: int) -> float | None:
    """Distinct n-grams / all n-grams over the whole corpus (Li et al., 2016)."""
    total, seen = 0, set()
    for text in texts:
        toks = words(text)
        grams = list(zip(*(toks[i:] for i in range(n))))
        total += len(grams)
        seen.update(grams)
    return round(len(seen) / total, 4) if total else None


# ============================================================================ template collapse

_NUM_RE = re.compile(r"\b\d+(?:[.,]\d+)*\b")
_TOKEN_RE = re.compile(r"\S+")
# titles, creators, history titles and other capitalised names all become one slot
# (the model puts any of them in the same place); genres and numbers keep their own.
ENTITY = "xxent"
PLACEHOLDERS = (ENTITY, "xxgenre", "xxnum")
_CONNECTORS = r"(?:de|da|do|dos|das|del|la|le|of|the|and|von|van|y|e|n|&)"
_JOIN_RE = re.compile(r"\bxxent(?: " + _CONNECTORS + r")? xxent\b")


def _row_names(row: dict) -> list[tuple[str, str]]:
    item = loads_obj(row.get("item"))
    listener = loads_obj(row.get("listener"))
    names: list[tuple[str, str]] = []
    for key, tag in (("title", ENTITY), ("collection", ENTITY), ("creator", ENTITY),
                     ("publisher", ENTITY)):
        v = _as_text(row.get(key)) or _as_text(item.get(key))
        if v:
            names.append((v, tag))
    for g in list(item.get("genres") or []) + list(listener.get("taste") or []):
        names.append((_as_text(g), "xxgenre"))
    for h in listener.get("history") or []:
        if isinstance(h, dict):
            if h.get("title"):
                names.append((_as_text(h["title"]), ENTITY))
            if h.get("creator"):
                names.append((_as_text(h["creator"]), ENTITY))
    return [(v.strip(), t) for v, t in names if len(v.strip()) >= 2]


def _mask_names_heuristic(text: str) -> str:
    """Capitalised words that do not start a sentence -> xxent (runs collapse)."""
    out, prev_end = [], True
    for m in _TOKEN_RE.finditer(text):
        tok = m.group(0)
        core = tok.strip("\"'“”‘’()[]")
        name_like = bool(core) and core[0].isupper() and not prev_end and core not in ("I", "I'm")
        if name_like:
            if not (out and out[-1] == ENTITY):
                out.append(ENTITY)
        else:
            out.append(tok)
        prev_end = tok.endswith((".", "!", "?", ":"))
    return " ".join(out)


def skeleton(text: Any, names: Sequence[tuple[str, str]] = ()) -> str:
    """The sentence shape: known names (title, creator, genres, history titles) and
    numbers replaced by placeholders, other capitalised names by xxent, normalised."""
    t = _as_text(text)
    for value, tag in sorted(names, key=lambda x: -len(x[0])):
        t = re.sub(r"(?<!\w)" + re.escape(value) + r"(?!\w)", f" {tag} ", t, flags=re.IGNORECASE)
    t = _NUM_RE.sub(" xxnum ", t)
    t = _mask_names_heuristic(t)
    norm = re.sub(r"\b(xx[a-z]+) s\b", r"\1", normalize_text(t))  # "X's" -> "xxent"
    prev = None
    while prev != norm:
        prev, norm = norm, _JOIN_RE.sub(ENTITY, norm)
    return re.sub(r"\b(xx[a-z]+)( \1\b)+", r"\1", norm)


@dataclasses.dataclass
class TemplateReport:
    summary: dict[str, Any]
    templates: list[dict[str, Any]]
    skeletons: pd.Series  # one per row, aligned with the frame

    def table(self) -> pd.DataFrame:
        cols = ["skeleton", "n_items", "n_rows", "share", "variants", "examples"]
        return pd.DataFrame([{c: t.get(c) for c in cols} for t in self.templates], columns=cols)

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary, "templates": self.templates}


def template_collapse(df: pd.DataFrame, config: Any = None, *, min_items: int = 3, top: int = 20,
                      near: bool = True, near_threshold: float | None = None,
                      n_examples: int = 3) -> TemplateReport:
    """Sentence shapes shared by many different items (a diversity problem, not duplication).

    Each row's text is reduced to a skeleton (`skeleton`: names from the row's item /
    listener JSON, numbers and other capitalised names masked). Skeletons are grouped
    exactly, and with near=True also by MinHash/LSH (entity-blind, `near_threshold`,
    default config.minhash_threshold) into families. Families used by at least
    `min_items` distinct items are listed, biggest first (at most `top`), with counts,
    variants and example texts.
    """
    from linernotes.config import CurateConfig

    cfg = config or CurateConfig()
    col = cfg.text_column
    d = df.reset_index(drop=True)
    texts = [_as_text(t) for t in d[col]]
    records = d.to_dict("records")
    skels = pd.Series([skeleton(t, _row_names(r)) if t.strip() else "" for t, r in zip(texts, records)])
    valid = (skels != "").to_numpy()
    uniq, inv = np.unique(skels.to_numpy(dtype=str), return_inverse=True)
    fam_of_uniq = np.arange(len(uniq))
    if near and len(uniq) > 1:
        thr = cfg.minhash_threshold if near_threshold is None else near_threshold
        sig = minhash_signatures(list(uniq), cfg.shingle, cfg.minhash_num_perm, normalized=True)
        ok = np.array([bool(u) for u in uniq])
        i, j = lsh_candidates(sig, thr, None, ok)
        keep = jaccard_estimate(sig, i, j) >= thr
        fam_of_uniq = _components(len(uniq), i[keep], j[keep])
    fam = fam_of_uniq[inv]
    item_ids = d["item_id"].map(_as_text) if "item_id" in d.columns else pd.Series(np.arange(len(d)).astype(str))
    frame = pd.DataFrame({"fam": fam, "skel": skels, "item": item_ids, "valid": valid, "pos": np.arange(len(d))})
    frame = frame[frame["valid"]]
    n_rows = int(valid.sum())
    templates = []
    if len(frame):
        stats = frame.groupby("fam").agg(n_items=("item", "nunique"), n_rows=("pos", "size"))
        stats = stats[stats["n_items"] >= min_items].sort_values(["n_items", "n_rows"], ascending=False)
        for fam_id, st in stats.iterrows():
            members = frame[frame["fam"] == fam_id]
            variants = members["skel"].value_counts()
            ex_pos = members.drop_duplicates("item")["pos"].head(n_examples)
            templates.append({"skeleton": variants.index[0], "n_items": int(st["n_items"]),
                              "n_rows": int(st["n_rows"]), "share": round(st["n_rows"] / max(n_rows, 1), 4),
                              "variants": int(len(variants)),
                              "examples": [texts[p] for p in ex_pos]})
    collapsed = sum(t["n_rows"] for t in templates)
    summary = {"rows": n_rows, "items": int(frame["item"].nunique()) if len(frame) else 0,
               "distinct_skeletons": int(frame["skel"].nunique()) if len(frame) else 0,
               "distinct_ratio": round(frame["skel"].nunique() / max(n_rows, 1), 4) if len(frame) else 0.0,
               "collapsed_templates": len(templates), "rows_in_collapsed": int(collapsed),
               "collapsed_share": round(collapsed / max(n_rows, 1), 4), "min_items": min_items}
    return TemplateReport(summary, templates[:top], skels)


def _jsonable(value: Any) -> Any:
    """A JSON-ready copy (numpy scalars/arrays, NaN -> None, dataclasses, frames)."""
    import dataclasses

    import numpy as np
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        return [_jsonable(r) for r in value.to_dict("records")]
    if isinstance(value, pd.Series):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def template_collapse_report(df, text_column: str = "explanation") -> dict[str, Any]:
    """{"method", "summary", "templates"}: `template_collapse` as JSON (its per-row skeletons left out)."""
    from linernotes.config import CurateConfig

    data = _jsonable(template_collapse(df, CurateConfig(text_column=text_column)).to_dict())
    return {"method": "curation.diversity.template_collapse", **data}


# ============================================================================ report


def _cluster_sizes(df) -> list[dict[str, Any]]:
    if "cluster" not in df.columns or not len(df):
        return []
    labels = {}
    if "cluster_label" in df.columns:
        for c, label in zip(df["cluster"].tolist(), df["cluster_label"].tolist()):
            labels.setdefault(int(c), label)
    sizes = Counter(int(c) for c in df["cluster"].tolist())
    n = len(df)
    return [{"cluster": c, "label": labels.get(c, ""), "size": s, "share": round(s / n, 4)}
            for c, s in sorted(sizes.items())]


def _metrics(df, text_column: str) -> dict[str, Any]:
    texts = _texts(df, text_column)
    n = len(texts)
    lengths = sorted(len(words(t)) for t in texts)
    per_type = (dict(sorted(Counter(df["item_type"].tolist()).items()))
                if "item_type" in df.columns else {})
    return {
        "rows": int(len(df)),
        "texts": n,
        "unique_sentence_ratio": (round(len({normalise_sentence(t) for t in texts}) / n, 4)
                                  if n else None),
        "distinct_1": distinct_n(texts, 1),
        "distinct_2": distinct_n(texts, 2),
        "mean_words": round(sum(lengths) / n, 2) if n else None,
        "median_words": (float(lengths[n // 2]) if n % 2 else
                         (lengths[n // 2 - 1] + lengths[n // 2]) / 2) if n else None,
        "mean_chars": round(sum(len(t) for t in texts) / n, 1) if n else None,
        "per_type": {str(k): int(v) for k, v in per_type.items()},
        "template_collapse": template_collapse_report(df, text_column),
        "clusters": _cluster_sizes(df),
    }


def diversity_report(df, text_column: str = "explanation") -> dict[str, Any]:
    """Diversity metrics over all rows of df, plus the same over kept rows (`kept`)."""
    report = _metrics(df, text_column)
    if "kept" in df.columns:
        report["kept"] = _metrics(df[df["kept"].astype(bool)], text_column)
    return report


def report_table(report: dict[str, Any]):
    """The scalar metrics side by side (all rows vs kept rows), for display."""
    import pandas as pd

    keys = ["rows", "texts", "unique_sentence_ratio", "distinct_1", "distinct_2", "mean_words",
            "median_words", "mean_chars"]
    rows = [{"metric": k, "all rows": report.get(k), **({"kept": report["kept"].get(k)}
                                                          if "kept" in report else {})}
            for k in keys]
    summary = lambda r: r.get("template_collapse", {}).get("summary", {})  # noqa: E731
    for key in ("distinct_ratio", "collapsed_templates", "collapsed_share"):
        if key in summary(report):
            row = {"metric": f"template {key.replace('_', ' ')}",
                   "all rows": summary(report).get(key)}
            if "kept" in report:
                row["kept"] = summary(report["kept"]).get(key)
            rows.append(row)
    return pd.DataFrame(rows, dtype=object)
