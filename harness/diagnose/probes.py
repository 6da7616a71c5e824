"""The arithmetic of a diagnosis: directions, leave-one-out probes, AUROC and its interval, cosines.

Pure numpy, no model and no randomness, so every number a diagnosis signs can be
recomputed from the activations alone and is the same on every run. Activations arrive
one prompt at a time and only per-group sums are kept (:class:`GroupSums`), so memory is
bounded by the number of groups x layers x hidden size, never by the number of prompts:
the leave-one-out score of a prompt needs only its own vector and its group's sum.

Definitions (docs/diagnosis.md has them with their caveats):

- the *direction* of a language at a layer is ``mean(harmful) - mean(harmless)`` of the
  activations at the last prompt token (difference in means, Arditi et al. 2024);
- a prompt's *leave-one-out score* is its projection on the direction computed without it,
  measured from the midpoint of the two class means (also without it): positive means it
  sits on the harmful side;
- ``probe_auroc`` is the Mann-Whitney AUROC of those scores, harmful against harmless;
- its interval is the exact binomial (Clopper-Pearson) interval at min(n_harmful,
  n_harmless) trials: Birnbaum and McCarty (1958) bound the AUROC estimate's variance by
  theta(1 - theta) / min(n_harmful, n_harmless), the variance of a proportion from that many
  trials, so this interval is conservative and never of width zero at AUROC 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from harness.scoring.stats import clopper_pearson

Vector = NDArray[np.float64]


@dataclass
class GroupSums:
    """Running sums of activations per group and layer: what a direction needs, kept in float64."""

    layers: int
    hidden: int
    sums: dict[tuple[str, ...], Vector] = field(default_factory=dict)
    counts: dict[tuple[str, ...], int] = field(default_factory=dict)

    def add(self, key: tuple[str, ...], activations: Vector) -> None:
        """Add one prompt's activations (shape ``(layers, hidden)``) to group ``key``."""
        if activations.shape != (self.layers, self.hidden):
            raise ValueError(f"activations of shape {activations.shape}, expected {(self.layers, self.hidden)}")
        if key not in self.sums:
            self.sums[key] = np.zeros((self.layers, self.hidden), dtype=np.float64)
            self.counts[key] = 0
        self.sums[key] += activations
        self.counts[key] += 1

    def total(self, keys: Sequence[tuple[str, ...]]) -> tuple[Vector, int]:
        """The sum and count over several groups (e.g. every harmful prompt of a language)."""
        s = np.zeros((self.layers, self.hidden), dtype=np.float64)
        n = 0
        for k in keys:
            if k in self.sums:
                s = s + self.sums[k]
                n += self.counts[k]
        return s, n


def direction(sum_pos: Vector, n_pos: int, sum_neg: Vector, n_neg: int) -> Vector | None:
    """``mean(pos) - mean(neg)``; None when either side is empty."""
    if n_pos <= 0 or n_neg <= 0:
        return None
    return np.asarray(sum_pos / n_pos - sum_neg / n_neg, dtype=np.float64)


def loo_score(x: Vector, positive: bool, sum_pos: Vector, n_pos: int, sum_neg: Vector, n_neg: int) -> float | None:
    """The leave-one-out score of ``x`` (one layer's activation): its projection on the unit
    direction fitted without it, from the midpoint of the class means fitted without it.
    None when leaving it out empties its class, or the direction is zero."""
    if positive:
        sum_pos, n_pos = sum_pos - x, n_pos - 1
    else:
        sum_neg, n_neg = sum_neg - x, n_neg - 1
    if n_pos <= 0 or n_neg <= 0:
        return None
    mu_pos, mu_neg = sum_pos / n_pos, sum_neg / n_neg
    return projection(x, mu_pos, mu_neg)


def projection(x: Vector, mu_pos: Vector, mu_neg: Vector) -> float | None:
    """``(x - midpoint) . unit(mu_pos - mu_neg)``; None for a zero direction."""
    d = mu_pos - mu_neg
    norm = float(np.linalg.norm(d))
    if norm == 0.0 or not math.isfinite(norm):
        return None
    return float(np.dot(x - (mu_pos + mu_neg) / 2.0, d) / norm)


def auroc(pos: Sequence[float], neg: Sequence[float]) -> float | None:
    """Mann-Whitney AUROC: the share of (positive, negative) pairs the scores order rightly,
    ties counting one half. None when either side is empty."""
    if not pos or not neg:
        return None
    p = np.asarray(pos, dtype=np.float64)[:, None]
    n = np.asarray(neg, dtype=np.float64)[None, :]
    wins = float(np.sum(p > n)) + 0.5 * float(np.sum(p == n))
    return wins / (len(pos) * len(neg))


def auroc_interval(value: float, n_pos: int, n_neg: int, confidence: float = 0.95) -> tuple[float, float]:
    """A conservative interval for an AUROC from ``n_pos`` and ``n_neg`` scores.

    Birnbaum-McCarty: the estimate's variance is at most theta(1 - theta) / m with
    m = min(n_pos, n_neg), which is the variance of a proportion from m trials; so take the
    exact (Clopper-Pearson) interval of a proportion with m trials, the count rounded
    outwards (down for the lower end, up for the upper end). At 10 against 10 an AUROC of
    1.0 gets [0.69, 1.0], never the zero-width interval a plug-in variance gives.
    """
    m = min(n_pos, n_neg)
    if m <= 0:
        raise ValueError("an AUROC interval needs at least one score on each side")
    k = value * m
    low, _ = clopper_pearson(max(0, math.floor(k + 1e-9)), m, confidence)
    _, high = clopper_pearson(min(m, math.ceil(k - 1e-9)), m, confidence)
    return low, high


def cosine(a: Vector | None, b: Vector | None) -> float | None:
    """Cosine similarity; None when either vector is missing or zero."""
    if a is None or b is None:
        return None
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 or nb == 0.0:
        return None
    return float(np.dot(a, b) / (na * nb))


def unit(v: Vector) -> Vector:
    """``v / |v|`` (``v`` must not be zero)."""
    norm = float(np.linalg.norm(v))
    if norm == 0.0:
        raise ValueError("a zero vector has no direction")
    return np.asarray(v / norm, dtype=np.float64)


def rounded(x: float | None, digits: int = 6) -> float | None:
    """A number as the record states it (six decimals, as the run record's metrics); None stays None."""
    if x is None or not math.isfinite(x):
        return None
    return round(x, digits)
