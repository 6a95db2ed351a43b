"""Intervals for rates: how often a behaviour shows up in k of n rows, and the gap between two rates.

Wilson's score interval rather than the normal approximation, because the rates of interest are often
near 0 or 1 (a behaviour absent without its system prompt, or copied by nearly every few-shot reply),
where the normal interval collapses to a point or leaves [0, 1]. The difference of two independent
rates uses Newcombe's hybrid score interval (method 10 of Newcombe 1998), built from the two Wilson
intervals, for the same reason.
"""

from __future__ import annotations

import math

__all__ = ["rate_difference", "wilson_interval"]

Z_95 = 1.959963984540054


def wilson_interval(hits: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """95% Wilson score interval of the rate `hits / n` (nan, nan for n = 0)."""
    if hits < 0 or n < 0 or hits > n:
        raise ValueError(f"need 0 <= hits <= n, got hits={hits}, n={n}")
    if n == 0:
        return (math.nan, math.nan)
    p = hits / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # clamp the rounding error at the ends: the score interval contains 0 when hits = 0, 1 when hits = n
    return (0.0 if hits == 0 else max(0.0, centre - half), 1.0 if hits == n else min(1.0, centre + half))


def rate_difference(
    hits_a: int, n_a: int, hits_b: int, n_b: int, z: float = Z_95
) -> tuple[float, float, float]:
    """Rate a minus rate b, with Newcombe's 95% interval for independent samples: (diff, low, high)."""
    if n_a == 0 or n_b == 0:
        return (math.nan, math.nan, math.nan)
    pa, pb = hits_a / n_a, hits_b / n_b
    la, ua = wilson_interval(hits_a, n_a, z)
    lb, ub = wilson_interval(hits_b, n_b, z)
    d = pa - pb
    low = d - math.sqrt((pa - la) ** 2 + (ub - pb) ** 2)
    high = d + math.sqrt((ua - pa) ** 2 + (pb - lb) ** 2)
    return (d, max(-1.0, low), min(1.0, high))
