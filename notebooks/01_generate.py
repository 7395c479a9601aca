import marimo

__generated_with = "0.25.2"
app = marimo.App(width="full", app_title="linernotes: generate")

with app.setup:
    # Hub switches first, before any import that may pull in transformers; never the
    # cell's last expression (marimo shows that value on the page).
    from linernotes import paths

    paths.use_offline_hub()

    import marimo as mo

    from synth import app_support as support
    from synth import backends
    from synth.pipeline import load_records, plan_rows
    from linernotes.domain.prompts import DEFAULT_GOLDEN, DEFAULT_TEMPLATE


@app.cell
def _():
    mo.md(r"""
    # Generate liner notes

    Pick a catalog slice, a teacher and a prompt; check the exact prompt a row
    sends; then generate. Generation runs `linernotes synth` in a subprocess
    (distilabel cannot run inside the app's threads) and writes a run directory
    under the runs folder, which the results section below reads. Any finished run can
    be opened there without generating.
    """)
    return


@app.cell
def _():
    catalog_path = support.catalog_dir()
    catalog, catalog_error = support.load_catalog_safe(catalog_path)
    return catalog, catalog_error, catalog_path


@app.cell
def _(catalog, catalog_error, catalog_path):
    if catalog is None:
        _status = mo.callout(mo.md(f"**No catalog.** {catalog_error}"), kind="warn")
    else:
        _counts = support.catalog_counts(catalog)
        _status = mo.md(f"Catalog `{catalog_path}`: " + ", ".join(
            f"{t} {c['items']:,} items / {c['listeners']:,} listeners" for t, c in _counts.items()))
    _status
    return


@app.cell
def _(catalog):
    _available = (list(support.catalog_counts(catalog)) if catalog is not None
                  else list(support.ITEM_TYPES))
    item_types_ui = mo.ui.multiselect(options=list(support.ITEM_TYPES), value=_available,
                                      label="item types")
    n_per_type_ui = mo.ui.slider(start=1, stop=100, step=1, value=8, label="rows per type",
                                 show_value=True)
    seed_ui = mo.ui.number(start=0, stop=2**31 - 1, step=1, value=17, label="seed")
    backend_ui = mo.ui.dropdown(options=backends.names(), value="llamacpp", label="backend")
    model_ui = mo.ui.text(value="", label="model (blank: backend default)")
    base_url_ui = mo.ui.text(value="", label="base URL (blank: start a local server)")
    template_ui = mo.ui.text(value=str(DEFAULT_TEMPLATE), label="prompt template", full_width=True)
    golden_ui = mo.ui.text(value=str(DEFAULT_GOLDEN), label="golden examples", full_width=True)
    temperature_ui = mo.ui.slider(start=0.0, stop=1.5, step=0.05, value=0.7, label="temperature",
                                  show_value=True)
    max_tokens_ui = mo.ui.number(start=8, stop=1024, step=8, value=96, label="max new tokens")
    force_ui = mo.ui.checkbox(value=False, label="redo a finished run (force)")
    mo.vstack([
        mo.md("## Slice, teacher, prompt"),
        mo.hstack([item_types_ui, n_per_type_ui, seed_ui], justify="start", gap=2),
        mo.hstack([backend_ui, model_ui, base_url_ui], justify="start", gap=2),
        template_ui,
        golden_ui,
        mo.hstack([temperature_ui, max_tokens_ui, force_ui], justify="start", gap=2),
    ])
    return (backend_ui, base_url_ui, force_ui, golden_ui, item_types_ui, max_tokens_ui, model_ui,
            n_per_type_ui, seed_ui, temperature_ui, template_ui)


@app.cell
def _(backend_ui, base_url_ui, catalog_path, golden_ui, item_types_ui, max_tokens_ui, model_ui,
      n_per_type_ui, seed_ui, temperature_ui, template_ui):
    try:
        config = support.ui_config(
            item_types=item_types_ui.value, n_per_type=n_per_type_ui.value, seed=seed_ui.value,
            backend=backend_ui.value, template=template_ui.value,
            golden_examples=golden_ui.value, temperature=temperature_ui.value,
            max_new_tokens=max_tokens_ui.value, model=model_ui.value, base_url=base_url_ui.value,
            catalog=catalog_path)
        config_error = None
    except ValueError as _exc:
        config, config_error = None, str(_exc)
    mo.callout(mo.md(f"**Config:** {config_error}"), kind="danger") if config_error else None
    return config, config_error


