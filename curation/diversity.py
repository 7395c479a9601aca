"""How varied the liner notes are: one JSON-ready dict per set of rows.

    diversity_report(df) -> {
        "rows", "texts",                     rows given / rows with a non-empty text
        "unique_sentence_ratio",             distinct normalised sentences / texts
        "distinct_1", "distinct_2",          distinct word uni-/bigrams / all of them (corpus level)
        "mean_words", "median_words", "mean_chars",
        "per_type": {item_type: n},
        "template_collapse": {"method", "summary", "templates"}: curation.dedupe's
                                             template_collapse, else `skeleton_collapse`
        "clusters": [{"cluster", "label", "size", "share"}],   when a `cluster` column exists
        "kept": {the same keys, over rows with kept == True},   when a `kept` column exists
    }

Sentences are compared after case-folding, whitespace collapsing and dropping
end punctuation. Words are runs of letters/digits (apostrophes inside kept).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from typing import Any

WORD_RE = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_SPACE = re.compile(r"\s+")
_CAPS_RUN = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][\w'’.&-]*"
                       r"(?:\s+(?:[A-Z][\w'’.&-]*|of|the|and|&))*")
_NUM = re.compile(r"\b\d[\d.,]*\b")
TOP_SKELETONS = 5


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


def _entity_names(row: dict[str, Any]) -> list[str]:
    """Names a row's explanation may mention: item title/creator/album/publisher/genres,
    the listener's history titles and creators (longest first, for masking)."""
    names: list[str] = []
    for key, fields in (("item", ("title", "creator", "collection", "publisher")),
                        ("listener", ())):
        raw = row.get(key)
        if not isinstance(raw, str):
            continue
        try:
            data = json.loads(raw)
        except ValueError:
            continue
        for f in fields:
            if isinstance(data.get(f), str):
                names.append(data[f])
        names.extend(g for g in data.get("genres") or [] if isinstance(g, str))
        for h in data.get("history") or []:
            names.extend(v for v in (h.get("title"), h.get("creator")) if isinstance(v, str))
    return sorted({n.strip() for n in names if len(n.strip()) > 1}, key=len, reverse=True)


def skeleton(text: str, names: list[str] = ()) -> str:
    """The text with its entities masked: known names -> {e}, other capitalised runs
    (not sentence-initial) -> {n}, numbers -> {#}; case-folded, adjacent slots merged."""
    out = text
    for name in names:
        out = re.sub(r"(?<!\w)" + re.escape(name) + r"(?!\w)", "{e}", out, flags=re.IGNORECASE)
    out = _CAPS_RUN.sub("{n}", out)
    out = _NUM.sub("{#}", out)
    out = re.sub(r"\{[en#]\}(?:['’]s)?(?:[\s,]*\{[en#]\}(?:['’]s)?)+", "{e}", out)
    return normalise_sentence(out)


def skeleton_collapse(df, text_column: str = "explanation", min_items: int = 3) -> dict[str, Any]:
    """Fallback for curation.dedupe.template_collapse, same shape: texts grouped by
    exact masked skeleton; a skeleton used for `min_items` distinct items is collapsed."""
    rows = [r for r in df.to_dict("records")
            if isinstance(r.get(text_column), str) and r[text_column].strip()]
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(skeleton(r[text_column], _entity_names(r)), []).append(r)
    n = len(rows)
    templates = []
    for skel, members in groups.items():
        items = {m.get("item_id", i) for i, m in enumerate(members)}
        if len(items) >= min_items:
            templates.append({"skeleton": skel, "n_items": len(items), "n_rows": len(members),
                              "share": round(len(members) / n, 4), "variants": 1,
                              "examples": [m[text_column] for m in members[:3]]})
    templates.sort(key=lambda t: (-t["n_items"], -t["n_rows"], t["skeleton"]))
    collapsed = sum(t["n_rows"] for t in templates)
    return {"method": "masked skeleton (curation.diversity)",
            "summary": {"rows": n, "distinct_skeletons": len(groups),
                        "distinct_ratio": round(len(groups) / n, 4) if n else 0.0,
                        "collapsed_templates": len(templates), "rows_in_collapsed": collapsed,
                        "collapsed_share": round(collapsed / n, 4) if n else 0.0,
                        "min_items": min_items},
            "templates": templates[:TOP_SKELETONS]}


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
    """{"method", "summary", "templates"}: curation.dedupe.template_collapse when the
    dedupe module provides it (its per-row skeletons left out), else `skeleton_collapse`."""
    try:
        from curation.dedupe import template_collapse
    except ImportError:
        return skeleton_collapse(df, text_column)
    from linernotes.config import CurateConfig

    result = template_collapse(df, CurateConfig(text_column=text_column))
    data = result.to_dict() if hasattr(result, "to_dict") and hasattr(result, "templates") \
        else result
    data = _jsonable(data)
    if not isinstance(data, dict):
        data = {"templates": data}
    return {"method": "curation.dedupe.template_collapse", **data}


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
