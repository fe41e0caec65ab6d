"""Prediction functions of the image methods, and the checkpoints that rebuild them.

A predictor maps a batch of uint8 images on the device to what the evaluation harness takes:
``{"probs": (B, K), "logits": (B, K)}`` for one network; for an ensemble or Monte-Carlo dropout
``{"probs": (B, K), "log_probs": (B, K), "member_probs": (M, B, K)}``, where ``probs`` is the mean
over members / samples and ``log_probs`` its logarithm computed in log space (log-mean-exp of the
members' log-softmax), so NLL stays exact where a probability underflows. Everything is float32,
computed from float32 logits.

A checkpoint stores every network's weights (``member<i>.<name>`` for ensembles) and, in its
metadata, the method, the network's class and constructor arguments, the normalisation constants
and the prediction settings, so ``uqbench eval RUN_DIR`` can rebuild the predictor on any data.
A heteroscedastic head (``image/heteroscedastic``) is part of the network: its settings are kept
as ``heteroscedastic_head`` and it is attached again before the weights load; its output is the
log of the Monte-Carlo probability, so :func:`single` predicts with it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from uqbench import models
from uqbench.layers.batch_ensemble import batch_ensemble_model
from uqbench.layers.heteroscedastic_classification import attach_heteroscedastic_head
from uqbench.layers.mc_dropout import mc_dropout
from uqbench.layers.mimo import MIMO
from uqbench.layers.random_feature_gp import RandomFeatureGaussianProcess
from uqbench.layers.rank1 import rank1_model
from uqbench.layers.spectral_norm import spectral_normalize_convs
from uqbench.training.checkpoint import CheckpointError, load_checkpoint
from uqbench.training.classifier import Runtime, network_logits
from uqbench.training.ensembles import VectorizedEnsemble
from uqbench.training.evaluation import PredictFn

Normalisation = tuple[tuple[float, ...], tuple[float, ...]]


def single(model: nn.Module, norm: Normalisation, runtime: Runtime, flips: bool) -> PredictFn:
    """Softmax of one network's logits."""
    model.eval()

    def predict(images: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = network_logits(model, images, *norm, runtime, flips)
        return {"probs": logits.softmax(dim=-1), "logits": logits}

    return predict


def monte_carlo_dropout(
    model: nn.Module, norm: Normalisation, runtime: Runtime, flips: bool, samples: int
) -> PredictFn:
    """The mean of ``samples`` softmax predictions with dropout sampling (Gal & Ghahramani 2016);
    the samples are the members."""
    if samples < 1:
        raise ValueError(f"--mc_samples must be at least 1, got {samples}")
    model.eval()

    def predict(images: torch.Tensor) -> dict[str, torch.Tensor]:
        with mc_dropout(model):
            logits = torch.stack(
                [network_logits(model, images, *norm, runtime, flips) for _ in range(samples)]
            )
        return mixture(logits)

    return predict


def mixture(member_logits: torch.Tensor) -> dict[str, torch.Tensor]:
    """The uniform mixture of ``(M, B, K)`` member logits' softmax outputs: ``probs`` (their
    mean), ``log_probs`` (``logsumexp_m log_softmax(z_m) - log M``, exact where ``probs``
    underflows) and ``member_probs``."""
    log_members = member_logits.float().log_softmax(dim=-1)
    log_probs = torch.logsumexp(log_members, dim=0) - math.log(member_logits.shape[0])
    member_probs = log_members.exp()
    return {"probs": member_probs.mean(dim=0), "log_probs": log_probs, "member_probs": member_probs}


def ensemble(
    members: VectorizedEnsemble | Sequence[nn.Module],
    norm: Normalisation,
    runtime: Runtime,
    flips: bool,
) -> PredictFn:
    """The mean of the members' softmax predictions (a uniform mixture, Lakshminarayanan et al.
    2017)."""
    vectorized = isinstance(members, VectorizedEnsemble)
    for member in [members] if vectorized else members:
        member.eval()

    def predict(images: torch.Tensor) -> dict[str, torch.Tensor]:
        if vectorized:
            logits = network_logits(members, images, *norm, runtime, flips)
        else:
            logits = torch.stack(
                [network_logits(m, images, *norm, runtime, flips) for m in members]
            )
        return mixture(logits)

    return predict


RESIDUAL_MODELS = (models.ResNet, models.WideResNet)


def sngp_network(
    network: nn.Module, image_shape: Sequence[int], settings: Mapping[str, Any]
) -> nn.Module:
    """``network`` made into SNGP (Liu et al. 2020): every convolution's operator norm bounded by
    ``spec_norm_bound`` (as UB's ``wide_resnet_sngp``, batch norm kept), and the dense output
    layer ``fc`` replaced by a random-feature GP. ``settings``: ``spec_norm_bound``,
    ``spec_norm_iteration``, the :class:`RandomFeatureGaussianProcess` arguments, and UB's
    ablation switches ``use_spec_norm`` / ``use_gp_layer`` (absent: on)."""
    if not isinstance(network, RESIDUAL_MODELS):
        raise ValueError(
            f"SNGP bounds the layers of a residual network; {type(network).__name__} has none. "
            "Use a residual model: resnet<6n+2> (e.g. resnet8, resnet20), resnet18 or "
            "wrn<depth>_<k> (e.g. wrn28_10)"
        )
    device = next(network.parameters()).device
    if settings.get("use_spec_norm", True):
        spectral_normalize_convs(
            network,
            torch.zeros(1, *image_shape, device=device),
            settings["spec_norm_bound"],
            settings["spec_norm_iteration"],
        )
    if settings.get("use_gp_layer", True):
        network.fc = RandomFeatureGaussianProcess(
            network.fc.in_features, network.fc.out_features, **gp_arguments(settings)
        ).to(device)
    return network


def gp_arguments(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The :class:`RandomFeatureGaussianProcess` arguments among SNGP's ``settings``."""
    return {
        k: v for k, v in settings.items() if not k.startswith(("spec_norm", "use_spec", "use_gp"))
    }


def mimo(model: MIMO, norm: Normalisation, runtime: Runtime, flips: bool) -> PredictFn:
    """MIMO (Havasi et al. 2021): every head sees the test image; their softmax outputs are
    averaged (the heads are the members)."""
    model.eval()

    def predict(images: torch.Tensor) -> dict[str, torch.Tensor]:
        return mixture(network_logits(model, images, *norm, runtime, flips))

    return predict


def rank_one_ensemble(
    model: nn.Module, norm: Normalisation, runtime: Runtime, flips: bool, samples: int = 1
) -> PredictFn:
    """The mixture of a BatchEnsemble's ``E`` members (Wen et al. 2020), or of ``samples``
    draws of each of a rank-1 BNN's ``E`` components (Dusenberry et al. 2020): the model maps
    ``B`` images to ``(E, B, K)`` logits; the ``samples x E`` softmax outputs are averaged."""
    if samples < 1:
        raise ValueError(f"--num_eval_samples must be at least 1, got {samples}")
    model.eval()

    def predict(images: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = [network_logits(model, images, *norm, runtime, flips) for _ in range(samples)]
        return mixture(torch.cat(logits))

    return predict


def checkpoint_of(
    method: str,
    networks: Sequence[nn.Module],
    *,
    norm: Normalisation,
    image_shape: Sequence[int],
    class_names: Sequence[str],
    flips: bool,
    **settings: Any,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(tensors, metadata)`` for ``checkpoint.safetensors``: one network's weights as they
    are, several as ``member<i>.<name>``; ``settings`` (e.g. ``mc_samples``, ``dropout_rate``)
    are kept in the metadata."""
    first = networks[0]
    architectures = [_architecture(n) for n in networks]
    if len(networks) == 1:
        tensors = dict(first.state_dict())
    else:
        tensors = {
            f"member{i}.{name}": value
            for i, network in enumerate(networks)
            for name, value in network.state_dict().items()
        }
    metadata = {
        "method": method,
        **architectures[0],
        "num_networks": len(networks),
        "networks": architectures,
        "mean": list(norm[0]),
        "std": list(norm[1]),
        "image_shape": list(image_shape),
        "class_names": list(class_names),
        "test_flips": bool(flips),
        **settings,
    }
    return tensors, metadata


def _architecture(network: nn.Module) -> dict[str, Any]:
    return {
        "class": f"{type(network).__module__}.{type(network).__qualname__}",
        "kwargs": dict(getattr(network, "config", {})),
    }


def load_networks(
    path: str | Path, device: torch.device | str = "cpu"
) -> tuple[list[nn.Module], dict[str, Any]]:
    """The networks saved in a run directory (or a ``checkpoint.safetensors`` path), in eval
    mode on ``device``, and the checkpoint's metadata."""
    path = Path(path)
    file = path / "checkpoint.safetensors" if path.is_dir() else path
    tensors, metadata = load_checkpoint(file)
    missing = {"method", "class", "kwargs", "mean", "std"} - set(metadata)
    if missing:
        raise CheckpointError(
            f"{file} is not an image-classifier checkpoint (no {', '.join(sorted(missing))} in "
            "its metadata); pass the run directory of an image/ baseline"
        )
    count = int(metadata.get("num_networks", 1))
    architectures = metadata.get("networks") or [_architecture_of(metadata)] * count
    networks = []
    for i, architecture in enumerate(architectures):
        prefix = f"member{i}." if count > 1 else ""
        state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        network = models.from_config(architecture["class"], architecture["kwargs"])
        if metadata["method"] == "image/sngp":
            network = sngp_network(network, metadata["image_shape"], metadata["sngp"])
        if "heteroscedastic_head" in metadata:  # image/heteroscedastic replaced the output layer
            classes = (
                len(metadata.get("class_names") or []) or architecture["kwargs"]["num_classes"]
            )
            attach_heteroscedastic_head(network, classes, **metadata["heteroscedastic_head"])
        target = network
        if "rank_one" in metadata:  # the weights are those of the converted network
            network = _rank_one_model(target, metadata["rank_one"])
            target = network.network
        try:
            target.load_state_dict(state)
        except RuntimeError as err:
            raise CheckpointError(
                f"the weights in {file} do not fit its network {architecture['class']}: {err}"
            ) from None
        networks.append(network.to(device).eval())
    return networks, dict(metadata)


def _rank_one_model(network: nn.Module, settings: Mapping[str, Any]) -> nn.Module:
    """``network`` turned into the BatchEnsemble or rank-1 model a checkpoint's
    ``rank_one`` settings describe (``{"kind", "ensemble_size", ...}``)."""
    options = {k: v for k, v in settings.items() if k != "kind"}
    if settings.get("kind") == "rank1":
        return rank1_model(network, **options)
    if settings.get("kind") == "batchensemble":
        return batch_ensemble_model(network, **options)
    raise CheckpointError(f"unknown rank-1 ensemble kind {settings.get('kind')!r}")


def _architecture_of(metadata: Mapping[str, Any]) -> dict[str, Any]:
    return {"class": metadata["class"], "kwargs": metadata["kwargs"]}


def load_predictor(path: str | Path, runtime: Runtime) -> tuple[PredictFn, dict[str, Any]]:
    """Rebuild the predictor saved in a run directory (or a ``checkpoint.safetensors`` path)."""
    networks, metadata = load_networks(path, runtime.device)
    norm = (tuple(metadata["mean"]), tuple(metadata["std"]))
    flips = bool(metadata.get("test_flips", False))
    method = metadata["method"]
    if method == "image/dropout":
        predict = monte_carlo_dropout(
            networks[0], norm, runtime, flips, int(metadata.get("mc_samples", 1))
        )
    elif method == "image/mimo":
        model = MIMO(networks[0], int(metadata["num_members"]))
        predict = mimo(model, norm, runtime, flips)
    elif "rank_one" in metadata:
        samples = int(metadata.get("num_eval_samples", 1))
        predict = rank_one_ensemble(networks[0], norm, runtime, flips, samples)
    elif len(networks) > 1:
        predict = ensemble(networks, norm, runtime, flips)
    else:
        predict = single(networks[0], norm, runtime, flips)
    return predict, dict(metadata)
