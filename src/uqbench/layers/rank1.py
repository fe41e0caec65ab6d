"""Rank-1 Bayesian neural nets (Dusenberry et al. 2020): BatchEnsemble with distributions on
the rank-1 factors.

Member ``e``'s weight is ``W * outer(s, r)`` with ``r ~ q(r_e)``, ``s ~ q(s_e)`` drawn afresh for
every example on every forward pass (in training and at test, as edward2's ``DenseRank1`` and
``Conv2DRank1`` do), and clipped to [-10, 10] as there. The posterior is a factorised Gaussian
(edward2's ``trainable_normal``: mean ``r``/``s``, scale ``softplus(r_rho)``/``softplus(s_rho)``)
or Cauchy (``trainable_cauchy``), the prior the same family with mean ``prior_mean`` and scale
``prior_stddev``; :meth:`kl` is the sum of the factors' KL divergences to it. The shared weight
``W`` and the members' biases are point estimates. With scale 0 (``rho = -inf``) a layer is
exactly the BatchEnsemble layer it extends.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from uqbench.layers.batch_ensemble import (
    BatchEnsembleConv2d,
    BatchEnsembleLinear,
    BatchEnsembleModel,
    batch_ensemble_model,
    conv_arguments,
    copy_base_weights_,
)

POSTERIORS = ("normal", "cauchy")
PERTURBATION_LIMIT = 10.0


class _Rank1Posterior:
    """What both rank-1 layers add to their BatchEnsemble layer: posterior scales, sampling and
    the KL divergence to the prior."""

    r: nn.Parameter
    s: nn.Parameter

    def _make_posterior(
        self, posterior: str, prior_mean: float, prior_stddev: float, init_stddev: float
    ) -> None:
        if posterior not in POSTERIORS:
            raise ValueError(f"posterior must be one of {POSTERIORS}, got {posterior!r}")
        if not prior_stddev > 0 or not init_stddev > 0:
            raise ValueError(
                f"prior_stddev and init_stddev must be positive, got {prior_stddev}, {init_stddev}"
            )
        self.posterior = posterior
        self.prior_mean = float(prior_mean)
        self.prior_stddev = float(prior_stddev)
        self.init_stddev = float(init_stddev)
        self.r_rho = nn.Parameter(torch.empty_like(self.r))
        self.s_rho = nn.Parameter(torch.empty_like(self.s))
        self.reset_posterior()

    @torch.no_grad()
    def reset_posterior(self) -> None:
        """``rho`` at softplus^-1(``init_stddev``): a truncated normal around it (std 0.1) for a
        Gaussian posterior, that constant for a Cauchy one (UB's ``rank1_bnn_utils``)."""
        centre = math.log(math.expm1(self.init_stddev))
        for rho in (self.r_rho, self.s_rho):
            if self.posterior == "normal":
                nn.init.trunc_normal_(rho, centre, 0.1, centre - 0.2, centre + 0.2)
            else:
                rho.fill_(centre)

    def scales(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The posterior scales of ``r`` and ``s``."""
        return F.softplus(self.r_rho), F.softplus(self.s_rho)

    def fast_weights(self, examples: int) -> tuple[torch.Tensor, torch.Tensor]:
        """One draw of ``r`` and ``s`` per member and example: ``(E, examples, in)``, ``(E,
        examples, out)``."""
        return tuple(
            self._sample(mean, scale, examples)
            for mean, scale in zip((self.r, self.s), self.scales(), strict=True)
        )

    def _sample(self, mean: torch.Tensor, scale: torch.Tensor, examples: int) -> torch.Tensor:
        shape = (mean.shape[0], examples, mean.shape[1])
        noise = torch.empty(shape, device=mean.device, dtype=mean.dtype)
        noise = noise.cauchy_() if self.posterior == "cauchy" else noise.normal_()
        draw = mean.unsqueeze(1) + scale.unsqueeze(1) * noise
        return draw.clamp(-PERTURBATION_LIMIT, PERTURBATION_LIMIT)

    def kl(self) -> torch.Tensor:
        """``KL(q(r) || p) + KL(q(s) || p)`` summed over every entry, in closed form."""
        total = torch.zeros((), device=self.r.device)
        for mean, scale in zip((self.r, self.s), self.scales(), strict=True):
            total = total + _kl(self.posterior, mean, scale, self.prior_mean, self.prior_stddev)
        return total


def _kl(
    family: str, mean: torch.Tensor, scale: torch.Tensor, prior_mean: float, prior_scale: float
) -> torch.Tensor:
    """Elementwise KL between two members of ``family``, summed. Gaussian:
    ``log(s0/s) + (s^2 + (m - m0)^2) / (2 s0^2) - 1/2``; Cauchy (Chyzak & Nielsen 2019):
    ``log(((s + s0)^2 + (m - m0)^2) / (4 s s0))``."""
    if family == "normal":
        ratio = scale / prior_scale
        terms = -torch.log(ratio) + (ratio**2 + ((mean - prior_mean) / prior_scale) ** 2 - 1) / 2
    else:
        terms = torch.log(
            ((scale + prior_scale) ** 2 + (mean - prior_mean) ** 2) / (4 * scale * prior_scale)
        )
    return terms.sum()


class Rank1Linear(_Rank1Posterior, BatchEnsembleLinear):
    """A rank-1 BNN dense layer (Dusenberry et al. 2020; edward2's ``DenseRank1``): a
    :class:`BatchEnsembleLinear` whose ``r``, ``s`` are posterior means with scales
    ``softplus(r_rho)``, ``softplus(s_rho)``, sampled per example."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        ensemble_size: int,
        bias: bool = True,
        fast_weight_init: str = "random_sign",
        posterior: str = "normal",
        prior_mean: float = 1.0,
        prior_stddev: float = 0.1,
        init_stddev: float = math.sqrt(1e-3 / (1 - 1e-3)),
    ) -> None:
        super().__init__(in_features, out_features, ensemble_size, bias, fast_weight_init)
        self._make_posterior(posterior, prior_mean, prior_stddev, init_stddev)
        self.config.update(
            posterior=posterior,
            prior_mean=prior_mean,
            prior_stddev=prior_stddev,
            init_stddev=init_stddev,
        )


class Rank1Conv2d(_Rank1Posterior, BatchEnsembleConv2d):
    """A rank-1 BNN convolution (Dusenberry et al. 2020; edward2's ``Conv2DRank1``): a
    :class:`BatchEnsembleConv2d` with Gaussian or Cauchy posteriors on ``r`` and ``s``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        ensemble_size: int,
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | str = 0,
        dilation: int | tuple[int, int] = 1,
        bias: bool = True,
        fast_weight_init: str = "random_sign",
        posterior: str = "normal",
        prior_mean: float = 1.0,
        prior_stddev: float = 0.1,
        init_stddev: float = math.sqrt(1e-3 / (1 - 1e-3)),
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            ensemble_size,
            stride,
            padding,
            dilation,
            bias,
            fast_weight_init,
        )
        self._make_posterior(posterior, prior_mean, prior_stddev, init_stddev)
        self.config.update(
            posterior=posterior,
            prior_mean=prior_mean,
            prior_stddev=prior_stddev,
            init_stddev=init_stddev,
        )


def rank1_model(
    model: nn.Module,
    ensemble_size: int,
    fast_weight_init: str = "random_sign",
    posterior: str = "normal",
    prior_mean: float = 1.0,
    prior_stddev: float = 0.1,
    init_stddev: float = math.sqrt(1e-3 / (1 - 1e-3)),
) -> BatchEnsembleModel:
    """``model`` as a rank-1 BNN with ``ensemble_size`` mixture components (Dusenberry et al.
    2020): every ``nn.Conv2d``/``nn.Linear`` of a copy becomes a rank-1 layer sharing its weight,
    as :func:`~uqbench.layers.batch_ensemble.batch_ensemble_model` does for BatchEnsemble."""
    options = {
        "posterior": posterior,
        "prior_mean": prior_mean,
        "prior_stddev": prior_stddev,
        "init_stddev": init_stddev,
    }
    if posterior not in POSTERIORS:
        raise ValueError(f"posterior must be one of {POSTERIORS}, got {posterior!r}")

    def twin(layer: nn.Module, size: int, init: str) -> nn.Module:
        if isinstance(layer, nn.Linear):
            new: nn.Module = Rank1Linear(
                layer.in_features, layer.out_features, size, layer.bias is not None, init, **options
            )
        else:
            new = Rank1Conv2d(
                **conv_arguments(layer), ensemble_size=size, fast_weight_init=init, **options
            )
        copy_base_weights_(new, layer)
        return new

    return batch_ensemble_model(model, ensemble_size, fast_weight_init, layer_factory=twin)


def kl_divergence(model: nn.Module) -> torch.Tensor:
    """The sum of every rank-1 layer's KL divergence to its prior in ``model``."""
    terms = [m.kl() for m in model.modules() if isinstance(m, _Rank1Posterior)]
    if not terms:
        raise ValueError(f"{type(model).__name__} has no rank-1 layer")
    return torch.stack(terms).sum()
