"""Console summaries of runs (rich tables), shared by the CLI commands and the demo."""

from __future__ import annotations

import json


def console():
    from rich.console import Console

    return Console()


def print_curate_run(run) -> None:
    """Dedupe stages, counts, diversity and where the map and sample are."""
    from rich.table import Table

    m = run.manifest()
    report = json.loads((run.path / "report.json").read_text())
    con = console()
    table = Table(title=f"curation run {run.name}")
    for col in ("stage", "removed", "groups", "threshold", "seconds"):
        table.add_column(col)
    for st in report["dedupe"]:
        table.add_row(str(st.get("stage")), str(st.get("removed")), str(st.get("groups")),
                      str(st.get("threshold")), f"{st.get('seconds', 0):.2f}")
    con.print(table)
    c = m["counts"]
    div = report["diversity"]
    con.print(f"rows in {c['rows_in']} (no text {c['no_text']}) -> kept {c['kept']}, removed "
              f"{c['removed']}; clusters {c['clusters']}; review sample {c['sample']}")
    con.print(f"diversity: unique-sentence ratio {div.get('unique_sentence_ratio')}, "
              f"distinct-2 {div.get('distinct_2')}")
    con.print(f"embeddings: {m['embeddings']}")
    con.print(f"map: {run.path / 'map.html'}\nsample: {run.path / 'sample'}\nmanifest: {run.manifest_path}")


def print_synth_run(run) -> None:
    """Counts, gate pass rates, cache and throughput of a synth run."""
    from rich.table import Table

    m = run.manifest()
    con = console()
    counts = m["counts"]
    table = Table(title=f"run {run.name}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in ("planned", "rows", "parsed", "parse_rate", "grounding_pass", "style_pass",
                "safety_pass", "usefulness_pass", "passed_all", "quarantined", "output_tokens"):
        table.add_row(key, str(counts.get(key)))
    table.add_row("cache hit/miss/error",
                  f"{m['cache']['hit']}/{m['cache']['miss']}/{m['cache']['error']}")
    table.add_row("pipeline s", str(m["timings"].get("pipeline_s")))
    table.add_row("output tokens/s", str(m["throughput"]["output_tokens_per_s"]))
    con.print(table)
    if m.get("yield"):
        from synth.revise import format_yield

        con.print(format_yield(m["yield"]))
    con.print(f"dataset: {run.parquet_path}\nmanifest: {run.manifest_path}")
