"""Durable cache of teacher calls, keyed by content hash.

Key = sha256(backend, model, model identity, messages, sampling params,
response schema). The model identity is what was actually served, not its
name: a fingerprint of the model file (or folder) for local backends, the base
URL + served name for a remote endpoint (see `model_identity`), so pointing the
same served name at another GGUF never returns the first model's answers.
Each completed call is committed on its own (SQLite, WAL), with token counts
and latency, the moment it returns, so a run killed with SIGKILL loses at most
the calls in flight; the rerun finds every completed call here and repeats
none. Candidate k and revision r of one (item, listener) are distinct entries
(`attempt_sampling`). `events` is an append-only log (one row per lookup: hit or miss) that
lets tests and manifests prove it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
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
             schema: dict[str, Any] | None, *, identity: str) -> str:
    """identity: `model_identity(...)` of the model that answers (required, so
    no caller can key on the served name alone)."""
    blob = json.dumps({"backend": backend, "model": model, "identity": identity,
                       "messages": messages, "sampling": sampling, "schema": schema},
                      sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def attempt_sampling(sampling: dict[str, Any], attempt: int) -> dict[str, Any]:
    """Sampling params of attempt `attempt` of one request (synth/revise.py): candidate k
    is attempt k, revision round r of n candidates is attempt n + r. Attempt 0 is the
    plain request (its key is the one runs without candidates used); attempt a > 0
    is sampled with seed + a and keyed with `attempt`, so every attempt is its own
    cache entry even when no seed is sent."""
    if not attempt:
        return dict(sampling)
    out = dict(sampling)
    if out.get("seed") is not None:
        out["seed"] = out["seed"] + attempt
    out["attempt"] = attempt
    return out


# ---------------------------------------------------------------- model identity

FINGERPRINT_CHUNK = 1 << 20  # bytes hashed at each end of a model file
_fingerprints: dict[tuple, str] = {}
_fingerprints_lock = threading.Lock()


def file_fingerprint(path: str | os.PathLike) -> str:
    """Cheap stable identity of a (large) file: sha256 over size, mtime_ns and
    the first and last MiB. mtime_ns is in on purpose: two exports of the same
    architecture can share size, header and tail; a rewrite changes mtime.
    Memoised per path while size, mtime, ctime and inode stay (ctime: any
    write moves it, even one that puts mtime back), so a run hashes each file once."""
    p = Path(path).resolve()
    st = p.stat()
    memo = (str(p), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    with _fingerprints_lock:
        if memo in _fingerprints:
            return _fingerprints[memo]
    h = hashlib.sha256(f"{st.st_size}:{st.st_mtime_ns}:".encode())
    with open(p, "rb") as fh:
        h.update(fh.read(FINGERPRINT_CHUNK))
        if st.st_size > FINGERPRINT_CHUNK:
            fh.seek(max(st.st_size - FINGERPRINT_CHUNK, FINGERPRINT_CHUNK))
            h.update(fh.read(FINGERPRINT_CHUNK))
    digest = h.hexdigest()
    with _fingerprints_lock:
        _fingerprints[memo] = digest
    return digest


def path_fingerprint(path: str | os.PathLike) -> str:
    """A file's fingerprint, or for a folder (HF model dir) one over every file in it."""
    p = Path(path).resolve()
    if p.is_file():
        return file_fingerprint(p)
    h = hashlib.sha256()
    for f in sorted(q for q in p.rglob("*") if q.is_file()):
        h.update(f"{f.relative_to(p).as_posix()}={file_fingerprint(f)}\n".encode())
    return h.hexdigest()


def model_identity(model_path: str | os.PathLike | None = None, *, base_url: str | None = None,
                   model: str | None = None) -> str:
    """What a cache key says about the model: 'file:<fingerprint>' for a local
    file or folder; otherwise 'url:<base_url>|<model>' (remote endpoint; its
    operator decides what the name serves) or 'name:<model>' (e.g. a hub id)."""
    if model_path is not None and Path(model_path).exists():
        return "file:" + path_fingerprint(model_path)
    if base_url:
        return f"url:{base_url.rstrip('/')}|{model or ''}"
    return f"name:{model_path or model or ''}"


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
        self._use_wal()
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(SCHEMA)

    def _use_wal(self) -> None:
        """WAL, set once per file (it persists). Switching needs the file to itself, and SQLite
        answers "database is locked" at once, without the busy timeout, while another process
        (a teacher run being killed) still holds it: retry for a few seconds."""
        if str(self._conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
            return
        for attempt in range(100):
            try:
                self._conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == 99:
                    raise
                time.sleep(0.1)

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
