import marimo

__generated_with = "0.25.2"
app = marimo.App(width="full", app_title="linernotes: curate")

with app.setup:
    from pathlib import Path

    import marimo as mo
    import pandas as pd

    from curation import cluster as clu
    from curation.dedupe import STAGES, DedupeIndex
    from curation.diversity import diversity_report, report_table
    from curation.embed import Embedder
    from curation.sample import REASONS, reason_counts, review_sample
    from linernotes import paths
    from linernotes.config import CurateConfig
    from linernotes.runs import RunDir

    paths.use_offline_hub()
    DEFAULTS = CurateConfig()
    TABLE_COLUMNS = ["record_id", "item_type", "item_title", "explanation", "gates_outcome",
                     "cluster", "cluster_label", "kept", "dup_stage", "dup_of"]


@app.function
def synth_runs(base: str | Path | None = None) -> list[RunDir]:
    """Finished synth runs (a COMPLETE marker and a parquet shard) under `base`
    (default: the runs root, `paths.runs_dir()`), newest first. A run whose manifest names
    another stage is left out (`RunDir.find_all`: the one newest-run rule)."""
    return RunDir.find_all("synth", require=lambda r: r.parquet_path.exists(), runs_dir=base)


@app.function
def load_frame(run: RunDir, text_column: str = "explanation") -> tuple[pd.DataFrame, int]:
    """(rows with text, number of rows without) from a synth run, plus display columns."""
    df = pd.read_parquet(run.parquet_path)
    has_text = df[text_column].map(lambda t: isinstance(t, str) and bool(t.strip()))
    frame = df[has_text].reset_index(drop=True)
    frame["item_title"] = clu.item_titles(frame)
    frame["gates_outcome"] = [clu.gate_outcome(r) for r in frame.to_dict("records")]
    return frame, int((~has_text).sum())


@app.function
def stage_counts(result_df: pd.DataFrame) -> dict[str, int]:
    """{"kept": n, "<stage>": rows that stage removed, ...} from a dedupe result frame."""
    removed = result_df["dup_stage"].value_counts()
    return {"kept": int(result_df["kept"].sum()),
            **{s: int(removed.get(s, 0)) for s in STAGES}}


@app.function
def cluster_options(df: pd.DataFrame) -> dict[str, int]:
    """Dropdown options "<id>: <label> (<kept rows>)" -> cluster id, by id (-1 last)."""
    kept = df[df["kept"]] if "kept" in df.columns else df
    sizes = kept["cluster"].value_counts()
    labels = dict(zip(df["cluster"], df["cluster_label"]))
    ids = sorted(set(df["cluster"].tolist()), key=lambda c: (c == clu.NOISE, c))
    return {f"{c}: {labels[c]} ({int(sizes.get(c, 0))})": int(c) for c in ids}


@app.cell
def _():
    mo.md(r"""
    # Curate liner notes

    Pick a finished synth run, embed its explanations (all-MiniLM-L6-v2, cached by
    content hash) and build the dedupe index; then move the thresholds and watch
    what each stage removes, explore the cluster map, drill into a cluster, read
    the diversity report and the review sample experts label first. Everything
    here calls `curation.*`; `linernotes curate` writes the same as a run.
    """)
    return


@app.cell
def _():
    runs = synth_runs()
    run_ui = mo.ui.dropdown(options={r.name: str(r.path) for r in runs},
                            value=runs[0].name if runs else None, label="synth run")
    mo.vstack([mo.md("## Input"),
               run_ui if runs else mo.md(f"_No finished synth runs under `{paths.runs_dir()}`: "
                                         "run `linernotes synth` or the generate app._")])
    return run_ui, runs


