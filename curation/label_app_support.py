"""Pure helpers behind notebooks/03_label.py (the labeling dashboard).

Everything here works on plain data: the stack status dict
(`linernotes.services.argilla.status()`), the pulled responses DataFrame
(`curation.labeling.pull`: one row per (record, user)) and the output of
`curation.labeling.resolve`. The app only wires them to widgets.

Offline mode: `LINERNOTES_LABEL_RESPONSES=<responses.parquet>` makes the app
read pulled responses from a file instead of a server (`load_responses`).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from curation.labeling import EXPERT_ROLES

ENV_RESPONSES = "LINERNOTES_LABEL_RESPONSES"
ENV_DATASET = "LINERNOTES_LABEL_DATASET"
START_HINT = "linernotes services up argilla"
COMPARED = ("rating", "grounded", "tone_ok", "pref_winner", "corrected_explanation")


def mask_key(key: str | None, keep: int = 6) -> str:
    """'argilla.abcdef...' -> 'argill…' (never the whole key)."""
    if not key:
        return "-"
    return key[:keep] + "…"


def stack_summary(status: Mapping[str, Any] | None, env: Mapping[str, str] | None = None) -> dict:
    """What the app shows about Argilla: {'running', 'source' ('env' | 'local' | None), 'api_url',
    'owner_key' (masked), 'annotators' (names; keys never shown), 'message'}."""
    env = os.environ if env is None else env
    url, key = env.get("ARGILLA_API_URL"), env.get("ARGILLA_API_KEY")
    if url and key:
        return {"running": True, "source": "env", "api_url": url, "owner_key": mask_key(key),
                "annotators": [], "message": f"external Argilla at {url} ($ARGILLA_API_URL)"}
    status = status or {}
    if status.get("running"):
        return {"running": True, "source": "local", "api_url": status.get("api_url"),
                "owner_key": mask_key(status.get("owner_api_key")),
                "annotators": sorted((status.get("annotator_api_keys") or {}).keys()),
                "message": f"local Argilla stack at {status.get('api_url')}"}
    was = " (a state file exists but its processes are not healthy)" if status.get("pids") else ""
    return {"running": False, "source": None, "api_url": status.get("api_url"), "owner_key": "-",
            "annotators": [], "message": f"no Argilla running{was}: start one with `{START_HINT}` "
                                         "(or set ARGILLA_API_URL / ARGILLA_API_KEY)"}


def load_responses(path: str | Path) -> pd.DataFrame:
    """Pulled responses saved as parquet (or JSON lines); list columns come back as lists."""
    path = Path(path)
    df = pd.read_json(path, lines=True) if path.suffix in (".jsonl", ".json") else pd.read_parquet(path)
    if "preference" in df.columns:
        df["preference"] = df["preference"].map(lambda v: list(v) if isinstance(v, (list, np.ndarray)) else None)
    return df


def save_responses(responses: pd.DataFrame, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    responses.to_parquet(path, index=False)
    return path


def progress(responses: pd.DataFrame, n_records: int | None = None, min_submitted: int = 2) -> dict:
    """{'records', 'completed' (>= min_submitted submitted), 'pending', 'per_annotator': DataFrame}.

    per_annotator: username, role, submitted, draft, discarded, pending (records not yet
    submitted or discarded by that user). `n_records` defaults to the records seen in responses.
    """
    cols = ["username", "role", "submitted", "draft", "discarded", "pending"]
    if len(responses) and "dataset" in responses.columns:  # pair-ranking answers are not review records
        responses = responses[responses["dataset"].fillna("review") != "pairs"]
    seen = responses["record_id"].nunique() if len(responses) else 0
    n = max(int(n_records or 0), int(seen))
    if not len(responses):
        return {"records": n, "completed": 0, "pending": n, "per_annotator": pd.DataFrame(columns=cols)}
    sub = responses[responses["status"] == "submitted"]
    done = sub.groupby("record_id")["username"].nunique()
    completed = int((done >= min_submitted).sum())
    rows = []
    for (user, role), g in responses.groupby(["username", "role"], sort=True):
        st = g["status"].value_counts()
        closed = g[g["status"].isin(["submitted", "discarded"])]["record_id"].nunique()
        rows.append({"username": user, "role": role, "submitted": int(st.get("submitted", 0)),
                     "draft": int(st.get("draft", 0)), "discarded": int(st.get("discarded", 0)),
                     "pending": n - int(closed)})
    return {"records": n, "completed": completed, "pending": n - completed,
            "per_annotator": pd.DataFrame(rows, columns=cols)}


def _num(v):
    return None if v is None or (isinstance(v, float) and np.isnan(v)) else round(float(v), 3)


def agreement_tables(agreement: Mapping[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`resolve(...)['agreement']` -> (per question, per annotator) tables."""
    q_rows = []
    for q, a in (agreement.get("questions") or {}).items():
        ck, fk = a.get("cohen_kappa") or {}, a.get("fleiss_kappa") or {}
        q_rows.append({"question": q, "records_2plus": a.get("n_records"),
                       "cohen_kappa": _num(ck.get("kappa")), "cohen_raters": " vs ".join(ck.get("raters", [])),
                       "cohen_kappa_quadratic": _num(ck.get("kappa_quadratic")),
                       "fleiss_kappa": _num(fk.get("kappa")),
                       "krippendorff_alpha": _num(a.get("krippendorff_alpha"))})
    q_df = pd.DataFrame(q_rows, columns=["question", "records_2plus", "cohen_kappa", "cohen_raters",
                                         "cohen_kappa_quadratic", "fleiss_kappa", "krippendorff_alpha"])
    a_rows = [{"annotator": u, **{k: (_num(v) if isinstance(v, float) else v) for k, v in s.items()}}
              for u, s in (agreement.get("annotators") or {}).items()]
    return q_df, pd.DataFrame(a_rows)


