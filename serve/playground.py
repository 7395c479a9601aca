"""Helpers for the serve playground app (notebooks/05_serve.py): the app stays widgets only.

    find_exports()          fine-tune export GGUFs under the runs root (label with gate verdict -> path)
    pair_options()          item / listener choices of one type from the catalog
    Endpoints               starts an endpoint per model once, reuses it, stops all at exit;
                            an export whose gate did not pass raises UngatedModel unless
                            allow_ungated=True
    explain_via()           POST /v1/explain, errors as a dict instead of an exception
    comparison_rows()       base vs tuned answers as table rows
"""

from __future__ import annotations

import atexit
import threading
from pathlib import Path
from typing import Any

import httpx

from linernotes import paths
from serve.gate_check import UngatedModel, gate_verdict, require_gated  # noqa: F401 - UngatedModel: the app
from serve.settings import GGUF_PREFERENCE, choose_model_file

BASE_LABEL = "base (packaged SmolLM2)"


def find_exports(root: str | Path | None = None, limit: int = 50) -> dict[str, Path]:
    """{label: gguf} for export folders under `root` (default: the runs root) holding
    model-Q*_0.gguf; the label says whether its export gate passed (read from the folder's
    JSON, without hashing: the hash is checked when the endpoint starts)."""
    root = Path(root) if root else paths.runs_dir()
    folders = sorted({p.parent for name in GGUF_PREFERENCE for p in root.glob(f"**/{name}")},
                     key=lambda p: p.stat().st_mtime, reverse=True)[:limit]
    out = {}
    for folder in folders:
        gguf = choose_model_file(folder)
        verdict = gate_verdict(gguf, verify_hash=False)
        out[f"{folder.relative_to(root)} ({gguf.name}, {verdict.label()})"] = gguf
    return out


def pair_options(catalog: Any, item_type: str, limit: int = 200) -> tuple[dict[str, str], dict[str, str]]:
    """({label: item_id}, {label: listener_id}) of one type; listeners with history first,
    items by popularity (the catalogs are large: the first `limit` of each)."""
    items = sorted(catalog.items_of_type(item_type), key=lambda it: -(it.popularity or 0))[:limit]
    listeners = sorted(catalog.listeners_of_type(item_type), key=lambda ls: -len(ls.history))[:limit]
    item_opts = {f"{it.title} - {it.creator or '?'} [{it.item_id}]": it.item_id for it in items}
    listener_opts = {f"{ls.listener_id} ({len(ls.history)} in history"
                     f"{', ' + ls.country if ls.country else ''})": ls.listener_id for ls in listeners}
    return item_opts, listener_opts


class Endpoints:
    """One endpoint subprocess per model file, started on first use and kept for the
    session (a rerun of a cell must not start a second server); all stopped at exit."""

    def __init__(self):
        self._lock = threading.Lock()
        self.handles: dict[str, Any] = {}

    def get(self, model_path: Path | None, catalog_dir: Path | None, *, allow_ungated: bool = False,
            **kw):
        from serve.launch import start_endpoint

        # before reuse too: a running endpoint is handed out only as allowed now
        require_gated(model_path, engine=kw.get("engine", "auto"), allow_ungated=allow_ungated)
        key = f"{model_path}|{catalog_dir}"
        with self._lock:
            handle = self.handles.get(key)
            if handle is not None and handle.process.healthy():
                return handle
            handle = start_endpoint(model_path, catalog_dir=catalog_dir or None,
                                    allow_ungated=allow_ungated, **kw)
            self.handles[key] = handle
            return handle

    def stop_all(self) -> None:
        with self._lock:
            for handle in self.handles.values():
                handle.stop()
            self.handles.clear()


ENDPOINTS = Endpoints()
atexit.register(ENDPOINTS.stop_all)


def explain_via(handle, item_id: str, listener_id: str, *, max_tokens: int = 96,
                temperature: float = 0.0, timeout_s: float = 180.0) -> dict[str, Any]:
    """The endpoint's /v1/explain answer, or {"error": ...} with the status."""
    try:
        resp = httpx.post(handle.base_url + "/explain", timeout=timeout_s,
                          headers={"Authorization": f"Bearer {handle.api_key}"},
                          json={"item_id": item_id, "listener_id": listener_id,
                                "max_tokens": max_tokens, "temperature": temperature})
    except httpx.HTTPError as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    if resp.status_code != 200:
        try:
            message = resp.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = resp.text[:300]
        return {"error": f"HTTP {resp.status_code}: {message}"}
    return resp.json()


def comparison_rows(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per model: explanation, verdicts with reasons, latency, tokens."""
    rows = []
    for name, r in results.items():
        if "error" in r:
            rows.append({"model": name, "explanation": r["error"], "passed": None})
            continue
        gates = r.get("gates", {})
        rows.append({
            "model": name, "explanation": r.get("explanation") or f"(unparsed: {r.get('parse_error')})",
            "passed": r.get("passed"),
            **{g: ("pass" if v["passed"] else "fail: " + "; ".join(v["reasons"])) for g, v in gates.items()},
            "latency_ms": r.get("latency_ms"), "completion_tokens": (r.get("usage") or {}).get("completion_tokens"),
            "facts_used": ", ".join(r.get("facts_used") or [])})
    return rows
