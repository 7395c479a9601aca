"""The work behind `linernotes codes` and `linernotes recommend` (and the 06 recommend app).

    linernotes codes build|stats [--types music,podcast] [--version V]
        = python -m recommend.semantic_ids build|stats (the same code, delegated)
    linernotes recommend --type music --listener-id music-customer:1 [-k 10] [--run DIR]
                         [--beams 20] [--json]

`recommend` takes the listener's whole interaction log (`recommend.interactions`, in
purchase order for music), writes it as codes into the student's prompt
(`recommend.tasks.next_code_prompt`, the last `MAX_HISTORY` of them) and asks the newest
complete `recommend-codes-<type>-*` run (or `--run`) for the top-K codes by HF
`generate` beam search under the code trie (`recommend.llm_recommender.hf_topk_codes`).
The listener's own items are banned in the trie, so every row is an item they do not
have; the "in history" column shows that check rather than assuming it. The run is read
with the code table it was trained on (its manifest's `table_version`), not whatever
table was built last, so a rebuilt table cannot silently renumber its answers.

Missing pieces are a `NotBuilt` error (a ValueError, so `linernotes` prints it without a
traceback) that names the command which makes them.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from linernotes.runs import RunDir

ITEM_TYPES = ("music", "podcast", "book")
DEFAULT_K = 10
BUILD_HINT = "python -m recommend.semantic_ids build --types {t}"
TRAIN_HINT = "python -m recommend.train_codes --type {t}"
# A code ranker: (the listener's history as codes, k) -> [(code or None, score)], best first.
Ranker = Callable[[Sequence[str], int], list[tuple[str | None, float]]]


class NotBuilt(ValueError):
    """A table or a run the command needs does not exist yet; the message names the command."""


def _check_type(item_type: str) -> None:
    if item_type not in ITEM_TYPES:
        raise ValueError(f"item type {item_type!r}: expected one of {ITEM_TYPES}")


# ---------------------------------------------------------------- codes

def codes_main(action: str, types: str | None = None, version: str | None = None) -> int:
    """`linernotes codes`: recommend.semantic_ids' own CLI, so the two never drift apart."""
    from recommend import semantic_ids

    argv = [action]
    if types:
        argv += ["--types", types]
    if version and action == "stats":
        argv += ["--version", version]
    return semantic_ids.main(argv)


def load_code_table(item_type: str, version: str | None = None):
    """The semantic-ID table (latest, or a pinned version); NotBuilt says how to make it."""
    from recommend import semantic_ids

    _check_type(item_type)
    try:
        return semantic_ids.load_table(item_type, version)
    except FileNotFoundError as exc:
        raise NotBuilt(f"{exc}; build it with `{BUILD_HINT.format(t=item_type)}`") from None


# ---------------------------------------------------------------- runs

def _is_codes_run(run: RunDir, item_type: str) -> bool:
    try:
        manifest = run.manifest()
    except (OSError, ValueError):
        return False
    return (manifest.get("variant") == "codes" and manifest.get("item_type") == item_type
            and (run.path / "adapter" / "adapter_config.json").exists())


def codes_runs(item_type: str, runs_dir: str | Path | None = None) -> list[RunDir]:
    """Complete recommend.train_codes runs of the "codes" variant for this type, newest first."""
    _check_type(item_type)
    return RunDir.find_all("recommend", require=lambda r: _is_codes_run(r, item_type), runs_dir=runs_dir)


def resolve_run(item_type: str, run: str | Path | None = None,
                runs_dir: str | Path | None = None) -> RunDir:
    """`run` when given (it must be a complete codes run of this type), else the newest one
    whose code table is still built (a run on a deleted table would name the wrong items)."""
    if run is not None:
        found = RunDir(Path(run))
        if not found.is_complete() or not _is_codes_run(found, item_type):
            raise NotBuilt(f"{run}: not a complete recommend-codes run for {item_type} "
                           f"(manifest variant 'codes', item_type {item_type!r}, adapter/, COMPLETE)")
        run_table(found, item_type)  # its table must still be built
        return found
    runs = codes_runs(item_type, runs_dir)
    if not runs:
        raise NotBuilt(f"no complete recommend-codes-{item_type}-* run under the runs root; "
                       f"train one with `{TRAIN_HINT.format(t=item_type)}`")
    from recommend import semantic_ids

    built = set(semantic_ids.versions(item_type))
    usable = [r for r in runs if r.manifest().get("table_version") in built]
    if not usable:  # every run was trained on a table that is gone: say so, name the newest
        run_table(runs[0], item_type)
    return usable[0]