def agreement_figure(q_df: pd.DataFrame, a_df: pd.DataFrame | None = None):
    """Plotly: grouped bars of kappa/alpha per question (+ agreement with resolved per annotator)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    two = a_df is not None and len(a_df)
    fig = make_subplots(rows=1, cols=2 if two else 1,
                        subplot_titles=["per question", "per annotator: agreement with resolved"][: 2 if two else 1])
    for metric in ("cohen_kappa", "fleiss_kappa", "krippendorff_alpha"):
        if metric in q_df:
            fig.add_trace(go.Bar(name=metric, x=q_df["question"], y=q_df[metric]), row=1, col=1)
    if two:
        for q in ("rating", "grounded", "tone_ok"):
            col = f"{q}_agree_resolved"
            if col in a_df:
                fig.add_trace(go.Bar(name=f"{q} vs resolved", x=a_df["annotator"], y=a_df[col]), row=1, col=2)
    fig.update_layout(barmode="group", height=360, margin=dict(l=30, r=10, t=40, b=30),
                      yaxis_range=[-1, 1])
    return fig


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "-"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def disagreements(responses: pd.DataFrame, resolved: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per (record, question) where submitted annotators answered differently:
    record_id, question, answers ('user: value; ...'), n_answers, resolved (the rule's outcome,
    None = tie for an expert to adjudicate), explanation, other_explanation."""
    cols = ["record_id", "question", "answers", "n_answers", "resolved", "explanation", "other_explanation"]
    if not len(responses):
        return pd.DataFrame(columns=cols)
    sub = responses[(responses["status"] == "submitted")].sort_values(["record_id", "username"])
    res = resolved.set_index("record_id") if resolved is not None and len(resolved) else None
    rows = []
    for rid, g in sub.groupby("record_id", sort=True):
        if len(g) < 2:
            continue
        for q in COMPARED:
            if q not in g:
                continue
            answers = [(u, v) for u, v in zip(g["username"], g[q]) if _fmt(v) != "-"]
            if q == "corrected_explanation":  # only differing corrections count
                answers = [(u, str(v).strip()) for u, v in answers]
            if len(answers) < 2 or len({_fmt(v) for _, v in answers}) < 2:
                continue
            rq = "pref_winner" if q == "pref_winner" else q
            r = res.at[rid, rq] if res is not None and rid in res.index and rq in res.columns else None
            rows.append({"record_id": rid, "question": "preference" if q == "pref_winner" else q,
                         "answers": "; ".join(f"{u}: {_fmt(v)}" for u, v in answers),
                         "n_answers": len(answers), "resolved": None if _fmt(r) == "-" else _fmt(r),
                         "explanation": g["explanation"].iloc[0],
                         "other_explanation": g["other_explanation"].iloc[0] if "other_explanation" in g else None})
    return pd.DataFrame(rows, columns=cols)


def item_type_of(item_id: Any) -> str:
    s = str(item_id or "")
    return s.split(":", 1)[0] if ":" in s else "unknown"


def golden_by_type(golden: pd.DataFrame) -> pd.DataFrame:
    """Golden set size per item type and source (corrected / approved)."""
    cols = ["item_type", "source", "count"]
    if golden is None or not len(golden):
        return pd.DataFrame(columns=cols)
    g = golden.assign(item_type=golden["item_id"].map(item_type_of))
    return g.groupby(["item_type", "source"]).size().reset_index(name="count")[cols]


def record_snapshot(path: str | Path, dataset: str, golden: pd.DataFrame, n_pairs: int = 0) -> dict:
    """Append {'time', 'dataset', 'golden', 'by_type', 'pairs'} to a JSON-lines history (after a pull)."""
    by = golden_by_type(golden).groupby("item_type")["count"].sum().to_dict() if len(golden) else {}
    snap = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "dataset": dataset, "golden": int(len(golden)),
            "by_type": {k: int(v) for k, v in by.items()}, "pairs": int(n_pairs)}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fh.write(json.dumps(snap) + "\n")
    return snap


def golden_history(path: str | Path, dataset: str | None = None) -> pd.DataFrame:
    """Snapshots recorded by `record_snapshot` (one row per pull): time, golden, pairs, per type."""
    path = Path(path)
    rows = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                s = json.loads(line)
            except ValueError:
                continue
            if dataset is None or s.get("dataset") == dataset:
                rows.append({"time": s["time"], "golden": s["golden"], "pairs": s.get("pairs", 0),
                             **{f"golden_{k}": v for k, v in s.get("by_type", {}).items()}})
    return pd.DataFrame(rows)


def golden_figure(golden: pd.DataFrame, history: pd.DataFrame | None = None):
    """Golden set over time when there are >= 2 snapshots, else the current count by item type."""
    import plotly.express as px

    if history is not None and len(history) >= 2:
        fig = px.line(history, x="time", y="golden", markers=True, title="golden set size per pull")
    else:
        by = golden_by_type(golden)
        fig = px.bar(by, x="item_type", y="count", color="source", title="golden set by item type")
    fig.update_layout(height=320, margin=dict(l=30, r=10, t=40, b=30))
    return fig


def annotator_roles(responses: pd.DataFrame) -> dict[str, str]:
    if not len(responses):
        return {}
    return {u: ("expert" if r in EXPERT_ROLES else "annotator")
            for u, r in zip(responses["username"], responses["role"])}
