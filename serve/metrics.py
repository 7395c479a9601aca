"""Prometheus text exposition (format 0.0.4), written by hand: no client library needed.

Series (all prefixed `linernotes_`):

    requests_total{route,status}            counter
    request_duration_seconds{route}         histogram (le buckets, _sum, _count)
    tokens_total{direction="in"|"out"}      counter (prompt / completion tokens, from engine usage)
    in_flight                               gauge: requests holding an engine slot
    queue_depth                             gauge: admitted requests waiting for a slot
    slots, queue_capacity                   gauges: the configured limits

`parse_text()` is a small parser of the same format, used by tests and the benchmark.
"""

from __future__ import annotations

import re
import threading
from collections import defaultdict
from typing import Callable

PREFIX = "linernotes_"
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items()) + "}"


def _num(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class Metrics:
    """Counters and a histogram; gauges are read from callables at scrape time."""

    def __init__(self, gauges: dict[str, tuple[str, Callable[[], float]]] | None = None):
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str], int] = defaultdict(int)
        self.buckets: dict[str, list[int]] = defaultdict(lambda: [0] * len(BUCKETS))
        self.duration_sum: dict[str, float] = defaultdict(float)
        self.duration_count: dict[str, int] = defaultdict(int)
        self.tokens = {"in": 0, "out": 0}
        self.gauges = gauges or {}

    def observe(self, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(route, str(status))] += 1
            counts = self.buckets[route]
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    counts[i] += 1
            self.duration_sum[route] += seconds
            self.duration_count[route] += 1

    def add_tokens(self, prompt: int, completion: int) -> None:
        with self._lock:
            self.tokens["in"] += max(0, int(prompt or 0))
            self.tokens["out"] += max(0, int(completion or 0))

    def render(self) -> str:
        with self._lock:
            lines = [f"# HELP {PREFIX}requests_total Requests answered, by route and HTTP status.",
                     f"# TYPE {PREFIX}requests_total counter"]
            for (route, status), n in sorted(self.requests.items()):
                lines.append(f"{PREFIX}requests_total{_labels(route=route, status=status)} {n}")
            lines += [f"# HELP {PREFIX}request_duration_seconds Time from request to last byte.",
                      f"# TYPE {PREFIX}request_duration_seconds histogram"]
            for route in sorted(self.duration_count):
                for bound, n in zip(BUCKETS, self.buckets[route]):
                    lines.append(f"{PREFIX}request_duration_seconds_bucket"
                                 f"{_labels(route=route, le=_num(bound))} {n}")
                lines.append(f"{PREFIX}request_duration_seconds_bucket"
                             f"{_labels(route=route, le='+Inf')} {self.duration_count[route]}")
                lines.append(f"{PREFIX}request_duration_seconds_sum{_labels(route=route)} "
                             f"{_num(self.duration_sum[route])}")
                lines.append(f"{PREFIX}request_duration_seconds_count{_labels(route=route)} "
                             f"{self.duration_count[route]}")
            lines += [f"# HELP {PREFIX}tokens_total Tokens through the engine (in: prompt, out: completion).",
                      f"# TYPE {PREFIX}tokens_total counter"]
            for direction in ("in", "out"):
                lines.append(f"{PREFIX}tokens_total{_labels(direction=direction)} {self.tokens[direction]}")
        for name, (help_text, read) in self.gauges.items():
            lines += [f"# HELP {PREFIX}{name} {help_text}", f"# TYPE {PREFIX}{name} gauge",
                      f"{PREFIX}{name} {_num(read())}"]
        return "\n".join(lines) + "\n"


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?\s*')


def parse_text(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(name, sorted label pairs): value}; raises ValueError on a malformed line."""
    out = {}
    types: dict[str, str] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split(maxsplit=3)
            if len(parts) >= 4 and parts[1] == "TYPE":
                types[parts[2]] = parts[3]
            continue
        m = _SAMPLE.match(line)
        if not m:
            raise ValueError(f"line {lineno}: not a sample: {line!r}")
        name, _, label_text, value = m.group(1), m.group(2), m.group(3), m.group(4)
        labels = []
        if label_text:
            pos = 0
            for lm in _LABEL.finditer(label_text):
                if lm.start() != pos:
                    raise ValueError(f"line {lineno}: bad labels: {label_text!r}")
                labels.append((lm.group(1), lm.group(2)))
                pos = lm.end()
            if pos != len(label_text):
                raise ValueError(f"line {lineno}: bad labels: {label_text!r}")
        out[(name, tuple(sorted(labels)))] = float(value.replace("+Inf", "inf"))
    return out


def value(samples: dict, name: str, **labels: str) -> float:
    """One sample's value (0.0 if absent)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)
