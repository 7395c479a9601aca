"""The semantic-ID table: every catalog item -> one short code the student reads and writes.

An item's code is its residual k-means digits (c1, ..., cL) plus a
de-duplication digit (`recommend.rqkmeans`), written as tokens with one letter
per level and the next letter for the de-duplication digit:
`<a_12><b_7><c_3><d_1>` (music and books, 3 levels), `<a_5><b_9><c_0>`
(podcasts, 2 levels). Every item carries the de-duplication token, 0 when its
digits are unique, so all codes of a catalog have the same length.

Versions
--------
version = fingerprint(item vectors (ids, values, their config), code config,
CODE_RECIPE). Each version is written once, under
`linernotes.paths.home()/catalog/semantic_ids/`:

    <type>-<version>.parquet        item_id, c1..cL, dedup, code
    <type>-<version>.stats.json     codebook stats (rqkmeans.stats), configs, counts
    <type>-<version>.codebook.npz   the centroids per level (for encoding new items)
    index.json                      versions per type in build order

A build whose inputs hash to an existing version loads that version and writes
nothing (recomputing the same inputs gives the same codes: k-means is seeded,
the de-duplication digit follows item-id order). A build with other inputs
writes a new version beside the old ones; an existing version's file is never
rewritten. `load_table(type)` gives the latest built, `load_table(type, version)`
a pinned one.

    python -m recommend.semantic_ids build --types music,podcast[,book]
    python -m recommend.semantic_ids stats [--types ...]
    python -m recommend.semantic_ids compare --types music,podcast   (balanced vs plain)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from linernotes import paths
from linernotes.fingerprint import fingerprint
from recommend import rqkmeans

# Part of every version: bump when the code algorithm changes, so a table's version never
# names codes that today's code would compute differently.
CODE_RECIPE = "rqkmeans-v2"
LETTERS = "abcdefgh"
# Codebook sizes per catalog: K^L well above the item count. `balanced` measured on the real
# catalogs (`python -m recommend.semantic_ids compare`), plain -> balanced:
#   music 3x32: collision before de-dup 0.894 -> 0.708, max bucket 45 -> 28, entropy/log2 K
#     (levels 1-3) 0.93/0.77/0.70 -> 1.00, neighbours sharing c1 0.951 -> 0.873 (random
#     0.047 -> 0.031: lift 20x -> 28x), reconstruction cosine at level 3 0.774 -> 0.759;
#   podcasts 2x16: collision 0.857 -> 0.656, max bucket 8 -> 5, sharing c1 0.591 -> 0.532
#     (random 0.073 -> 0.060), reconstruction 0.711 -> 0.705;
#   books 3x256: collision 0.190 -> 0.128, max bucket 45 -> 55 (a prolific author: 55
#     Barbara Cartland novels), entropy/log2 K 0.98/0.96/0.94 -> 1.00, sharing c1 0.450 -> 0.393
#     (random 0.005 -> 0.004), reconstruction 0.697 -> 0.692.
# Fewer colliding items (the de-dup digit is the part a model cannot infer from content)
# for a small loss in reconstruction, so balanced is the default. Music collisions are
# mostly one album's tracks (same creator, collection, genre; only the title differs).
DEFAULT_CONFIG = {
    "music": {"sizes": [32, 32, 32], "balanced": True, "seed": 0},
    "podcast": {"sizes": [16, 16], "balanced": True, "seed": 0},
    "book": {"sizes": [256, 256, 256], "balanced": True, "seed": 0},
}
_TOKEN = re.compile(r"<([a-h])_(\d+)>")


def ids_dir(home: Path | None = None) -> Path:
    base = Path(home) if home is not None else paths.home()
    out = base / "catalog" / "semantic_ids"
    out.mkdir(parents=True, exist_ok=True)
    return out


def code_string(digits, dedup: int) -> str:
    parts = [f"<{LETTERS[i]}_{int(d)}>" for i, d in enumerate(digits)]
    parts.append(f"<{LETTERS[len(parts)]}_{int(dedup)}>")
    return "".join(parts)


def parse_code(code: str) -> list[int]:
    """Digits of a code string (levels then dedup); ValueError when it is not one."""
    tokens = _TOKEN.findall(code)
    if not tokens or "".join(f"<{a}_{b}>" for a, b in tokens) != code:
        raise ValueError(f"code {code!r}: expected tokens like <a_12><b_7><c_3><d_1>")
    if [a for a, _ in tokens] != list(LETTERS[:len(tokens)]):
        raise ValueError(f"code {code!r}: letters must run a, b, c, ... in order")
    return [int(b) for _, b in tokens]


# --------------------------------------------------------------------------- table


@dataclass
class SemanticIdTable:
    item_type: str
    version: str
    sizes: list[int]                  # K per level
    frame: pd.DataFrame               # item_id, c1..cL, dedup, code
    stats: dict = field(default_factory=dict)

    def __post_init__(self):
        self._code_of = dict(zip(self.frame["item_id"], self.frame["code"]))
        self._item_of = dict(zip(self.frame["code"], self.frame["item_id"]))
        if len(self._code_of) != len(self.frame) or len(self._item_of) != len(self.frame):
            raise ValueError(f"semantic id table {self.item_type}-{self.version}: "
                             "item ids or codes are not one-to-one")

    @property
    def levels(self) -> int:
        return len(self.sizes)

    def code_of(self, item_id: str) -> str:
        try:
            return self._code_of[item_id]
        except KeyError:
            raise KeyError(f"{item_id!r} has no code in {self.item_type}-{self.version}") from None

    def item_of(self, code: str) -> str:
        try:
            return self._item_of[code]
        except KeyError:
            raise KeyError(f"code {code!r} names no item in {self.item_type}-{self.version}") from None

    def codes(self) -> list[str]:
        return self.frame["code"].tolist()

    def item_ids(self) -> list[str]:
        return self.frame["item_id"].tolist()

    def digits_of(self, item_id: str) -> tuple[int, ...]:
        return tuple(parse_code(self.code_of(item_id)))

    def token_vocab(self) -> list[str]:
        """Every token a code of this table can hold: <a_0>..<a_{K1-1}>, ..., then the
        de-dup letter's 0..max used. The full codebook range, not just the digits in use,
        so two versions with the same sizes share a vocabulary (up to the dedup range)."""
        out = [f"<{LETTERS[lvl]}_{i}>" for lvl, k in enumerate(self.sizes) for i in range(k)]
        out += [f"<{LETTERS[self.levels]}_{i}>" for i in range(int(self.frame["dedup"].max()) + 1)]
        return out

    def items_under(self, prefix: str) -> list[str]:
        """Item ids whose code starts with `prefix` (a run of whole tokens, "" for all)."""
        if prefix:
            parse_code(prefix)
        return self.frame.loc[self.frame["code"].str.startswith(prefix), "item_id"].tolist()


def assign_codes(vectors: np.ndarray, item_ids: list[str], sizes: list[int], *, balanced: bool,
                 seed: int = 0, stats_sample: int = 2000) -> tuple[pd.DataFrame, dict, rqkmeans.Codebook]:
    """(frame item_id/c1..cL/dedup/code in item order, stats, codebook). Pure: same inputs, same codes."""
    if len(item_ids) != len(vectors):
        raise ValueError(f"assign_codes: {len(item_ids)} item ids for {len(vectors)} vectors")
    if len(set(item_ids)) != len(item_ids):
        raise ValueError("assign_codes: item ids repeat")
    codebook, digits = rqkmeans.fit(vectors, sizes, seed=seed, balanced=balanced)
    dedup = rqkmeans.dedup_digits(digits, item_ids)
    frame = pd.DataFrame({"item_id": list(item_ids)})
    for lvl in range(len(sizes)):
        frame[f"c{lvl + 1}"] = digits[:, lvl].astype(np.int32)
    frame["dedup"] = dedup.astype(np.int32)
    frame["code"] = [code_string(d, x) for d, x in zip(digits, dedup)]
    st = rqkmeans.stats(digits, vectors, codebook, sample=stats_sample, seed=seed)
    return frame, st, codebook


# --------------------------------------------------------------------------- persistence


def _index_path(home: Path | None) -> Path:
    return ids_dir(home) / "index.json"


def _read_index(home: Path | None) -> dict:
    p = _index_path(home)
    if not p.exists():
        return {}
    try:
        return json.loads(p.read_text())
    except ValueError as exc:
        raise ValueError(f"{p}: not valid JSON ({exc})") from exc


def versions(item_type: str, home: Path | None = None) -> list[str]:
    """Built versions of a type, oldest first."""
    return [v["version"] for v in _read_index(home).get(item_type, [])]


def latest(item_type: str, home: Path | None = None) -> str:
    vs = versions(item_type, home)
    if not vs:
        raise FileNotFoundError(f"no semantic id table for {item_type!r} under {ids_dir(home)}; "
                                f"run `python -m recommend.semantic_ids build --types {item_type}`")
    return vs[-1]


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)


def write_table(table: SemanticIdTable, codebook: rqkmeans.Codebook | None = None,
                home: Path | None = None) -> Path:
    """Write a version once; an existing version is left as it is (never renumbered)."""
    folder = ids_dir(home)
    stem = f"{table.item_type}-{table.version}"
    path = folder / f"{stem}.parquet"
    with paths.file_lock(folder / ".lock"):
        if not path.exists():
            if codebook is not None:
                arrays = {f"level{i + 1}": c for i, c in enumerate(codebook.centroids)}
                def save_npz(p: Path) -> None:
                    with open(p, "wb") as fh:
                        np.savez(fh, **arrays)

                _atomic_write(folder / f"{stem}.codebook.npz", save_npz)
            _atomic_write(folder / f"{stem}.stats.json",
                          lambda p: p.write_text(json.dumps(table.stats, indent=1, sort_keys=True)))
            _atomic_write(path, lambda p: table.frame.to_parquet(p, index=False))
        index = _read_index(home)
        entries = index.setdefault(table.item_type, [])
        if table.version not in [e["version"] for e in entries]:
            entries.append({"version": table.version, "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                            "items": len(table.frame)})
            _atomic_write(_index_path(home), lambda p: p.write_text(json.dumps(index, indent=1)))
    return path


def load_table(item_type: str, version: str | None = None, home: Path | None = None) -> SemanticIdTable:
    version = version or latest(item_type, home)
    folder = ids_dir(home)
    path = folder / f"{item_type}-{version}.parquet"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no semantic id table {item_type}-{version} "
                                f"(built: {versions(item_type, home)})")
    frame = pd.read_parquet(path)
    levels = sorted(int(c[1:]) for c in frame.columns if re.fullmatch(r"c\d+", c))
    need = {"item_id", "code", "dedup"}
    if not need <= set(frame.columns) or levels != list(range(1, len(levels) + 1)) or not levels:
        raise ValueError(f"{path}: expected columns item_id, c1..cL, dedup, code; got {list(frame.columns)}")
    stats_path = folder / f"{item_type}-{version}.stats.json"
    stats = json.loads(stats_path.read_text()) if stats_path.exists() else {}
    sizes = stats.get("code_config", {}).get("sizes") or [int(frame[f"c{i}"].max()) + 1 for i in levels]
    return SemanticIdTable(item_type, version, list(sizes), frame, stats)


def build(item_type: str, *, vectors=None, config: dict | None = None, home: Path | None = None,
          progress: bool = False) -> SemanticIdTable:
    """Build (or find) the table for the given item vectors (default: recommend.item_vectors)."""
    if vectors is None:
        from recommend.item_vectors import build_item_vectors

        vectors = build_item_vectors(item_type, progress=progress)
    cfg = dict(DEFAULT_CONFIG[item_type] if config is None else config)
    version = fingerprint({"vectors": vectors.fingerprint(), "code": cfg, "recipe": CODE_RECIPE})
    if version in versions(item_type, home):
        return load_table(item_type, version, home)
    t0 = time.perf_counter()
    frame, st, codebook = assign_codes(vectors.vectors, vectors.item_ids, cfg["sizes"],
                                       balanced=cfg["balanced"], seed=cfg.get("seed", 0))
    st.update({"item_type": item_type, "version": version, "code_config": cfg,
               "vector_config": vectors.config, "vector_fingerprint": vectors.fingerprint(),
               "items_with_collab": int(np.asarray(vectors.has_collab).sum()),
               "build_seconds": round(time.perf_counter() - t0, 1), "recipe": CODE_RECIPE})
    table = SemanticIdTable(item_type, version, list(cfg["sizes"]), frame, st)
    write_table(table, codebook, home)
    return table


# --------------------------------------------------------------------------- CLI


def format_stats(st: dict) -> str:
    lines = [f"{st.get('item_type')} {st.get('version')}: {st['items']} items, sizes {st['sizes']}, "
             f"balanced {st.get('code_config', {}).get('balanced')}, with collaborative part "
             f"{st.get('items_with_collab')}; collision before de-dup {st['collision_rate']:.3f}, "
             f"distinct codes {st['distinct_codes']}, de-dup digits needed {st['dedup_digits_needed']}"]
    lines.append("  level  K    used  util  H bits  H/log2K  prefix-coll  recon-cos  nn-share  random-share")
    for lv in st["levels"]:
        lines.append(f"  {lv['level']:>5}  {lv['k']:<4} {lv['used']:>4}  {lv['utilisation']:.2f}  "
                     f"{lv['entropy_bits']:6.2f}  {lv['entropy_frac']:7.3f}  {lv['prefix_collision_rate']:11.3f}  "
                     f"{lv['recon_cos_mean']:9.3f}  {lv['nn_share_prefix']:8.3f}  {lv['random_share_prefix']:12.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m recommend.semantic_ids", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build (or find) the id tables")
    b.add_argument("--types", default="music,podcast")
    s = sub.add_parser("stats", help="print the latest tables' codebook stats")
    s.add_argument("--types", default="music,podcast,book")
    s.add_argument("--version", default=None)
    c = sub.add_parser("compare", help="balanced vs plain k-means on the real vectors (nothing written)")
    c.add_argument("--types", default="music,podcast")
    args = ap.parse_args(argv)
    types = [t.strip() for t in args.types.split(",") if t.strip()]
    for t in types:
        if t not in DEFAULT_CONFIG:
            ap.error(f"--types: {t!r} is not one of {sorted(DEFAULT_CONFIG)}")
    if args.cmd == "compare":
        from recommend.item_vectors import build_item_vectors

        for t in types:
            vec = build_item_vectors(t)
            for balanced in (False, True):
                cfg = {**DEFAULT_CONFIG[t], "balanced": balanced}
                _, st, _ = assign_codes(vec.vectors, vec.item_ids, cfg["sizes"], balanced=balanced,
                                        seed=cfg["seed"])
                st.update(item_type=t, version="(not written)", code_config=cfg,
                          items_with_collab=int(vec.has_collab.sum()))
                print(format_stats(st), flush=True)
        return 0
    for t in types:
        if args.cmd == "build":
            table = build(t, progress=True)
            print(f"{t}: {ids_dir() / f'{t}-{table.version}.parquet'}")
        else:
            try:
                table = load_table(t, args.version)
            except FileNotFoundError as exc:
                print(exc)
                continue
        print(format_stats(table.stats), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
