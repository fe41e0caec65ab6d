"""A saved model that predicts from raw input: ``uqbench.load_run(path)``.

    model = uqbench.load_run("runs/search-digits/best_model.safetensors")
    probs = model.predict(images)            # raw uint8 (N, C, H, W) -> (N, K) probabilities

``path`` is a run directory (an ``image/`` or ``uci/`` baseline, a search trial or ensemble) or
a checkpoint file (``uqbench search export``'s). The model carries its preprocessing: images are
normalised with the training images' mean and std (and test-time flips where the run used
them); table rows are one-hot encoded and standardised as the run's training rows were. A
classifier returns float32 probabilities, a regression model ``(mean, variance)`` in the
target's units (float64). Both go through the code that computed the run's recorded test
metrics, so on the run's raw test inputs they reproduce them exactly.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from uqbench.data.preprocessing import TablePreprocessing
from uqbench.training.checkpoint import CheckpointError, load_checkpoint

EVAL_BATCH = 500  # the evaluation harness's batch size


class LoadedRun:
    """A run's model with its preprocessing; :meth:`predict` takes raw inputs."""

    def __init__(self, kind: str, task: str, metadata: dict[str, Any], predict: Any) -> None:
        self.kind, self.task, self.metadata = kind, task, metadata
        self._predict = predict

    @property
    def class_names(self) -> list[str]:
        """The classes, in the order of the probabilities' columns (empty for regression)."""
        return list(self.metadata.get("class_names") or [])

    def predict(self, inputs: Any, split: int | None = None) -> Any:
        """Probabilities ``(N, K)`` for a classifier, ``(mean, variance)`` for regression, from
        raw uint8 images ``(N, C, H, W)`` or raw table rows. ``split`` picks the split's
        networks of a ``uci/`` run trained on several splits."""
        return self._predict(inputs, split)

    def __repr__(self) -> str:
        return f"LoadedRun({self.metadata.get('method')!r}, {self.kind}, {self.task})"


def load_run(path: str | Path, device: str | torch.device = "cpu") -> LoadedRun:
    """The model of run directory or checkpoint ``path``, predicting from raw input."""
    import uqbench.search.blocks  # noqa: F401  (registers SearchNet, the search's networks)

    path = Path(path)
    file = path / "checkpoint.safetensors" if path.is_dir() else path
    tensors, metadata = load_checkpoint(file)
    if "preprocessing" in metadata and "splits" in metadata["preprocessing"]:
        return _uci_run(tensors, metadata, torch.device(device))
    if "preprocessing" in metadata:
        return _table_run(tensors, metadata, torch.device(device))
    if "image_shape" in metadata:
        return _image_run(file, _temperature(file), torch.device(device))
    if metadata.get("kind") == "text":
        raise CheckpointError(
            f"{file} is a text run: load_run applies image and table models only; rebuild its "
            "predictor with uqbench.training.text_predictors.load_predictor(run_dir, runtime) "
            "(it takes padded token ids), or re-evaluate it with `uqbench eval`"
        )
    raise CheckpointError(
        f"{file} carries no preprocessing (it predates uqbench.load_run, or it is not a model "
        "checkpoint): rerun the baseline or search to get one that does"
    )


def _temperature(file: Path) -> float | None:
    """The temperature a run was scaled with (``summary.json`` beside its checkpoint)."""
    summary = file.parent / "summary.json"
    if not summary.is_file():
        return None
    return json.loads(summary.read_text()).get("temperature")


def _image_run(file: Path, temperature: float | None, device: torch.device) -> LoadedRun:
    from uqbench.training.classifier import Runtime
    from uqbench.training.evaluation import collect
    from uqbench.training.image_task import tempered
    from uqbench.training.predictors import load_predictor

    runtime = Runtime.for_device(device, precision="fp32")
    predict_fn, metadata = load_predictor(file, runtime)
    if temperature:
        predict_fn = tempered(predict_fn, float(temperature))
        metadata["temperature"] = float(temperature)
    shape = tuple(metadata["image_shape"])

    def predict(images: Any, split: int | None) -> np.ndarray:
        batch = torch.as_tensor(images)
        if batch.dtype != torch.uint8 or batch.dim() != 4 or tuple(batch.shape[1:]) != shape:
            raise ValueError(
                f"pass raw uint8 images of shape (N, {', '.join(map(str, shape))}), as read from "
                f"disk (the model normalises them itself); got {batch.dtype} "
                f"{tuple(batch.shape)}"
            )
        return collect(predict_fn, batch, device, EVAL_BATCH, quiet=True).probs

    return LoadedRun("image", "classification", metadata, predict)


def _networks(tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> list[nn.Module]:
    from uqbench import models

    count = int(metadata.get("num_networks", 1))
    architectures = (
        metadata.get("networks")
        or [{"class": metadata["class"], "kwargs": metadata["kwargs"]}] * count
    )
    networks = []
    for i, architecture in enumerate(architectures):
        prefix = f"member{i}." if count > 1 else ""
        state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        network = models.from_config(architecture["class"], architecture["kwargs"])
        network.load_state_dict(state)
        networks.append(network.eval())
    return networks


def _table_run(
    tensors: dict[str, torch.Tensor], metadata: dict[str, Any], device: torch.device
) -> LoadedRun:
    from uqbench.training.tables import table_outputs

    prep = TablePreprocessing.from_record(metadata["preprocessing"])
    networks = [n.to(device) for n in _networks(tensors, metadata)]

    def predict(rows: Any, split: int | None) -> Any:
        x = torch.from_numpy(prep.transform(rows)).to(device)
        out = table_outputs(networks, x, prep)
        return out["probs"] if prep.task == "classification" else (out["mean"], out["variance"])

    return LoadedRun("table", prep.task, metadata, predict)


def _uci_run(
    tensors: dict[str, torch.Tensor], metadata: dict[str, Any], device: torch.device
) -> LoadedRun:
    from uqbench import metrics
    from uqbench.layers.gaussian_head import gaussian_mean_variance

    if metadata.get("head") != "gaussian_mean_variance":
        raise CheckpointError(
            f"load_run predicts with mean-variance networks; {metadata.get('method')} uses "
            f"head {metadata.get('head')!r} (Monte-Carlo sampling), which it does not rebuild"
        )
    from uqbench.models.mlp import MLP

    model = MLP(**metadata["kwargs"])
    model.load_state_dict(tensors)
    model = model.to(device).eval()
    splits: Sequence[dict[str, Any]] = metadata["preprocessing"]["splits"]
    members = int(metadata.get("members_per_split", 1))

    def predict(rows: Any, split: int | None) -> tuple[np.ndarray, np.ndarray]:
        ids = [s["split"] for s in splits]
        if split is None and len(ids) == 1:
            split = ids[0]
        if split not in ids:
            raise ValueError(f"pass split= one of {ids}: the run trained networks for each")
        position = ids.index(split)
        prep = TablePreprocessing.from_record({"task": "regression", **splits[position]})
        x = torch.from_numpy(prep.transform(rows)).to(device)
        with torch.no_grad():
            mean, var = gaussian_mean_variance(model(x))
        chosen = slice(position * members, (position + 1) * members)
        means, variances = prep.to_original(
            mean[chosen].cpu().double().numpy(), var[chosen].cpu().double().numpy()
        )
        return metrics.mixture_mean_variance(means, variances)

    return LoadedRun("table", "regression", metadata, predict)
