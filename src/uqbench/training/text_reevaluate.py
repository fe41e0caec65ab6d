"""``uqbench eval RUN_DIR`` for a text run: the predictor and tokenizer rebuilt from its
checkpoint, evaluated again on its data set or another text set with the same intents."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from uqbench import data
from uqbench.data.tokenize import tokenizer_from_json
from uqbench.training.classifier import Runtime
from uqbench.training.environment import select_device
from uqbench.training.evaluation import evaluate
from uqbench.training.image_task import fit_temperature_scaling, tempered
from uqbench.training.text_predictors import load_predictor
from uqbench.training.text_task import VALIDATION_SEED


def ood_sets(dataset: data.TextDataset, names: Sequence[str]) -> list[Any]:
    """The text set's own out-of-scope sets named in ``names`` (``oos_test``, ``oos_val``)."""
    own = {s.name: s for s in (dataset.ood_val, dataset.ood_test) if s is not None}
    chosen = list(names)
    unknown = [n for n in chosen if n not in ("oos_val", "oos_test")]
    if unknown:
        raise ValueError(
            f"--ood={','.join(unknown)}: a text run is evaluated on its data set's out-of-scope "
            "queries, oos_test (the default) and oos_val"
        )
    return [own[n] for n in chosen if n in own]


def reevaluate_text(
    run_dir: Path,
    summary: Mapping[str, Any],
    *,
    dataset: str | None = None,
    data_dir: str | None = None,
    ood: Sequence[str] = ("oos_test",),
    output_dir: Path,
    overwrite: bool = False,
    device: str = "auto",
    batch_size: int = 1000,
    temperature_scaling: bool = False,
    quiet: bool = False,
) -> dict[str, Any]:
    """Evaluate the text classifier saved in ``run_dir`` on ``dataset`` (default: its own),
    tokenised with the run's own tokenizer; writes ``output_dir`` and returns its summary."""
    runtime = Runtime.for_device(select_device(device))
    predict, metadata = load_predictor(run_dir, runtime)
    if summary.get("temperature"):
        if temperature_scaling:
            raise ValueError(f"{run_dir} is already temperature-scaled; evaluate it without")
        predict = tempered(predict, float(summary["temperature"]))
    name = dataset or summary["dataset"].get("source") or summary["dataset"]["name"]
    texts = data.get_text(
        name,
        data_dir=data_dir,
        validation_fraction=float(summary.get("validation_fraction") or 0.1),
        seed=VALIDATION_SEED,
        max_length=int(metadata["max_length"]),
        tokenizer=tokenizer_from_json(metadata["tokenizer"]),
    )
    if list(texts.class_names) != list(metadata["class_names"]):
        raise ValueError(
            f"{run_dir} predicts {len(metadata['class_names'])} intents, {texts.name} has other "
            f"classes ({len(texts.class_names)}): evaluate on a set with the same intents"
        )
    texts = texts.to(runtime.device)
    calibration: dict[str, Any] = {}
    if temperature_scaling:
        if len(texts.y_val) == 0:
            raise ValueError(f"{texts.name} has no validation part to fit a temperature on")
        predict, calibration = fit_temperature_scaling(
            predict,
            texts.x_val,
            texts.y_val.cpu().numpy(),
            runtime.device,
            label=f"eval {run_dir.name}: validation predictions",
            quiet=quiet,
        )
    with torch.no_grad():
        result = evaluate(
            predict,
            texts,
            ood=ood_sets(texts, ood),
            output_dir=output_dir,
            method=summary.get("method", metadata["method"]),
            overwrite=overwrite,
            device=runtime.device,
            batch_size=batch_size,
            params=summary.get("params"),
            flag_lines=[f"# uqbench eval {run_dir}", f"--dataset={name}"],
            seed=summary.get("seed"),
            extra={
                "evaluated_from": str(run_dir.resolve()),
                "temperature": summary.get("temperature"),
                **calibration,
                "posthoc": "temperature_scaling" if temperature_scaling else None,
                "classes": list(texts.class_names),
            },
            quiet=quiet,
        )
    if not quiet:
        print(f"eval: run directory {output_dir.resolve()}")
    return result