@app.cell
def _(catalog, config):
    mo.stop(catalog is None or config is None)
    try:
        builder = support.prompt_builder(config)
        planned = plan_rows(catalog, config)
        plan_error = None
    except (ValueError, OSError) as _exc:
        builder, planned, plan_error = None, [], f"{type(_exc).__name__}: {_exc}"
    preview = mo.ui.table(support.preview_table(planned), selection="single", page_size=10,
                          label=f"{len(planned)} planned (item, listener) pairs; "
                                "select one to see its prompt")
    mo.vstack([
        mo.md("## Preview"),
        mo.callout(mo.md(f"**Cannot plan rows:** {plan_error}"), kind="danger")
        if plan_error else preview,
    ])
    return builder, planned, preview


@app.cell
def _(builder, planned, preview):
    mo.stop(not planned)
    _picked = preview.value
    _index = int(_picked[0]["row"]) if len(_picked) else 0
    _row = planned[_index]
    preview_messages = builder.messages(_row.item, _row.listener)
    mo.vstack([
        mo.md(f"### Chat messages of row {_index}: `{_row.item.title}` for "
              f"`{_row.listener.listener_id}` (template `{builder.template.version_id}`)"),
        *[mo.vstack([mo.md(f"**{_m['role']}**"), mo.plain_text(_m["content"])])
          for _m in preview_messages],
    ])
    return (preview_messages,)


@app.cell
def _(config, force_ui):
    mo.stop(config is None)
    run_button = mo.ui.run_button(label="Generate", kind="success")
    _run = support.run_dir_for(config)
    _done = " (finished already: tick force to redo)" if _run.is_complete() else ""
    mo.vstack([
        mo.md("## Generate"),
        mo.hstack([run_button, mo.md(f"run directory `{_run.path}`{_done}")], justify="start"),
        mo.accordion({"command": mo.plain_text(
            " ".join(support.synth_argv(config, force=force_ui.value)))}),
    ])
    return (run_button,)


@app.cell
def _():
    get_generated_run, set_generated_run = mo.state(None)
    return get_generated_run, set_generated_run


@app.cell
def _(config, force_ui, run_button, set_generated_run):
    mo.stop(not run_button.value, mo.md("_Press **Generate** to run the teacher._"))
    _last = None
    for _p in support.stream_synth(config, force=force_ui.value):
        _last = _p
        _bar = f"{min(_p.calls_done, _p.planned)}/{_p.planned} rows"
        mo.output.replace(mo.vstack([
            mo.md(f"**{'finished' if _p.finished else 'running'}** `{_p.run.name}`: "
                  f"{_bar}, {_p.elapsed_s:.0f}s"),
            mo.plain_text(_p.tail(15)),
        ]))
    if _last is not None and _last.ok:
        # (path, time): a forced redo of the same run still refreshes the results
        set_generated_run((str(_last.run.path), _last.elapsed_s))
        _out = mo.callout(mo.md(f"Run `{_last.run.name}` written in {_last.elapsed_s:.0f}s; "
                                "results below."), kind="success")
    else:
        _out = mo.callout(mo.vstack([
            mo.md(f"**Synth failed** (exit code {_last.returncode if _last else '?'})"),
            mo.plain_text(_last.tail(40) if _last else "")]), kind="danger")
    mo.output.replace(_out)
    return


@app.cell
def _(get_generated_run):
    _runs = support.list_runs()
    _options = {r.name: str(r.path) for r in _runs}
    _generated = (get_generated_run() or (None,))[0]
    _from_generated = next((n for n, p in _options.items() if p == _generated), None)
    _value = _from_generated or (next(iter(_options)) if _options else None)
    run_ui = mo.ui.dropdown(options=_options, value=_value, label="open run")
    mo.vstack([mo.md("## Results"),
               run_ui if _options else mo.md(f"_No finished runs under `{paths.runs_dir()}` yet._")])
    return (run_ui,)


