import marimo

__generated_with = "0.25.2"
app = marimo.App(width="full", app_title="linernotes: label")

with app.setup:
    # Hub switches first, before any import that may pull in transformers; never the
    # cell's last expression (marimo shows that value on the page).
    from linernotes import paths

    paths.use_offline_hub()

    import os
    from pathlib import Path

    import marimo as mo
    import pandas as pd

    from curation import label_app_support as support
    from curation import labeling as lb
    from linernotes.services import argilla as svc


@app.cell
def _():
    mo.md(r"""
    # Label: review in Argilla

    People review the curated sample in Argilla (push it with
    `linernotes label push`; candidate pairs go to a `<dataset>-pairs`
    dataset, the only one that asks for a ranking). Answers that the demo's
    scripted stand-ins gave are marked as such in the label run
    (`label_source`), never counted as people's. This page shows the stack, the review progress,
    how much annotators agree, where they disagree (to adjudicate), and the
    golden set growing. Pulling reads every response from the server; it only
    happens when you press **Pull responses**. Offline: set
    `LINERNOTES_LABEL_RESPONSES=<pulled responses .parquet>`.
    """)
    return


@app.cell
def _():
    offline_path = os.environ.get(support.ENV_RESPONSES) or None
    if offline_path:
        stack = {"running": False, "source": "file", "api_url": None, "owner_key": "-", "annotators": [],
                 "message": f"offline: responses from `{offline_path}` (${support.ENV_RESPONSES})"}
    else:
        try:
            _status = svc.status()
        except Exception as _exc:  # noqa: BLE001 - a broken state file must not break the page
            _status = {"running": False, "error": str(_exc)}
        stack = support.stack_summary(_status)
    return offline_path, stack


@app.cell
def _(offline_path, stack):
    if offline_path:
        _view = mo.callout(mo.md(stack["message"]), kind="info")
    elif stack["running"]:
        _view = mo.md(
            f"**Argilla** {stack['message']}  \n"
            f"URL: `{stack['api_url']}` · owner key `{stack['owner_key']}` · "
            f"annotators: {', '.join(stack['annotators']) or '-'} (keys hidden)")
    else:
        _view = mo.callout(mo.md(f"**{stack['message']}**\n\n```\n{support.START_HINT}\n```\n"
                                 "then reload this page."), kind="warn")
    _view
    return


@app.cell
def _(offline_path, stack):
    mo.stop(not offline_path and not stack["running"])
    dataset_names = []
    if not offline_path:
        try:
            dataset_names = sorted(d.name for d in svc.client().datasets)
        except Exception:  # noqa: BLE001 - listing is a convenience
            dataset_names = []
    _default = os.environ.get(support.ENV_DATASET) or (dataset_names[-1] if dataset_names else "")
    dataset_ui = mo.ui.text(value=_default, label="Argilla dataset", full_width=False)
    pull_button = mo.ui.run_button(label="Pull responses", kind="success")
    mo.vstack([mo.hstack([dataset_ui, pull_button], justify="start"),
               mo.md("datasets on the server: " + (", ".join(f"`{n}`" for n in dataset_names) or "-"))
               if not offline_path else mo.md("")])
    return dataset_ui, pull_button


@app.cell
def _(dataset_ui, offline_path, pull_button):
    n_records = None
    if offline_path:
        responses = support.load_responses(offline_path)
    else:
        mo.stop(not pull_button.value, mo.md("_Press **Pull responses** to read the annotations._"))
        mo.stop(not dataset_ui.value.strip(), mo.md("_Name a dataset first._"))
        _client = svc.client()
        _ds = _client.datasets(name=dataset_ui.value.strip())
        mo.stop(_ds is None, mo.callout(mo.md(f"No dataset `{dataset_ui.value}` on the server."), kind="warn"))
        responses = lb.pull(dataset_ui.value.strip(), _client)
        n_records = sum(1 for _ in _ds.records(with_responses=False))
    labels = lb.resolve(responses)
    if not offline_path:
        support.record_snapshot(paths.sub("argilla") / "golden_history.jsonl", dataset_ui.value.strip(),
                                labels["golden"], len(labels["pairs"]))
    return labels, n_records, responses


