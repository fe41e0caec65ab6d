"""Learning-rate schedules against hand-computed values."""

from __future__ import annotations

import math

import pytest

from uqbench.training.schedules import lr_factor


def test_step_schedule_with_warmup_matches_uncertainty_baselines():
    # 10 steps per epoch, 200 epochs, one warm-up epoch, x0.2 at epochs 60/120/160.
    factor = lr_factor("step", 2000, warmup_steps=10, milestones=[600, 1200, 1600])
    assert factor(0) == pytest.approx(0.1)
    assert factor(9) == pytest.approx(1.0)
    assert factor(10) == 1.0 and factor(599) == 1.0
    assert factor(600) == pytest.approx(0.2)
    assert factor(1200) == pytest.approx(0.04)
    assert factor(1999) == pytest.approx(0.008)


def test_onecycle_rises_then_falls_linearly_to_zero():
    factor = lr_factor("onecycle", 100, warmup_steps=20)
    assert factor(0) == pytest.approx(1 / 20)
    assert factor(19) == pytest.approx(1.0)
    assert factor(20) == pytest.approx(1.0)
    assert factor(60) == pytest.approx(0.5)
    assert factor(100) == pytest.approx(0.0)


def test_cosine_halfway_is_one_half():
    factor = lr_factor("cosine", 100)
    assert factor(0) == pytest.approx(1.0)
    assert factor(50) == pytest.approx(0.5)
    assert factor(25) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="unknown schedule"):
        lr_factor("linear", 10)
    with pytest.raises(ValueError, match="warmup_steps"):
        lr_factor("step", 10, warmup_steps=11)
    with pytest.raises(ValueError, match="at least one step"):
        lr_factor("cosine", 0)
