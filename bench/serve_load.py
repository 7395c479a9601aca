"""Load test: the studio endpoint vs. llama.cpp's own server, same GGUF, same client.

Two servers over the packaged SmolLM2-135M GGUF, both up for the whole run:

  llama.cpp  linernotes.services.llamacpp.server() with its defaults
             (8 parallel slots, 1 thread): the baseline
  studio     serve.app.start_endpoint(): the Starlette endpoint (auth, limits,
             metrics) over its own llama.cpp engine with the same slots/threads

One async driver (openai.AsyncOpenAI, no retries) sends the same chat requests
(zero-shot liner-note prompts from the ingested catalog, JSON-schema output,
temperature 0) at each concurrency level, alternating which server goes first.
Reported per level: output tokens/s, p50/p99 latency, error rate, and the
ratio studio / llama.cpp.

Then an overload run against the studio only: `--overload-factor` x capacity
(slots + queue) simultaneous requests, `--overload-rounds` times. Expected: the
excess gets 429 at once, nothing else fails, requests succeed right after
(recovery), and the endpoint's memory (RSS of it and its engine) stays flat.

    .venv/bin/python bench/serve_load.py [--levels 1,4,8,16] [--max-tokens 32]
        [--requests N] [--slots 8] [--queue-size 8] [--overload-rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from linernotes import paths  # noqa: E402

paths.use_offline_hub()

BASELINE = "llama.cpp"
STUDIO = "studio"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", default="1,4,8,16", help="concurrency levels")
    ap.add_argument("--requests", type=int, default=0,
                    help="requests per level per server (default: max(8, 2 x concurrency))")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--slots", type=int, default=8, help="engine slots (llama.cpp server default: 8)")
    ap.add_argument("--queue-size", type=int, default=8, help="studio wait queue")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--overload-factor", type=float, default=2.0)
    ap.add_argument("--overload-rounds", type=int, default=3)
    ap.add_argument("--catalog-dir", default=None, help="prompts from this ingested catalog "
                    "(default: LINERNOTES_HOME/catalog; generic prompts if none)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--model", default=None,
                    help="GGUF file or export folder (default: the packaged SmolLM2 Q4_1 GGUF)")
    return ap.parse_args(argv)


def build_prompts(catalog_dir: Path | None, n: int, seed: int) -> list[list[dict]]:
    """Zero-shot [system, user] liner-note prompts (the fine-tune's format) for n pairs."""
    import random

    from linernotes.domain.prompts import PromptBuilder

    builder = PromptBuilder.zero_shot()
    rng = random.Random(seed)
    folder = catalog_dir or paths.catalog_dir()
    if (folder / "items.parquet").exists():
        from synth.catalog.ingest import load_catalog

        catalog = load_catalog(folder)
        out = []
        for i in range(n):
            kind = ("music", "book", "podcast")[i % 3]
            items, listeners = catalog.items_of_type(kind), catalog.listeners_of_type(kind)
            if not items or not listeners:
                items, listeners = list(catalog.items.values()), catalog.listeners
            out.append(builder.messages(rng.choice(items), rng.choice(listeners)))
        return out
    topics = ["rock", "jazz", "a podcast about history", "a fantasy audiobook", "techno", "folk"]
    return [[{"role": "user", "content": f"In one sentence, recommend {topics[i % len(topics)]} "
                                          f"to listener {i}."}] for i in range(n)]


async def drive(base_url: str, api_key: str, model: str, prompts: list[list[dict]], concurrency: int,
                max_tokens: int) -> dict:
    """Send all prompts, `concurrency` in flight; latencies, tokens and outcome counts."""
    import openai
    from openai import AsyncOpenAI

    from linernotes.domain.prompts import EXPLANATION_SCHEMA

    client = AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=300)
    sem = asyncio.Semaphore(concurrency)
    fmt = {"type": "json_schema", "json_schema": {"name": "liner_note", "schema": EXPLANATION_SCHEMA}}

    async def one(messages):
        async with sem:
            t0 = time.perf_counter()
            try:
                resp = await client.chat.completions.create(
                    model=model, messages=messages, max_tokens=max_tokens, temperature=0,
                    response_format=fmt)
                return "ok", time.perf_counter() - t0, resp.usage.completion_tokens if resp.usage else 0
            except openai.RateLimitError:
                return "429", time.perf_counter() - t0, 0
            except Exception as exc:  # counted, shown
                return f"error:{type(exc).__name__}", time.perf_counter() - t0, 0

    t0 = time.perf_counter()
    results = await asyncio.gather(*(one(m) for m in prompts))
    wall = time.perf_counter() - t0
    await client.close()
    ok = [r for r in results if r[0] == "ok"]
    lat = sorted(r[1] for r in ok)
    return {"wall_s": wall, "n": len(results), "ok": len(ok),
            "rejected": sum(1 for r in results if r[0] == "429"),
            "errors": [r[0] for r in results if r[0].startswith("error")],
            "reject_latency_s": sorted(r[1] for r in results if r[0] == "429"),
            "out_tokens": sum(r[2] for r in ok), "p50": percentile(lat, 50), "p99": percentile(lat, 99)}


