"""Durable cache of teacher calls, keyed by content hash.

Key = sha256(backend, model, messages, sampling params, response schema).
Each completed call is committed on its own (SQLite, WAL), with token counts
and latency, the moment it returns, so a run killed with SIGKILL loses at most
the calls in flight; the rerun finds every completed call here and repeats
none. `events` is an append-only log (one row per lookup: hit or miss) that
lets tests and manifests prove it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    key TEXT PRIMARY KEY,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    request TEXT NOT NULL,
    output TEXT,
    finish_reason TEXT,
    input_tokens INTEGER,
    output_tokens INTEGER,
    latency_s REAL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    run_id TEXT,
    kind TEXT NOT NULL,          -- 'hit' | 'miss' (a completed backend call) | 'error'
    detail TEXT,
    ts REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_run ON events(run_id);
"""


def call_key(backend: str, model: str, messages: Any, sampling: dict[str, Any],
             schema: dict[str, Any] | None) -> str:
    blob = json.dumps({"backend": backend, "model": model, "messages": messages,
                       "sampling": sampling, "schema": schema},
                      sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass
class CachedCall:
    key: str
    output: str | None
    finish_reason: str | None
    input_tokens: int | None
    output_tokens: int | None
    latency_s: float | None


class CallCache:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                     check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(SCHEMA)

    def get(self, key: str) -> CachedCall | None:
        row = self._conn.execute(
            "SELECT key, output, finish_reason, input_tokens, output_tokens, latency_s "
            "FROM calls WHERE key = ?", (key,)).fetchone()
        return CachedCall(*row) if row else None

    def put(self, key: str, backend: str, model: str, request: dict[str, Any], output: str | None,
            finish_reason: str | None, input_tokens: int | None, output_tokens: int | None,
            latency_s: float) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO calls VALUES (?,?,?,?,?,?,?,?,?,?)",
            (key, backend, model, json.dumps(request, ensure_ascii=False), output, finish_reason,
             input_tokens, output_tokens, latency_s, time.time()))

    def log(self, key: str, run_id: str | None, kind: str, detail: str | None = None) -> None:
        self._conn.execute("INSERT INTO events (key, run_id, kind, detail, ts) VALUES (?,?,?,?,?)",
                           (key, run_id, kind, detail, time.time()))

    def last_error(self, key: str) -> str | None:
        row = self._conn.execute("SELECT detail FROM events WHERE key = ? AND kind = 'error' "
                                 "ORDER BY id DESC LIMIT 1", (key,)).fetchone()
        return row[0] if row else None

    def first_event(self, key: str, run_id: str | None) -> str | None:
        """How this run first met the key: 'hit' (cached before) or 'miss' (called)."""
        row = self._conn.execute("SELECT kind FROM events WHERE key = ? AND run_id IS ? "
                                 "AND kind IN ('hit','miss') ORDER BY id LIMIT 1",
                                 (key, run_id)).fetchone()
        return row[0] if row else None

    def stats(self, run_id: str | None = None) -> dict[str, int]:
        where, args = ("WHERE run_id = ?", (run_id,)) if run_id else ("", ())
        rows = self._conn.execute(f"SELECT kind, COUNT(*) FROM events {where} GROUP BY kind", args)
        out = {"hit": 0, "miss": 0, "error": 0}
        out.update(dict(rows.fetchall()))
        return out

    def repeated_misses(self) -> list[tuple[str, int]]:
        """Keys whose call completed more than once ('miss' is logged after a
        backend call returns and is stored): any row here means a completed
        call was repeated."""
        return self._conn.execute(
            "SELECT key, COUNT(*) FROM events WHERE kind = 'miss' "
            "GROUP BY key HAVING COUNT(*) > 1").fetchall()

    def stats_for_run(self, run_name: str) -> dict[str, int]:
        """Events of every attempt of a run (attempt ids are '<run name>@<when>-<pid>')."""
        rows = self._conn.execute(
            "SELECT kind, COUNT(*) FROM events WHERE run_id = ? OR substr(run_id, 1, ?) = ? "
            "GROUP BY kind", (run_name, len(run_name) + 1, run_name + "@"))
        out = {"hit": 0, "miss": 0, "error": 0}
        out.update(dict(rows.fetchall()))
        return out

    def count(self) -> int:
        return self._conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0]

    def close(self) -> None:
        self._conn.close()
