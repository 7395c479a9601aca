"""The curation stage end to end: one synth run in, one curation run out.

    embed (content-hash cache) -> dedupe (exact -> near-lexical -> semantic,
    entity-aware, one representative per group) -> cluster -> 2-D map ->
    cluster labels (c-TF-IDF) -> diversity report -> review sample

Run directory `runs/curate-<fingerprint>/`:
    data/train-00000-of-00001.parquet   every synth row + dup_*/kept/cluster/x/y columns
    sample/review-00000-of-00001.parquet the rows experts should label first
    report.json                         dedupe stages, diversity, clusters
    map.html                            the plotly cluster map (self-contained, offline)
    manifest.json, COMPLETE
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from linernotes import paths
from linernotes.config import CurateConfig
from linernotes.jsoncol import loads_obj
from linernotes.runs import RunDir, base_manifest

log = logging.getLogger("linernotes.curate")
SAMPLE_FILE = "sample/review-00000-of-00001.parquet"


def latest_run(stage: str = "synth", runs_dir: str | Path | None = None) -> RunDir:
    """The newest complete run of a stage (`RunDir.find`); an error saying what to run if none."""
    run = RunDir.find(stage, runs_dir=runs_dir)
    if run is None:
        base = Path(runs_dir) if runs_dir else paths.runs_dir()
        raise ValueError(f"no complete {stage} run under {base}; run `linernotes {stage}` first")
    return run


def load_synth_frame(run: RunDir):
    """The synth run's rows (read through the generated-row schema) as a DataFrame with an
    `item_title` column for display."""
    df = run.read_rows("generated").to_pandas()
    df["item_title"] = [loads_obj(s).get("title") for s in df["item"]]
    return df


def run_curate(config: CurateConfig, *, force: bool = False) -> RunDir:
    from curation.cluster import cluster_frame, cluster_map_figure
    from curation.dedupe import dedupe
    from curation.diversity import diversity_report
    from curation.embed import Embedder
    from curation.sample import review_sample

    synth = RunDir(config.synth_run) if config.synth_run else latest_run("synth", config.runs_dir)
    if not synth.is_complete():
        raise ValueError(f"synth run {synth.path} is not complete")
    # The curation run's name covers its input too: same config on another synth run = new run.
    fp = f"{config.fingerprint()}-{synth.name.split('-')[-1]}"
    run = RunDir((Path(config.runs_dir) if config.runs_dir else paths.runs_dir())
                 / (config.run_name or f"curate-{fp}"), kind="curated")
    if run.is_complete() and not force:
        log.info("run %s is complete; skipping", run.name)
        return run
    paths.use_offline_hub()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    run.prepare()
    df = load_synth_frame(synth)
    texts_ok = df[config.text_column].notna()
    bad = df[~texts_ok]
    df = df[texts_ok].reset_index(drop=True)
    run.write_quarantine([{"record_id": r.record_id, "stage": "curate",
                           "error": f"no {config.text_column} (unparsed synth row)"}
                          for r in bad.itertuples()])

    t = time.perf_counter()
    embedder = Embedder(backend=config.embed_backend, batch_size=config.embed_batch_size)
    vectors = embedder.encode(df[config.text_column].tolist())
    timings["embed_s"] = time.perf_counter() - t

    t = time.perf_counter()
    result = dedupe(df, config, embeddings=vectors)
    df = result.df
    timings["dedupe_s"] = time.perf_counter() - t

    t = time.perf_counter()
    # clusters kept rows; a removed duplicate joins its representative's cluster
    df = cluster_frame(df, vectors, config)
    timings["cluster_s"] = time.perf_counter() - t

    diversity = diversity_report(df)
    kept = df[df["kept"]]
    sample = review_sample(df, config)

    run.write_rows(df, kind="curated")
    run.write_rows(sample, kind="review_sample", name=SAMPLE_FILE)
    fig = cluster_map_figure(df, color_by="cluster")
    fig.write_html(run.path / "map.html", include_plotlyjs=True)
    labels = df.groupby("cluster")["cluster_label"].first().to_dict()
    report = {"dedupe": result.stages, "diversity": diversity,
              "clusters": {str(k): {"label": v, "size": int((df["cluster"] == k).sum())}
                           for k, v in labels.items()}}
    (run.path / "report.json").write_text(json.dumps(report, indent=2, default=str))
    timings["total_s"] = time.perf_counter() - t0
    manifest = base_manifest("curate", config, run)
    manifest.update({
        "input_run": str(synth.path),
        "counts": {"rows_in": int(len(df) + len(bad)), "no_text": int(len(bad)),
                   "kept": int(len(kept)), "removed": int(len(df) - len(kept)),
                   "clusters": int(df["cluster"].nunique()), "sample": int(len(sample))},
        "embeddings": {"backend": embedder.backend, **embedder.stats()},
        "timings": {k: round(v, 3) for k, v in timings.items()},
    })
    run.write_manifest(manifest)
    run.mark_complete()
    return run
