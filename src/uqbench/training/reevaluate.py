"""``uqbench eval RUN_DIR``: evaluate a saved image classifier again, on other data or OOD sets
(a text run goes to ``text_reevaluate``).

The predictor is rebuilt from the run's checkpoint (networks, normalisation, Monte-Carlo samples,
test-time flips) and, if the run was temperature-scaled, its fitted temperature; the result is a
new run directory of the same format, so ``uqbench report`` can put both side by side.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from uqbench import data
from uqbench.data import ood as ood_sets
from uqbench.data.corrupted import (
    DEFAULT_COUNT,
    SEVERITIES,
    CorruptionSuite,
    resolve_corruptions,
    resolve_severities,
)
from uqbench.training.classifier import Runtime
from uqbench.training.environment import select_device
from uqbench.training.evaluation import evaluate
from uqbench.training.image_task import VALIDATION_SEED, fit_temperature_scaling, tempered
from uqbench.training.predictors import load_predictor


def _summary(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "summary.json"
    if not path.is_file():
        raise ValueError(f"{run_dir} is not a run directory: it has no summary.json")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(
            f"{path} is not valid JSON ({err}); the run directory is damaged"
        ) from None


def _validation_fraction(run_dir: Path, summary: dict[str, Any]) -> float:
    """The validation carve-out of the run, which temperature scaling needs to be non-empty."""
    fraction = float(summary.get("validation_fraction") or 0.0)
    if fraction <= 0:
        raise ValueError(
            f"--temperature_scaling fits T on the run's validation set, but {run_dir} trained on "
            "every training image (validation_fraction 0): train it with --validation_fraction "
            "> 0 to calibrate it"
        )
    return fraction


def default_output_dir(run_dir: Path, summary: dict[str, Any]) -> Path:
    """Where ``uqbench eval`` writes by default: ``RUN_DIR-eval-<time>`` beside a run, and
    ``SEARCH-evals/trial<id>-<time>`` beside the search for a search trial (never inside the
    search's ``trials/`` folder, which holds the trials only)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = run_dir.resolve()
    search = run_dir.parent.parent
    # A trial of a search is SEARCH/trials/<id> beside SEARCH/search.db (uqbench.search.runner).
    if (
        summary.get("method") == "search/trial"
        and run_dir.parent.name == "trials"
        and (search / "search.db").is_file()
    ):
        return search.parent / f"{search.name}-evals" / f"trial{run_dir.name}-{stamp}"
    return run_dir.parent / f"{run_dir.name}-eval-{stamp}"


def seeded_by_run(function: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """Run ``function(run_dir, ...)`` with torch's random state seeded by the run's seed and
    restored afterwards: Monte-Carlo predictions (dropout masks, rank-1 samples) of one run are
    the same at every evaluation, and the caller's random state is left as it was."""

    @functools.wraps(function)
    def seeded(run_dir: str | Path, *args: Any, **kwargs: Any) -> dict[str, Any]:
        seed = int(_summary(Path(run_dir)).get("seed") or 0)
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            return function(run_dir, *args, **kwargs)

    return seeded


@seeded_by_run
def reevaluate(
    run_dir: str | Path,
    *,
    dataset: str | None = None,
    data_dir: str | None = None,
    ood: Sequence[str] | None = None,
    output_dir: str | Path | None = None,
    overwrite: bool = False,
    device: str = "auto",
    batch_size: int = 1000,
    corruptions: Sequence[str] = (),
    corruption_severities: Sequence[int] = SEVERITIES,
    corruption_images: int | None = DEFAULT_COUNT,
    cifar10c_dir: str | None = None,
    temperature_scaling: bool = False,
    quiet: bool = False,
) -> dict[str, Any]:
    """Evaluate the classifier saved in ``run_dir`` on ``dataset`` (default: the one it was
    trained on), the ``ood`` sets and, with ``corruptions`` (``all`` or names), its corrupted
    test images (``uqbench.data.corrupted``); writes a new run directory and returns its
    summary. ``ood`` None means ``uniform_noise`` for an image run, ``oos_test`` for a text
    run.

    If the run left classes out (``--holdout_classes``) and ``dataset`` has them, they are left
    out again and their test images become the OOD set ``holdout``.

    ``temperature_scaling`` fits a temperature post hoc on the run's own validation set (the
    same carve-out it was trained without), as ``--temperature_scaling`` would have during
    training: the scaled predictions are evaluated and T is recorded. Monte-Carlo draws are
    seeded by the run's seed, so evaluating a run twice gives the same predictions."""
    run_dir = Path(run_dir)
    summary = _summary(run_dir)
    if str(summary.get("method", "")).startswith("text/"):
        if resolve_corruptions(corruptions) or cifar10c_dir:
            raise ValueError(f"{run_dir} is a text run: image corruptions do not apply to it")
        from uqbench.training.text_reevaluate import reevaluate_text

        return reevaluate_text(
            run_dir,
            summary,
            dataset=dataset,
            data_dir=data_dir,
            ood=list(ood) if ood is not None else ["oos_test"],
            output_dir=Path(output_dir) if output_dir else default_output_dir(run_dir, summary),
            overwrite=overwrite,
            device=device,
            batch_size=batch_size,
            temperature_scaling=temperature_scaling,
            quiet=quiet,
        )
    ood = list(ood) if ood is not None else ["uniform_noise"]
    runtime = Runtime.for_device(select_device(device))
    predict, metadata = load_predictor(run_dir, runtime)
    if summary.get("temperature"):
        if temperature_scaling:
            raise ValueError(
                f"{run_dir} is already temperature-scaled (T = {summary['temperature']:.4g}); "
                "evaluate it without --temperature_scaling"
            )
        predict = tempered(predict, float(summary["temperature"]))
    name = dataset or summary["dataset"].get("source") or summary["dataset"]["name"]
    validation_fraction = _validation_fraction(run_dir, summary) if temperature_scaling else 0.0
    images = data.get_images(
        name,
        data_dir=data_dir,
        validation_fraction=validation_fraction,
        seed=VALIDATION_SEED,
    )
    if temperature_scaling and images.data_hash != summary.get("data_hash"):
        raise ValueError(
            f"--temperature_scaling fits T on the validation images of the data {run_dir} was "
            f"trained on; {images.name} is other data (hash {images.data_hash[:12]}, the run's "
            f"{str(summary.get('data_hash'))[:12]})"
        )
    trained_classes = list(metadata.get("class_names") or summary.get("classes") or [])
    held_out = [c for c in images.class_names if c not in trained_classes]
    sets = []
    if trained_classes and held_out and len(held_out) < len(images.class_names):
        images, holdout = ood_sets.hold_out_classes(images, held_out)
        sets.append(holdout)
    if list(images.class_names) != trained_classes and trained_classes:
        raise ValueError(
            f"{run_dir} predicts the classes {trained_classes}, but {images.name} has "
            f"{list(images.class_names)}: evaluate on a data set with the same classes"
        )
    if tuple(images.image_shape) != tuple(metadata.get("image_shape", images.image_shape)):
        raise ValueError(
            f"{run_dir} takes images of shape {tuple(metadata['image_shape'])}, {images.name} "
            f"has {tuple(images.image_shape)}"
        )
    extra, skipped = ood_sets.resolve_ood(list(ood), images, data_dir)
    sets.extend(extra)
    on_device = images.to(runtime.device)
    calibration: dict[str, Any] = {}
    if temperature_scaling:
        predict, calibration = fit_temperature_scaling(
            predict,
            on_device.x_val,
            on_device.y_val.cpu().numpy(),
            runtime.device,
            label=f"eval {run_dir.name}: validation predictions",
            quiet=quiet,
        )
        if not quiet:
            print(
                f"eval: temperature {calibration['temperature']:.3f} fitted on the validation set"
            )
    suite = None
    if resolve_corruptions(corruptions):
        suite = CorruptionSuite(
            on_device,
            tuple(resolve_corruptions(corruptions)),
            tuple(resolve_severities(corruption_severities)),
            count=corruption_images,
            cifar_c_dir=cifar10c_dir,
        )
        suite.check()
    out = Path(output_dir) if output_dir else default_output_dir(run_dir, summary)
    with torch.no_grad():
        result = evaluate(
            predict,
            on_device,
            ood=sets,
            corrupted=suite,
            output_dir=out,
            method=summary.get("method", metadata["method"]),
            overwrite=overwrite,
            device=runtime.device,
            batch_size=batch_size,
            params=summary.get("params"),
            flag_lines=[
                f"# uqbench eval {run_dir}",
                f"--dataset={name}",
                f"--ood={','.join(ood)}",
                *([f"--corruptions={','.join(suite.corruptions)}"] if suite else []),
                *(["--temperature_scaling"] if temperature_scaling else []),
            ],
            checkpoint=None,
            seed=summary.get("seed"),
            extra={
                "evaluated_from": str(run_dir.resolve()),
                "temperature": summary.get("temperature"),
                **calibration,
                "posthoc": "temperature_scaling" if temperature_scaling else None,
                "ood_skipped": skipped,
                "classes": list(images.class_names),
            },
            quiet=quiet,
        )
    if not quiet:
        print(f"eval: run directory {out.resolve()}")
    return result
