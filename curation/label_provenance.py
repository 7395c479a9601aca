"""Who labeled the data, as cards say it: people, the demo's scripted stand-ins, or nobody.

A label run's manifest records `label_source: {"human": n, "scripted": m}` (submitted
answers; `curation.label_stage`). Dataset cards (`curation.publish`) and model cards
(`finetune.card`) read it through `from_lineage` and word it with `describe`/`tags`, so the
words "expert" / "reviewed by experts" and the `human-feedback` tag appear only when people
gave every answer, and scripted demo answers are called "scripted demo labels (not human)".
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

SCRIPTED_WORDS = "scripted demo labels (not human)"
HUMAN_TAG = "human-feedback"
SCRIPTED_TAG = "scripted-demo-labels"


def kind(source: Mapping[str, Any] | None) -> str:
    """'human' (people only), 'scripted' (stand-ins only), 'mixed', or 'none' (no label run / no
    answers / provenance not recorded)."""
    if not isinstance(source, Mapping):
        return "none"
    human, scripted = int(source.get("human") or 0), int(source.get("scripted") or 0)
    if human and scripted:
        return "mixed"
    return "human" if human else "scripted" if scripted else "none"


def from_lineage(runs: Iterable[Mapping[str, Any]] | None) -> dict[str, int] | None:
    """Sum of `label_source` over the label runs of a lineage list (None when none records it)."""
    total, seen = {"human": 0, "scripted": 0}, False
    for r in runs or []:
        src = r.get("label_source") if isinstance(r, Mapping) else None
        if isinstance(src, Mapping):
            seen = True
            for k in total:
                total[k] += int(src.get(k) or 0)
    return total if seen else None


def describe(source: Mapping[str, Any] | None) -> str:
    """The card's sentence about review."""
    k = kind(source)
    if k == "human":
        return f"reviewed by experts in Argilla ({source['human']} answers by people)"
    if k == "scripted":
        return (f"labeled by the demo's {SCRIPTED_WORDS}: {source['scripted']} answers by scripted "
                "stand-in annotators, no person reviewed them")
    if k == "mixed":
        return (f"partly reviewed in Argilla: {source['human']} answers by people and "
                f"{source['scripted']} {SCRIPTED_WORDS}")
    return "not reviewed by people (automatic gates only)"


def short(source: Mapping[str, Any] | None) -> str:
    """A few words for a parenthesis: 'expert-approved', 'scripted demo labels (not human)', ..."""
    return {"human": "expert-approved", "scripted": SCRIPTED_WORDS,
            "mixed": f"partly person-reviewed, partly {SCRIPTED_WORDS}",
            "none": "not reviewed by people"}[kind(source)]


def tags(source: Mapping[str, Any] | None) -> list[str]:
    k = kind(source)
    return {"human": [HUMAN_TAG], "mixed": [HUMAN_TAG, SCRIPTED_TAG], "scripted": [SCRIPTED_TAG]}.get(k, [])
