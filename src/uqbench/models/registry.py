"""One registry of image classifiers: ``get(name, num_classes, ...)``, ``names()``, ``describe()``,
``from_config(class_path_or_name, config)``.

A name is one of :func:`names` (any case; ``-`` and ``_`` are interchangeable), or a member of a
family: ``resnet<6n+2>`` (CIFAR ResNets, e.g. ``resnet110``) and ``wrn<depth>_<k>`` (Wide
ResNets, e.g. ``wrn16_4`` or ``wrn-40-2``). ``resnet18`` and ``resnet50`` are the ImageNet-family
networks of those depths, so the CIFAR ResNet of depth 50 (n = 8) is only reachable through
``uqbench.models.resnet.cifar_resnet(50)``.

A name with a colon, ``package.module:factory``, is your own network: see
:mod:`uqbench.models.user_factory` (its checkpoints import that module again when loaded).
"""

from __future__ import annotations

import difflib
import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from torch import nn

from uqbench.models import fast_cifar, lenet
from uqbench.models._common import check_dropout_rate, positive_int
from uqbench.models.bottleneck_resnet import BottleneckResNet, resnet50
from uqbench.models.fast_cifar import FastCifarNet
from uqbench.models.lenet import LeNet5
from uqbench.models.mlp_classifier import MLPClassifier
from uqbench.models.resnet import ResNet, cifar_resnet, resnet18, stem_for
from uqbench.models.user_factory import UserModel, is_factory_path, resolve_factory
from uqbench.models.wide_resnet import WideResNet, blocks_per_group

MODEL_CLASSES: dict[str, type[nn.Module]] = {
    f"{cls.__module__}.{cls.__qualname__}": cls
    for cls in (
        MLPClassifier,
        LeNet5,
        ResNet,
        WideResNet,
        BottleneckResNet,
        FastCifarNet,
        UserModel,
    )
}


ModelClass = TypeVar("ModelClass", bound=type[nn.Module])