@app.cell
def _(run_ui):
    mo.stop(not run_ui.value)
    frame, no_text = load_frame(RunDir(run_ui.value))
    mo.hstack([mo.stat(value=str(len(frame)), label="rows with an explanation"),
               mo.stat(value=str(no_text), label="rows without (left out)"),
               mo.stat(value=str(int(frame["passed_all"].sum())), label="passed all gates"),
               mo.stat(value=", ".join(f"{k} {v}" for k, v in
                                       frame["item_type"].value_counts().sort_index().items()),
                       label="per type")], justify="start", gap=1)
    return frame, no_text


@app.cell
def _():
    backend_ui = mo.ui.dropdown(options=["auto", "torch", "onnx", "onnx-int8"],
                                value=DEFAULTS.embed_backend, label="embedding backend")
    projection_ui = mo.ui.dropdown(options=list(clu.PROJECTIONS), value=DEFAULTS.projection,
                                   label="map projection")
    seed_ui = mo.ui.number(start=0, stop=2**31 - 1, step=1, value=DEFAULTS.seed, label="seed")
    return backend_ui, projection_ui, seed_ui


@app.cell
def _(backend_ui, projection_ui, seed_ui):
    embed_button = mo.ui.run_button(label="Embed + build dedupe index", kind="success")
    mo.vstack([mo.md("## Embed"), mo.hstack([backend_ui, projection_ui, seed_ui, embed_button],
                                            justify="start", gap=2)])
    return (embed_button,)


@app.cell
def _(backend_ui, embed_button, frame):
    mo.stop(not embed_button.value,
            mo.md("_Press **Embed + build dedupe index** to embed the explanations._"))
    try:
        with mo.status.spinner(title=f"embedding {len(frame)} explanations"):
            _embedder = Embedder(backend_ui.value, batch_size=DEFAULTS.embed_batch_size)
            embeddings = _embedder.encode(frame[DEFAULTS.text_column].tolist())
    except Exception as _exc:  # an unusable backend must not take the page down
        mo.stop(True, mo.callout(mo.md(
            f"**Embedding with `{backend_ui.value}` failed:** {type(_exc).__name__}: {_exc}"
            "\n\nTry another backend (`auto` uses the measured default)."), kind="danger"))
    mo.md(f"Embedded {len(frame)} texts with `{_embedder.backend}`: "
          f"{_embedder.last_hits} from the cache, {_embedder.last_misses} computed.")
    return (embeddings,)


@app.cell
def _(embeddings, projection_ui, seed_ui):
    with mo.status.spinner(title="projecting to 2-D"):
        coords = clu.project_2d(embeddings, projection_ui.value, int(seed_ui.value))
    return (coords,)


@app.cell
def _():
    minhash_ui = mo.ui.slider(start=0.5, stop=1.0, step=0.01, value=DEFAULTS.minhash_threshold,
                              label="near-dup MinHash Jaccard >=", show_value=True, debounce=True)
    semantic_ui = mo.ui.slider(start=0.8, stop=1.0, step=0.005,
                               value=DEFAULTS.semantic_threshold, label="semantic cosine >=",
                               show_value=True, debounce=True)
    entity_ui = mo.ui.switch(value=DEFAULTS.entity_aware,
                             label="entity-aware (different items never duplicates)")
    return entity_ui, minhash_ui, semantic_ui


@app.cell
def _(embeddings, entity_ui, frame):
    with mo.status.spinner(title="building the dedupe index"):
        dedupe_index = DedupeIndex.build(frame, embeddings,
                                         CurateConfig(entity_aware=entity_ui.value))
    return (dedupe_index,)