@app.cell
def _(n_records, responses):
    prog = support.progress(responses, n_records)
    mo.vstack([
        mo.md("## Progress"),
        mo.hstack([mo.stat(prog["records"], label="records"),
                   mo.stat(prog["completed"], label="completed (2 submitted)"),
                   mo.stat(prog["pending"], label="pending")], justify="start"),
        mo.ui.table(prog["per_annotator"], selection=None, label="per annotator"),
    ])
    return (prog,)


@app.cell
def _(labels):
    q_table, a_table = support.agreement_tables(labels["agreement"])
    agreement_fig = support.agreement_figure(q_table, a_table)
    mo.vstack([mo.md("## Agreement"),
               mo.ui.table(q_table, selection=None, label="per question"),
               mo.ui.table(a_table, selection=None, label="per annotator"),
               mo.ui.plotly(agreement_fig)])
    return a_table, agreement_fig, q_table


@app.cell
def _(labels, responses):
    disagree = support.disagreements(responses, labels["resolved"])
    mo.vstack([mo.md(f"## Disagreements to adjudicate ({disagree['record_id'].nunique()} records; "
                     "`resolved` empty = a tie only an expert can break)"),
               mo.ui.table(disagree, selection=None, page_size=10)])
    return (disagree,)


@app.cell
def _(dataset_ui, labels, offline_path):
    golden = labels["golden"]
    _hist = (support.golden_history(paths.sub("argilla") / "golden_history.jsonl", dataset_ui.value.strip())
             if not offline_path else None)
    golden_fig = support.golden_figure(golden, _hist)
    _by = golden["label_source"].fillna("not recorded").value_counts().to_dict() if len(golden) else {}
    mo.vstack([mo.md(f"## Golden set: {len(golden)} explanations, {len(labels['pairs'])} preference pairs"
                     + (" · labeled by: " + ", ".join(f"{k} {v}" for k, v in _by.items()) if _by else "")),
               mo.ui.plotly(golden_fig),
               mo.ui.table(golden, selection=None, page_size=5)])
    return golden, golden_fig


@app.function
def fake_responses() -> pd.DataFrame:
    """Two annotators on three records: agree on r1, differ on r2 (grounding) and r3 (rating)."""
    rows = []
    for rid, a1, a2 in [("r1", (5, "grounded", "yes"), (5, "grounded", "yes")),
                        ("r2", (4, "grounded", "yes"), (4, "unsupported_fact", "yes")),
                        ("r3", (2, "grounded", "no"), (4, "grounded", "no"))]:
        for user, (rating, grounded, tone) in (("annotator", a1), ("annotator2", a2)):
            rows.append({"record_id": rid, "item_id": f"music:{rid}", "listener_id": "L1", "user_id": user,
                         "username": user, "role": "annotator", "status": "submitted", "rating": rating,
                         "grounded": grounded, "tone_ok": tone, "corrected_explanation": None,
                         "preference": None, "pref_winner": None, "explanation": f"text {rid}",
                         "other_explanation": None, "other_record_id": None, "teacher": "t"})
    return pd.DataFrame(rows)


@app.function
def test_stack_summary_hides_keys_and_explains_how_to_start():
    down = support.stack_summary({"running": False}, env={})
    assert not down["running"] and support.START_HINT in down["message"]
    up = support.stack_summary({"running": True, "api_url": "http://127.0.0.1:1",
                                "owner_api_key": "argilla.secretsecret",
                                "annotator_api_keys": {"annotator": "annotator.k"}}, env={})
    assert up["owner_key"] == "argill…" and "secret" not in str(up)


@app.function
def test_progress_agreement_and_disagreements():
    df = fake_responses()
    labels = lb.resolve(df)
    prog = support.progress(df, n_records=4)
    assert prog["records"] == 4 and prog["completed"] == 3 and prog["pending"] == 1
    assert prog["per_annotator"].set_index("username").loc["annotator", "pending"] == 1
    q, a = support.agreement_tables(labels["agreement"])
    assert {"rating", "grounded", "tone_ok"} <= set(q["question"])
    assert set(a["annotator"]) == {"annotator", "annotator2"}
    d = support.disagreements(df, labels["resolved"])
    assert set(zip(d["record_id"], d["question"])) == {("r2", "grounded"), ("r3", "rating")}
    assert d.set_index("record_id").loc["r3", "resolved"] == "2"  # rating tie -> lower
    assert pd.isna(d.set_index("record_id").loc["r2", "resolved"])  # label tie -> adjudicate
    assert len(support.agreement_figure(q, a).data) >= 3


if __name__ == "__main__":
    app.run()
