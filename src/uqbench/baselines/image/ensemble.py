"""Deep ensemble: M networks from different random initialisations, their softmax outputs averaged.

Lakshminarayanan, Pritzel & Blundell (2017); Uncertainty Baselines' "Deep Ensemble (4)". Each
member gets its own initialisation, data order and augmentation. Members small enough to share
the device train together as one vectorised module (``torch.func``, see
``uqbench.training.ensembles``), larger ones one after another. ``--members_from`` instead
combines networks already trained by ``image/deterministic`` runs (their run directories).

    uqbench run image/ensemble --dataset=digits --num_members=4
    uqbench run image/ensemble --dataset=digits --members_from=runs/a,runs/b,runs/c
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from absl import flags
from torch import nn

from uqbench.baselines import run_as_script
from uqbench.training import flags as common
from uqbench.training import image_task, predictors
from uqbench.training.ensembles import VectorizedEnsemble

MEMBERS_FROM = flags.DEFINE_list(
    "members_from",
    [],
    "Run directories of image/deterministic runs on the same data to combine, instead of "
    "training new members.",
)
VECTORIZE = flags.DEFINE_enum(
    "vectorize",
    "auto",
    ["auto", "yes", "no"],
    "Train the members together as one vectorised module. auto: on a CPU when all members hold "
    f"at most {20_000_000:,} parameters together; on a GPU one after another (torch.func.vmap "
    "does not apply bf16 autocast to convolutions).",
)
FLAGS_USED = (*common.IMAGE_FLAGS, common.NUM_MEMBERS, MEMBERS_FROM, VECTORIZE)
VECTORIZE_LIMIT = 20_000_000


def load_members(task: image_task.ImageTask, run_dirs: list[str]) -> tuple[list[nn.Module], float]:
    """The networks of earlier deterministic runs on this task's data, and their training time."""
    members, seconds = [], 0.0
    for run_dir in run_dirs:
        summary_path = Path(run_dir) / "summary.json"
        if not summary_path.is_file():
            raise ValueError(f"--members_from: {run_dir} is not a run directory (no summary.json)")
        summary = json.loads(summary_path.read_text())
        if summary.get("data_hash") != task.data.data_hash:
            raise ValueError(
                f"--members_from: {run_dir} was trained on other data ({summary['dataset']}, "
                f"hash {str(summary.get('data_hash'))[:12]}) than --dataset "
                f"({task.data.name}, {task.data.data_hash[:12]})"
            )
        if summary.get("classes") != list(task.data.class_names):
            raise ValueError(
                f"--members_from: {run_dir} has classes {summary.get('classes')}, this run "
                f"{list(task.data.class_names)} (use the same --holdout_classes)"
            )
        networks, metadata = predictors.load_networks(run_dir, task.runtime.device)
        if len(networks) != 1 or metadata["method"] == "image/dropout":
            raise ValueError(
                f"--members_from: {run_dir} is a {metadata['method']} run; combine single "
                "networks (image/deterministic runs)"
            )
        norm = (tuple(metadata["mean"]), tuple(metadata["std"]))
        if not np.allclose(norm, (task.data.mean, task.data.std), atol=1e-6):
            raise ValueError(
                f"--members_from: {run_dir} normalised its inputs differently (other "
                "--validation_fraction or --seed); use the settings of the member runs"
            )
        members.extend(networks)
        seconds += float(summary.get("timings", {}).get("train_seconds", 0.0))
    return members, seconds


def train_members(
    task: image_task.ImageTask, num_members: int
) -> tuple[list[nn.Module] | VectorizedEnsemble, list[dict], float]:
    """Train ``num_members`` fresh networks, together when they fit; returns them, the history
    and the training time."""
    networks = [task.build_model(seed_offset=i) for i in range(num_members)]
    params = sum(image_task.count_parameters(n) for n in networks)
    small = params <= VECTORIZE_LIMIT and task.runtime.device.type == "cpu"
    together = VECTORIZE.value == "yes" or (VECTORIZE.value == "auto" and small)
    if together:
        task.log(f"{task.method}: {num_members} members trained together (vectorised)")
        model = VectorizedEnsemble(networks)
        history, seconds = task.train(model)
        return model, history, seconds
    history, seconds = [], 0.0
    for i, network in enumerate(networks):
        records, member_seconds = task.train(
            network, seed_offset=i, label=f" member {i + 1}/{num_members}"
        )
        history.extend({"member": i, **record} for record in records)
        seconds += member_seconds
    return networks, history, seconds


def run() -> dict:
    """Train (or load) the members and evaluate their average; returns the run summary."""
    task = image_task.prepare_task("image/ensemble")
    data, recipe = task.data, task.recipe
    if MEMBERS_FROM.value:
        if len(MEMBERS_FROM.value) < 2:
            raise ValueError("--members_from needs at least two run directories")
        trained, train_seconds = load_members(task, MEMBERS_FROM.value)
        history: list[dict] = []
    else:
        num_members = common.value_or(common.NUM_MEMBERS, task.protocol.num_members)
        if num_members < 2:
            raise ValueError(f"--num_members must be at least 2, got {num_members}")
        trained, history, train_seconds = train_members(task, num_members)
    networks = trained.members() if isinstance(trained, VectorizedEnsemble) else trained
    norm = (data.mean, data.std)
    return image_task.finish_run(
        task,
        predictors.ensemble(trained, norm, task.runtime, recipe.test_flips),
        flag_lines=common.serialize(FLAGS_USED),
        history=history,
        train_seconds=train_seconds,
        params=sum(image_task.count_parameters(n) for n in networks),
        checkpoint=predictors.checkpoint_of(
            task.method,
            networks,
            norm=norm,
            image_shape=data.image_shape,
            class_names=data.class_names,
            flips=recipe.test_flips,
        ),
        extra={"num_members": len(networks), "members_from": MEMBERS_FROM.value},
    )


if __name__ == "__main__":
    run_as_script(run)