@app.cell
def _(dedupe_index, entity_ui, minhash_ui, semantic_ui):
    dedupe_result = dedupe_index.apply(minhash_threshold=minhash_ui.value,
                                       semantic_threshold=semantic_ui.value)
    curated = dedupe_result.df
    counts = stage_counts(curated)
    _examples = {f"{s['stage']}: {s['removed']} removed": mo.ui.table(
        pd.DataFrame(s.get("examples") or []), selection=None, page_size=5)
        for s in dedupe_result.stages if s["removed"]}
    mo.vstack([
        mo.md("## Dedupe"),
        mo.hstack([minhash_ui, semantic_ui, entity_ui], justify="start", gap=2),
        mo.hstack([mo.stat(value=str(counts["kept"]), label=f"kept of {len(curated)}"),
                   *[mo.stat(value=str(counts[s]), label=f"removed: {s}") for s in STAGES]],
                  justify="start", gap=1),
        mo.ui.table(dedupe_result.summary(), selection=None, label="stages"),
        mo.accordion(_examples) if _examples else mo.md("_No duplicates at these thresholds._"),
    ])
    return counts, curated, dedupe_result


@app.cell
def _():
    method_ui = mo.ui.dropdown(options=list(clu.CLUSTER_METHODS), value=DEFAULTS.cluster_method,
                               label="cluster method")
    k_ui = mo.ui.number(start=0, stop=200, step=1, value=DEFAULTS.n_clusters,
                        label="clusters (0: sqrt(n/2))")
    color_ui = mo.ui.dropdown(options=list(clu.COLOR_BY), value="cluster", label="colour by")
    return color_ui, k_ui, method_ui


@app.cell
def _(coords, curated, embeddings, k_ui, method_ui, seed_ui):
    curate_config = CurateConfig(cluster_method=method_ui.value, n_clusters=int(k_ui.value or 0),
                                 seed=int(seed_ui.value))
    with mo.status.spinner(title="clustering"):
        clustered = clu.cluster_frame(curated, embeddings, curate_config, coords=coords)
    return clustered, curate_config


@app.cell
def _(clustered, color_ui, k_ui, method_ui):
    cluster_map_figure = clu.cluster_map_figure(clustered, color_by=color_ui.value)
    cluster_map = mo.ui.plotly(cluster_map_figure)
    mo.vstack([mo.md("## Cluster map"), mo.hstack([method_ui, k_ui, color_ui], justify="start",
                                                  gap=2), cluster_map])
    return cluster_map, cluster_map_figure


@app.cell
def _(clustered):
    _options = cluster_options(clustered)
    cluster_ui = mo.ui.dropdown(options=_options, value=next(iter(_options), None),
                                label="cluster")
    return (cluster_ui,)


@app.cell
def _(cluster_map, cluster_map_figure, cluster_ui, clustered):
    _picked = clu.selected_rows(clustered, cluster_map.value or [], cluster_map_figure)
    if len(_picked):
        drill = _picked
        _title = f"{len(drill)} rows selected on the map (clear the selection to pick a cluster)"
    else:
        drill = clustered[clustered["cluster"] == cluster_ui.value]
        _title = f"cluster {cluster_ui.selected_key}"
    mo.vstack([mo.md("## Drill-down"), cluster_ui,
               mo.ui.table(drill[[c for c in TABLE_COLUMNS if c in drill.columns]],
                           selection=None, page_size=10, label=_title)])
    return (drill,)


@app.cell
def _(clustered):
    diversity = diversity_report(clustered)
    _templates = pd.DataFrame(diversity["kept"]["template_collapse"].get("templates") or [])
    mo.vstack([
        mo.md("## Diversity (all rows vs kept rows)"),
        mo.hstack([mo.ui.table(report_table(diversity), selection=None, label="metrics"),
                   mo.ui.table(pd.DataFrame(diversity["kept"]["clusters"]), selection=None,
                               label="clusters (kept rows)")], justify="start", gap=2,
                  widths=[1, 1]),
        mo.ui.table(_templates, selection=None, label="collapsed templates (kept rows)")
        if len(_templates) else mo.md("_No collapsed templates among kept rows._"),
    ])
    return (diversity,)


@app.cell
def _():
    size_ui = mo.ui.slider(start=5, stop=500, step=5, value=DEFAULTS.sample_size,
                           label="sample size", show_value=True, debounce=True)
    control_ui = mo.ui.slider(start=0.0, stop=0.5, step=0.05, value=DEFAULTS.control_share,
                              label="control share", show_value=True, debounce=True)
    return control_ui, size_ui