def percentile(sorted_values: list[float], pct: float) -> float:
    if not sorted_values:
        return float("nan")
    k = (len(sorted_values) - 1) * pct / 100
    lo, hi = int(k), min(int(k) + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def rss_mb(pid: int) -> tuple[float, float]:
    """(endpoint process, its engine and other descendants) resident memory, MB."""
    import psutil

    try:
        proc = psutil.Process(pid)
        own = proc.memory_info().rss
        children = proc.children(recursive=True)
    except psutil.NoSuchProcess:
        return float("nan"), float("nan")
    rest = 0
    for p in children:
        try:
            rest += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return own / 1e6, rest / 1e6


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from rich.console import Console
    from rich.table import Table

    from linernotes.assets import smollm2_gguf
    from linernotes.services.llamacpp import DEFAULT_MODEL_NAME, server
    from serve.app import start_endpoint

    con = Console(width=200)  # tables whole, also when piped to a file
    levels = [int(x) for x in args.levels.split(",") if x.strip()]
    per_level = {c: args.requests or max(8, 2 * c) for c in levels}
    if args.model:
        from serve.settings import choose_model_file

        gguf = choose_model_file(Path(args.model))
    else:
        gguf = smollm2_gguf()
    t0 = time.perf_counter()
    prompts = build_prompts(Path(args.catalog_dir) if args.catalog_dir else None,
                            max(per_level.values()) + 64, args.seed)
    con.print(f"{len(prompts)} prompts built in {time.perf_counter() - t0:.1f}s; model {gguf.name}; "
              f"levels {levels}, requests/level {per_level}, max_tokens {args.max_tokens}, "
              f"slots {args.slots}, threads {args.threads}")

    baseline = server(gguf, model_name=DEFAULT_MODEL_NAME, n_parallel=args.slots, n_threads=args.threads)
    load_before = os.getloadavg()
    with baseline:
        studio = start_endpoint(gguf, catalog_dir=None, slots=args.slots, queue_size=args.queue_size,
                                served_name=DEFAULT_MODEL_NAME,
                                extra_args=["--threads", str(args.threads)])
        try:
            targets = {BASELINE: (baseline.base_url + "/v1", "none"),
                       STUDIO: (studio.base_url, studio.api_key)}
            con.print(f"{BASELINE} at {baseline.base_url}, {STUDIO} at {studio.root_url} (pid {studio.pid})")
            for name, (url, key) in targets.items():  # warm-up: load pages, fill prompt caches
                asyncio.run(drive(url, key, DEFAULT_MODEL_NAME, prompts[-args.slots:], args.slots, 4))

            results: dict[tuple[str, int], dict] = {}
            for i, c in enumerate(levels):
                batch = prompts[:per_level[c]]
                order = [BASELINE, STUDIO] if i % 2 == 0 else [STUDIO, BASELINE]
                for name in order:
                    url, key = targets[name]
                    r = asyncio.run(drive(url, key, DEFAULT_MODEL_NAME, batch, c, args.max_tokens))
                    results[(name, c)] = r
                    con.print(f"  concurrency {c:2d} {name:9s}: {r['ok']}/{r['n']} ok, "
                              f"{r['out_tokens'] / r['wall_s']:.1f} tok/s, p50 {r['p50']:.2f}s")

            # overload: studio only (llama.cpp's own server queues without bound: nothing to compare)
            capacity = args.slots + args.queue_size
            burst_n = int(round(args.overload_factor * capacity))
            rss = [rss_mb(studio.pid)]
            rounds = []
            for k in range(args.overload_rounds):
                burst = prompts[k * 7:k * 7 + burst_n]
                burst = (burst * (burst_n // max(1, len(burst)) + 1))[:burst_n]
                r = asyncio.run(drive(studio.base_url, studio.api_key, DEFAULT_MODEL_NAME, burst, burst_n,
                                      args.max_tokens))
                rec = asyncio.run(drive(studio.base_url, studio.api_key, DEFAULT_MODEL_NAME,
                                        prompts[:4], 1, 8))  # recovery: right after the burst
                rss.append(rss_mb(studio.pid))
                rounds.append((r, rec))
                con.print(f"  overload round {k + 1}: {burst_n} at once -> {r['ok']} ok, "
                          f"{r['rejected']} x 429, {len(r['errors'])} other; recovery {rec['ok']}/{rec['n']}; "
                          f"RSS endpoint {rss[-1][0]:.0f} MB, engine {rss[-1][1]:.0f} MB")
        finally:
            studio.stop()
    load_after = os.getloadavg()

    table = Table(title=f"chat completions, same GGUF and client: {STUDIO} / {BASELINE}")
    for col in ("concurrency", "requests", f"tok/s {BASELINE}", f"tok/s {STUDIO}", "ratio",
                f"p50 s {BASELINE}", f"p50 s {STUDIO}", "ratio", f"p99 s {BASELINE}",
                f"p99 s {STUDIO}", "ratio", "errors b/s"):
        table.add_column(col, justify="right")
    for c in levels:
        b, s = results[(BASELINE, c)], results[(STUDIO, c)]
        btps, stps = b["out_tokens"] / b["wall_s"], s["out_tokens"] / s["wall_s"]
        err = lambda r: f"{(r['n'] - r['ok']) / r['n']:.0%}"  # noqa: E731
        table.add_row(str(c), str(b["n"]), f"{btps:.1f}", f"{stps:.1f}", f"{stps / btps:.2f}",
                      f"{b['p50']:.2f}", f"{s['p50']:.2f}", f"{s['p50'] / b['p50']:.2f}",
                      f"{b['p99']:.2f}", f"{s['p99']:.2f}", f"{s['p99'] / b['p99']:.2f}",
                      f"{err(b)}/{err(s)}")
    con.print(table)

    over = Table(title=f"overload: {burst_n} simultaneous = {args.overload_factor:g} x capacity "
                       f"({args.slots} slots + {args.queue_size} queue)")
    for col in ("round", "ok", "429", "other errors", "429 latency p50 / max ms",
                "recovery ok", "endpoint RSS MB before/after", "engine RSS MB before/after"):
        over.add_column(col, justify="right")
    for k, (r, rec) in enumerate(rounds):
        rl = r["reject_latency_s"]
        over.add_row(str(k + 1), str(r["ok"]), str(r["rejected"]), str(len(r["errors"])),
                     f"{percentile(rl, 50) * 1000:.0f} / {max(rl) * 1000:.0f}" if rl else "-",
                     f"{rec['ok']}/{rec['n']}", f"{rss[k][0]:.0f} / {rss[k + 1][0]:.0f}",
                     f"{rss[k][1]:.0f} / {rss[k + 1][1]:.0f}")
    con.print(over)
    con.print(f"RSS before overload -> after {args.overload_rounds} rounds: endpoint {rss[0][0]:.0f} -> "
              f"{rss[-1][0]:.0f} MB ({rss[-1][0] - rss[0][0]:+.0f}), engine {rss[0][1]:.0f} -> "
              f"{rss[-1][1]:.0f} MB ({rss[-1][1] - rss[0][1]:+.0f}; llama.cpp keeps a host-RAM prompt cache, "
              f"cache_ram_mib, 8192 by default, and touches KV pages as slots fill)")
    con.print(f"load average (1 min) before/after: {load_before[0]:.2f}/{load_after[0]:.2f} on "
              f"{os.cpu_count()} cores; other processes on the machine skew these numbers")
    bad = [e for r, _ in rounds for e in r["errors"]] + [e for r in results.values() for e in r["errors"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
