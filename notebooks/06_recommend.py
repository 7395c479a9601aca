import marimo

__generated_with = "0.25.2"
app = marimo.App(width="full", app_title="linernotes: recommend")

with app.setup:
    # Hub switches first, before any import that may pull in transformers; never the
    # cell's last expression (marimo shows that value on the page).
    from linernotes import paths

    paths.use_offline_hub()

    import marimo as mo
    import pandas as pd
    import plotly.express as px

    from recommend import cli as rcli
    from recommend import semantic_ids
    from recommend.tasks import MAX_HISTORY

    STAT_METRICS = ["utilisation", "entropy / log2 K", "collision rate (prefix)", "reconstruction cos",
                    "neighbours share prefix"]
    HISTORY_ORDER = {"music": "purchase order, oldest first", "podcast": "log order; the source has no time",
                     "book": "log order; the source has no time"}


@app.function
def shown_columns(frame: pd.DataFrame, wanted: list[str]) -> pd.DataFrame:
    """`wanted` columns, less those empty in every row (podcasts have no creator)."""
    keep = [c for c in wanted if c in frame and not (frame[c].astype(str).str.strip() == "").all()]
    return frame[keep]


@app.function
def type_options() -> dict[str, str]:
    """Dropdown labels naming each type's newest table (or its absence) -> item type."""
    out = {}
    for item_type in rcli.ITEM_TYPES:
        built = semantic_ids.versions(item_type)
        out[f"{item_type} (table {built[-1]})" if built else f"{item_type} (no table yet)"] = item_type
    return out


@app.function
def default_type_label(options: dict[str, str]) -> str:
    """The first type that has a table and a usable codes run, else the first with a table."""
    built = [label for label in options if "no table" not in label]
    for label in built:
        if find_run_safe(options[label])[0] is not None:
            return label
    return (built or list(options))[0]


@app.function
def load_table_safe(item_type: str):
    """(table, items indexed by id, None) or (None, None, what to run) for a type."""
    try:
        table = rcli.load_code_table(item_type)
    except rcli.NotBuilt:
        return None, None, (f"No semantic-ID table for **{item_type}** yet. Build it with "
                            f"`{rcli.BUILD_HINT.format(t=item_type)}` "
                            f"(or `linernotes codes build --types {item_type}`), then reload.")
    return table, rcli.load_items_frame(item_type), None


@app.function
def stats_figure(levels: pd.DataFrame):
    """Grouped bars: the codebook stats of each level (all on a 0..1 scale)."""
    long = levels.melt(id_vars="level", value_vars=[m for m in STAT_METRICS if m in levels],
                       var_name="metric", value_name="value")
    long["level"] = long["level"].map(lambda n: f"level {n}")
    fig = px.bar(long, x="metric", y="value", color="level", barmode="group", range_y=[0, 1.05],
                 title="codebook stats per level")
    fig.update_layout(height=340, margin=dict(l=10, r=10, t=40, b=10), xaxis_title=None,
                      legend_title_text=None)
    return fig


@app.function
def tree_figure(tree: pd.DataFrame, item_type: str):
    fig = px.treemap(tree, path=[px.Constant(f"all {item_type}"), "level1", "level2"], values="items",
                     title="the code tree: level 1, then level 2 inside it, sized by items "
                           "(labels: the prefix and its most common genre)")
    fig.update_traces(root_color="lightgrey")
    fig.update_layout(height=560, margin=dict(l=10, r=10, t=40, b=10))
    return fig


@app.function
def find_run_safe(item_type: str):
    """(newest complete codes run on a built table, None) or (None, what is missing and what
    to run)."""
    try:
        return rcli.resolve_run(item_type), None
    except rcli.NotBuilt as exc:
        return None, f"{exc} (a few CPU minutes), then reload this page."


