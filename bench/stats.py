"""Summaries of repeated samples."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def percentile(samples: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile: the smallest sample that at least
    `fraction` of all samples do not exceed."""
    if not samples:
        raise ValueError("a percentile of no samples is undefined")
    ordered = sorted(samples)
    rank = max(math.ceil(fraction * len(ordered)), 1)
    return ordered[rank - 1]


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples)


def rounded(value: float, digits: int = 3) -> float:
    return round(value, digits)


def p50_p99(samples: Sequence[float]) -> dict[str, float]:
    return {
        "p50": rounded(median(samples)),
        "p99": rounded(percentile(samples, 0.99)),
    }
