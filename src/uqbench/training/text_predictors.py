"""Prediction functions of the text methods, and the checkpoints that rebuild them.

A predictor maps a batch of padded token ids ``(B, L)`` on the device to what the evaluation
harness takes (as the image predictors in ``predictors`` do): ``{"probs", "logits"}`` for one
network, ``{"probs", "log_probs", "member_probs"}`` for an ensemble, MC dropout or a
BatchEnsemble (``predictors.mixture``). Each batch is first trimmed to its longest sequence on
the device (``uqbench.data.tokenize.trim_padding``); the models' predictions do not depend on
the padding. A checkpoint keeps the networks' constructor arguments, the class names, the
tokenizer (its JSON) and the method's settings, so ``uqbench eval`` rebuilds the predictor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from uqbench import models
from uqbench.data.text import TextDataset
from uqbench.data.tokenize import trim_padding
from uqbench.layers.batch_ensemble import batch_ensemble_model
from uqbench.layers.mc_dropout import mc_dropout
from uqbench.layers.random_feature_gp import RandomFeatureGaussianProcess
from uqbench.layers.spectral_norm import spectral_normalized
from uqbench.training.checkpoint import CheckpointError, load_checkpoint
from uqbench.training.classifier import Runtime
from uqbench.training.evaluation import PredictFn
from uqbench.training.predictors import gp_arguments, mixture


def text_logits(model: nn.Module, ids: torch.Tensor, runtime: Runtime, pad: int) -> torch.Tensor:
    """Float32 logits of padded ids ``(B, L)``: ``(B, K)``, or ``(E, B, K)`` for a
    BatchEnsemble."""
    with runtime.autocast():
        return model(trim_padding(ids, pad)).float()


def single(model: nn.Module, runtime: Runtime, pad: int) -> PredictFn:
    """Softmax of one network's logits."""
    model.eval()

    def predict(ids: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = text_logits(model, ids, runtime, pad)
        return {"probs": logits.softmax(dim=-1), "logits": logits}

    return predict


def monte_carlo_dropout(model: nn.Module, runtime: Runtime, pad: int, samples: int) -> PredictFn:
    """The mean of ``samples`` softmax outputs with dropout sampling (Gal & Ghahramani 2016)."""
    if samples < 1:
        raise ValueError(f"--mc_samples must be at least 1, got {samples}")
    model.eval()

    def predict(ids: torch.Tensor) -> dict[str, torch.Tensor]:
        with mc_dropout(model):
            logits = torch.stack([text_logits(model, ids, runtime, pad) for _ in range(samples)])
        return mixture(logits)

    return predict


def ensemble(members: Sequence[nn.Module], runtime: Runtime, pad: int) -> PredictFn:
    """The mean of the members' softmax outputs (Lakshminarayanan et al. 2017)."""
    for member in members:
        member.eval()

    def predict(ids: torch.Tensor) -> dict[str, torch.Tensor]:
        return mixture(torch.stack([text_logits(m, ids, runtime, pad) for m in members]))

    return predict


def rank_one_ensemble(model: nn.Module, runtime: Runtime, pad: int) -> PredictFn:
    """The mean of a BatchEnsemble's members (the model maps ``B`` queries to ``(E, B, K)``)."""
    model.eval()

    def predict(ids: torch.Tensor) -> dict[str, torch.Tensor]:
        return mixture(text_logits(model, ids, runtime, pad))

    return predict


def sngp_network(network: nn.Module, settings: Mapping[str, Any]) -> nn.Module:
    """``network`` made into SNGP (Liu et al. 2020): every hidden ``nn.Linear`` and
    ``nn.Conv2d`` (all but the output layer ``fc``) spectrally bounded by ``spec_norm_bound``
    (their weight matrix's largest singular value), and ``fc`` replaced by a random-feature GP.
    ``settings``: ``spec_norm_bound``, ``spec_norm_iteration``, the
    :class:`RandomFeatureGaussianProcess` arguments, and UB's ablation switches
    ``use_spec_norm`` / ``use_gp_layer`` (absent: on)."""
    head = getattr(network, "fc", None)
    if not isinstance(head, nn.Linear):
        raise ValueError(
            f"SNGP replaces the output layer fc (an nn.Linear); {type(network).__name__} has none"
        )
    hidden = [
        m for m in network.modules() if isinstance(m, nn.Linear | nn.Conv2d) and m is not head
    ]
    if settings.get("use_spec_norm", True):
        for module in hidden:
            spectral_normalized(
                module, settings["spec_norm_bound"], settings["spec_norm_iteration"]
            )
    if settings.get("use_gp_layer", True):
        network.fc = RandomFeatureGaussianProcess(
            head.in_features, head.out_features, **gp_arguments(settings)
        ).to(head.weight.device)
    return network


def checkpoint_of(
    method: str, networks: Sequence[nn.Module], data: TextDataset, **settings: Any
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(tensors, metadata)`` for ``checkpoint.safetensors``: one network's weights as they
    are, several as ``member<i>.<name>``; the tokenizer, classes and ``settings`` in the
    metadata."""
    if len(networks) == 1:
        tensors = dict(networks[0].state_dict())
    else:
        tensors = {
            f"member{i}.{name}": value
            for i, network in enumerate(networks)
            for name, value in network.state_dict().items()
        }
    architectures = [
        {"class": f"{type(n).__module__}.{type(n).__qualname__}", "kwargs": dict(n.config)}
        for n in networks
    ]
    metadata = {
        "method": method,
        "kind": "text",
        "num_networks": len(networks),
        "networks": architectures,
        "class_names": list(data.class_names),
        "tokenizer": data.tokenizer.to_str(),
        "max_length": data.max_length,
        "pad_id": data.pad_id,
        **settings,
    }
    return tensors, metadata


def load_networks(
    path: str | Path, device: torch.device | str = "cpu"
) -> tuple[list[nn.Module], dict[str, Any]]:
    """The networks saved in a text run directory (or its ``checkpoint.safetensors``), in eval
    mode on ``device``, and the checkpoint's metadata."""
    path = Path(path)
    file = path / "checkpoint.safetensors" if path.is_dir() else path
    tensors, metadata = load_checkpoint(file)
    if metadata.get("kind") != "text":
        raise CheckpointError(f"{file} is not a text-classifier checkpoint (no kind: text)")
    count = int(metadata["num_networks"])
    networks = []
    for i, architecture in enumerate(metadata["networks"]):
        prefix = f"member{i}." if count > 1 else ""
        state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        network = models.from_config(architecture["class"], architecture["kwargs"])
        if "sngp" in metadata:
            network = sngp_network(network, metadata["sngp"])
        target = network
        if "rank_one" in metadata:
            settings = metadata["rank_one"]
            network = batch_ensemble_model(
                network, settings["ensemble_size"], settings["fast_weight_init"]
            )
            target = network.network
        try:
            target.load_state_dict(state)
        except RuntimeError as err:
            raise CheckpointError(
                f"the weights in {file} do not fit its network {architecture['class']}: {err}"
            ) from None
        networks.append(network.to(device).eval())
    return networks, dict(metadata)


def load_predictor(path: str | Path, runtime: Runtime) -> tuple[PredictFn, dict[str, Any]]:
    """Rebuild the predictor saved in a text run directory."""
    networks, metadata = load_networks(path, runtime.device)
    pad = int(metadata["pad_id"])
    if "mc_samples" in metadata:
        predict = monte_carlo_dropout(networks[0], runtime, pad, int(metadata["mc_samples"]))
    elif "rank_one" in metadata:
        predict = rank_one_ensemble(networks[0], runtime, pad)
    elif len(networks) > 1:
        predict = ensemble(networks, runtime, pad)
    else:
        predict = single(networks[0], runtime, pad)
    return predict, metadata