def register_model_class(cls: ModelClass) -> ModelClass:
    """Let :func:`from_config` rebuild ``cls`` from its class path ``module.QualName``.

    For model classes defined outside this package (e.g. ``uqbench.search.blocks.SearchNet``),
    which call it when their module is imported; returns ``cls``, so it also works as a decorator.
    """
    MODEL_CLASSES[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return cls


@dataclass(frozen=True)
class Family:
    """Models whose names match ``pattern``.

    ``build(match, num_classes, in_channels, image_size, dropout_rate, **options)`` makes one;
    ``options`` are the extra keyword arguments it accepts; ``min_image_size`` the smallest image
    side that works with the default options; ``cls`` the class it returns (what :func:`from_config` rebuilds).
    """

    pattern: str
    cls: type[nn.Module]
    build: Callable[..., nn.Module]
    options: tuple[str, ...]
    min_image_size: int
    description: str


def _check_image_size(name: str, image_size: int, minimum: int) -> None:
    if image_size < minimum:
        raise ValueError(
            f"model {name!r} needs images of at least {minimum}x{minimum} pixels, got "
            f"image_size={image_size}; pick a model for small images (mlp, lenet, a ResNet)"
        )


def _mlp(match, num_classes, in_channels, image_size, dropout_rate, **options) -> nn.Module:
    return MLPClassifier(num_classes, in_channels, image_size, dropout_rate=dropout_rate, **options)


def _lenet(match, num_classes, in_channels, image_size, dropout_rate) -> nn.Module:
    return LeNet5(num_classes, in_channels, image_size, dropout_rate)


def _lenet_bn(match, num_classes, in_channels, image_size, dropout_rate) -> nn.Module:
    return LeNet5(num_classes, in_channels, image_size, dropout_rate, batch_norm=True)


def _lenet_wide(match, num_classes, in_channels, image_size, dropout_rate) -> nn.Module:
    return LeNet5(
        num_classes,
        in_channels,
        image_size,
        dropout_rate,
        batch_norm=True,
        channels=(12, 32),
        hidden=(192,),
    )


def _cifar_resnet(
    match, num_classes, in_channels, image_size, dropout_rate, **options
) -> nn.Module:
    return cifar_resnet(
        int(match.group(1)),
        num_classes,
        in_channels=in_channels,
        dropout_rate=dropout_rate,
        **options,
    )


def _resnet18(match, num_classes, in_channels, image_size, dropout_rate, **options) -> nn.Module:
    stem = stem_for(image_size)
    return resnet18(num_classes, in_channels, stem, dropout_rate=dropout_rate, **options)


def _resnet50(match, num_classes, in_channels, image_size, dropout_rate, **options) -> nn.Module:
    return resnet50(num_classes, in_channels, image_size, dropout_rate=dropout_rate, **options)


def _wrn(match, num_classes, in_channels, image_size, dropout_rate) -> nn.Module:
    depth, widen_factor = int(match.group(1)), int(match.group(2))
    return WideResNet(num_classes, depth, widen_factor, in_channels, dropout_rate)


def _fast_cifar(match, num_classes, in_channels, image_size, dropout_rate, **options) -> nn.Module:
    minimum = fast_cifar.min_image_size(options.get("whiten_kernel_size", 2))
    _check_image_size(match.group(0), image_size, minimum)
    return FastCifarNet(num_classes, in_channels, dropout_rate=dropout_rate, **options)


FAMILIES: dict[str, Family] = {
    "mlp": Family(
        pattern=r"mlp",
        cls=MLPClassifier,
        build=_mlp,
        options=("hidden_sizes",),
        min_image_size=1,
        description=(
            "fully connected ReLU network on flattened images, hidden sizes (256, 256); "
            "dropout after each hidden layer"
        ),
    ),
    "lenet": Family(
        pattern=r"lenet_?5?",
        cls=LeNet5,
        build=_lenet,
        options=(),
        min_image_size=lenet.min_image_size(),
        description=(
            "LeNet-5 (LeCun et al. 1998; ReLU, max-pool), 61.7k parameters; any image of at least 4x4 "
            "(8x8 digits, 28x28 MNIST, 32x32 CIFAR); dropout after every hidden layer"
        ),
    ),
    "lenet_bn": Family(
        pattern=r"lenet_?5?_?bn",
        cls=LeNet5,
        build=_lenet_bn,
        options=(),
        min_image_size=lenet.min_image_size(),
        description=(
            "LeNet-5 with batch norm after each convolution, 62.0k parameters for 32x32 colour "
            "images"
        ),
    ),
    "lenet_wide": Family(
        pattern=r"lenet_?5?_?wide",
        cls=LeNet5,
        build=_lenet_wide,
        options=(),
        min_image_size=lenet.min_image_size(),
        description=(
            "LeNet-5 widened (5x5 convolutions of 12 and 32 maps with batch norm, one hidden "
            "layer of 192), 166k parameters for 32x32 colour images; the cpu32 protocol's network "
            "(CIFAR-10 on a CPU)"
        ),
    ),
    "resnet<6n+2>": Family(
        pattern=r"resnet_?(\d+)",
        cls=ResNet,
        build=_cifar_resnet,
        options=("width", "shortcut"),
        min_image_size=1,
        description=(
            "CIFAR ResNet of depth 6n+2 (He et al. 2016; resnet20 0.27M, resnet56 0.85M parameters), "
            "option-A shortcuts; width= sets the base channels (16); dropout between block convolutions"
        ),
    ),
    "resnet18": Family(
        pattern=r"resnet_?18",
        cls=ResNet,
        build=_resnet18,
        options=("width",),
        min_image_size=1,
        description=(
            "ResNet-18, 11.2M parameters; 3x3 stem without max-pool up to 64 px (the common CIFAR "
            "ResNet-18), ImageNet stem above; dropout between block convolutions"
        ),
    ),
    "resnet50": Family(
        pattern=r"resnet_?50",
        cls=BottleneckResNet,
        build=_resnet50,
        options=("width",),
        min_image_size=1,
        description=(
            "bottleneck ResNet-50 (v1.5), 23.5M parameters for 10 classes; CIFAR stem up to 64 px, "
            "ImageNet stem above; dropout placed as in Uncertainty Baselines' resnet50_dropout"
        ),
    ),
    "wrn<depth>_<k>": Family(
        pattern=r"wrn_?(\d+)_(\d+)",
        cls=WideResNet,
        build=_wrn,
        options=(),
        min_image_size=1,
        description=(
            "pre-activation Wide ResNet (Zagoruyko & Komodakis 2016) of depth 6n+4 and width k, "
            "e.g. wrn28_10 (36.5M parameters), wrn16_4 (2.7M); dropout after each block's first "
            "convolution, before its second batch norm (as Uncertainty Baselines)"
        ),
    ),
    "fast_cifar": Family(
        pattern=r"fast_?cifar",
        cls=FastCifarNet,
        build=_fast_cifar,
        options=("widths", "whiten_kernel_size", "output_scale", "batchnorm_momentum"),
        min_image_size=fast_cifar.min_image_size(),
        description=(
            "airbench-style speed network (patch whitening, 3 conv groups 64/256/256, scaled "
            "logits), 1.97M parameters; call init_from_images(images) before training"
        ),
    ),
}

# Concrete names listed by names(): every fixed-name family, and common members of the others.
NAMES = (
    "fast_cifar",
    "lenet",
    "lenet_bn",
    "lenet_wide",
    "mlp",
    "resnet18",
    "resnet20",
    "resnet32",
    "resnet44",
    "resnet50",
    "resnet56",
    "resnet110",
    "wrn16_4",
    "wrn28_10",
)


def names() -> list[str]:
    """The model names :func:`get` accepts as written (families accept more: ``resnet<6n+2>``,
    ``wrn<depth>_<k>``)."""
    return list(NAMES)


def describe() -> list[tuple[str, str]]:
    """``(name or family, one-line description)`` of every model family, for ``uqbench list``."""
    return [(name, family.description) for name, family in FAMILIES.items()]


def _normalise(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def _match(name: object) -> tuple[str, Family, re.Match[str]]:
    """``(family key, family, regex match)`` for a model name, or a ``ValueError`` that helps."""
    if not isinstance(name, str):
        raise ValueError(f"a model name must be a string, got {name!r}")
    key = _normalise(name)
    # Fixed names first, so resnet18 and resnet50 never parse as CIFAR ResNets.
    ordered = sorted(FAMILIES.items(), key=lambda item: "<" in item[0])
    for family_key, family in ordered:
        match = re.fullmatch(family.pattern, key)
        if match:
            return family_key, family, match
    close = difflib.get_close_matches(key, NAMES, n=3)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(
        f"unknown model {name!r}.{hint} Known: {', '.join(NAMES)}; also any resnet<6n+2> "
        "(CIFAR ResNet) and wrn<depth>_<k> (Wide ResNet). `uqbench list models` describes them; "
        "a network of your own is 'package.module:factory'."
    )


def _check_depth(family_key: str, match: re.Match[str]) -> None:
    """Reject family members that do not exist, naming the valid ones."""
    if family_key == "resnet<6n+2>":
        depth = int(match.group(1))
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(
                f"resnet{depth} does not exist: CIFAR ResNets have depth 6n+2 (resnet8, resnet14, "
                "resnet20, resnet32, resnet44, resnet56, resnet110, ...), and resnet18 and "
                "resnet50 are the ImageNet-style networks"
            )
    elif family_key == "wrn<depth>_<k>":
        blocks_per_group(int(match.group(1)))
        positive_int("the Wide ResNet width k", int(match.group(2)))


def check_name(name: str) -> None:
    """A ``ValueError`` (with close matches) unless ``name`` is a model :func:`get` can build;
    cheap, so callers can check a flag before loading data. A ``package.module:factory`` is
    imported and must be callable (what it builds is checked by :func:`get`)."""
    if is_factory_path(name):
        resolve_factory(name)
        return
    _check_depth(*_match(name)[::2])


def get(
    name: str,
    num_classes: int,
    in_channels: int = 3,
    image_size: int = 32,
    dropout_rate: float = 0.0,
    **kwargs: Any,
) -> nn.Module:
    """A freshly initialised model ``name`` for ``(N, in_channels, image_size, image_size)`` images.

    ``kwargs`` are the family's options (``width`` for ResNets, ``hidden_sizes`` for the MLP,
    ...; a wrong one is an error listing them). The model's ``config`` holds its constructor
    arguments, so ``from_config(type(model) path or name, model.config)`` rebuilds it.

    ``name`` may be ``package.module:factory``: a :class:`~uqbench.models.user_factory.UserModel`
    wrapping what the factory returns (``kwargs`` are not allowed), checked on a probe batch.
    """
    if is_factory_path(name):
        if kwargs:
            raise ValueError(
                f"model {name!r} is built by its factory alone; options "
                f"{', '.join(map(repr, sorted(kwargs)))} are not passed to it"
            )
        return UserModel(name, num_classes, in_channels, image_size, dropout_rate)
    family_key, family, match = _match(name)
    _check_depth(family_key, match)
    num_classes = positive_int("num_classes", num_classes)
    in_channels = positive_int("in_channels", in_channels)
    image_size = positive_int("image_size", image_size)
    dropout_rate = check_dropout_rate(dropout_rate)
    unknown = sorted(set(kwargs) - set(family.options))
    if unknown:
        accepted = ", ".join(family.options) or "none"
        raise ValueError(
            f"model {name!r} has no option {', '.join(map(repr, unknown))}; its options: {accepted}"
        )
    _check_image_size(name, image_size, family.min_image_size)
    return family.build(match, num_classes, in_channels, image_size, dropout_rate, **kwargs)


def from_config(class_path_or_name: str, config: Mapping[str, Any]) -> nn.Module:
    """Rebuild a model from checkpoint metadata: its class path or registry name, and ``config``.

    ``class_path_or_name`` is ``module.ClassName`` as the checkpoint records it (e.g.
    ``uqbench.models.resnet.ResNet``) or a name :func:`get` accepts (``resnet20``); ``config`` is
    the model's ``config`` (its constructor arguments). Only uqbench's own model classes are
    built, with one exception: a :class:`~uqbench.models.user_factory.UserModel` config (from
    ``--model=package.module:factory``) imports and calls that factory again.
    """
    if not isinstance(class_path_or_name, str):
        raise ValueError(f"expected a class path or model name, got {class_path_or_name!r}")
    if not isinstance(config, Mapping):
        raise ValueError(f"config must be a mapping of constructor arguments, got {config!r}")
    cls = MODEL_CLASSES.get(class_path_or_name)
    if cls is None:
        try:
            cls = _match(class_path_or_name)[1].cls
        except ValueError as err:
            raise ValueError(
                f"{class_path_or_name!r} is neither a uqbench model class "
                f"({', '.join(MODEL_CLASSES)}) nor a model name: {err}"
            ) from None
    parameters = inspect.signature(cls).parameters
    unknown = sorted(set(config) - set(parameters))
    if unknown:
        raise ValueError(
            f"config has arguments {cls.__name__} does not take: {', '.join(unknown)}; "
            f"it takes {', '.join(parameters)} (was the checkpoint written by another version?)"
        )
    return cls(**config)
