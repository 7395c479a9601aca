"""Small statistics for the report card: Wilson score intervals for pass rates.

`wilson(k, n)` is the 95% Wilson score interval for k successes in n trials
(better than the normal approximation near 0 and 1 and for small n, which is
where our gate rates and loop rates live). `rate(k, n)` bundles the point
estimate with its interval for the report; `overlap` says whether two
intervals overlap (the report card's "cannot tell apart" test).
"""

from __future__ import annotations

import math

Z95 = 1.959963984540054


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """(lo, hi) Wilson score interval; n == 0 gives the uninformative (0, 1)."""
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"wilson: need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def rate(k: int, n: int) -> dict:
    """{"k", "n", "rate", "ci95": [lo, hi]} (rate None when n == 0)."""
    lo, hi = wilson(k, n)
    return {"k": int(k), "n": int(n), "rate": round(k / n, 4) if n else None,
            "ci95": [round(lo, 4), round(hi, 4)]}


def overlap(a: tuple[float, float] | list[float], b: tuple[float, float] | list[float]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]