def run_table(run: RunDir, item_type: str):
    """The code table the run was trained on (its manifest's table_version). When that
    version is gone the student's codes name other items, so this refuses rather than
    falling back to the latest table."""
    from recommend import semantic_ids

    version = run.manifest().get("table_version")
    if version and version not in semantic_ids.versions(item_type):
        raise NotBuilt(f"{run.path}: trained on code table {item_type}-{version}, which is not under "
                       f"{semantic_ids.ids_dir()} any more (built: {semantic_ids.versions(item_type)}); "
                       f"its codes would name other items. Train a run on the current table with "
                       f"`{TRAIN_HINT.format(t=item_type)}`")
    return load_code_table(item_type, version)


# ---------------------------------------------------------------- catalog and history

def load_items_frame(item_type: str) -> pd.DataFrame:
    """The catalog items of one type, indexed by item_id."""
    from recommend.item_vectors import load_items

    return load_items(item_type).set_index("item_id", drop=False)


def load_histories(item_type: str) -> dict[str, list[str]]:
    """listener_id -> every item they have, in log order (purchase order for music)."""
    from recommend import interactions
    from recommend.tasks import listener_sequences

    return listener_sequences(interactions.load_interactions(item_type))


def genre_list(value: Any) -> list[str]:
    """A catalog genres cell as a list (parquet gives an array; missing is NaN or None)."""
    if value is None or isinstance(value, float):
        return []
    if isinstance(value, str):
        return [value] if value else []
    return [str(g) for g in value]


def genres_text(value: Any, limit: int = 3) -> str:
    return ", ".join(genre_list(value)[:limit])


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value)


def item_row(items: pd.DataFrame, item_id: str | None) -> dict[str, str]:
    """title, creator, genres of an item ("" each when the catalog lacks it)."""
    if item_id is None or item_id not in items.index:
        return {"title": "", "creator": "", "genres": ""}
    row = items.loc[item_id]
    return {"title": _text(row.get("title")), "creator": _text(row.get("creator")),
            "genres": genres_text(row.get("genres"))}


def history_codes(table, history: Sequence[str]) -> list[str]:
    """The codes of the history items the table knows (an item added to the catalog after
    the table was built has none, and is left out rather than failing the request)."""
    out = []
    for item_id in history:
        try:
            out.append(table.code_of(item_id))
        except KeyError:
            continue
    return out


def history_rows(table, items: pd.DataFrame, history: Sequence[str]) -> list[dict[str, Any]]:
    rows = []
    for n, item_id in enumerate(history, 1):
        try:
            code = table.code_of(item_id)
        except KeyError:
            code = ""
        rows.append({"position": n, "code": code, "item_id": item_id, **item_row(items, item_id)})
    return rows


# ---------------------------------------------------------------- recommending

class HFCodeRanker:
    """The HF path: `generate` beam search under the code trie, the listener's items banned.
    The student loads on the first call (`load_student`), not when the ranker is made, so an
    app can hold one without paying for the model until someone asks."""

    def __init__(self, run_dir: str | Path, table, item_type: str, num_beams: int | None = None,
                 model=None, tokenizer=None):
        from recommend.llm_recommender import DEFAULT_BEAMS

        self.run_dir, self.table, self.item_type = Path(run_dir), table, item_type
        self.num_beams = num_beams or DEFAULT_BEAMS
        self._model, self._tokenizer, self._trie = model, tokenizer, None

    def _load(self):
        from recommend.llm_recommender import code_trie, load_student

        if self._model is None:
            self._model, self._tokenizer = load_student(self.run_dir)
        if self._trie is None:
            self._trie = code_trie(self.table, self._tokenizer)
        return self._model, self._tokenizer, self._trie

    def __call__(self, codes: Sequence[str], k: int) -> list[tuple[str | None, float]]:
        from recommend.llm_recommender import chat_prompt_ids, hf_topk_codes
        from recommend.tasks import next_code_prompt

        model, tok, trie = self._load()
        prompt = chat_prompt_ids(tok, next_code_prompt(list(codes), self.item_type))
        banned = trie.banned_counts(trie.ids_of_code(c, tok.convert_tokens_to_ids) for c in codes)
        return hf_topk_codes(model, prompt, trie, num_beams=max(self.num_beams, k), k=k, banned=banned)


