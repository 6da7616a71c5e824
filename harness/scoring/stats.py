"""The statistics behind every interval and test the harness prints: one module, so the
same data gets the same interval in a run, a diff, a claim check, a report and a judge
validation.

Choices (docs/statistics.md has the reasons and the coverage figures):

- **A proportion**: the Clopper-Pearson ("exact") interval. Safety groups are small
  (10-60 prompts per language) and rates extreme (90-99% refusals), exactly where the
  percentile bootstrap covers the true rate 10-64% of the time and Wilson's interval
  dips to 91%; Clopper-Pearson never covers less than its nominal level.
- **Two runs on the same prompts, or a language against the reference language on the
  same prompts**: the exact McNemar test on the discordant pairs, and Newcombe's hybrid
  score interval for the paired difference (method 10 of Newcombe 1998).
- **Two runs without shared prompts**: Newcombe's hybrid score interval for two
  independent proportions, labelled unpaired; the test is the same interval at the
  family's level (no McNemar: there are no pairs).
- **Many groups at once**: Holm's step-down adjustment of the p-values (family-wise
  error), because a release gate should not cry wolf in one of nine languages by chance.

Nothing here is random, so nothing here takes a seed; the bootstrap the harness used
before 0.2 survives only in ``benchmarks/coverage.py`` to show why it was replaced.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Final, Literal

CI_METHOD: Final = "clopper-pearson"
"""The method of every proportion's interval, as written in records and ``--json``."""
LEGACY_CI_METHOD: Final = "percentile-bootstrap"
"""The method of intervals in records written before ``ci_method`` existed."""
PAIRED_TEST: Final = "mcnemar-exact"
PAIRED_INTERVAL: Final = "newcombe-paired-score"
UNPAIRED_TEST: Final = "newcombe-unpaired-score"
ADJUSTMENT: Final = "holm"
ALPHA: Final = 0.05

Direction = Literal["higher_is_safer", "lower_is_safer"]


# ----------------------------------------------------------------- the binomial


def _log_pmf(k: int, n: int, p: float) -> float:
    if p <= 0.0:
        return 0.0 if k == 0 else -math.inf
    if p >= 1.0:
        return 0.0 if k == n else -math.inf
    return (math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
            + k * math.log(p) + (n - k) * math.log1p(-p))


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz's method)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 100_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        step = d * c
        h *= step
        if abs(step - 1.0) < 1e-15:
            break
    return h


def beta_cdf(x: float, a: float, b: float) -> float:
    """The regularized incomplete beta function I_x(a, b), for a, b > 0."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p), in O(1) whatever n is (through the beta function)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    return 1.0 - beta_cdf(p, k + 1, n - k)


def _bisect(f: Callable[[float], bool], lo: float = 0.0, hi: float = 1.0) -> float:
    """The point in [lo, hi] where the monotone predicate ``f`` turns true."""
    for _ in range(80):
        mid = (lo + hi) / 2
        if f(mid):
            hi = mid
        else:
            lo = mid
    return (lo + hi) / 2


def binomial_test(k: int, n: int, p: float) -> float:
    """Exact two-sided binomial test of ``k`` successes in ``n`` against rate ``p``.

    The p-value sums the probabilities of every outcome no more likely than the one
    observed (the "minlike" rule of R's binom.test and SciPy's binomtest), with the
    same relative tolerance for ties.
    """
    if not 0 <= k <= n:
        raise ValueError(f"k={k} outside 0..{n}")
    if n == 0:
        return 1.0
    d = _log_pmf(k, n, p)
    if d == -math.inf:
        return 0.0
    limit = d + math.log1p(1e-7)
    total = sum(math.exp(lp) for i in range(n + 1) if (lp := _log_pmf(i, n, p)) <= limit)
    return min(1.0, total)


# ----------------------------------------------------------------- one proportion


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The exact (Clopper-Pearson) interval: the beta quantiles B(a/2; k, n-k+1) and
    B(1-a/2; k+1, n-k), found by bisection on the beta CDF (no SciPy at run time)."""
    _check(k, n)
    if n == 0:
        return (math.nan, math.nan)
    a = (1.0 - confidence) / 2
    lower = 0.0 if k == 0 else _bisect(lambda q: beta_cdf(q, k, n - k + 1) >= a)
    upper = 1.0 if k == n else _bisect(lambda q: beta_cdf(q, k + 1, n - k) >= 1.0 - a)
    return (lower, upper)


def wilson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson's score interval; the building block of Newcombe's difference intervals."""
    _check(k, n)
    if n == 0:
        return (math.nan, math.nan)
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def proportion_ci(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The interval of every proportion the harness prints (method :data:`CI_METHOD`)."""
    return clopper_pearson(k, n, confidence)


def _check(k: int, n: int) -> None:
    if n < 0 or not 0 <= k <= max(n, 0):
        raise ValueError(f"k={k} outside 0..{n}")


# ----------------------------------------------------------------- two proportions


@dataclass(frozen=True, slots=True)
class Difference:
    """``b - a`` for two proportions, with its interval and test.

    ``paired`` says which family produced it: McNemar + Newcombe's paired interval
    (the same prompts on both sides) or Newcombe's unpaired interval (different prompts).
    """

    a: float
    b: float
    delta: float
    ci_low: float
    ci_high: float
    p_value: float
    paired: bool
    n_a: int
    n_b: int
    discordant: tuple[int, int] | None = None
    """Paired only: (pairs a-success b-failure, pairs a-failure b-success)."""

    @property
    def method(self) -> str:
        return f"{PAIRED_TEST}+{PAIRED_INTERVAL}" if self.paired else UNPAIRED_TEST


