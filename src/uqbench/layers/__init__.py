"""Uncertainty building blocks: plain ``nn.Module`` s and functions usable in any PyTorch model.

``batched_linear`` (many independent small models in one matmul), ``mc_dropout`` (dropout kept on
at test time), ``gaussian_head`` (a regression output's Gaussian mean and variance),
``heteroscedastic_classification`` (Collier et al. 2021's low-rank logit-noise softmax head),
``batch_ensemble`` (rank-1 ensembles, Wen et al. 2020), ``rank1`` (rank-1 BNN layers, Dusenberry
et al. 2020), ``mimo`` (Havasi et al. 2021), ``spectral_norm`` (SNGP's soft spectral bound, on
dense layers and on convolution operators, and residual blocks) and ``random_feature_gp``
(SNGP's random-feature GP output layer). Temperature scaling lives in ``uqbench.layers.temperature`` (it needs SciPy, so it is not imported here).
"""

from uqbench.layers.batch_ensemble import (
    BatchEnsembleConv2d,
    BatchEnsembleLinear,
    member_mean,
    split_members,
    tile_members,
)
from uqbench.layers.batched_linear import BatchedLinear
from uqbench.layers.gaussian_head import gaussian_mean_variance
from uqbench.layers.heteroscedastic_classification import (
    HeteroscedasticSoftmaxHead,
    attach_heteroscedastic_head,
)
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
    "HeteroscedasticSoftmaxHead",
    "MCDropout",
    "RandomFeatureGaussianProcess",
    "SpectralBound",
    "SpectralConvResidualBlock",
    "SpectralResidualBlock",
    "attach_heteroscedastic_head",
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