def recommend_rows(ranker: Ranker, table, items: pd.DataFrame, history: Sequence[str],
                   k: int = DEFAULT_K) -> list[dict[str, Any]]:
    """Top-k rows: rank, code, item_id, title, creator, genres, score, in_history ("yes"/"no").
    A code that names no item (impossible under the trie, but the ranker is pluggable) is
    kept with an empty item so the page shows it instead of hiding it."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    seen = set(history)
    rows = []
    for rank, (code, score) in enumerate(ranker(history_codes(table, history), k), 1):
        try:
            item_id = table.item_of(code) if code else None
        except KeyError:
            item_id = None
        rows.append({"rank": rank, "code": code or "", "item_id": item_id or "", **item_row(items, item_id),
                     "score": round(float(score), 4),
                     "in_history": "yes" if item_id in seen else "no"})
    return rows


def recommend_listener(item_type: str, listener_id: str, k: int = DEFAULT_K, *, run: str | Path | None = None,
                       num_beams: int | None = None, ranker: Ranker | None = None, table=None,
                       items: pd.DataFrame | None = None,
                       histories: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """Everything `linernotes recommend` prints: the run, the table version, the listener's
    history and the top-k rows. `ranker`/`table`/`items`/`histories` default to the real ones."""
    _check_type(item_type)
    run_dir = None
    if ranker is None or table is None:
        found = resolve_run(item_type, run)
        run_dir = found.path
        table = table if table is not None else run_table(found, item_type)
        ranker = ranker or HFCodeRanker(found.path, table, item_type, num_beams=num_beams)
    items = items if items is not None else load_items_frame(item_type)
    histories = histories if histories is not None else load_histories(item_type)
    if listener_id not in histories:
        known = sorted(histories)[:3]
        raise ValueError(f"--listener-id {listener_id!r}: no {item_type} listener with history "
                         f"(ids look like {', '.join(known)})")
    history = histories[listener_id]
    return {"item_type": item_type, "listener_id": listener_id, "k": k,
            "run": str(run_dir) if run_dir else None, "table_version": getattr(table, "version", None),
            "history": history_rows(table, items, history),
            "recommendations": recommend_rows(ranker, table, items, history, k)}


def _title_by(row: dict[str, Any]) -> str:
    return f"{row['title']} / {row['creator']}" if row["creator"] else row["title"]


def format_result(result: dict[str, Any], history_shown: int = 5) -> str:
    lines = [f"{result['item_type']} listener {result['listener_id']}: {len(result['history'])} items in history; "
             f"run {result['run']}, code table {result['table_version']}"]
    for h in result["history"][-history_shown:]:
        lines.append(f"  had  {h['code']:<24} {_title_by(h)}")
    lines.append(f"top {result['k']} (HF beam search under the code trie):")
    for r in result["recommendations"]:
        lines.append(f"  {r['rank']:>3}  {r['code']:<24} {_title_by(r)}  "
                     f"[{r['genres']}] score {r['score']:.3f} in history: {r['in_history']}")
    return "\n".join(lines)


def recommend_main(item_type: str, listener_id: str, k: int = DEFAULT_K, run: str | None = None,
                   num_beams: int | None = None, as_json: bool = False, print_fn=print) -> int:
    import os

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    result = recommend_listener(item_type, listener_id, k, run=run, num_beams=num_beams)
    print_fn(json.dumps(result, indent=1, ensure_ascii=False) if as_json else format_result(result))
    return 0


# ---------------------------------------------------------------- the code tree (06 app)

def level_stats_frame(stats: dict) -> pd.DataFrame:
    """Codebook stats per level from a table's stats json (`rqkmeans.stats`)."""
    cols = {"level": "level", "k": "K", "used": "used", "utilisation": "utilisation",
            "entropy_bits": "entropy bits", "entropy_frac": "entropy / log2 K",
            "prefix_collision_rate": "collision rate (prefix)", "recon_cos_mean": "reconstruction cos",
            "nn_share_prefix": "neighbours share prefix", "random_share_prefix": "random pair shares prefix"}
    # 3 decimals: the stats come from a 2,000-item sample, more digits would be noise
    rows = [{label: round(lv[key], 3) if isinstance(lv.get(key), float) else lv.get(key)
             for key, label in cols.items()} for lv in stats.get("levels", [])]
    return pd.DataFrame(rows, columns=list(cols.values()))


def _prefix(digits: Sequence[int]) -> str:
    from recommend.semantic_ids import LETTERS

    return "".join(f"<{LETTERS[i]}_{int(d)}>" for i, d in enumerate(digits))


def _top(counter: Counter, n: int) -> str:
    return ", ".join(f"{name} ({count})" for name, count in counter.most_common(n))


