"""Learning-rate schedules as multipliers of the base rate, one value per optimiser step.

Each schedule is a plain function ``step -> factor`` for ``torch.optim.lr_scheduler.LambdaLR``:

- ``step``: linear warm-up from 0 over ``warmup_steps``, then the base rate multiplied by
  ``decay_factor`` at each milestone (Uncertainty Baselines' ``WarmUpPiecewiseConstantSchedule``:
  x0.2 at epochs 60/120/160 of 200 after one warm-up epoch);
- ``onecycle``: linear warm-up to the peak over ``warmup_steps``, then linear decay to 0 at the end
  (the triangular schedule of the fast CIFAR-10 training recipes);
- ``cosine``: linear warm-up, then half a cosine down to 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

SCHEDULES = ("step", "onecycle", "cosine")


def lr_factor(
    schedule: str,
    total_steps: int,
    warmup_steps: int = 0,
    milestones: Sequence[int] = (),
    decay_factor: float = 0.2,
) -> Callable[[int], float]:
    """The multiplier of the base learning rate at optimiser step ``step`` (0-based).

    ``milestones`` (``step`` schedule only) are the steps at which the rate is multiplied by
    ``decay_factor``. Raises ``ValueError`` naming the bad setting.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")
    if total_steps < 1:
        raise ValueError(f"a schedule needs at least one step, got total_steps={total_steps}")
    if not 0 <= warmup_steps <= total_steps:
        raise ValueError(f"warmup_steps must be in [0, {total_steps}], got {warmup_steps}")
    if not decay_factor > 0:
        raise ValueError(f"decay_factor must be positive, got {decay_factor}")
    bounds = sorted(int(m) for m in milestones)

    def warmup(step: int) -> float:
        return (step + 1) / warmup_steps

    def factor(step: int) -> float:
        if step < warmup_steps:
            return warmup(step)
        if schedule == "step":
            return decay_factor ** sum(step >= m for m in bounds)
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        progress = min(1.0, progress)
        if schedule == "onecycle":
            return 1.0 - progress
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor
