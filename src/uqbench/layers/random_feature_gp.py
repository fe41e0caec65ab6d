"""SNGP's output layer: a random-feature Gaussian process with a Laplace covariance (Liu et al. 2020).

As edward2's ``RandomFeatureGaussianProcess`` with ``LaplaceRandomFeatureCovariance``:

- random Fourier features ``phi(h) = cos(h W / sqrt(scale) + b)`` (optionally times
  ``sqrt(2 / D)``), ``W`` fixed: orthogonal random features (``orf``: blocks of a random orthogonal
  matrix whose columns get Gaussian-like norms, Yu et al. 2016) or i.i.d. Gaussian (``rff``), with
  standard deviation ``feature_stddev``; ``b`` uniform on ``[0, 2 pi)``;
- logits ``phi beta + bias`` with a trainable ``beta`` and a fixed bias;
- the precision of ``beta`` under the Gaussian likelihood (edward2's default, used by
  Uncertainty Baselines for every class at once): ``P = sum_i phi_i phi_i^T`` over the training
  batches seen since the last :meth:`reset_precision` (``momentum < 0``), or the moving average
  ``P <- m P + (1 - m) Phi^T Phi / B`` (``0 < m < 1``); the covariance is
  ``(ridge I + P)^-1`` and the predictive variance of an input is ``ridge * phi^T Cov phi``;
- in eval mode the layer returns mean-field logits ``logits / sqrt(1 + lambda var)``
  (:func:`mean_field_logits`), or the MAP logits when ``mean_field_factor < 0``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

FEATURE_TYPES = ("orf", "rff")


def mean_field_logits(
    logits: torch.Tensor, variances: torch.Tensor, mean_field_factor: float
) -> torch.Tensor:
    """``logits / sqrt(1 + lambda * var)`` per example: the mean-field approximation of the
    softmax of Gaussian logits (Lu et al. 2020; edward2's ``mean_field_logits``); ``lambda < 0``
    returns ``logits`` unchanged. ``lambda = pi / 8`` is the probit approximation."""
    if mean_field_factor < 0:
        return logits
    return logits / torch.sqrt(1.0 + mean_field_factor * variances).unsqueeze(-1)


def orthogonal_random_features(
    in_features: int, num_features: int, stddev: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """An ``(in_features, num_features)`` matrix of orthogonal random features (Yu et al. 2016),
    as edward2's ``OrthogonalRandomFeatures``: square random orthogonal blocks side by side, each
    column rescaled to the norm of a Gaussian column (chi with ``in_features`` degrees of
    freedom), times ``stddev``."""
    blocks = []
    for _ in range(math.ceil(num_features / in_features)):
        gaussian = torch.randn(in_features, in_features, generator=generator, dtype=torch.float64)
        q, r = torch.linalg.qr(gaussian)
        blocks.append(q * torch.sign(torch.diagonal(r)))  # Haar-distributed
    matrix = torch.cat(blocks, dim=1)[:, :num_features]
    norms = torch.randn(in_features, num_features, generator=generator, dtype=torch.float64)
    return (stddev * matrix * norms.norm(dim=0)).float()


class RandomFeatureGaussianProcess(nn.Module):
    """Random-feature GP output layer with a Laplace posterior covariance (SNGP, Liu et al. 2020).

    Defaults are Uncertainty Baselines' CIFAR SNGP (``baselines/cifar/sngp.py``): 1024 orthogonal
    random features of standard deviation 0.05, kernel scale 1, no input layer norm, features not
    rescaled, output bias 0, exact accumulation of the precision over an epoch, ridge 1 and a
    mean-field factor of 20.
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        num_features: int = 1024,
        kernel_scale: float = 1.0,
        feature_type: str = "orf",
        feature_stddev: float = 0.05,
        normalize_input: bool = False,
        scale_features: bool = False,
        output_bias: float = 0.0,
        ridge: float = 1.0,
        momentum: float = -1.0,
        mean_field_factor: float = 20.0,
    ) -> None:
        super().__init__()
        for name, value in (("in_features", in_features), ("num_classes", num_classes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(num_features, bool) or not isinstance(num_features, int) or num_features < 1:
            raise ValueError(f"num_features must be a positive integer, got {num_features!r}")
        if feature_type not in FEATURE_TYPES:
            raise ValueError(f"feature_type must be one of {FEATURE_TYPES}, got {feature_type!r}")
        for name, value in (
            ("kernel_scale", kernel_scale),
            ("feature_stddev", feature_stddev),
            ("ridge", ridge),
        ):
            if not value > 0:
                raise ValueError(f"{name} must be positive, got {value!r}")
        if not (momentum < 0 or 0 < momentum < 1):
            raise ValueError(
                f"momentum must be negative (exact sum over an epoch) or in (0, 1), got {momentum!r}"
            )
        self.num_features = num_features
        self.kernel_scale = float(kernel_scale)
        self.scale_features = bool(scale_features)
        self.ridge = float(ridge)
        self.momentum = float(momentum)
        self.mean_field_factor = float(mean_field_factor)
        self.input_norm = nn.LayerNorm(in_features) if normalize_input else None
        if feature_type == "orf":
            weight = orthogonal_random_features(in_features, num_features, feature_stddev)
        else:
            weight = feature_stddev * torch.randn(in_features, num_features)
        self.register_buffer("feature_weight", weight)
        self.register_buffer("feature_bias", 2 * math.pi * torch.rand(num_features))
        self.output = nn.Linear(num_features, num_classes, bias=False)
        self.register_buffer("output_bias", torch.full((num_classes,), float(output_bias)))
        self.register_buffer("precision", torch.zeros(num_features, num_features))
        self._covariance: torch.Tensor | None = None

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The random features ``phi(x)``, ``(B, num_features)``."""
        if self.input_norm is not None:
            x = self.input_norm(x)
        else:
            x = x / math.sqrt(self.kernel_scale)
        phi = torch.cos(x.float() @ self.feature_weight + self.feature_bias)
        if self.scale_features:
            phi = phi * math.sqrt(2.0 / self.num_features)
        return phi

    @torch.no_grad()
    def reset_precision(self) -> None:
        """Zero the accumulated precision (SNGP does this at the start of every epoch)."""
        self.precision.zero_()
        self._covariance = None

    @torch.no_grad()
    def update_precision(self, phi: torch.Tensor) -> None:
        """Add one training batch's ``Phi^T Phi`` (or its moving average) to the precision."""
        batch = phi.detach().float().t() @ phi.detach().float()
        if self.momentum < 0:
            self.precision.add_(batch)
        else:
            self.precision.mul_(self.momentum).add_(batch / phi.shape[0], alpha=1 - self.momentum)
        self._covariance = None

    def covariance(self) -> torch.Tensor:
        """``(ridge I + P)^-1``, computed in float64 once per change of the precision."""
        if self._covariance is None:
            eye = torch.eye(self.num_features, dtype=torch.float64, device=self.precision.device)
            system = self.ridge * eye + self.precision.double()
            self._covariance = torch.linalg.inv(system).float()
        return self._covariance

    def predictive_variance(self, phi: torch.Tensor) -> torch.Tensor:
        """``ridge * phi_i^T Cov phi_i`` for each row of ``phi``: the GP's posterior variance of
        each example's logits (shared by all classes)."""
        with torch.autocast(device_type=phi.device.type, enabled=False):
            phi = phi.float()
            return self.ridge * ((phi @ self.covariance()) * phi).sum(dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """MAP logits in training mode (and the precision update); mean-field logits in eval."""
        phi = self.features(x)
        logits = self.output(phi) + self.output_bias
        if self.training:
            self.update_precision(phi)
            return logits
        return mean_field_logits(logits, self.predictive_variance(phi), self.mean_field_factor)

    def _load_from_state_dict(self, *args: object, **kwargs: object) -> None:
        self._covariance = None
        super()._load_from_state_dict(*args, **kwargs)

    def extra_repr(self) -> str:
        return (
            f"num_features={self.num_features}, kernel_scale={self.kernel_scale}, "
            f"ridge={self.ridge}, momentum={self.momentum}, "
            f"mean_field_factor={self.mean_field_factor}"
        )


def reset_each_epoch(head: RandomFeatureGaussianProcess, epochs: int) -> Callable[[dict], None]:
    """An ``on_epoch_end`` callback for ``classifier.fit`` that resets ``head``'s precision after
    every epoch but the last, so the final precision is the sum over the last epoch (UB resets at
    the first step of each epoch when ``gp_cov_discount_factor < 0``)."""

    def on_epoch_end(record: dict) -> None:
        if record["epoch"] < epochs:
            head.reset_precision()

    return on_epoch_end