@app.cell
def _():
    mo.md(r"""
    # Recommend: the code tree and the student's picks

    Every catalog item has a short **semantic ID**, e.g. `<a_12><b_7><c_3><d_1>`: residual
    k-means digits over its content + collaborative vector, coarse to fine, plus a
    de-duplication digit (`recommend.semantic_ids`). First look at the tree: the codebook
    stats per level, then pick a level-1 code and a level-2 code under it and read the
    items there, to see whether a prefix means something. Then pick a listener: the
    student fine-tuned with the code tokens (`recommend.train_codes`) reads their history
    as codes and writes the top-K next codes by beam search under the code trie (HF
    `generate`, their own items banned). Same as `linernotes recommend --type music
    --listener-id ID`.
    """)
    return


@app.cell
def _():
    _options = type_options()
    type_ui = mo.ui.dropdown(options=_options, value=default_type_label(_options), label="catalog type")
    mo.vstack([mo.md("## Catalog"), type_ui])
    return (type_ui,)


@app.cell
def _(type_ui):
    item_type = type_ui.value
    table, items, table_error = load_table_safe(item_type)
    mo.callout(mo.md(table_error), kind="warn") if table is None else mo.hstack([
        mo.stat(value=f"{len(table.frame):,}", label="items with a code", caption=f"table {table.version}"),
        mo.stat(value=" x ".join(str(k) for k in table.sizes), label="codebook sizes",
                caption=f"{table.levels} levels + de-dup digit"),
        mo.stat(value=f"{table.stats.get('collision_rate', float('nan')):.3f}",
                label="collision rate before de-dup", caption="items sharing all digits"),
        mo.stat(value=f"{table.stats.get('distinct_codes', 0):,}", label="distinct digit codes",
                caption=f"de-dup digit up to {table.stats.get('dedup_digits_needed', '?')}"),
    ], justify="start", gap=1)
    return item_type, items, table, table_error


@app.cell
def _(table):
    mo.stop(table is None)
    level_stats = rcli.level_stats_frame(table.stats)
    mo.vstack([
        mo.md("## Codebook stats\n\nUtilisation: share of the K codes used; entropy / log2 K: 1 is "
              "perfectly even; collision rate: items whose prefix up to this level is shared; "
              "reconstruction cos: the vector rebuilt from the centroids so far vs the item's; "
              "neighbours share prefix: an item's nearest neighbours with the same prefix "
              "(random pairs beside it)."),
        mo.ui.table(level_stats, selection=None, show_column_summaries=False),
        mo.ui.plotly(stats_figure(level_stats)),
    ])
    return (level_stats,)


@app.cell
def _(items, table):
    mo.stop(table is None)
    level1_summary = rcli.prefix_summary(table, items, 1)
    level1_ui = mo.ui.dropdown(options=rcli.prefix_options(level1_summary),
                               value=next(iter(rcli.prefix_options(level1_summary))),
                               label="level-1 code", searchable=True)
    return level1_summary, level1_ui


@app.cell
def _(items, level1_ui, table):
    mo.stop(table is None or not level1_ui.value)
    _parent = semantic_ids.parse_code(level1_ui.value)[0]
    level2_summary = rcli.prefix_summary(table, items, 2, parent=_parent) if table.levels >= 2 else None
    _all = f"(all of {level1_ui.value})"
    level2_ui = mo.ui.dropdown(
        options={_all: "", **(rcli.prefix_options(level2_summary) if level2_summary is not None else {})},
        value=_all, label="level-2 code under it", searchable=True)
    mo.vstack([mo.md("## Items under a prefix"), mo.hstack([level1_ui, level2_ui], justify="start", gap=2)])
    return level2_summary, level2_ui


@app.cell
def _(items, level1_ui, level2_ui, table):
    mo.stop(table is None or not level1_ui.value)
    picked_prefix = level2_ui.value or level1_ui.value
    prefix_items = rcli.items_under(table, items, picked_prefix)
    mo.vstack([
        mo.md(f"**{len(prefix_items):,} items** under `{picked_prefix}`"),
        mo.ui.table(prefix_items, selection=None, page_size=12, show_column_summaries=False),
    ])
    return picked_prefix, prefix_items


@app.cell
def _(item_type, items, table):
    mo.stop(table is None)
    tree = rcli.tree_frame(table, items)
    tree_figure(tree, item_type)
    return (tree,)


