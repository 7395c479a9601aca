import marimo

__generated_with = "0.25.2"
app = marimo.App(width="full", app_title="linernotes: fine-tune")

with app.setup:
    # Hub switches first, before any import that may pull in transformers; never the
    # cell's last expression (marimo shows that value on the page).
    from linernotes import paths

    paths.use_offline_hub()

    from pathlib import Path

    import marimo as mo

    from finetune import app_support as support
    from finetune.config import EvalConfig, FinetuneConfig


@app.cell
def _():
    mo.md(r"""
    # Fine-tune: LoRA SFT of the student, report card

    Train SmolLM2-135M-Instruct (a small Llama) on a published dataset
    (golden explanations + gated synthetic rows), watch the loss, then compare
    the base and the tuned model on held-out (item, listener) pairs: gates,
    diversity, lengths and the MMLU guardrail. Training runs
    `python -m finetune.train` in a subprocess (same as `linernotes finetune`);
    nothing trains until you press **Train**.
    """)
    return


@app.cell
def _():
    from linernotes.runs import RunDir as _RunDir

    _published = _RunDir.find_all("publish", require="data/sft")  # newest first
    _options = {r.name: str(r.path) for r in _published}
    data_ui = mo.ui.dropdown(options=_options, value=next(iter(_options), None), label="training data")
    steps_ui = mo.ui.slider(2, 200, value=30, step=2, label="max steps", show_value=True)
    lr_ui = mo.ui.number(1e-5, 1e-2, value=2e-4, step=1e-5, label="learning rate")
    rank_ui = mo.ui.dropdown(options=["4", "8", "16", "32"], value="16", label="LoRA rank")
    batch_ui = mo.ui.slider(1, 8, value=2, label="batch size", show_value=True)
    mo.vstack([mo.md("## Data and config"),
               data_ui if _options else mo.md(f"_No published dataset under `{paths.runs_dir()}` yet: run "
                                              "`linernotes demo` or `linernotes publish`._"),
               mo.hstack([steps_ui, lr_ui, rank_ui, batch_ui], justify="start")])
    return batch_ui, data_ui, lr_ui, rank_ui, steps_ui


@app.cell
def _(batch_ui, data_ui, lr_ui, rank_ui, steps_ui):
    mo.stop(not data_ui.value)
    data_path = data_ui.value
    config = FinetuneConfig(max_steps=int(steps_ui.value), lr=float(lr_ui.value), lora_r=int(rank_ui.value),
                            lora_alpha=2 * int(rank_ui.value), per_device_batch_size=int(batch_ui.value),
                            max_length=512, save_steps=10, runs_dir=str(paths.runs_dir()))
    return config, data_path


@app.cell
def _(config, data_path):
    train_button = mo.ui.run_button(label="Train", kind="success")
    mo.vstack([mo.hstack([train_button, mo.md(f"data `{data_path}`")], justify="start"),
               mo.accordion({"command": mo.plain_text(" ".join(support.train_argv(config)) +
                                                      f" --train-data {data_path}")})])
    return (train_button,)


@app.cell
def _():
    get_trained_run, set_trained_run = mo.state(None)
    return get_trained_run, set_trained_run


@app.cell
def _(config, data_path, set_trained_run, train_button):
    mo.stop(not train_button.value, mo.md("_Press **Train** to fine-tune._"))
    progress = None
    for progress in support.stream_training(config, data_path):
        _n = len(progress.steps)
        mo.output.replace(mo.vstack([
            mo.md(f"**{'finished' if progress.finished else 'training'}** `{progress.run_dir.name}`: "
                  f"step {_n}/{progress.max_steps or '?'}, {progress.elapsed_s:.0f}s"),
            mo.ui.plotly(support.loss_figure(progress.steps)) if _n else mo.plain_text(progress.tail(8)),
        ]))
    if progress is not None and progress.ok:
        set_trained_run(str(progress.run_dir))
        mo.output.replace(mo.callout(mo.md(f"Run `{progress.run_dir.name}` trained in "
                                           f"{progress.elapsed_s:.0f}s; see below."), kind="success"))
    else:
        mo.output.replace(mo.callout(mo.vstack([
            mo.md(f"**Training failed** (exit code {progress.returncode if progress else '?'})"),
            mo.plain_text(progress.tail(40) if progress else "")]), kind="danger"))
    return (progress,)


@app.cell
def _(get_trained_run):
    _runs = support.list_runs()
    _options = {p.name: str(p) for p in _runs}
    _trained = get_trained_run()
    _value = next((n for n, p in _options.items() if p == _trained), next(iter(_options), None))
    run_ui = mo.ui.dropdown(options=_options, value=_value, label="open run")
    mo.vstack([mo.md("## Runs"), run_ui if _options else mo.md("_No finished fine-tuning runs yet._")])
    return (run_ui,)


