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


def diff_ci(k1: int, n1: int, k2: int, n2: int, z: float = Z95) -> tuple[float, float]:
    """95% CI for p1 - p2 from the two Wilson intervals (Newcombe 1998, method 10)."""
    if n1 == 0 or n2 == 0:
        return (-1.0, 1.0)
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson(k1, n1, z)
    l2, u2 = wilson(k2, n2, z)
    d = p1 - p2
    return (max(-1.0, d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)),
            min(1.0, d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)))
