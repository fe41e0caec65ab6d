"""Flags of one method shared by its image and text scripts (MC dropout, SNGP, BatchEnsemble),
defined once: absl flags are process-global, so ``image/sngp`` and ``text/sngp`` could not each
define ``--gp_hidden_dim``. A script lists the ones it reads in its ``FLAGS_USED``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from absl import flags

from uqbench.layers.batch_ensemble import FAST_WEIGHT_INITS
from uqbench.layers.random_feature_gp import FEATURE_TYPES
from uqbench.training.flags import value_or

DROPOUT_RATE = flags.DEFINE_float(
    "dropout_rate",
    None,
    "Dropout rate of the network; default: the protocol's (image/: 0.1) or the text model's.",
)

USE_SPEC_NORM = flags.DEFINE_bool(
    "use_spec_norm",
    True,
    "Bound the hidden layers' spectral norms (UB's flag; --nouse_spec_norm is an ablation, not "
    "SNGP).",
)
USE_GP_LAYER = flags.DEFINE_bool(
    "use_gp_layer",
    True,
    "Replace the output layer by the random-feature GP (UB's flag; --nouse_gp_layer keeps the "
    "dense output layer: an ablation, not SNGP).",
)
SPEC_NORM_BOUND = flags.DEFINE_float(
    "spec_norm_bound",
    None,
    "Bound on each layer's spectral (operator) norm; default: the protocol's or the text recipe's.",
)
SPEC_NORM_ITERATION = flags.DEFINE_integer(
    "spec_norm_iteration", 1, "Power iterations per training step for each spectral norm."
)
GP_HIDDEN_DIM = flags.DEFINE_integer("gp_hidden_dim", 1024, "Number of random Fourier features.")
GP_SCALE = flags.DEFINE_float(
    "gp_scale",
    None,
    "Length-scale parameter of the GP's RBF kernel; default: the method's (image/: 1, text/: 2, "
    "as UB's CIFAR and CLINC SNGP).",
)
GP_RANDOM_FEATURE_TYPE = flags.DEFINE_enum(
    "gp_random_feature_type", "orf", FEATURE_TYPES, "Orthogonal (orf) or Gaussian (rff) features."
)
GP_INPUT_NORMALIZATION = flags.DEFINE_bool(
    "gp_input_normalization",
    None,
    "Layer-normalise the GP's input features; default: the "
    "method's (image/: no, text/: yes, as UB's SNGP-BERT).",
)
GP_COV_RIDGE_PENALTY = flags.DEFINE_float(
    "gp_cov_ridge_penalty", 1.0, "Ridge penalty of the GP's posterior precision."
)
GP_COV_DISCOUNT_FACTOR = flags.DEFINE_float(
    "gp_cov_discount_factor",
    -1.0,
    "Moving-average factor of the precision; -1: exact sum over the last epoch.",
)
GP_MEAN_FIELD_FACTOR = flags.DEFINE_float(
    "gp_mean_field_factor",
    None,
    "lambda in logits / sqrt(1 + lambda var) at test time (-1: MAP logits); default: the "
    "protocol's or the text recipe's.",
)
SNGP_FLAGS = (
    USE_SPEC_NORM,
    USE_GP_LAYER,
    SPEC_NORM_BOUND,
    SPEC_NORM_ITERATION,
    GP_HIDDEN_DIM,
    GP_SCALE,
    GP_RANDOM_FEATURE_TYPE,
    GP_INPUT_NORMALIZATION,
    GP_COV_RIDGE_PENALTY,
    GP_COV_DISCOUNT_FACTOR,
    GP_MEAN_FIELD_FACTOR,
)


def sngp_settings(defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The SNGP settings (``predictors.sngp_network``'s and ``text_predictors``') from the flags,
    with the method's ``defaults`` for ``spec_norm_bound``, ``gp_scale``,
    ``gp_input_normalization`` and ``gp_mean_field_factor`` where those flags are not given."""
    return {
        "use_spec_norm": USE_SPEC_NORM.value,
        "use_gp_layer": USE_GP_LAYER.value,
        "spec_norm_bound": value_or(SPEC_NORM_BOUND, defaults["spec_norm_bound"]),
        "spec_norm_iteration": SPEC_NORM_ITERATION.value,
        "num_features": GP_HIDDEN_DIM.value,
        "kernel_scale": value_or(GP_SCALE, defaults["gp_scale"]),
        "feature_type": GP_RANDOM_FEATURE_TYPE.value,
        "normalize_input": value_or(GP_INPUT_NORMALIZATION, defaults["gp_input_normalization"]),
        "ridge": GP_COV_RIDGE_PENALTY.value,
        "momentum": GP_COV_DISCOUNT_FACTOR.value,
        "mean_field_factor": value_or(GP_MEAN_FIELD_FACTOR, defaults["gp_mean_field_factor"]),
    }


FAST_WEIGHT_INIT = flags.DEFINE_enum(
    "fast_weight_init",
    None,
    list(FAST_WEIGHT_INITS),
    "Initial fast weights: random_sign (+-1), normal (N(1, 0.5^2), UB's random_sign_init=-0.5) "
    "or ones; default: the protocol's.",
)
FAST_WEIGHT_LR_MULTIPLIER = flags.DEFINE_float(
    "fast_weight_lr_multiplier",
    None,
    "Learning-rate multiplier of the fast weights and the members' biases; default: the "
    "protocol's (UB: 0.5).",
)
