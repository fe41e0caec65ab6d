"""Knowledge distillation from the best model or ensemble of a search so far (Hinton et al. 2015;
Model Search's ``meta/distillation.py``).

A trial trains on ``label loss + weight * soft term``, the soft term being

- ``kl``: ``T^2 KL(softmax(t / T) || softmax(s / T))``, averaged over the batch, with ``s`` the
  student's and ``t`` the teacher's logits at temperature ``T`` (the ``T^2`` keeps the gradient's
  scale as ``T`` changes; its gradient in ``s`` is ``T (softmax(s / T) - softmax(t / T)) / B``);
- ``mse``: the mean squared difference of the logits (Model Search's ``MSE_LOGITS``).

The teacher is the completed trial, single network or ensemble, with the best validation
objective among those numbered before the student. An ensemble's logits are the log of its
averaged probabilities (``kl``) or its members' mean logits (``mse``). Without augmentation
(``crop_padding = 0`` and no ``flip``) the teacher's logits of every training image are computed
once per trial; otherwise on the fly, for each augmented batch, since a shifted or mirrored image
gets other teacher outputs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from uqbench.search.space import SearchSpace
from uqbench.search.store import TrialRow

LOSSES = ("kl", "mse")
PRECOMPUTE_BATCH = 500


def soft_term(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, loss: str, temperature: float
) -> torch.Tensor:
    """The soft-label term of a batch (see the module docstring), a scalar in float32."""
    if loss not in LOSSES:
        raise ValueError(f"distillation loss must be one of {', '.join(LOSSES)}, got {loss!r}")
    s, t = student_logits.float(), teacher_logits.float().detach()
    if loss == "mse":
        return F.mse_loss(s, t)
    target = F.log_softmax(t / temperature, dim=-1)
    kl = F.kl_div(F.log_softmax(s / temperature, dim=-1), target, log_target=True, reduction="none")
    return temperature**2 * kl.sum(dim=-1).mean()


def best_teacher(rows: Sequence[TrialRow], before: int, space: SearchSpace) -> TrialRow | None:
    """The completed trial (network or ensemble) numbered below ``before`` with the best
    objective, or ``None``."""
    done = [
        t
        for t in rows
        if t.id < before
        and t.status == "done"
        and t.objective is not None
        and math.isfinite(t.objective)
        and t.checkpoint
    ]
    return min(done, key=lambda t: (space.sign * t.objective, t.id), default=None)


class Teacher:
    """The teacher's logits for training batches: looked up when computed once for every
    training image, else computed from the batch the student sees."""

    def __init__(
        self,
        networks: Sequence[nn.Module],
        loss: str,
        runtime: Any,
        images: torch.Tensor | None = None,
        norm: tuple[tuple[float, ...], tuple[float, ...]] | None = None,
    ) -> None:
        self.networks = [n.eval() for n in networks]
        self.loss, self.runtime = loss, runtime
        self.table: torch.Tensor | None = None
        if images is not None and norm is not None:
            from uqbench.training.classifier import prepare_batch

            parts = []
            for start in range(0, images.shape[0], PRECOMPUTE_BATCH):
                batch = images[start : start + PRECOMPUTE_BATCH]
                parts.append(self.logits(prepare_batch(batch, *norm, runtime)))
            self.table = torch.cat(parts)

    @property
    def precomputed(self) -> bool:
        return self.table is not None

    @torch.no_grad()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The teacher's logits for network inputs ``x`` (float32)."""
        outputs = torch.stack([n(x).float() for n in self.networks])
        if len(self.networks) == 1:
            return outputs[0]
        if self.loss == "mse":
            return outputs.mean(dim=0)
        return torch.logsumexp(outputs.log_softmax(dim=-1), dim=0) - math.log(len(self.networks))

    def __call__(self, x: torch.Tensor, index: torch.Tensor | None) -> torch.Tensor:
        if self.table is not None and index is not None:
            return self.table[index]
        return self.logits(x)


def batch_loss(
    teacher: Teacher, weight: float, loss: str, temperature: float
) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
    """``weight`` times the soft term against ``teacher``, for ``fit(batch_loss=...)``."""
    if not 0 <= weight <= 1:
        raise ValueError(f"the distillation weight must be in [0, 1], got {weight}")

    def term(x: torch.Tensor, logits: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return weight * soft_term(logits, teacher(x, index), loss, temperature)

    return term


def load_teacher(run_dir: Any, space: SearchSpace, recipe: Any, data: Any, runtime: Any) -> Teacher:
    """The teacher saved in a trial's run directory, its training-set logits computed once
    when the recipe does not augment."""
    from uqbench.training.predictors import load_networks

    networks, _ = load_networks(run_dir, runtime.device)
    static = recipe.crop_padding == 0 and not recipe.flip
    return Teacher(
        networks,
        space.distill_loss,
        runtime,
        images=data.x_train if static else None,
        norm=(data.mean, data.std) if static else None,
    )