@app.cell
def _(run_ui):
    mo.stop(not run_ui.value)
    run_path = Path(run_ui.value)
    manifest = support.manifest(run_path)
    _sft = Path(manifest["sft_run"]) if manifest.get("sft_run") else run_path
    _dpo = support.read_log(run_path) if manifest.get("stage") == "dpo" else None
    loss_fig = support.loss_figure(support.read_log(_sft), title=f"loss: {run_path.name}", dpo_steps=_dpo)
    mo.vstack([
        mo.hstack([mo.stat(manifest.get("global_step"), label="steps"),
                   mo.stat(f"{manifest.get('first_loss') or 0:.3f} -> {manifest.get('final_loss') or 0:.3f}",
                           label="loss"),
                   mo.stat(manifest.get("step_seconds_mean"), label="s/step"),
                   mo.stat(manifest.get("device"), label="device")], justify="start"),
        mo.ui.plotly(loss_fig),
    ])
    return loss_fig, manifest, run_path


@app.cell
def _(run_path):
    eval_button = mo.ui.run_button(label="Evaluate (base, tuned, teacher; judge; guardrail; chat)", kind="neutral")
    n_ui = mo.ui.slider(1, 50, value=2, label="pairs per type", show_value=True)
    judge_ui = mo.ui.slider(0, 150, value=2, label="judged pairs", show_value=True)
    mmlu_ui = mo.ui.slider(0, 400, value=16, step=4, label="MMLU questions", show_value=True)
    guard_ui = mo.ui.slider(0, 100, value=6, label="per guardrail task", show_value=True)
    chat_ui = mo.ui.slider(0, 50, value=5, label="chat prompts", show_value=True)
    _done = (run_path / "eval" / "COMPLETE").exists()
    mo.vstack([mo.md("## Report card" + (" (done; press to redo with new settings)" if _done else "")
                     + "\n\nThe defaults are the demo's small card (~6 min on 2 cores); the full card is "
                       "50 pairs per type, 150 judged, 100 questions per task, 50 chat prompts (hours on CPU)."),
               mo.hstack([n_ui, judge_ui, mmlu_ui], justify="start"),
               mo.hstack([guard_ui, chat_ui], justify="start"), eval_button])
    return chat_ui, eval_button, guard_ui, judge_ui, mmlu_ui, n_ui


@app.cell
def _(chat_ui, eval_button, guard_ui, judge_ui, mmlu_ui, n_ui, run_path):
    from finetune.evaluate import evaluate, load_report, load_samples, report_figures

    if eval_button.value:
        with mo.status.spinner(title="notes from base, tuned and teacher; judge; guardrail; chat check..."):
            evaluate(EvalConfig(n_per_type=int(n_ui.value), judge_n=int(judge_ui.value),
                                mmlu_n=int(mmlu_ui.value), guardrail_n=int(guard_ui.value),
                                chat_n=int(chat_ui.value), chat_max_new_tokens=64), run_path,
                     force=True, progress=False)
    mo.stop(not (run_path / "eval" / "report.json").exists(),
            mo.md("_Not evaluated yet: press **Evaluate**._"))
    report = load_report(run_path)
    samples = load_samples(run_path)
    mo.vstack([mo.md((run_path / "eval" / "report.md").read_text()),
               *[mo.ui.plotly(_f) for _f in report_figures(report)],
               mo.md("### Side by side (held-out pairs)"),
               mo.ui.table(support.side_by_side(samples), selection=None, page_size=12)])
    return report, samples


@app.function
def test_train_argv_round_trips_through_the_cli():
    import argparse

    from linernotes.config import add_dataclass_args, load_config, overrides_from_args

    cfg = FinetuneConfig(max_steps=7, lr=1e-3, lora_r=8, target_modules=["q_proj", "v_proj"], packing=True)
    argv = support.train_argv(cfg)
    assert argv[1:3] == ["-m", "finetune.train"]
    ap = argparse.ArgumentParser()
    add_dataclass_args(ap, FinetuneConfig)
    back = load_config(FinetuneConfig, None, overrides_from_args(ap.parse_args(argv[3:]), FinetuneConfig))
    assert back == cfg and back.fingerprint() == cfg.fingerprint()


@app.function
def test_loss_figure_has_one_point_per_logged_step():
    steps = [{"step": 1, "loss": 2.0}, {"step": 2}, {"step": 3, "loss": 1.5}]
    fig = support.loss_figure(steps, dpo_steps=[{"step": 1, "loss": 0.69}])
    assert list(fig.data[0].x) == [1, 3] and list(fig.data[0].y) == [2.0, 1.5]
    assert fig.data[1].name == "DPO loss"


if __name__ == "__main__":
    app.run()
