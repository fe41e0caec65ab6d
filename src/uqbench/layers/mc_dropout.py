"""Dropout that can stay on at test time (Monte-Carlo dropout, Gal & Ghahramani 2016)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


def batched_dropout(
    x: torch.Tensor, rate: torch.Tensor, active: bool, noise_groups: int | None = None
) -> torch.Tensor:
    """Inverted dropout with one rate per model: ``x`` is ``(B, N, ...)``, ``rate`` is ``(B,)``.

    Each unit is kept with probability ``1 - rate[b]`` and scaled by ``1 / (1 - rate[b])`` so the
    expected activation is unchanged; when ``active`` is false the input passes through.

    ``noise_groups=G`` splits the B models into G consecutive blocks of ``B / G`` models that
    share one uniform draw ``u`` per unit (common random numbers): model ``b`` keeps a unit when
    ``u < 1 - rate[b]``. Every model's masks are still independent Bernoulli draws over units and
    steps, so each network trains exactly as on its own; only models of one block are coupled,
    which makes a grid search over rates compare them under the same noise and costs the random
    numbers of G models instead of B. ``None`` gives every model its own draws.
    """
    if not active:
        return x
    num_models = rate.numel()
    if x.dim() < 2 or x.shape[0] != num_models:
        raise ValueError(f"expected input (B={num_models}, ...), got {tuple(x.shape)}")
    groups = num_models if noise_groups is None else noise_groups
    if groups < 1 or num_models % groups:
        raise ValueError(f"noise_groups={groups} must divide the number of models {num_models}")
    tail = x.shape[1:]
    keep = (1.0 - rate).to(x.dtype).view(groups, num_models // groups, *([1] * len(tail)))
    u = torch.rand((groups, 1, *tail), dtype=x.dtype, device=x.device)
    blocks = x.reshape(groups, num_models // groups, *tail)
    return torch.where(u < keep, blocks / keep, 0.0).reshape(x.shape)


class MCDropout(nn.Module):
    """Dropout with a per-model rate that is on in training and, if ``mc`` is set, at test too.

    ``rate`` is a float (all models) or a sequence with one rate per model, so a grid search over
    dropout rates trains as one batched network. ``noise_groups`` lets blocks of models share
    their random draws (see :func:`batched_dropout`). Set ``module.mc = True`` to draw
    Monte-Carlo samples in ``eval()`` mode.
    """

    def __init__(
        self,
        num_models: int,
        rate: float | list[float] | torch.Tensor = 0.0,
        noise_groups: int | None = None,
    ) -> None:
        super().__init__()
        rates = torch.as_tensor(rate, dtype=torch.float32).flatten()
        if rates.numel() == 1:
            rates = rates.expand(num_models).clone()
        if rates.numel() != num_models:
            raise ValueError(f"MCDropout got {rates.numel()} rates for {num_models} models")
        if bool(((rates < 0) | (rates >= 1)).any()):
            raise ValueError(f"dropout rates must be in [0, 1), got {rates.tolist()}")
        if noise_groups is not None and (noise_groups < 1 or num_models % noise_groups):
            raise ValueError(
                f"noise_groups={noise_groups} must divide the number of models {num_models}"
            )
        self.register_buffer("rate", rates)
        self.noise_groups = noise_groups
        self.any_dropout = bool((rates > 0).any())
        self.mc = False

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self.any_dropout = bool((self.rate > 0).any())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        active = (self.training or self.mc) and self.any_dropout
        return batched_dropout(x, self.rate, active, self.noise_groups)

    def extra_repr(self) -> str:
        groups = f", noise_groups={self.noise_groups}" if self.noise_groups else ""
        return f"rate={[round(r, 6) for r in self.rate.tolist()]}, mc={self.mc}{groups}"


_DROPOUT_TYPES = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)


@contextlib.contextmanager
def mc_dropout(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block, every dropout layer of ``model`` samples (Monte-Carlo dropout) while the
    rest stays as it was (batch norm keeps using its running statistics in ``eval()``).

    Works for ``torch.nn`` dropout layers and :class:`MCDropout`; the previous modes are
    restored on exit, also after an exception.

        model.eval()
        with mc_dropout(model):
            samples = torch.stack([model(x).softmax(-1) for _ in range(30)])
    """
    changed: list[tuple[nn.Module, str, bool]] = []
    try:
        for module in model.modules():
            if isinstance(module, MCDropout):
                changed.append((module, "mc", module.mc))
                module.mc = True
            elif isinstance(module, _DROPOUT_TYPES):
                changed.append((module, "training", module.training))
                module.training = True
        yield model
    finally:
        for module, attribute, value in changed:
            setattr(module, attribute, value)
