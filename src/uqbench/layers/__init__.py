"""Uncertainty building blocks: plain ``nn.Module`` s and functions usable in any PyTorch model.

``batched_linear`` (many independent small models in one matmul), ``mc_dropout`` (dropout kept on
at test time), ``heteroscedastic`` (mean and variance heads), ``batch_ensemble`` (rank-1 ensembles,
Wen et al. 2020) and ``spectral_norm`` (SNGP's soft spectral bound, on dense layers and on convolution operators, and
residual blocks) and ``random_feature_gp`` (SNGP's random-feature GP output layer). Temperature
scaling lives in ``uqbench.layers.temperature`` (it needs SciPy, so it is not imported here).
"""

from uqbench.layers.batch_ensemble import (
    BatchEnsembleConv2d,
    BatchEnsembleLinear,
    member_mean,
    split_members,
    tile_members,
)
from uqbench.layers.batched_linear import BatchedLinear
from uqbench.layers.heteroscedastic import gaussian_mean_variance
from uqbench.layers.mc_dropout import MCDropout, batched_dropout, mc_dropout
from uqbench.layers.random_feature_gp import (
    RandomFeatureGaussianProcess,
    mean_field_logits,
    reset_each_epoch,
)
from uqbench.layers.spectral_norm import (
    ConvSpectralBound,
    SpectralBound,
    SpectralConvResidualBlock,
    SpectralResidualBlock,
    spectral_normalize_convs,
    spectral_normalized,
    spectral_normalized_conv,
)

__all__ = [
    "BatchEnsembleConv2d",
    "BatchEnsembleLinear",
    "BatchedLinear",
    "ConvSpectralBound",
    "MCDropout",
    "RandomFeatureGaussianProcess",
    "SpectralBound",
    "SpectralConvResidualBlock",
    "SpectralResidualBlock",
    "batched_dropout",
    "gaussian_mean_variance",
    "mc_dropout",
    "mean_field_logits",
    "member_mean",
    "reset_each_epoch",
    "spectral_normalize_convs",
    "spectral_normalized",
    "spectral_normalized_conv",
    "split_members",
    "tile_members",
]