@app.cell
def _(item_type, table):
    mo.stop(table is None)
    codes_run, run_error = find_run_safe(item_type)
    try:
        histories, history_error = rcli.load_histories(item_type), None
    except (FileNotFoundError, ValueError) as _exc:
        histories, history_error = {}, f"The {item_type} interaction log could not be read: {_exc}"
    return codes_run, histories, history_error, run_error


@app.cell
def _(codes_run, item_type):
    # Its own cell: the ranker loads the student only when first called (the button below),
    # and a test swaps this cell's names for a stand-in.
    rec_table = rcli.run_table(codes_run, item_type) if codes_run is not None else None
    ranker = rcli.HFCodeRanker(codes_run.path, rec_table, item_type) if codes_run is not None else None
    return rec_table, ranker


@app.cell
def _(codes_run, histories, history_error, items, run_error, table):
    mo.stop(table is None)
    _options = rcli.listener_options(histories, items)
    listener_ui = mo.ui.dropdown(options=_options, value=next(iter(_options), None), label="listener",
                                 searchable=True)
    k_ui = mo.ui.slider(start=1, stop=20, step=1, value=10, label="top K", show_value=True)
    recommend_button = mo.ui.run_button(label="Recommend for this listener", kind="success",
                                        disabled=codes_run is None or not _options)
    mo.vstack([_part for _part in [
        mo.md("## Recommend and explain"),
        mo.callout(mo.md(run_error), kind="warn") if run_error else
        mo.md(f"Student: `{codes_run.name}` ({codes_run.manifest().get('steps')} training steps, "
              f"code table {codes_run.manifest().get('table_version')})."),
        mo.callout(mo.md(history_error), kind="warn") if history_error else None,
        mo.md(f"_{len(histories):,} listeners with history; the dropdown lists the "
              f"{len(_options):,} longest._") if histories else None,
        mo.hstack([listener_ui, k_ui, recommend_button], justify="start", gap=2),
    ] if _part is not None])  # a None would print as "None"
    return k_ui, listener_ui, recommend_button


@app.cell
def _(histories, items, listener_ui, rec_table, table):
    mo.stop(table is None or not listener_ui.value)
    listener_history = histories[listener_ui.value]
    history_table = pd.DataFrame(rcli.history_rows(rec_table if rec_table is not None else table, items,
                                                   listener_history))
    # the prompt holds only the newest MAX_HISTORY codes; mark them so the page shows what it read
    history_table["in_prompt"] = ["yes" if n >= len(listener_history) - MAX_HISTORY else ""
                                  for n in range(len(listener_history))]
    return history_table, listener_history


@app.cell
def _(history_table, item_type, items, k_ui, listener_history, listener_ui, rec_table, recommend_button,
      ranker):
    mo.stop(not recommend_button.value,
            mo.md("_Press the button: it loads the student (a few seconds, once) and runs the "
                  "constrained beam search for the picked listener._"))
    with mo.status.spinner(title="beam search under the code trie"):
        recommendations = pd.DataFrame(rcli.recommend_rows(ranker, rec_table, items, listener_history,
                                                           k_ui.value))
    mo.vstack([
        mo.md(f"**{listener_ui.value}**: {len(listener_history)} items in history; the student's top "
              f"{len(recommendations)} codes. The last {min(len(listener_history), MAX_HISTORY)} history codes "
              "are in the prompt; every item the listener has is banned in the trie, so 'in_history' "
              "should read no."),
        mo.md("**recommended**"),
        mo.ui.table(shown_columns(recommendations, ["rank", "code", "title", "creator", "genres",
                                                    "in_history", "score"]),
                    selection=None, page_size=20, show_column_summaries=False),
        mo.md(f"**history** ({HISTORY_ORDER[item_type]})"),
        mo.ui.table(shown_columns(history_table, ["position", "code", "title", "creator", "genres",
                                                   "in_prompt"]),
                    selection=None, page_size=10, show_column_summaries=False),
        mo.md("_No liner notes here: `/v1/recommend` on the endpoint (`linernotes serve`) returns "
              "each pick with a grounded liner note and the gates' verdict._"),
    ])
    return (recommendations,)


if __name__ == "__main__":
    app.run()