@app.cell
def _(backend_ui, clustered, control_ui, curate_config, embeddings, entity_ui, minhash_ui,
      projection_ui, run_ui, semantic_ui, size_ui):
    import dataclasses

    import yaml

    recipe = dataclasses.replace(
        curate_config, synth_run=run_ui.value, embed_backend=backend_ui.value,
        minhash_threshold=float(minhash_ui.value), semantic_threshold=float(semantic_ui.value),
        entity_aware=bool(entity_ui.value), projection=projection_ui.value,
        sample_size=int(size_ui.value), control_share=float(control_ui.value))
    sample = review_sample(clustered, recipe, embeddings)
    _counts = reason_counts(sample)
    _yaml = yaml.safe_dump({k: v for k, v in dataclasses.asdict(recipe).items()
                            if v is not None}, sort_keys=False)
    mo.vstack([
        mo.md("## Review sample (label these first)"),
        mo.hstack([size_ui, control_ui], justify="start", gap=2),
        mo.hstack([mo.stat(value=str(_counts[r]), label=r.replace("_", " ")) for r in REASONS],
                  justify="start", gap=1),
        mo.ui.table(sample[["review_priority", "sample_reason", "reason_detail", "item_type",
                            "item_title", "explanation", "cluster", "cluster_label",
                            "record_id"]], selection=None, page_size=15,
                    label=f"{len(sample)} rows, by priority"),
        mo.accordion({"these settings as a curate recipe (YAML)": mo.plain_text(_yaml)}),
    ])
    return recipe, sample


@app.function
def test_synth_runs_lists_complete_synth_runs_only(tmp_path):
    import json

    base = Path(tmp_path)
    for name, complete, stage in (("synth-a", True, "synth"), ("synth-b", False, "synth"),
                                  ("curate-c", True, "curate"), ("synth-d", True, None)):
        run = RunDir(base / name)
        run.data_dir.mkdir(parents=True)
        run.parquet_path.write_bytes(b"")
        if stage:
            run.manifest_path.write_text(json.dumps({"stage": stage}))
        if complete:
            run.mark_complete()
    assert sorted(r.name for r in synth_runs(base)) == ["synth-a", "synth-d"]
    assert synth_runs(base / "missing") == []


@app.function
def test_stage_counts_and_cluster_options():
    df = pd.DataFrame({"dup_stage": [None, "exact", "semantic", None, None],
                       "kept": [True, False, False, True, True],
                       "cluster": [0, 0, 1, 1, clu.NOISE],
                       "cluster_label": ["a, b", "a, b", "c", "c", clu.NOISE_LABEL]})
    assert stage_counts(df) == {"kept": 3, "exact": 1, "near": 0, "semantic": 1}
    assert cluster_options(df) == {"0: a, b (1)": 0, "1: c (1)": 1, "-1: unclustered (1)": -1}


@app.function
def test_load_frame_drops_rows_without_text(tmp_path):
    run = RunDir(Path(tmp_path) / "synth-x")
    run.data_dir.mkdir(parents=True)
    pd.DataFrame({"record_id": ["1", "2", "3"], "item": ['{"title": "T1"}', '{"title": "T2"}',
                                                         '{"title": "T3"}'],
                  "explanation": ["A note.", None, "  "], "parsed": [True, False, True],
                  "gate_grounding": [True, False, True], "gate_style": [False, False, True],
                  "gate_safety": [True, False, True]}).to_parquet(run.parquet_path)
    frame, no_text = load_frame(run)
    assert no_text == 2 and list(frame["record_id"]) == ["1"]
    assert frame.loc[0, "item_title"] == "T1" and frame.loc[0, "gates_outcome"] == "failed style"


if __name__ == "__main__":
    app.run()
