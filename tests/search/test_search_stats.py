"""The statistics of benchmarks/search.py against hand-computed values: best-so-far curves,
censored trials to target, and bootstrap intervals of paired differences and ratios."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import search_stats as stats


def test_best_so_far_skips_failed_trials_and_trials_to_target_is_censored_at_the_budget():
    curve = stats.best_so_far([None, 0.5, math.nan, 0.7, 0.2, None])
    assert curve == [math.inf, 0.5, 0.5, 0.5, 0.2, 0.2]
    assert stats.trials_to_target(curve, 0.5) == (2, False)
    assert stats.trials_to_target(curve, 0.2) == (5, False)
    assert stats.trials_to_target(curve, 0.1) == (6, True)
    assert stats.seconds_to_target(curve, [1, 2, 3, 4, 5, 6], 0.2) == 15
    assert stats.seconds_to_target(curve, [1, 2, 3, 4, 5, 6], 0.1) == 21


def test_bootstrap_intervals_hold_the_median_and_shrink_with_more_seeds():
    assert stats.bootstrap_median([3.0] * 5) == (3.0, 3.0, 3.0)
    rng = np.random.default_rng(0)
    few, many = rng.normal(1.0, 1.0, 10), rng.normal(1.0, 1.0, 400)
    for values in (few, many):
        middle, low, high = stats.bootstrap_median(values)
        assert middle == pytest.approx(np.median(values)) and low <= middle <= high
    assert np.ptp(stats.bootstrap_median(many)[1:]) < np.ptp(stats.bootstrap_median(few)[1:])
    # paired: a constant shift between arms is found exactly, whatever the seed-to-seed spread
    base = rng.normal(0, 5, 12)
    assert stats.paired_difference(base - 2, base) == pytest.approx((-2, -2, -2))
    assert stats.ratio_of_medians([5, 10, 15], [10, 20, 30])[0] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="as many"):
        stats.paired_difference([1, 2], [1])
