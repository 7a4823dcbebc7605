"""χ² tests for experiment health: bucket uniformity, sample-ratio mismatch, layer independence.

Pure Python (no scipy): the survival function is the regularised upper incomplete gamma
Q(ν/2, x/2), computed by its power series below the mean and Lentz's continued fraction above.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

_EPSILON = 1e-15
_MAX_ITERATIONS = 100_000


class ChiSquareResult(NamedTuple):
    """A χ² statistic, its degrees of freedom and the p-value P(χ²_dof ≥ statistic)."""

    statistic: float
    degrees_of_freedom: int
    p_value: float


def chi_square_survival(statistic: float, degrees_of_freedom: int) -> float:
    """P(X ≥ statistic) for X ~ χ² with ``degrees_of_freedom`` (≥ 1)."""
    if degrees_of_freedom < 1:
        raise ValueError(f"degrees_of_freedom must be ≥ 1, got {degrees_of_freedom}")
    return regularized_upper_gamma(degrees_of_freedom / 2.0, statistic / 2.0)


def regularized_upper_gamma(a: float, x: float) -> float:
    """Q(a, x) = Γ(a, x) / Γ(a) for a > 0, x ≥ 0."""
    if a <= 0:
        raise ValueError(f"a must be positive, got {a}")
    if x <= 0:
        return 1.0
    log_prefix = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1.0:
        # Series for the lower part P(a, x); it converges fast below the mean.
        term = total = 1.0 / a
        for n in range(1, _MAX_ITERATIONS):
            term *= x / (a + n)
            total += term
            if term < total * _EPSILON:
                return max(0.0, 1.0 - total * math.exp(log_prefix))
        raise ArithmeticError(f"incomplete gamma series did not converge for a={a}, x={x}")
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    fraction = d
    for i in range(1, _MAX_ITERATIONS):
        numerator = -i * (i - a)
        b += 2.0
        d = numerator * d + b
        d = tiny if abs(d) < tiny else d
        c = b + numerator / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        fraction *= delta
        if abs(delta - 1.0) < _EPSILON:
            return min(1.0, math.exp(log_prefix) * fraction)
    raise ArithmeticError(f"incomplete gamma continued fraction did not converge for a={a}, x={x}")


def goodness_of_fit(
    observed: Sequence[int], expected_fractions: Sequence[float]
) -> ChiSquareResult:
    """Pearson χ² of counts against expected shares (normalised; zero shares must see zero counts).

    For a sample-ratio-mismatch check pass the users seen per variant and the variants' traffic.
    """
    if len(observed) != len(expected_fractions) or len(observed) < 2:
        raise ValueError("need at least two categories, as many counts as expected fractions")
    total_share = float(sum(expected_fractions))
    total = float(sum(observed))
    statistic = 0.0
    categories = 0
    for count, share in zip(observed, expected_fractions, strict=True):
        if share <= 0:
            if count:
                return ChiSquareResult(math.inf, len(observed) - 1, 0.0)
            continue
        expected = total * share / total_share
        statistic += (count - expected) ** 2 / expected
        categories += 1
    dof = max(categories - 1, 1)
    return ChiSquareResult(statistic, dof, chi_square_survival(statistic, dof))


def independence(table: Sequence[Sequence[int]]) -> ChiSquareResult:
    """Pearson χ² test that rows and columns of a contingency table are independent."""
    row_totals = [float(sum(row)) for row in table]
    column_totals = [float(sum(column)) for column in zip(*table, strict=True)]
    total = sum(row_totals)
    rows = [i for i, value in enumerate(row_totals) if value > 0]
    columns = [j for j, value in enumerate(column_totals) if value > 0]
    if len(rows) < 2 or len(columns) < 2:
        raise ValueError("independence needs at least two non-empty rows and columns")
    statistic = 0.0
    for i in rows:
        for j in columns:
            expected = row_totals[i] * column_totals[j] / total
            statistic += (table[i][j] - expected) ** 2 / expected
    dof = (len(rows) - 1) * (len(columns) - 1)
    return ChiSquareResult(statistic, dof, chi_square_survival(statistic, dof))
