"""Exact coverage of the proportion intervals, on the sizes and rates safety runs have.

Coverage is the probability that the interval contains the true rate p. For n prompts
it is exact: the sum, over every count k = 0..n, of P(K = k) for K ~ Binomial(n, p),
counting only the k whose interval contains p. No simulation, so no noise.

Compared: the harness's interval (Clopper-Pearson, harness.scoring.stats), Wilson's
and Jeffreys' intervals, and the percentile bootstrap the harness used before (2,000
resamples, a fixed seed, written out below since the harness no longer has it).

    uv run python benchmarks/coverage.py            # the table of BENCHMARKS.md
    uv run python benchmarks/coverage.py --json     # the same figures as JSON
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from statistics import NormalDist

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.scoring.stats import beta_cdf, clopper_pearson, wilson  # noqa: E402

NS = (10, 20, 60, 200, 1000)
PS = (0.5, 0.8, 0.9, 0.95, 0.99)
CONFIDENCE = 0.95
Interval = Callable[[int, int], tuple[float, float]]


def _pmf(k: int, n: int, p: float) -> float:
    return math.exp(math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
                    + k * math.log(p) + (n - k) * math.log1p(-p))


def _beta_ppf(q: float, a: float, b: float) -> float:
    lo, hi = 0.0, 1.0
    for _ in range(80):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if beta_cdf(mid, a, b) >= q else (mid, hi)
    return (lo + hi) / 2


def jeffreys(k: int, n: int) -> tuple[float, float]:
    """The equal-tailed Jeffreys interval (Brown, Cai & DasGupta 2001), ends fixed at 0 and 1 for k = 0, n."""
    a = (1 - CONFIDENCE) / 2
    lo = 0.0 if k == 0 else _beta_ppf(a, k + 0.5, n - k + 0.5)
    hi = 1.0 if k == n else _beta_ppf(1 - a, k + 0.5, n - k + 0.5)
    return lo, hi


def old_bootstrap(k: int, n: int) -> tuple[float, float]:
    """The pre-0.2 interval: a percentile bootstrap of n Bernoulli outcomes (a Binomial(n, k/n)
    draw per resample), 2,000 resamples, seeded as the runs were."""
    import numpy as np

    rng = np.random.default_rng(20261123 + 1000 * n + k)
    draws = rng.binomial(n, k / n, size=2000) / n
    lo, hi = np.quantile(draws, [(1 - CONFIDENCE) / 2, 1 - (1 - CONFIDENCE) / 2])
    return float(lo), float(hi)


METHODS: dict[str, Interval] = {
    "clopper-pearson (harness)": lambda k, n: clopper_pearson(k, n, CONFIDENCE),
    "wilson": lambda k, n: wilson(k, n, CONFIDENCE),
    "jeffreys": jeffreys,
    "percentile bootstrap (before)": old_bootstrap,
}


def coverage(method: Interval, n: int, p: float) -> float:
    cache = {k: method(k, n) for k in range(n + 1)}
    return sum(_pmf(k, n, p) for k in range(n + 1) if cache[k][0] <= p <= cache[k][1])


def mean_width(method: Interval, n: int, p: float) -> float:
    return sum(_pmf(k, n, p) * (lambda iv: iv[1] - iv[0])(method(k, n)) for k in range(n + 1))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    out: dict[str, dict[str, float]] = {}
    for name, method in METHODS.items():
        out[name] = {f"n={n},p={p}": round(coverage(method, n, p), 4) for n in NS for p in PS}
    widths = {f"n={n},p={p}": round(mean_width(METHODS["clopper-pearson (harness)"], n, p), 4) for n in NS for p in PS}
    if args.json:
        print(json.dumps({"coverage": out, "clopper_pearson_mean_width": widths, "z": NormalDist().inv_cdf(0.975)}, indent=1))
        return 0
    print(f"exact coverage of nominal {CONFIDENCE:.0%} intervals (min over the grid last)\n")
    print("| method | " + " | ".join(f"n={n}" for n in NS) + " | min |")
    print("|---|" + "---|" * (len(NS) + 1))
    for name, cov in out.items():
        cells = [" / ".join(f"{100 * cov[f'n={n},p={p}']:.0f}" for p in PS) for n in NS]
        print(f"| {name} | " + " | ".join(cells) + f" | {100 * min(cov.values()):.1f}% |")
    print(f"\neach cell: coverage in % at p = {' / '.join(str(p) for p in PS)}")
    print("\nClopper-Pearson mean width (percentage points) at the same cells:")
    for n in NS:
        print(f"  n={n}: " + " / ".join(f"{100 * widths[f'n={n},p={p}']:.1f}" for p in PS))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