@app.cell
def _(run_ui):
    mo.stop(not run_ui.value)
    run = support.RunDir(run_ui.value)
    manifest = run.manifest()
    records = load_records(run)
    metrics = support.run_metrics(manifest)
    mo.hstack([
        mo.stat(value=str(metrics["rows"]), label="rows"),
        mo.stat(value=f"{(metrics['parse_rate'] or 0):.0%}", label="parse rate"),
        mo.stat(value=str(metrics["passed_all"]), label="passed all gates"),
        mo.stat(value=str(metrics["output_tokens_per_s"]), label="output tokens/s"),
        mo.stat(value=str(metrics["pipeline_s"]), label="pipeline s"),
        mo.stat(value=metrics["cache_hit_miss_error"], label="cache hit/miss/error"),
    ], justify="start", gap=1)
    return manifest, metrics, records, run


@app.cell
def _(records, run):
    mo.ui.plotly(support.gate_chart(records, title=f"parse and gate outcomes: {run.name}"))
    return


@app.cell
def _():
    filter_ui = mo.ui.dropdown(options=list(support.FILTERS), value="all rows", label="show")
    return (filter_ui,)


@app.cell
def _(filter_ui, records):
    results_frame = support.records_frame(records)
    shown = support.filter_frame(results_frame, filter_ui.value)
    mo.vstack([filter_ui, mo.ui.table(shown, page_size=15, selection=None,
                                      label=f"{len(shown)} of {len(results_frame)} rows")])
    return results_frame, shown


@app.function
def test_argv_round_trips_through_the_cli():
    """The subprocess gets exactly the config the app shows."""
    from linernotes.cli import build_parser
    from linernotes.config import SynthConfig, load_config, overrides_from_args

    config = support.ui_config(item_types=["music", "podcast"], n_per_type=3, seed=5,
                               backend="llamacpp", template="", golden_examples=None,
                               temperature=0.25, max_new_tokens=40, catalog="/tmp/cat",
                               runs="/tmp/runs")
    argv = support.synth_argv(config, force=True)
    args = build_parser().parse_args(argv[3:])
    assert args.force
    again = load_config(SynthConfig, None, overrides_from_args(args, SynthConfig))
    assert again == config
    assert support.run_dir_for(again).path == support.run_dir_for(config).path


@app.function
def test_ui_config_rejects_bad_values():
    import pytest

    with pytest.raises(ValueError, match="item type"):
        support.ui_config(item_types=[], n_per_type=1, seed=1, backend="llamacpp", template=None,
                          golden_examples=None, temperature=0.7, max_new_tokens=8)
    with pytest.raises(ValueError, match="template"):
        support.ui_config(item_types=["book"], n_per_type=1, seed=1, backend="llamacpp",
                          template="/no/such/template.yaml", golden_examples=None,
                          temperature=0.7, max_new_tokens=8)


@app.function
def test_filters_and_outcomes():
    from linernotes.records import ExplanationRecord, GateResult, Item, Listener

    def record(i, parsed, verdicts):
        item = Item(item_id=f"book:{i}", item_type="book", title=f"T{i}", source="s",
                    source_row=str(i))
        return ExplanationRecord(
            record_id=str(i), item=item, listener=Listener(listener_id="book-user:1", source="s"),
            prompt_version="v", messages=[], backend="b", model="m", parsed=parsed,
            explanation="x" if parsed else None,
            gates={g: GateResult(passed=ok, reasons=[] if ok else [f"{g} bad"])
                   for g, ok in verdicts.items()})

    ok = {"grounding": True, "style": True, "safety": True}
    records = [record(0, True, ok), record(1, True, {**ok, "style": False}),
               record(2, False, {**ok, "grounding": False})]
    frame = support.records_frame(records)
    assert list(support.filter_frame(frame, "any failure")["record_id"]) == ["1", "2"]
    assert list(support.filter_frame(frame, "failed style")["record_id"]) == ["1"]
    assert list(support.filter_frame(frame, "parse failed")["record_id"]) == ["2"]
    assert list(support.filter_frame(frame, "passed all")["record_id"]) == ["0"]
    assert frame.loc[1, "reasons"] == "style: style bad"
    outcomes = support.gate_outcomes(records).set_index(["check", "outcome"])["count"]
    assert outcomes[("parse", "pass")] == 2 and outcomes[("parse", "fail")] == 1
    assert outcomes[("style", "fail")] == 1 and outcomes[("safety", "pass")] == 3


if __name__ == "__main__":
    app.run()
