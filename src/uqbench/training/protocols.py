"""Tuned training protocols for the image baselines: a network and a recipe per setting.

- ``ub``: Uncertainty Baselines' CIFAR recipe for WRN-28-10 (200 epochs, batch 512, SGD with
  Nesterov momentum 0.9, base rate 0.1 per 128 examples, x0.2 at epochs 60/120/160 after one
  warm-up epoch, L2 2e-4 on the loss = weight decay 4e-4 in PyTorch's form, crops shifted by at
  most 2 pixels + flips, every training image used: no validation carve-out). MC dropout has
  UB's dropout.py defaults: rate 0.1, base rate 0.05 per 128 examples, L2 3e-4 (weight decay
  6e-4). MIMO has mimo.py's: 250 epochs, L2 3e-4, decay at 40/80/90% of training, 0.1 for
  the 128 new examples of each step (docs/fidelity/mimo.md). The heteroscedastic head
  (``image/heteroscedastic``) trains with the deterministic recipe, as UB's heteroscedastic.py
  changes none of it (docs/fidelity/heteroscedastic.md). Each fact's source line and every
  deviation: docs/fidelity/ub.md.
- ``fast``: a short schedule for a GPU after Keller Jordan's airbench (the ``fast_cifar`` network
  with patch whitening, batch 1024, Nesterov momentum 0.85, the step size and weight decay of
  airbench's summed loss expressed for a mean loss, warm-up over 23% of training then a linear
  decay, label smoothing 0.2, 2-pixel crops, flips, test-time flips). Not included: airbench's
  64x learning rate for batch-norm biases, weight averaging and translated test views, so it
  trains longer (24 epochs instead of 10). What it reaches is in docs/results/image.md.
- ``cpu``: small images (e.g. scikit-learn's 8x8 digits) on a CPU: LeNet-5, one-cycle, one-pixel
  shifts and no flips (a mirrored digit is another symbol). Epochs (30, 60, 100, 150), learning
  rate (0.02, 0.05, 0.1) and weight decay (5e-4, 2e-3) were chosen by the deterministic network's
  validation NLL on digits (classes 8 and 9 held out, 3 seeds; docs/results/image.md).
- ``cpu32``: 32x32 colour images (CIFAR-10) on a 2-core CPU in about 3 minutes: ``lenet_wide``
  (LeNet-5 with batch norm, 12/32 maps, one hidden layer of 192), 20 epochs of batch 128,
  one-cycle to 0.1, weight decay 5e-4, 2-pixel crops and flips; the network and schedule were
  chosen on CIFAR-10's validation NLL (docs/results/cpu32_protocol.md). The ensemble methods
  keep the digits settings of ``cpu`` (not tuned on CIFAR-10) and, with MC dropout's 10
  samples, are shortened so that the whole CIFAR-10 table fits 3 hours: the member methods
  (ensemble, BatchEnsemble, rank-1, MIMO) train 7 epochs, SNGP's resnet8 8.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from uqbench.training.classifier import Recipe


@dataclass(frozen=True)
class Protocol:
    """A named default: the network, its recipe, method settings (MC dropout rate and samples,
    ensemble size), the validation carve-out, and per-method networks, changes to the recipe
    and settings (e.g. SNGP's spectral bound; the scripts read them with :meth:`settings_for`)."""

    name: str
    model: str
    recipe: Recipe
    dropout_rate: float
    mc_samples: int
    num_members: int
    description: str
    validation_fraction: float = 0.1
    method_recipes: Mapping[str, Mapping[str, object]] = field(default_factory=dict, hash=False)
    method_models: Mapping[str, str] = field(default_factory=dict, hash=False)
    method_settings: Mapping[str, Mapping[str, object]] = field(default_factory=dict, hash=False)

    def model_for(self, method: str) -> str:
        """The network ``method`` trains by default (e.g. SNGP needs a residual network)."""
        return self.method_models.get(method, self.model)

    def recipe_for(self, method: str) -> Recipe:
        """The recipe of ``method`` (e.g. ``image/dropout``): the protocol's, with the method's
        own defaults where the source gives the method other ones."""
        return self.recipe.with_overrides(**self.method_recipes.get(method, {}))

    def settings_for(self, method: str) -> dict[str, object]:
        """``method``'s own defaults under this protocol (e.g. BatchEnsemble's fast-weight
        initialisation); flags override them."""
        return dict(self.method_settings.get(method, {}))


# Uncertainty Baselines' CIFAR-10 values of SNGP (sngp.py) and MIMO (mimo.py: ensemble_size 3,
# input_repetition_probability 0, batch_repetitions 4), under ub and fast.
UB_SNGP = {"spec_norm_bound": 6.0, "gp_mean_field_factor": 20.0}
UB_MIMO = {"num_members": 3, "input_repetition": 0.0, "batch_repetition": 4}
# Chosen on digits' validation NLL under cpu (docs/fidelity/<method>.md); cpu32 keeps them but
# SNGP's (CPU32_METHOD_SETTINGS).
DIGITS_METHOD_SETTINGS: Mapping[str, Mapping[str, object]] = {
    "image/batchensemble": {"fast_weight_init": "random_sign", "fast_weight_lr_multiplier": 0.5},
    "image/rank1": {"prior_stddev": 1.0},
    "image/sngp": {"spec_norm_bound": 3.0, "gp_mean_field_factor": math.pi / 8},
    "image/mimo": {"num_members": 2, "input_repetition": 0.5, "batch_repetition": 4},
    "image/heteroscedastic": {
        "num_factors": 3,
        "temperature": 1.0,
        "train_mc_samples": 1000,
        "test_mc_samples": 1000,
    },
}

# SNGP's bound and mean-field factor chosen on CIFAR-10's validation NLL under cpu32
# (benchmarks/tune_sngp_cpu32.py, docs/results/sngp_cpu32.md); the others not tuned on CIFAR-10.
CPU32_METHOD_SETTINGS: Mapping[str, Mapping[str, object]] = {
    **DIGITS_METHOD_SETTINGS,
    "image/sngp": {"spec_norm_bound": 3.0, "gp_mean_field_factor": 1.0},
}

PROTOCOLS = {
    "ub": Protocol(
        name="ub",
        model="wrn28_10",
        recipe=Recipe(
            epochs=200,
            batch_size=512,
            learning_rate=0.4,
            schedule="step",
            milestones=(60 / 200, 120 / 200, 160 / 200),
            decay_factor=0.2,
            warmup_epochs=1,
            momentum=0.9,
            nesterov=True,
            weight_decay=4e-4,
            crop_padding=2,
            flip=True,
        ),
        dropout_rate=0.1,
        mc_samples=30,
        num_members=4,
        description="Uncertainty Baselines' WRN-28-10 CIFAR recipe (200 epochs)",
        validation_fraction=0.0,
        # dropout.py resets base_learning_rate to 0.05 (x 512 / 128) and l2 to 3e-4 (x 2).
        method_recipes={
            "image/dropout": {"learning_rate": 0.2, "weight_decay": 6e-4},
            # sngp.py: total_batch_size 256, base_learning_rate 0.08 (x 256 / 128), l2 3e-4,
            # 250 epochs (decays at (60, 120, 160) x 250 // 200: the same fractions).
            "image/sngp": {
                "epochs": 250,
                "batch_size": 256,
                "learning_rate": 0.16,
                "weight_decay": 6e-4,
            },
            # mimo.py: 250 epochs, l2 3e-4 (x 2), decay at epochs 80/160/180 of 200 scaled to 250
            # (100/200/225), base rate 0.1 scaled by the 512 / 4 = 128 new examples per step.
            "image/mimo": {
                "epochs": 250,
                "learning_rate": 0.1,
                "weight_decay": 6e-4,
                "milestones": (100 / 250, 200 / 250, 225 / 250),
            },
            # batchensemble.py / rank1_bnn.py: 250 epochs, decays at (80, 160, 180) x 250 / 200
            # = epochs 100/200/225, 512 rows per step = 128 images x 4 members, base rate 0.1
            # per 128 images; L2 3e-4 (BatchEnsemble) and 1e-4 (rank-1) on the loss.
            "image/batchensemble": {
                "epochs": 250,
                "batch_size": 512,
                "learning_rate": 0.1,
                "milestones": (0.4, 0.8, 0.9),
                "weight_decay": 6e-4,
            },
            "image/rank1": {
                "epochs": 250,
                "batch_size": 512,
                "learning_rate": 0.1,
                "milestones": (0.4, 0.8, 0.9),
                "weight_decay": 2e-4,
            },
        },
        method_settings={
            # random_sign_init=-0.5: N(1, 0.5^2); fast_weight_lr_multiplier=0.5.
            "image/batchensemble": {"fast_weight_init": "normal", "fast_weight_lr_multiplier": 0.5},
            # random_sign_init=0.5, prior N(1, 0.1^2), dropout_rate=1e-3 -> initial scale
            # sqrt(1e-3 / (1 - 1e-3)), KL annealed over 200 of 250 epochs, 1 eval sample.
            "image/rank1": {
                "fast_weight_init": "random_sign",
                "fast_weight_lr_multiplier": 1.0,
                "posterior": "normal",
                "prior_mean": 1.0,
                "prior_stddev": 0.1,
                "init_stddev": (1e-3 / (1 - 1e-3)) ** 0.5,
                "kl_annealing_fraction": 200 / 250,
                "num_eval_samples": 1,
            },
            "image/sngp": UB_SNGP,
            "image/mimo": UB_MIMO,
            # heteroscedastic.py's flags: 6 factors, temperature 1.3, 10,000 samples.
            "image/heteroscedastic": {
                "num_factors": 6,
                "temperature": 1.3,
                "train_mc_samples": 10_000,
                "test_mc_samples": 10_000,
            },
        },
    ),
    "fast": Protocol(
        name="fast",
        model="fast_cifar",
        recipe=Recipe(
            epochs=24,
            batch_size=1024,
            learning_rate=1.5,
            schedule="onecycle",
            warmup_epochs=24 * 0.23,
            momentum=0.85,
            nesterov=True,
            weight_decay=1.33e-3,
            label_smoothing=0.2,
            crop_padding=2,
            flip=True,
            test_flips=True,
        ),
        dropout_rate=0.1,
        mc_samples=10,
        num_members=4,
        description="a short GPU schedule (fast_cifar, airbench-style, 24 epochs)",
        validation_fraction=0.1,
        method_models={"image/sngp": "resnet20"},  # fast_cifar has no residual layers
        method_settings={
            "image/sngp": UB_SNGP,
            "image/mimo": UB_MIMO,
            # UB's factors and temperature with edward2's default 1,000 samples (not tuned).
            "image/heteroscedastic": {
                "num_factors": 6,
                "temperature": 1.3,
                "train_mc_samples": 1000,
                "test_mc_samples": 1000,
            },
        },
    ),
    "cpu": Protocol(
        name="cpu",
        model="lenet",
        recipe=Recipe(
            epochs=100,
            batch_size=64,
            learning_rate=0.05,
            schedule="onecycle",
            warmup_epochs=10,
            momentum=0.9,
            nesterov=True,
            weight_decay=2e-3,
            label_smoothing=0.0,
            crop_padding=1,
            flip=False,
        ),
        dropout_rate=0.1,
        mc_samples=30,
        num_members=4,
        description="small images on a CPU (LeNet-5, 100 epochs)",
        validation_fraction=0.1,
        # SNGP bounds residual layers; the smallest CIFAR ResNet trains on digits in about a
        # minute (docs/fidelity/sngp.md).
        method_models={"image/sngp": "resnet8"},
        # 64 images x 4 members per step; settings chosen on digits' validation NLL
        # (docs/fidelity/batchensemble.md, docs/fidelity/rank1.md).
        method_recipes={
            "image/batchensemble": {"batch_size": 256},
            "image/rank1": {"batch_size": 256},
        },
        method_settings=DIGITS_METHOD_SETTINGS,
    ),
    "cpu32": Protocol(
        name="cpu32",
        model="lenet_wide",
        recipe=Recipe(
            epochs=20,
            batch_size=128,
            learning_rate=0.1,
            schedule="onecycle",
            warmup_epochs=2,
            momentum=0.9,
            nesterov=True,
            weight_decay=5e-4,
            label_smoothing=0.0,
            crop_padding=2,
            flip=True,
        ),
        dropout_rate=0.1,
        # 10 Monte-Carlo samples (UB: 30): each sample is a pass over the test, OOD and 75
        # corrupted sets, 30 took 11 of MC dropout's 15 minutes on CIFAR-10 here.
        mc_samples=10,
        num_members=4,
        description="32x32 colour images on a CPU (lenet_wide, 20 epochs, about 3 minutes)",
        validation_fraction=0.1,
        # SNGP bounds residual layers: the smallest CIFAR ResNet, for as many epochs as fit
        # about twice the deterministic network's time (docs/results/cpu32_protocol.md).
        method_models={"image/sngp": "resnet8"},
        # The member methods train 7 epochs against the single network's 20, so the whole
        # CIFAR-10 table (3 seeds) fits 3 hours of 2 cores: at 10 epochs it took 4h18m
        # (benchmarks/image.py's docstring has the sum; docs/results/image.md the effect).
        method_recipes={
            "image/sngp": {"epochs": 8},
            "image/ensemble": {"epochs": 7, "warmup_epochs": 1},
            # 128 images x 4 members per step, as cpu's 64 x 4 (not tuned on CIFAR-10).
            "image/batchensemble": {"batch_size": 512, "epochs": 7, "warmup_epochs": 1},
            "image/rank1": {"batch_size": 512, "epochs": 7, "warmup_epochs": 1},
            "image/mimo": {"epochs": 7, "warmup_epochs": 1},
        },
        method_settings=CPU32_METHOD_SETTINGS,
    ),
}


def for_images(protocol: Protocol, asked: str, image_shape: tuple[int, ...]) -> Protocol:
    """Once the data is known: ``auto`` on a CPU picks ``cpu32`` for colour images of 32 pixels
    or more (CIFAR-10), keeping ``cpu`` for small or grey images (digits); a protocol asked for
    by name is kept."""
    channels, size = image_shape[0], image_shape[1]
    if asked == "auto" and protocol.name == "cpu" and channels == 3 and size >= 32:
        return PROTOCOLS["cpu32"]
    return protocol


def choose_protocol(name: str, model: str | None, device_type: str) -> Protocol:
    """The protocol ``name``; ``auto`` picks ``ub`` for Wide ResNets, ``cpu`` on a CPU (``cpu32``
    once the images turn out to be colour and 32 pixels or more: :func:`for_images`), else
    ``fast``."""
    if name == "auto":
        if model is not None and model.startswith("wrn"):
            name = "ub"
        else:
            name = "cpu" if device_type == "cpu" else "fast"
    if name not in PROTOCOLS:
        raise ValueError(f"unknown protocol {name!r}; choose auto or one of {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]
