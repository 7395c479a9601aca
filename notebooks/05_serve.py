import marimo

__generated_with = "0.25.2"
app = marimo.App(width="full", app_title="linernotes: serve")

with app.setup:
    # Hub switches first, before any import that may pull in transformers; never the
    # cell's last expression (marimo shows that value on the page).
    from linernotes import paths

    paths.use_offline_hub()

    import re

    import marimo as mo
    import pandas as pd

    from serve import playground
    from serve.app import client_examples
    from serve.launch import save_key
    from synth import app_support as support


@app.cell
def _():
    mo.md(r"""
    # Serve: the liner-note playground

    Pick an item and a listener, start the endpoint(s) and ask for a liner note.
    Each model runs behind `linernotes serve` (llama.cpp engine on CPU, the
    studio's auth, limits and metrics in front) and answers on `/v1/explain`
    with the training prompt, JSON-schema output and the gates' verdict.
    The base model is the packaged SmolLM2; a fine-tuned export under the runs
    folder (`model-Q4_0.gguf` / `model-Q8_0.gguf`) can be served beside it, once its
    export gate passed (the picker shows the verdict; the box below serves one anyway,
    like `linernotes serve --allow-ungated`).
    """)
    return


@app.cell
def _():
    catalog_path = support.catalog_dir()
    catalog, catalog_error = support.load_catalog_safe(catalog_path)
    exports = playground.find_exports()
    return catalog, catalog_error, catalog_path, exports


@app.cell
def _(catalog, catalog_error, catalog_path):
    _counts = support.catalog_counts(catalog) if catalog is not None else {}
    _types = [t for t in support.ITEM_TYPES if _counts.get(t, {}).get("items")]
    item_type_ui = mo.ui.dropdown(options=_types or list(support.ITEM_TYPES),
                                  value=(_types or list(support.ITEM_TYPES))[0], label="item type")
    mo.vstack([
        mo.callout(mo.md(f"**No catalog.** {catalog_error}"), kind="warn") if catalog is None
        else mo.md(f"Catalog `{catalog_path}`: " + ", ".join(
            f"{t} {c['items']:,} items / {c['listeners']:,} listeners" for t, c in _counts.items())),
        item_type_ui,
    ])
    return (item_type_ui,)


@app.cell
def _(catalog, exports, item_type_ui):
    mo.stop(catalog is None)
    item_options, listener_options = playground.pair_options(catalog, item_type_ui.value)
    item_ui = mo.ui.dropdown(options=item_options, value=next(iter(item_options), None),
                             label="item", searchable=True)
    listener_ui = mo.ui.dropdown(options=listener_options, value=next(iter(listener_options), None),
                                 label="listener", searchable=True)
    tuned_ui = mo.ui.dropdown(options={"(none)": "", **{k: str(v) for k, v in exports.items()}},
                              value="(none)", label="fine-tuned export")
    max_tokens_ui = mo.ui.slider(start=32, stop=256, step=16, value=96, label="max tokens",
                                 show_value=True)
    allow_ungated_ui = mo.ui.checkbox(label="serve an export whose gate did not pass")
    mo.vstack([mo.md("## Pick"), mo.hstack([item_ui, listener_ui], justify="start", gap=2),
               mo.hstack([tuned_ui, max_tokens_ui, allow_ungated_ui], justify="start", gap=2),
               mo.md(f"_No fine-tune export under `{paths.runs_dir()}` yet: the base model only._")
               if not exports else None])
    return (allow_ungated_ui, item_options, item_ui, listener_options, listener_ui, max_tokens_ui,
            tuned_ui)


@app.cell
def _(catalog, item_ui, listener_ui):
    mo.stop(catalog is None or not item_ui.value or not listener_ui.value)
    picked_item = catalog.items[item_ui.value]
    picked_listener = next(ls for ls in catalog.listeners if ls.listener_id == listener_ui.value)
    mo.hstack([
        mo.vstack([mo.md("**item facts**"), mo.json(picked_item.facts())]),
        mo.vstack([mo.md("**listener history**"),
                   mo.ui.table(pd.DataFrame([h.model_dump() for h in picked_listener.history[:5]]),
                               selection=None, page_size=5)
                   if picked_listener.history else mo.md("_(none)_")]),
    ], widths=[1, 2])
    return picked_item, picked_listener


@app.cell
def _():
    start_button = mo.ui.run_button(label="Start endpoint(s) and explain", kind="success")
    mo.vstack([mo.md("## Explain"), start_button])
    return (start_button,)


@app.cell
def _(allow_ungated_ui, catalog_path, max_tokens_ui, picked_item, picked_listener, start_button,
      tuned_ui):
    mo.stop(not start_button.value,
            mo.md("_Press the button: it starts the endpoint(s) (a few seconds each, once) "
                  "and asks each model for a liner note._"))
    _models = {playground.BASE_LABEL: None}
    if tuned_ui.value:
        _models["tuned"] = tuned_ui.value
    handles, results = {}, {}
    for _name, _path in _models.items():
        with mo.status.spinner(title=f"{_name}: starting endpoint and generating"):
            try:
                handles[_name] = playground.ENDPOINTS.get(_path, catalog_path, slots=2, queue_size=2,
                                                          allow_ungated=allow_ungated_ui.value)
            except playground.UngatedModel as _exc:  # refused: the row says why
                results[_name] = {"error": str(_exc)}
                continue
            results[_name] = playground.explain_via(handles[_name], picked_item.item_id,
                                                    picked_listener.listener_id,
                                                    max_tokens=max_tokens_ui.value)
    comparison = pd.DataFrame(playground.comparison_rows(results))
    mo.vstack([
        mo.hstack([mo.stat(value=f"{r.get('latency_ms', 0):.0f} ms", label=f"{n} latency",
                           caption="passed all gates" if r.get("passed") else "gated out")
                   for n, r in results.items()], justify="start", gap=1),
        mo.ui.table(comparison, selection=None),
    ])
    return comparison, handles, results


@app.cell
def _(handles, picked_item, picked_listener):
    # The page never shows the key: it goes to a 0600 file and the snippets read it from
    # $LINERNOTES_ENDPOINT_KEY.
    _first_name, _first = next(iter(handles.items()))
    _slug = "-".join(re.findall(r"[a-z0-9]+", _first_name.lower()))
    _export = save_key(_first.api_key, paths.home() / "serve" / f"app-{_slug}.key")
    mo.accordion({"call it yourself (curl, openai-python)": mo.plain_text(
        _export + "\n\n" + client_examples(_first.base_url, model=_first.served_name,
                                          item_id=picked_item.item_id,
                                          listener_id=picked_listener.listener_id))})
    return


@app.function
def test_comparison_rows_reports_errors_and_verdicts():
    rows = playground.comparison_rows({
        "base": {"explanation": "Try it.", "passed": False, "latency_ms": 12.0,
                 "usage": {"completion_tokens": 5}, "facts_used": ["title: X"],
                 "gates": {"grounding": {"passed": True, "reasons": []},
                           "style": {"passed": False, "reasons": ["too short"]}}},
        "tuned": {"error": "HTTP 429: over capacity"}})
    assert rows[0]["style"] == "fail: too short" and rows[0]["grounding"] == "pass"
    assert rows[0]["completion_tokens"] == 5
    assert rows[1] == {"model": "tuned", "explanation": "HTTP 429: over capacity", "passed": None}


if __name__ == "__main__":
    app.run()
