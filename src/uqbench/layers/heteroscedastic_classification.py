"""A softmax head with input-dependent, correlated Gaussian logit noise (Collier et al. 2021,
"Correlated Input-Dependent Label Noise in Large-Scale Image Classification").

The head predicts a location ``mu(x)`` (K logits), a factor matrix ``V(x)`` (K x R) and a
diagonal scale ``d(x) = softplus(.) + min_scale`` (K), so the logit noise has covariance
``V V^T + diag(d^2)``; latent logits ``u = mu + V eps_R + d * eps_K`` with standard-normal
``eps_R``, ``eps_K`` are drawn ``S`` times and the prediction is the Monte-Carlo mean of
``softmax(u / temperature)``. The head returns its logarithm, computed in log space
(``logsumexp_s log_softmax(u_s / T) - log S``), so cross-entropy on the output is the NLL of the
Monte-Carlo probability and ``softmax(output)`` is that probability. As in edward2's
``MCSoftmaxDenseFA`` (and Uncertainty Baselines' CIFAR configuration, ``share_samples=True``), one
set of noise draws is shared by the batch; ``num_factors=0`` is its diagonal-only
``MCSoftmaxDense``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

MIN_SCALE = 1e-3  # edward2's MIN_SCALE_MONTE_CARLO, added to the softplus diagonal scale
CHUNK_ELEMENTS = 1 << 24  # latent logits held at once (B x samples x K) when averaging


def sample_logits(
    loc: torch.Tensor,
    factors: torch.Tensor,
    diagonal: torch.Tensor,
    factor_noise: torch.Tensor,
    diagonal_noise: torch.Tensor,
) -> torch.Tensor:
    """Latent logits ``mu + V eps_R + d * eps_K``: ``(B, S, K)`` from ``loc`` ``(B, K)``,
    ``factors`` ``(B, K, R)``, ``diagonal`` ``(B, K)`` and standard-normal draws
    ``factor_noise`` ``(S, R)`` and ``diagonal_noise`` ``(S, K)`` (shared by the batch) or
    ``(B, S, R)`` and ``(B, S, K)`` (one set per example)."""
    if factor_noise.dim() == 2:
        correlated = torch.einsum("bkr,sr->bsk", factors, factor_noise)
    else:
        correlated = torch.einsum("bkr,bsr->bsk", factors, factor_noise)
    return loc.unsqueeze(1) + correlated + diagonal.unsqueeze(1) * diagonal_noise


def mc_log_mean_softmax(
    loc: torch.Tensor,
    factors: torch.Tensor,
    diagonal: torch.Tensor,
    factor_noise: torch.Tensor,
    diagonal_noise: torch.Tensor,
    temperature: float = 1.0,
) -> torch.Tensor:
    """``log mean_s softmax(u_s / temperature)`` ``(B, K)`` for the latent logits ``u`` of
    :func:`sample_logits`, exact in log space; the samples are processed in chunks so at most
    about ``CHUNK_ELEMENTS`` latent logits exist at once."""
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    samples = diagonal_noise.shape[-2]
    chunk = max(1, CHUNK_ELEMENTS // (loc.shape[0] * loc.shape[1]))
    parts = []
    for start in range(0, samples, chunk):
        stop = start + chunk
        latent = sample_logits(
            loc,
            factors,
            diagonal,
            factor_noise[..., start:stop, :],
            diagonal_noise[..., start:stop, :],
        )
        parts.append(torch.logsumexp(F.log_softmax(latent / temperature, dim=-1), dim=1))
    return torch.logsumexp(torch.stack(parts), dim=0) - math.log(samples)


class HeteroscedasticSoftmaxHead(nn.Module):
    """Collier et al. (2021)'s heteroscedastic output layer (edward2's ``MCSoftmaxDenseFA``):
    features ``(B, in_features)`` -> log of the Monte-Carlo softmax probability ``(B, K)``."""

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        num_factors: int = 3,
        temperature: float = 1.0,
        train_mc_samples: int = 1000,
        test_mc_samples: int = 1000,
        min_scale: float = MIN_SCALE,
        share_samples: bool = True,
    ) -> None:
        super().__init__()
        problems = []
        if in_features < 1:
            problems.append(f"in_features must be at least 1, got {in_features}")
        if num_classes < 2:
            problems.append(f"num_classes must be at least 2, got {num_classes}")
        if not 0 <= num_factors <= num_classes:
            problems.append(
                f"num_factors must be in [0, num_classes={num_classes}], got {num_factors}"
            )
        if not temperature > 0:
            problems.append(f"temperature must be positive, got {temperature}")
        if train_mc_samples < 1 or test_mc_samples < 1:
            problems.append(
                "train_mc_samples and test_mc_samples must be at least 1, got "
                f"{train_mc_samples} and {test_mc_samples}"
            )
        if min_scale < 0:
            problems.append(f"min_scale must be >= 0, got {min_scale}")
        if problems:
            raise ValueError("; ".join(problems))
        self.config = {
            "num_factors": int(num_factors),
            "temperature": float(temperature),
            "train_mc_samples": int(train_mc_samples),
            "test_mc_samples": int(test_mc_samples),
            "min_scale": float(min_scale),
            "share_samples": bool(share_samples),
        }
        self.num_classes = num_classes
        self.loc = nn.Linear(in_features, num_classes)
        self.factor_layer = nn.Linear(in_features, num_classes * num_factors)
        self.diagonal_layer = nn.Linear(in_features, num_classes)

    def noise_parameters(
        self, features: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(mu (B, K), V (B, K, R), d (B, K))`` of the logit distribution for ``features``."""
        factors = self.factor_layer(features).reshape(
            features.shape[0], self.num_classes, self.config["num_factors"]
        )
        diagonal = F.softplus(self.diagonal_layer(features)) + self.config["min_scale"]
        return self.loc(features), factors, diagonal

    def draw_noise(
        self, batch: int, samples: int, like: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Standard-normal ``(eps_R, eps_K)``: ``(S, R)``, ``(S, K)`` shared by the batch, or
        ``(B, S, R)``, ``(B, S, K)`` with ``share_samples=False``."""
        lead = (samples,) if self.config["share_samples"] else (batch, samples)
        options = {"device": like.device, "dtype": like.dtype}
        return (
            torch.randn(*lead, self.config["num_factors"], **options),
            torch.randn(*lead, self.num_classes, **options),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Log of the Monte-Carlo mean softmax probability, ``train_mc_samples`` draws in
        training mode and ``test_mc_samples`` in eval mode; float32 whatever the autocast."""
        with torch.autocast(features.device.type, enabled=False):
            features = features.float()
            loc, factors, diagonal = self.noise_parameters(features)
            key = "train_mc_samples" if self.training else "test_mc_samples"
            noise = self.draw_noise(features.shape[0], self.config[key], features)
            return mc_log_mean_softmax(
                loc, factors, diagonal, *noise, temperature=self.config["temperature"]
            )


def attach_heteroscedastic_head(
    model: nn.Module,
    num_classes: int,
    probe: torch.Tensor | None = None,
    **options: object,
) -> HeteroscedasticSoftmaxHead:
    """Replace ``model``'s output layer, its last ``nn.Linear`` with ``num_classes`` outputs, by
    a :class:`HeteroscedasticSoftmaxHead` on the same features (``options`` are its arguments);
    returns the head. With a ``probe`` input batch, a ``ValueError`` unless the model returns
    the head's output unchanged (a network that rescales its logits cannot take the head)."""
    found = [
        name
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and module.out_features == num_classes
    ]
    if not found:
        raise ValueError(
            f"{type(model).__name__} has no nn.Linear with {num_classes} outputs to replace by "
            "a heteroscedastic head; its output layer must be an nn.Linear"
        )
    *parents, leaf = found[-1].split(".")
    owner = model.get_submodule(".".join(parents)) if parents else model
    old = getattr(owner, leaf)
    head = HeteroscedasticSoftmaxHead(old.in_features, num_classes, **options)
    head.to(device=old.weight.device, dtype=old.weight.dtype)
    setattr(owner, leaf, head)
    if probe is not None:
        _check_head_is_output(model, head, probe, found[-1])
    return head


def _check_head_is_output(
    model: nn.Module, head: HeteroscedasticSoftmaxHead, probe: torch.Tensor, name: str
) -> None:
    seen: list[torch.Tensor] = []
    hook = head.register_forward_hook(lambda module, args, out: seen.append(out))
    training = model.training
    try:
        with torch.no_grad():
            out = model.eval()(probe)
    finally:
        hook.remove()
        model.train(training)
    if len(seen) != 1 or not isinstance(out, torch.Tensor) or not torch.equal(out, seen[0]):
        raise ValueError(
            f"{type(model).__name__} does not return its output layer {name!r} unchanged (e.g. "
            "it scales or post-processes its logits), so a heteroscedastic head cannot replace "
            "it; use a network whose output is its last nn.Linear"
        )
