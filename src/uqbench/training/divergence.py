"""One rule, shared by every baseline and search trial, for when training has diverged.

A run fails when an epoch's mean training loss is not finite, or exceeds
``max(10 * ref, ref + 10)`` for the same model's reference loss ``ref`` (the ``+ 10`` keeps
the rule meaningful for losses near or below zero, such as a Gaussian NLL), or when any
prediction is not finite. The reference is the lower of the first epoch's mean loss and the loss
of the very first minibatch, before any update: with a learning rate far too large the first
epoch's mean is already astronomical (``uci/dropout --learning_rate=1e6``: 1e27 from epoch 1 on),
and only the loss at initialisation shows it. A diverged run raises :class:`DivergedError` (a
``FloatingPointError``: the command line prints "training failed" and exits 1) before anything
is written, so no metric of a diverged network is ever reported.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


class DivergedError(FloatingPointError):
    """Training diverged (a non-finite or exploding loss, non-finite predictions); the message
    names the model, the epoch and what to change."""


class NonFiniteLossError(DivergedError):
    """Training produced a NaN or infinite loss; the message names the model and the epoch."""


def divergence_threshold(reference: float) -> float:
    """The largest epoch loss still accepted for a reference loss ``reference``:
    ``max(10 * reference, reference + 10)``."""
    return max(10.0 * reference, reference + 10.0)


class DivergenceGuard:
    """Checks each epoch's mean losses (one per model) against the rule of this module.

    Call :meth:`start` with the first minibatch's losses, then :meth:`check` after every epoch.
    ``names[i]`` names model ``i`` in the error (default ``the network`` for one model,
    ``model i`` for several); ``advice`` ends the message."""

    def __init__(
        self,
        names: Sequence[str] | None = None,
        advice: str = "lower --learning_rate or add warm-up",
    ) -> None:
        self.names = list(names) if names is not None else None
        self.advice = advice
        self.initial: list[float] | None = None
        self.reference: list[float] | None = None

    def _name(self, index: int, count: int) -> str:
        if self.names is not None:
            return self.names[index]
        return "the network" if count == 1 else f"model {index}"

    def _finite(self, epoch: int, losses: list[float]) -> None:
        for i, value in enumerate(losses):
            if not math.isfinite(value):
                raise NonFiniteLossError(
                    f"the training loss of {self._name(i, len(losses))} became {value} in epoch "
                    f"{epoch}: training diverged; {self.advice}"
                )

    def start(self, losses: Sequence[float]) -> None:
        """Record the losses of the first minibatch (before any update), once."""
        if self.initial is None:
            self.initial = [float(v) for v in losses]
            self._finite(1, self.initial)

    def check(self, epoch: int, losses: Sequence[float]) -> None:
        """Record ``losses`` (the epoch's mean loss of each model) or raise :class:`DivergedError`."""
        losses = [float(v) for v in losses]
        self._finite(epoch, losses)
        reference = self.reference or self.initial
        if reference is not None:
            for i, (value, ref) in enumerate(zip(losses, reference, strict=True)):
                limit = divergence_threshold(ref)
                if value > limit:
                    raise DivergedError(
                        f"the training loss of {self._name(i, len(losses))} rose to {value:.4g} "
                        f"in epoch {epoch}, above {limit:.4g} = max(10 x ref, ref + 10) of its reference "
                        f"loss {ref:.4g} (the lower of the first epoch's mean and the loss "
                        f"before any update): training diverged; {self.advice}"
                    )
        if self.reference is None:
            self.reference = (
                losses
                if self.initial is None
                else [min(a, b) for a, b in zip(losses, self.initial, strict=True)]
            )