def prefix_summary(table, items: pd.DataFrame, level: int, parent: int | None = None) -> pd.DataFrame:
    """One row per code prefix of `level` digits (1 or 2; level 2 under the level-1 digit
    `parent` when given): prefix, digit, items, top genres, top creators."""
    if level not in (1, 2) or level > table.levels:
        raise ValueError(f"level {level}: the code tree shows levels 1 and 2 of {table.levels}")
    frame = table.frame
    if level == 2 and parent is not None:
        frame = frame[frame["c1"] == int(parent)]
    keys = [f"c{i}" for i in range(1, level + 1)]
    meta = items.reindex(frame["item_id"])
    genres = meta["genres"].tolist() if "genres" in meta else [None] * len(frame)
    creators = meta["creator"].tolist() if "creator" in meta else [None] * len(frame)
    groups: dict[tuple, tuple[Counter, Counter, list]] = {}
    for key, gs, cr in zip(zip(*(frame[c].tolist() for c in keys)), genres, creators):
        g_count, c_count, n = groups.setdefault(key, (Counter(), Counter(), [0]))
        n[0] += 1
        g_count.update(genre_list(gs))
        if isinstance(cr, str) and cr:
            c_count[cr] += 1
    rows = [{"prefix": _prefix(key), "digit": int(key[-1]), "items": n[0], "top genres": _top(g, 2),
             "top creators": _top(c, 2)} for key, (g, c, n) in sorted(groups.items())]
    return pd.DataFrame(rows, columns=["prefix", "digit", "items", "top genres", "top creators"])


def prefix_options(summary: pd.DataFrame) -> dict[str, str]:
    """Dropdown labels "<a_3>  97 items  Rock (60), Metal (20)" -> prefix, largest first."""
    ordered = summary.sort_values(["items", "prefix"], ascending=[False, True])
    return {f"{r['prefix']}  {r['items']} items  {_hint(r)}": r["prefix"] for r in ordered.to_dict("records")}


def _hint(row: dict, short: bool = False) -> str:
    """What a prefix holds, for a label: its top genres, else its top creators."""
    text = row["top genres"] or row["top creators"]
    return text.split(" (")[0] if short else text


def items_under(table, items: pd.DataFrame, prefix: str, limit: int | None = None) -> pd.DataFrame:
    """code, title, creator, genres, collection of the items whose code starts with `prefix`."""
    ids = table.items_under(prefix)
    if limit is not None:
        ids = ids[:limit]
    rows = []
    for item_id in ids:
        rows.append({"code": table.code_of(item_id), **item_row(items, item_id),
                     "collection": _text(items.loc[item_id].get("collection")) if item_id in items.index else "",
                     "item_id": item_id})
    return pd.DataFrame(rows, columns=["code", "title", "creator", "genres", "collection", "item_id"])


def tree_frame(table, items: pd.DataFrame, max_leaves: int = 2000) -> pd.DataFrame:
    """Rows for a treemap of levels 1-2: level1 label, level2 label, items. A table with more
    level-2 prefixes than `max_leaves` (books: up to 256 x 256) gets level 1 only, with
    level2 = level1, because a browser cannot lay out 65k tiles usefully."""
    top = prefix_summary(table, items, 1)
    label1 = {r["prefix"]: f"{r['prefix']} {_hint(r, short=True)}" for r in top.to_dict("records")}
    if table.levels < 2 or table.frame.groupby(["c1", "c2"]).ngroups > max_leaves:
        return pd.DataFrame({"level1": [label1[p] for p in top["prefix"]],
                             "level2": [label1[p] for p in top["prefix"]], "items": top["items"]})
    second = prefix_summary(table, items, 2)
    rows = []
    for r in second.to_dict("records"):
        first = r["prefix"][: r["prefix"].index(">") + 1]
        rows.append({"level1": label1[first], "level2": f"{r['prefix']} {_hint(r, short=True)}",
                     "items": r["items"]})
    return pd.DataFrame(rows, columns=["level1", "level2", "items"])


def listener_options(histories: dict[str, list[str]], items: pd.DataFrame, limit: int = 300) -> dict[str, str]:
    """Dropdown labels "id  (n items: top genres)" -> listener id, longest histories first
    (capped at `limit`: the 20k book listeners would not fit a dropdown)."""
    chosen = sorted(histories, key=lambda lid: (-len(histories[lid]), lid))[:limit]
    out = {}
    for lid in chosen:
        hist = histories[lid]
        genres = Counter(g for iid in hist if iid in items.index for g in genre_list(items.at[iid, "genres"]))
        top = ", ".join(name for name, _ in genres.most_common(2))
        out[f"{lid}  ({len(hist)} items{': ' + top if top else ''})"] = lid
    return out
