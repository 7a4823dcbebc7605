"""The pure-Python χ² survival function matches closed forms and table values."""

from __future__ import annotations

import math

import pytest

from serving.experiments import chi_square_survival, goodness_of_fit, independence


@pytest.mark.parametrize("statistic", [0.01, 0.5, 1.0, 3.841458820694124, 10.0, 30.0, 80.0])
def test_survival_matches_closed_forms_for_one_and_two_degrees(statistic: float) -> None:
    # χ²₁: erfc(√(x/2)); χ²₂: exp(−x/2).
    assert chi_square_survival(statistic, 1) == pytest.approx(
        math.erfc(math.sqrt(statistic / 2)), rel=1e-10
    )
    assert chi_square_survival(statistic, 2) == pytest.approx(math.exp(-statistic / 2), rel=1e-10)


def test_survival_matches_table_values_and_the_large_dof_approximation() -> None:
    assert chi_square_survival(3.841458820694124, 1) == pytest.approx(0.05, rel=1e-9)
    assert chi_square_survival(18.307038053275146, 10) == pytest.approx(0.05, rel=1e-9)
    assert chi_square_survival(6.6348966010212145, 1) == pytest.approx(0.01, rel=1e-9)
    assert chi_square_survival(0.0, 5) == 1.0
    dof = 9999
    for statistic in (9700.0, 9999.0, 10232.0, 10400.0):
        # Wilson–Hilferty: (X/ν)^(1/3) ≈ Normal(1 − 2/(9ν), 2/(9ν)); very accurate at ν ≈ 10⁴.
        z = ((statistic / dof) ** (1 / 3) - (1 - 2 / (9 * dof))) / math.sqrt(2 / (9 * dof))
        assert chi_square_survival(statistic, dof) == pytest.approx(
            0.5 * math.erfc(z / math.sqrt(2)), abs=2e-4
        )
    values = [chi_square_survival(x, 7) for x in range(0, 60, 3)]
    assert values == sorted(values, reverse=True)


def test_goodness_of_fit_and_independence_statistics() -> None:
    result = goodness_of_fit([10, 30], [0.5, 0.5])
    assert result.statistic == pytest.approx(10.0) and result.degrees_of_freedom == 1
    assert result.p_value == pytest.approx(math.erfc(math.sqrt(5.0)), rel=1e-10)
    assert goodness_of_fit([5, 1], [1.0, 0.0]).p_value == 0.0
    # 2×2 table: χ² = N(ad − bc)² / (row and column totals).
    a, b, c, d = 30, 10, 20, 40
    expected = 100 * (a * d - b * c) ** 2 / ((a + b) * (c + d) * (a + c) * (b + d))
    result = independence([[a, b], [c, d]])
    assert result.statistic == pytest.approx(expected) and result.degrees_of_freedom == 1
    assert independence([[50, 50], [50, 50]]).p_value == pytest.approx(1.0)
    with pytest.raises(ValueError):
        independence([[1, 2]])