def mcnemar_exact(n_ab: int, n_ba: int) -> float:
    """Exact McNemar test: under "no difference" each discordant pair goes either way with
    probability 1/2, so the p-value is a two-sided binomial test on the discordant pairs."""
    m = n_ab + n_ba
    if m == 0:
        return 1.0
    return min(1.0, 2.0 * binomial_cdf(min(n_ab, n_ba), m, 0.5))


def paired_difference(both: int, only_a: int, only_b: int, neither: int, confidence: float = 0.95) -> Difference:
    """Rate of b minus rate of a over pairs, from the 2x2 table of pair outcomes.

    The interval is Newcombe's hybrid score interval for paired data (1998, method 10):
    Wilson intervals of each margin, combined with the correlation of the pairs, so it
    stays inside [-1, 1] and is not degenerate when every pair agrees (the case that
    made the bootstrap print ``[-100.0, -100.0]``).
    """
    n = both + only_a + only_b + neither
    if n == 0:
        return Difference(math.nan, math.nan, math.nan, math.nan, math.nan, 1.0, True, 0, 0, (0, 0))
    k_a, k_b = both + only_a, both + only_b
    pa, pb = k_a / n, k_b / n
    la, ua = wilson(k_a, n, confidence)
    lb, ub = wilson(k_b, n, confidence)
    denom = (both + only_a) * (only_b + neither) * (both + only_b) * (only_a + neither)
    phi = 0.0 if denom == 0 else (both * neither - only_a * only_b) / math.sqrt(denom)
    delta = pb - pa
    dl = math.sqrt(max(0.0, (pb - lb) ** 2 - 2 * phi * (pb - lb) * (ua - pa) + (ua - pa) ** 2))
    du = math.sqrt(max(0.0, (ub - pb) ** 2 - 2 * phi * (ub - pb) * (pa - la) + (pa - la) ** 2))
    return Difference(
        a=pa, b=pb, delta=delta, ci_low=max(-1.0, delta - dl), ci_high=min(1.0, delta + du),
        p_value=mcnemar_exact(only_a, only_b), paired=True, n_a=n, n_b=n, discordant=(only_a, only_b),
    )


def unpaired_difference(k_a: int, n_a: int, k_b: int, n_b: int, confidence: float = 0.95) -> Difference:
    """Rate of b minus rate of a for two independent samples: Newcombe's hybrid score
    interval (1998, method 10). The p-value is the smallest level at which that interval
    excludes 0, found by bisection, so the test and the interval never disagree."""
    if n_a == 0 or n_b == 0:
        return Difference(math.nan, math.nan, math.nan, math.nan, math.nan, 1.0, False, n_a, n_b)

    def interval(conf: float) -> tuple[float, float]:
        pa, pb = k_a / n_a, k_b / n_b
        la, ua = wilson(k_a, n_a, conf)
        lb, ub = wilson(k_b, n_b, conf)
        d = pb - pa
        return (d - math.sqrt((pb - lb) ** 2 + (ua - pa) ** 2), d + math.sqrt((ub - pb) ** 2 + (pa - la) ** 2))

    lo, hi = interval(confidence)
    if k_a * n_b == k_b * n_a:
        p_value = 1.0
    else:
        # The interval at level 1 - p just touches 0; it shrinks as the level falls.
        p_value = _bisect(lambda alpha: not (lambda iv: iv[0] <= 0.0 <= iv[1])(interval(1.0 - alpha)), 1e-12, 1.0)
    return Difference(
        a=k_a / n_a, b=k_b / n_b, delta=k_b / n_b - k_a / n_a, ci_low=max(-1.0, lo), ci_high=min(1.0, hi),
        p_value=p_value, paired=False, n_a=n_a, n_b=n_b,
    )


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error rate), in the input's order.

    A group is significant at level a when its adjusted p-value is below a: the same
    decisions as Holm's procedure, without a level baked in.
    """
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    m = len(p_values)
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


# ----------------------------------------------------------------- the gate


def min_detectable_change(
    expected: float, tolerance: float, n: int, *, direction: Direction = "higher_is_safer",
    confidence: float = 0.95, power: float = 0.8,
) -> float | None:
    """The smallest change for the worse (a drop in a rate where higher is safer, a rise
    where lower is safer) that the gate fails with probability ``power`` at ``n`` prompts.

    Exact, for the gate's own rule: FAIL needs the whole Clopper-Pearson interval beyond
    ``expected ± tolerance``; this finds the largest count that does that, then the true
    rate at which such a count (or a worse one) comes up with probability ``power``.
    None: no outcome at this ``n`` can fail the gate in that direction (the package is
    too small to gate on).
    """
    if n <= 0:
        return None
    if direction == "lower_is_safer":  # mirror: a rise in p is a drop in 1 - p
        return min_detectable_change(1.0 - expected, tolerance, n, confidence=confidence, power=power)
    edge = expected - tolerance
    if edge <= 0.0:
        return None
    # the largest k whose upper bound lies below the band (upper bounds rise with k)
    worst = -1
    lo, hi = 0, n
    while lo <= hi:
        mid = (lo + hi) // 2
        if clopper_pearson(mid, n, confidence)[1] < edge:
            worst, lo = mid, mid + 1
        else:
            hi = mid - 1
    if worst < 0:
        return None
    # P(K <= worst) falls as p rises: find p with P(K <= worst) = power
    p = _bisect(lambda q: binomial_cdf(worst, n, q) <= power)
    return max(0.0, expected - p)
