"""Throughput of the studio's synth pipeline vs. the raw backend, same model and prompts.

One llama.cpp server (xllamacpp, packaged SmolLM2-135M GGUF, `--concurrency`
slots, `--threads` threads) serves three measurements of the same N rows
(plan_rows + build_rows over the ingested catalog, default 48 rows):

  raw       openai.AsyncOpenAI chat completions, same messages / sampling /
            response_format, `--concurrency` requests in flight (semaphore)
  pipeline  synth.pipeline.run_synth against the same server with a fresh
            LINERNOTES_HOME (temp dir: empty teacher cache, so every call is a
            real miss), catalog read from the already-ingested folder
  rerun     the same run_synth again (force): every call is a cache hit

Before each timed phase one untimed request per slot (rows of another seed,
same item types) refills the server's slots: llama.cpp reuses a slot's cached
prompt prefix, so this gives both phases the same starting point (shared
few-shot prefixes cached, never an identical prompt). Output tokens are the
server's usage counts. Ratio = pipeline tokens/s / raw tokens/s.

    .venv/bin/python bench/synth_throughput.py [--rows 48] [--concurrency 8] [--threads 1]

`--variants` instead compares teacher set-ups on one model (`--model`, a path or
a packaged teacher name) by seconds per GATE-PASSING note: each variant is
PROMPT@cN@tM[@rK] (prompt variant, concurrency = slots, server threads,
--cache-reuse K), the first one is the baseline. Prompt variants: legacy2 (the
golden set and cross-type fallback before per-type shots, fixed), fixed2 /
fixed1 (per-type shots, the same for every row of a type: one shared prefix),
rotate2 / rotate1 (per-type shots rotated by item id), suffix "-nogrammar"
drops the JSON-schema grammar. Untimed warm-up per variant: one request per
item type built from other rows (another seed), so every variant starts with
its own shared prefixes cached, on a fresh server (no variant inherits another's cache).

    .venv/bin/python bench/synth_throughput.py --variants fixed2@c4@t2,rotate2@c4@t2 \
        --model qwen2.5-coder-1.5b-instruct --rows 21 --seed 17
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import math
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("DISTILABEL_LOG_LEVEL", "WARNING")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from linernotes import paths  # noqa: E402

paths.use_offline_hub()
from linernotes.config import SynthConfig, load_config  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=48,
                    help="rows in total, split evenly over the item types (rounded up)")
    ap.add_argument("--concurrency", type=int, default=8, help="requests in flight = server slots")
    ap.add_argument("--threads", type=int, default=1, help="llama.cpp server threads")
    ap.add_argument("--item-types", default="music,book,podcast")
    ap.add_argument("--max-new-tokens", type=int, default=96)
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--catalog-dir", default=None,
                    help="ingested catalog (default: $LINERNOTES_CATALOG_DIR or LINERNOTES_HOME/catalog)")
    ap.add_argument("--raw-batched", action="store_true",
                    help="also time the raw backend in groups of --concurrency (distilabel's "
                         "batch pattern), to separate batching effects from pipeline overhead")
    ap.add_argument("--keep", action="store_true", help="keep the temp LINERNOTES_HOME and print it")
    ap.add_argument("--variants", default=None,
                    help="comma list of PROMPT@cN@tM[@rK]: seconds per gate-passing note per variant")
    ap.add_argument("--model", default=None, help="--variants: GGUF path or packaged teacher name")
    return ap.parse_args(argv)


LEGACY_GOLDEN_COMMIT = "dc5b8d1"  # golden_examples.yaml before per-type shots (2 music, 1 book, 1 podcast)


class _LegacyBuilder:
    """The prompt before per-type shots: same-type examples first, then any type, fixed."""

    def __init__(self, builder):
        self.b = builder

    def messages(self, item, listener):
        import json as _json
        from linernotes.domain.prompts import listener_context

        same = [g for g in self.b.golden if g.item_type == item.item_type]
        other = [g for g in self.b.golden if g.item_type != item.item_type]
        msgs = [{"role": "system", "content": self.b.system_message(item.item_type)}]
        for ex in (same + other)[: self.b.few_shot]:
            msgs.append({"role": "user", "content": self.b.user_message(ex.item, ex.listener)})
            msgs.append({"role": "assistant", "content": _json.dumps(ex.answer, ensure_ascii=False)})
        msgs.append({"role": "user", "content": self.b.user_message(item.facts(), listener_context(listener))})
        return msgs


def variant_builder(name: str, config: SynthConfig):
    import subprocess

    from linernotes.domain.prompts import PromptBuilder, load_golden

    prompt = name.removesuffix("-nogrammar")
    shots = int(prompt[-1])
    base = PromptBuilder.default(config.template, config.golden_examples, shots, config.max_words)
    if prompt.startswith("legacy"):
        old = subprocess.run(["git", "show", f"{LEGACY_GOLDEN_COMMIT}:linernotes/domain/data/golden_examples.yaml"],
                             capture_output=True, text=True, check=True,
                             cwd=Path(__file__).resolve().parents[1]).stdout
        tmp = Path(tempfile.mkdtemp()) / "legacy_golden.yaml"
        tmp.write_text(old)
        base.golden = load_golden(tmp)
        return _LegacyBuilder(base)
    if prompt.startswith("fixed"):
        base.rotate_shots = False
    elif prompt.startswith("rotate"):
        base.rotate_shots = True
    else:
        raise SystemExit(f"unknown prompt variant {name!r}")
    return base


async def _gated_calls(base_url, model, planned, builder, config, schema, concurrency):
    """Chat completions for planned rows; parse + gate each answer. Returns per-row results."""
    from openai import AsyncOpenAI

    from linernotes.domain.gates import run_gates
    from linernotes.domain.parsing import parse_explanation

    client = AsyncOpenAI(base_url=base_url, api_key="none", timeout=600, max_retries=0)
    sem = asyncio.Semaphore(concurrency)
    kwargs: dict = {"model": model, "max_tokens": config.max_new_tokens,
                    "temperature": config.temperature, "top_p": config.top_p, "seed": config.seed}
    if schema is not None:
        kwargs["response_format"] = {"type": "json_schema",
                                     "json_schema": {"name": "liner_note", "schema": schema}}

    async def one(p):
        async with sem:
            resp = await client.chat.completions.create(messages=builder.messages(p.item, p.listener),
                                                        **kwargs)
        text = resp.choices[0].message.content
        parsed, _ = parse_explanation(text)
        passed = False
        if parsed is not None:
            gates = run_gates(parsed["explanation"], parsed["facts_used"], p.item, p.listener)
            passed = all(g.passed for g in gates.values())
        u = resp.usage
        return {"parsed": parsed is not None, "passed": passed, "text": text,
                "prompt": u.prompt_tokens if u else 0, "gen": u.completion_tokens if u else 0}

    out = await asyncio.gather(*(one(p) for p in planned))
    await client.close()
    return out


def run_variants(args: argparse.Namespace) -> int:
    from linernotes.domain.prompts import EXPLANATION_SCHEMA
    from linernotes.services.llamacpp import resolve, server
    from synth.catalog.ingest import load_catalog
    from synth.pipeline import plan_rows

    item_types = [t.strip() for t in args.item_types.split(",") if t.strip()]
    per_type = max(1, math.ceil(args.rows / len(item_types)))
    catalog = load_catalog(args.catalog_dir or os.environ.get("LINERNOTES_CATALOG_DIR") or None)
    model_path, model_name = resolve(args.model)
    config = load_config(SynthConfig, None, {
        "name": "bench", "item_types": item_types, "n_per_type": per_type, "seed": args.seed,
        "max_new_tokens": args.max_new_tokens})
    planned = plan_rows(catalog, config)
    warm = plan_rows(catalog, dataclasses.replace(config, seed=config.seed + 1000))
    specs = [v.strip() for v in args.variants.split(",") if v.strip()]
    print(f"{len(planned)} rows ({per_type} x {item_types}, seed {args.seed}); model {model_path.name}; "
          f"max_new_tokens {config.max_new_tokens}", flush=True)
    results = []
    srv = None
    try:
        for spec in specs:
            parts = spec.split("@")
            prompt = parts[0]
            opts = {q[0]: int(q[1:]) for q in parts[1:]}
            conc, threads, reuse = opts.get("c", 4), opts.get("t", 2), opts.get("r", 0)
            # A fresh server per variant: a server that served the previous variant holds its
            # prompts (slots + host-RAM cache), and shared prefixes would leak between variants.
            if srv is not None:
                srv.stop()
            srv = server(model_path, model_name=model_name, n_parallel=conc, n_threads=threads,
                         cache_reuse=reuse)
            srv.start()
            builder = variant_builder(prompt, config)
            schema = None if prompt.endswith("-nogrammar") else EXPLANATION_SCHEMA
            base_url = srv.base_url + "/v1"
            by_type = {t: [p for p in warm if p.item.item_type == t] for t in item_types}
            # one row per type: its shared prefix is cached (a slot's, and llama.cpp's host-RAM
            # prompt cache, which any slot restores from); cheap enough for a loaded 2-core box
            warm_rows = [by_type[t][0] for t in item_types]
            asyncio.run(_gated_calls(base_url, model_name, warm_rows, builder,
                                     dataclasses.replace(config, max_new_tokens=1), schema, conc))
            load0 = os.getloadavg()[0]
            m0 = server_metrics(srv.base_url)
            t0 = time.perf_counter()
            out = asyncio.run(_gated_calls(base_url, model_name, planned, builder, config, schema, conc))
            wall = time.perf_counter() - t0
            m1 = server_metrics(srv.base_url)
            r = {"variant": spec, "rows": len(out), "wall_s": wall,
                 "parsed": sum(o["parsed"] for o in out), "passed": sum(o["passed"] for o in out),
                 "prompt": sum(o["prompt"] for o in out), "gen": sum(o["gen"] for o in out),
                 "evaluated": delta(m1, m0, "prompt_tokens_total"),
                 "load": (load0 + os.getloadavg()[0]) / 2}
            r["s_per_pass"] = wall / r["passed"] if r["passed"] else float("inf")
            results.append(r)
            print(f"{spec}: {wall:.0f}s, passed {r['passed']}/{len(out)}, "
                  f"{r['s_per_pass']:.1f} s/pass, load {r['load']:.2f}", flush=True)
    finally:
        if srv is not None:
            srv.stop()
    base = results[0]
    header = (f"{'variant':26s} {'rows':>4s} {'parsed':>6s} {'passed':>6s} {'wall s':>7s} {'s/pass':>7s} "
              f"{'prompt tok/row':>14s} {'evaluated/row':>13s} {'gen tok/row':>11s} {'load':>5s} "
              f"{'s/pass vs base':>14s}")
    print()
    print(header)
    print("-" * len(header))
    for r in results:
        n = r["rows"]
        print(f"{r['variant']:26s} {n:4d} {r['parsed']:6d} {r['passed']:6d} {r['wall_s']:7.0f} "
              f"{r['s_per_pass']:7.1f} {r['prompt'] / n:14.0f} {r['evaluated'] / n:13.0f} "
              f"{r['gen'] / n:11.1f} {r['load']:5.2f} {r['s_per_pass'] / base['s_per_pass']:14.2f}")
    print(f"baseline {base['variant']}; load = mean 1-min load average at start/end of the timed "
          f"phase on {os.cpu_count()} cores (other processes share them)")
    return 0


async def raw_backend(base_url: str, model: str, messages: list[list[dict]], config: SynthConfig,
                      schema: dict | None, concurrency: int, batched: bool = False) -> dict:
    """Direct chat completions, `concurrency` in flight; returns wall time and token counts.

    batched=True sends `concurrency` requests and waits for all of them before the
    next group (the pattern of distilabel's per-batch agenerate), instead of
    topping up the semaphore as each request finishes."""
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=base_url, api_key="none", timeout=300, max_retries=0)
    sem = asyncio.Semaphore(concurrency)
    kwargs: dict = {"model": model, "max_tokens": config.max_new_tokens,
                    "temperature": config.temperature, "top_p": config.top_p, "seed": config.seed}
    if schema is not None:  # exactly what synth.llm.CachedOpenAILLM sends
        kwargs["response_format"] = {"type": "json_schema",
                                     "json_schema": {"name": "liner_note", "schema": schema}}

    async def one(msgs: list[dict]) -> tuple[int, int]:
        async with sem:
            resp = await client.chat.completions.create(messages=msgs, **kwargs)
        usage = resp.usage
        return (usage.prompt_tokens, usage.completion_tokens) if usage else (0, 0)

    t0 = time.perf_counter()
    if batched:
        results = []
        for i in range(0, len(messages), concurrency):
            results += await asyncio.gather(*(one(m) for m in messages[i:i + concurrency]))
    else:
        results = await asyncio.gather(*(one(m) for m in messages))
    wall = time.perf_counter() - t0
    await client.close()
    return {"wall_s": wall, "rows": len(results), "input_tokens": sum(r[0] for r in results),
            "output_tokens": sum(r[1] for r in results)}


def server_metrics(base: str) -> dict[str, float]:
    """llama.cpp's Prometheus counters (prompt tokens evaluated, tokens predicted, ...)."""
    import httpx

    out = {}
    for line in httpx.get(base + "/metrics", timeout=10).text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            try:
                out[name.removeprefix("llamacpp:")] = float(value)
            except ValueError:
                pass
    return out


def delta(after: dict[str, float], before: dict[str, float], key: str) -> float:
    return after.get(key, 0.0) - before.get(key, 0.0)


def pipeline_run(config: SynthConfig, catalog, force: bool) -> dict:
    from synth.pipeline import run_synth

    t0 = time.perf_counter()
    run = run_synth(config, force=force, catalog=catalog)
    wall = time.perf_counter() - t0
    m = run.manifest()
    return {"wall_s": wall, "pipeline_s": m["timings"]["pipeline_s"], "rows": m["counts"]["rows"],
            "output_tokens": m["counts"]["output_tokens"], "input_tokens": m["counts"]["input_tokens"],
            "cache": m["cache"], "parse_rate": m["counts"]["parse_rate"], "run": run}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.variants:
        return run_variants(args)
    from linernotes.services.llamacpp import DEFAULT_MODEL_NAME, server
    from synth.catalog.ingest import load_catalog
    from synth.pipeline import build_rows, plan_rows
    from linernotes.domain.prompts import EXPLANATION_SCHEMA, PromptBuilder

    item_types = [t.strip() for t in args.item_types.split(",") if t.strip()]
    per_type = max(1, math.ceil(args.rows / len(item_types)))
    catalog_dir = Path(args.catalog_dir or os.environ.get("LINERNOTES_CATALOG_DIR")
                       or paths.catalog_dir()).resolve()
    t0 = time.perf_counter()
    catalog = load_catalog(catalog_dir)
    load_s = time.perf_counter() - t0
    config = load_config(SynthConfig, None, {
        "name": "bench", "item_types": item_types, "n_per_type": per_type, "seed": args.seed,
        "backend": "llamacpp", "model": DEFAULT_MODEL_NAME, "concurrency": args.concurrency,
        "server_threads": args.threads, "max_new_tokens": args.max_new_tokens,
        "catalog_dir": str(catalog_dir)})
    builder = PromptBuilder.default(config.template, config.golden_examples, config.few_shot,
                                    config.max_words)
    planned = plan_rows(catalog, config)
    rows, _ = build_rows(planned, builder, config, "llamacpp", DEFAULT_MODEL_NAME)
    messages = [r["messages"] for r in rows]
    schema = EXPLANATION_SCHEMA if config.structured_output else None
    print(f"catalog {catalog_dir} loaded in {load_s:.1f}s; {len(messages)} rows "
          f"({per_type} x {item_types}), concurrency {args.concurrency}, "
          f"server threads {args.threads}, max_new_tokens {config.max_new_tokens}", flush=True)

    # Flush prompts: same item types, other listeners/items (another seed), so before
    # each timed phase every slot holds a similar but never an identical prompt.
    flush_planned = plan_rows(catalog, dataclasses.replace(config, seed=config.seed + 1000))
    by_type = {t: [p for p in flush_planned if p.item.item_type == t] for t in item_types}
    flush_rows = [by_type[t][i] for i in range(per_type) for t in item_types if i < len(by_type[t])]

    def flush(start: int) -> None:
        picked = [flush_rows[(start + i) % len(flush_rows)] for i in range(args.concurrency)]
        asyncio.run(raw_backend(base_url, DEFAULT_MODEL_NAME,
                                [builder.messages(p.item, p.listener) for p in picked],
                                dataclasses.replace(config, max_new_tokens=4), schema,
                                args.concurrency))

    home = Path(tempfile.mkdtemp(prefix="linernotes-bench-"))
    srv = server(None, model_name=DEFAULT_MODEL_NAME, n_parallel=args.concurrency,
                 n_threads=args.threads)
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    with srv:
        print(f"llama.cpp server ready in {time.perf_counter() - t0:.1f}s at {srv.base_url} "
              f"(log {srv.log_path})", flush=True)
        base_url = srv.base_url + "/v1"
        flush(0)  # warm-up, not timed
        m0 = server_metrics(srv.base_url)
        raw = asyncio.run(raw_backend(base_url, DEFAULT_MODEL_NAME, messages, config, schema,
                                      args.concurrency))
        m1 = server_metrics(srv.base_url)
        raw["prompt_evaluated"] = delta(m1, m0, "prompt_tokens_total")
        print(f"raw done in {raw['wall_s']:.1f}s", flush=True)
        raw_b = None
        if args.raw_batched:
            flush(2 * args.concurrency)
            m0 = server_metrics(srv.base_url)
            raw_b = asyncio.run(raw_backend(base_url, DEFAULT_MODEL_NAME, messages, config,
                                            schema, args.concurrency, batched=True))
            raw_b["prompt_evaluated"] = delta(server_metrics(srv.base_url), m0,
                                              "prompt_tokens_total")
            print(f"raw batched done in {raw_b['wall_s']:.1f}s", flush=True)

        # The pipeline: same server (base_url), fresh home = empty teacher cache.
        # Distinct run names: the cache's event log counts hits/misses per run name.
        os.environ["LINERNOTES_HOME"] = str(home)
        pconfig = dataclasses.replace(config, base_url=base_url, runs_dir=str(home / "runs"))
        flush(args.concurrency)
        m0 = server_metrics(srv.base_url)
        first = pipeline_run(dataclasses.replace(pconfig, run_name="bench-pipeline"), catalog,
                             force=True)
        m1 = server_metrics(srv.base_url)
        first["prompt_evaluated"] = delta(m1, m0, "prompt_tokens_total")
        print(f"pipeline done in {first['wall_s']:.1f}s (cache {first['cache']})", flush=True)
        m0 = server_metrics(srv.base_url)
        rerun = pipeline_run(dataclasses.replace(pconfig, run_name="bench-rerun"), catalog,
                             force=True)
        rerun["prompt_evaluated"] = delta(server_metrics(srv.base_url), m0, "prompt_tokens_total")
        print(f"rerun done in {rerun['wall_s']:.1f}s (cache {rerun['cache']})", flush=True)
    load_after = os.getloadavg()

    if first["cache"]["miss"] != len(messages):
        print(f"WARNING: first pipeline run had {first['cache']} (expected {len(messages)} misses)")
    if rerun["cache"]["hit"] != len(messages):
        print(f"WARNING: rerun had {rerun['cache']} (expected {len(messages)} hits)")

    def tps(tokens: int, seconds: float) -> float:
        return tokens / seconds if seconds else float("nan")

    raw_tps = tps(raw["output_tokens"], raw["wall_s"])
    pipe_tps = tps(first["output_tokens"], first["pipeline_s"])
    pipe_total_tps = tps(first["output_tokens"], first["wall_s"])
    header = (f"{'measurement':34s} {'rows':>5s} {'out tok':>8s} {'wall s':>8s} {'out tok/s':>10s} "
              f"{'prompt tok evaluated':>21s}")
    print()
    print(header)
    print("-" * len(header))
    print(f"{'raw backend (AsyncOpenAI)':34s} {raw['rows']:5d} {raw['output_tokens']:8d} "
          f"{raw['wall_s']:8.1f} {raw_tps:10.1f} {raw['prompt_evaluated']:21.0f}")
    if raw_b is not None:
        print(f"{'raw backend, groups of concurrency':34s} {raw_b['rows']:5d} "
              f"{raw_b['output_tokens']:8d} {raw_b['wall_s']:8.1f} "
              f"{tps(raw_b['output_tokens'], raw_b['wall_s']):10.1f} {raw_b['prompt_evaluated']:21.0f}")
    print(f"{'pipeline, Pipeline.run only':34s} {first['rows']:5d} {first['output_tokens']:8d} "
          f"{first['pipeline_s']:8.1f} {pipe_tps:10.1f} {first['prompt_evaluated']:21.0f}")
    print(f"{'pipeline, whole run_synth':34s} {first['rows']:5d} {first['output_tokens']:8d} "
          f"{first['wall_s']:8.1f} {pipe_total_tps:10.1f} {first['prompt_evaluated']:21.0f}")
    print(f"{'pipeline rerun (all cache hits)':34s} {rerun['rows']:5d} {'-':>8s} "
          f"{rerun['wall_s']:8.1f} {'-':>10s} {rerun['prompt_evaluated']:21.0f}")
    print("-" * len(header))
    print(f"ratio pipeline/raw, tokens/s: {pipe_tps / raw_tps:.2f} (Pipeline.run), "
          f"{pipe_total_tps / raw_tps:.2f} (whole run_synth); "
          f"parse rate {first['parse_rate']:.0%}; rerun pipeline_s {rerun['pipeline_s']:.1f}")
    print(f"load average (1 min) before/after: {load_before[0]:.2f}/{load_after[0]:.2f} "
          f"on {os.cpu_count()} cores; other processes on the machine skew these numbers")
    if args.keep:
        print(f"bench home kept: {home}")
    else:
        import shutil
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
