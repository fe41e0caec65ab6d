"""The evaluation harness: any classifier, every metric, one run directory.

``evaluate(predict_fn, dataset, ood=...)`` runs ``predict_fn`` (uint8 images, or padded token
ids of a text set, on the device -> class probabilities) over the test set and each OOD set, computes prediction quality (accuracy,
NLL, Brier), calibration (ECE, MCE, adaptive and classwise ECE), selective prediction (AURC,
AUGRC, accuracy at 90% coverage), the members' diversity where the method has members
(disagreement, average KL, cosine similarity, as robustness_metrics' AveragePairwiseDiversity),
OOD detection for every score the outputs allow (max probability, entropy, Dempster-Shafer from
logits, mutual information from members) and cost (latency after warm-up with device
synchronisation, parameters, peak memory), and writes the run-directory contract of DESIGN.md. Our baselines use it, and so can a researcher's own method.

Conventions: NLL is the mean per example in nats, exact from the logits (or the
log-probabilities an ensemble computes in log space) where the method gives them, else from the
probabilities with only an exact zero floored (``uqbench.metrics.nll``); ECE uses 15
equal-width bins on the top label; OOD detection treats in-distribution as positive
(``auroc``, ``aupr_in``, ``fpr95``) except ``aupr_out`` (average precision) and
``tnr_at_95_tpr`` (Uncertainty Baselines' ``(1-fpr)@95tpr``), which take OOD as positive;
``ood/<set>/<metric>`` uses the max probability and ``ood/<set>/<score>/<metric>`` the other
scores.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from uqbench import metrics
from uqbench.data.corrupted import CorruptionSuite
from uqbench.metrics.latency import latency_record
from uqbench.metrics.ood_scores import ood_scores
from uqbench.training.divergence import DivergedError
from uqbench.training.environment import describe_device, peak_memory_mb
from uqbench.training.progress import Progress, format_seconds
from uqbench.training.report import format_table
from uqbench.training.rundir import RunDirectory, build_summary, check_output_dir

PredictOutput = torch.Tensor | Mapping[str, torch.Tensor]
OUTPUT_KEYS = {"probs", "logits", "log_probs", "member_probs"}
PredictFn = Callable[[torch.Tensor], PredictOutput]
DEFAULT_SCORE = "max_prob"
COVERAGE = 0.9
EVALUATION_DELAY = 10.0  # seconds: evaluations that finish sooner print no progress
LATENCY_WARMUP, LATENCY_REPEATS = 2, 5


@dataclass
class Predictions:
    """What a method predicted on one image set, float32 on the CPU: ``probs`` ``(N, K)``, and
    where the method has them ``logits`` ``(N, K)``, ``log_probs`` ``(N, K)`` (the log of
    ``probs`` computed in log space, e.g. an ensemble's log-mean-exp of member log-softmaxes)
    and ``member_probs`` ``(M, N, K)``."""

    probs: np.ndarray
    logits: np.ndarray | None = None
    member_probs: np.ndarray | None = None
    log_probs: np.ndarray | None = None

    def scores(self) -> dict[str, np.ndarray]:
        """OOD scores (higher = more in-distribution) that these outputs allow."""
        return ood_scores(self.probs, logits=self.logits, member_probs=self.member_probs)

    def log_probabilities(self) -> np.ndarray | None:
        """Exact log-probabilities where the outputs allow them (``log_probs``, else
        ``logits``; both are valid logits for ``metrics.nll_from_logits``), else ``None``."""
        return self.log_probs if self.log_probs is not None else self.logits

    def arrays(self) -> dict[str, np.ndarray]:
        out = {"probs": self.probs}
        for key in ("logits", "log_probs", "member_probs"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


def evaluation_progress(total: int, description: str, quiet: bool) -> Progress:
    """A progress line over ``total`` images for an evaluation: silent unless it runs longer than
    :data:`EVALUATION_DELAY` seconds (or ``quiet``)."""
    return Progress(total, description, quiet=quiet, delay=EVALUATION_DELAY, unit="images")


def _counted(predict_fn: PredictFn, progress: Progress, label: str) -> PredictFn:
    """``predict_fn`` that also counts the images of each call on ``progress``."""

    def predict_and_count(images: torch.Tensor) -> PredictOutput:
        out = predict_fn(images)
        progress.advance(images.shape[0], label)
        return out

    return predict_and_count


def _as_output(value: PredictOutput, batch: int) -> dict[str, torch.Tensor]:
    """Check one call's output and bring it to a dict of float32 CPU tensors."""
    out = dict(value) if isinstance(value, Mapping) else {"probs": value}
    unknown = set(out) - OUTPUT_KEYS
    if unknown or "probs" not in out:
        raise ValueError(
            "predict_fn must return class probabilities (N, K) or a dict with 'probs' and "
            "optionally 'logits' (N, K), 'log_probs' (N, K) and 'member_probs' (M, N, K); got "
            f"keys {sorted(out)}"
        )
    result = {}
    for key, tensor in out.items():
        tensor = torch.as_tensor(tensor)
        if tensor.dtype == torch.bfloat16:
            raise ValueError(
                f"predict_fn returned {key} in bf16: compute probabilities from float32 logits "
                "(DESIGN.md), e.g. logits.float().softmax(-1)"
            )
        expected = 3 if key == "member_probs" else 2
        rows = tensor.shape[1] if key == "member_probs" and tensor.dim() == 3 else tensor.shape[0]
        if tensor.dim() != expected or rows != batch:
            raise ValueError(
                f"predict_fn returned {key} of shape {tuple(tensor.shape)} for a batch of {batch} "
                f"images; expected {'(M, N, K)' if expected == 3 else '(N, K)'} with N = {batch}"
            )
        tensor = tensor.detach().float().cpu()
        if not torch.isfinite(tensor).all():
            raise DivergedError(
                f"predict_fn returned non-finite {key} ({int((~torch.isfinite(tensor)).sum())} "
                "values are NaN or infinite): the model diverged or overflowed; nothing was "
                "written. Retrain with a lower --learning_rate"
            )
        result[key] = tensor
    return result


def collect(
    predict_fn: PredictFn,
    images: torch.Tensor,
    device: torch.device,
    batch_size: int = 500,
    *,
    progress: Progress | None = None,
    label: str = "predicting",
    quiet: bool = False,
) -> Predictions:
    """Run ``predict_fn`` over uint8 ``images`` in batches (moved to ``device``).

    Progress counts images on ``progress`` (with ``label`` as its status) when given, else on a
    progress line of its own named ``label`` that stays silent for the first
    :data:`EVALUATION_DELAY` seconds, so only long predictions report; ``quiet`` silences it."""
    if images.shape[0] == 0:
        raise ValueError("no images to evaluate (an empty set)")
    status = label
    if progress is None:
        progress, status = evaluation_progress(images.shape[0], label, quiet), ""
    parts: dict[str, list[torch.Tensor]] = {}
    with torch.no_grad():
        for start in range(0, images.shape[0], batch_size):
            batch = images[start : start + batch_size].to(device, non_blocking=True)
            for key, value in _as_output(predict_fn(batch), batch.shape[0]).items():
                parts.setdefault(key, []).append(value)
            progress.advance(batch.shape[0], status)
    joined = {
        key: torch.cat(values, dim=1 if key == "member_probs" else 0).numpy()
        for key, values in parts.items()
    }
    return Predictions(
        joined["probs"], joined.get("logits"), joined.get("member_probs"), joined.get("log_probs")
    )


def nll(probs: np.ndarray, labels: np.ndarray, log_probs: np.ndarray | None = None) -> float:
    """NLL by the harness's convention: exact from ``log_probs`` (log-probabilities or logits)
    when given, else from ``probs`` with only an exact zero floored."""
    if log_probs is None:
        return metrics.nll(probs, labels)
    return metrics.nll_from_logits(log_probs, labels)


def classification_metrics(
    probs: np.ndarray,
    labels: np.ndarray,
    prefix: str = "test",
    log_probs: np.ndarray | None = None,
) -> dict[str, float]:
    """Prediction, calibration and selective-prediction metrics of ``probs`` ``(N, K)``. NLL is
    exact from ``log_probs`` (log-probabilities or logits, see
    :meth:`Predictions.log_probabilities`) when given, else from ``probs`` (an exact zero
    floored at the smallest float32)."""
    return {
        f"{prefix}/accuracy": metrics.accuracy(probs, labels),
        f"{prefix}/nll": nll(probs, labels, log_probs),
        f"{prefix}/brier": metrics.brier(probs, labels),
        f"{prefix}/ece": metrics.ece(probs, labels),
        f"{prefix}/mce": metrics.mce(probs, labels),
        f"{prefix}/adaptive_ece": metrics.adaptive_ece(probs, labels),
        f"{prefix}/classwise_ece": metrics.classwise_ece(probs, labels),
        f"{prefix}/aurc": metrics.aurc(probs, labels),
        f"{prefix}/augrc": metrics.augrc(probs, labels),
        f"{prefix}/accuracy_at_90": metrics.accuracy_at_coverage(probs, labels, COVERAGE),
    }


def ood_metrics(
    scores_in: Mapping[str, np.ndarray], scores_out: Mapping[str, np.ndarray], name: str
) -> dict[str, float]:
    """AUROC, AUPR (in and out), FPR95 and UB's TNR at 95% TPR of every score, for OOD set
    ``name``."""
    out = {}
    for score in scores_in:
        if score not in scores_out:
            continue
        prefix = f"ood/{name}" if score == DEFAULT_SCORE else f"ood/{name}/{score}"
        a, b = scores_in[score], scores_out[score]
        out[f"{prefix}/auroc"] = metrics.ood_auroc(a, b)
        out[f"{prefix}/aupr_in"] = metrics.ood_aupr_in(a, b)
        out[f"{prefix}/aupr_out"] = metrics.ood_aupr_out(a, b)
        out[f"{prefix}/fpr95"] = metrics.fpr_at_95_tpr(a, b)
        out[f"{prefix}/tnr_at_95_tpr"] = metrics.tnr_at_95_tpr(a, b)
    return out


def diversity_metrics(member_probs: np.ndarray, prefix: str = "test") -> dict[str, float]:
    """The members' pairwise diversity, ``<prefix>/diversity/{disagreement, average_kl,
    cosine_similarity}``, from ``member_probs`` ``(M, N, K)``; empty for fewer than 2 members."""
    if member_probs.shape[0] < 2:
        return {}
    return {
        f"{prefix}/diversity/disagreement": metrics.disagreement(member_probs),
        f"{prefix}/diversity/average_kl": metrics.average_kl(member_probs),
        f"{prefix}/diversity/cosine_similarity": metrics.cosine_similarity(member_probs),
    }


def member_metrics(
    member_probs: np.ndarray, labels: np.ndarray, prefix: str = "test"
) -> dict[str, float]:
    """Each member's own accuracy and NLL averaged over members,
    ``<prefix>/member_mean/{accuracy, nll}``; empty for fewer than 2 members."""
    if member_probs.shape[0] < 2:
        return {}
    return {
        f"{prefix}/member_mean/accuracy": metrics.member_mean_accuracy(member_probs, labels),
        f"{prefix}/member_mean/nll": metrics.member_mean_nll(member_probs, labels),
    }


def ood_inputs(ood_set: Any) -> torch.Tensor:
    """What an OOD set holds: ``inputs`` (text sets' token ids), else ``images``."""
    inputs = getattr(ood_set, "inputs", None)
    return inputs if inputs is not None else ood_set.images


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def evaluate(
    predict_fn: PredictFn,
    dataset: Any,
    *,
    ood: Sequence[Any] = (),
    output_dir: str | Path | None = None,
    method: str = "custom",
    overwrite: bool = False,
    device: str | torch.device | None = None,
    batch_size: int = 500,
    params: int | None = None,
    train_seconds: float | None = None,
    history: Sequence[Mapping[str, Any]] = (),
    flag_lines: Sequence[str] | None = None,
    checkpoint: tuple[Mapping[str, torch.Tensor], Mapping[str, Any]] | None = None,
    seed: int | None = None,
    extra: Mapping[str, Any] | None = None,
    measure_latency: bool = True,
    latency: Mapping[str, Any] | None = None,
    corrupted: CorruptionSuite | None = None,
    table: bool | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Evaluate a classifier on ``dataset``'s test split and ``ood`` sets; returns the summary.

    ``predict_fn(inputs)`` gets a batch of the set's inputs on ``device`` (uint8 images
    ``(B, C, H, W)``, or int64 token ids ``(B, L)`` padded with the set's pad id) and returns class
    probabilities ``(B, K)`` (float32 or float64), or a dict with ``probs`` and optionally
    ``logits`` ``(B, K)`` (adds the Dempster-Shafer OOD score; NLL is then exact from them),
    ``log_probs`` ``(B, K)`` (the log of ``probs`` computed in log space; NLL from them) and
    ``member_probs`` ``(M, B, K)`` (adds mutual information and, for 2 or more members, the
    diversity metrics). Non-finite outputs are an error
    (:class:`~uqbench.training.divergence.DivergedError`). ``dataset`` is an image set from
    ``uqbench.data.get_images`` or a text set from ``uqbench.data.get_text`` (``x_test``,
    ``y_test``, ``name``, ``source``, ``data_hash``, ``num_classes``); ``ood`` holds OOD sets
    (``name``, ``description`` and ``images`` or ``inputs``): ``uqbench.data.ood``'s images, or
    a text set's ``ood_test`` / ``ood_val``.
    With ``output_dir`` the run directory is written atomically (``flags.txt``,
    ``summary.json``, ``history.jsonl``, ``predictions/test.npz`` and
    ``predictions/ood_<set>.npz``, and ``checkpoint.safetensors`` when ``checkpoint=(tensors,
    metadata)`` is given); an existing non-empty directory is refused unless ``overwrite``.
    ``corrupted`` (a :class:`~uqbench.data.corrupted.CorruptionSuite`) adds accuracy, NLL and
    ECE under each corruption and severity, aggregated as Uncertainty Baselines does
    (``uqbench.training.robustness``), and ``predictions/corrupted_<type>_<severity>.npz``.
    ``latency`` takes a record already measured by ``uqbench.metrics.latency.latency_record``
    (e.g. for a latency constraint) instead of measuring again. An evaluation that runs longer
    than :data:`EVALUATION_DELAY` seconds reports progress on stderr (images predicted, the
    latency calls included); ``quiet`` silences it and, unless ``table`` says otherwise, the
    result table printed at the end.
    """
    if not callable(predict_fn):
        raise ValueError("predict_fn must be a function from a batch of inputs to probabilities")
    if output_dir is not None:
        check_output_dir(output_dir, overwrite)
    target = torch.device(device) if device is not None else dataset.x_test.device
    start = time.perf_counter()
    labels = dataset.y_test.cpu().numpy()
    sample_size = min(batch_size, dataset.x_test.shape[0])
    timed = latency is None and measure_latency
    progress = evaluation_progress(
        dataset.x_test.shape[0]
        + sum(ood_inputs(s).shape[0] for s in ood)
        + (corrupted.num_images if corrupted is not None else 0)
        + ((LATENCY_WARMUP + LATENCY_REPEATS) * sample_size if timed else 0),
        f"evaluating {method} on {dataset.name}",
        quiet,
    )
    test = collect(
        predict_fn, dataset.x_test, target, batch_size, progress=progress, label="test set"
    )
    if test.probs.shape[1] != dataset.num_classes:
        raise ValueError(
            f"predict_fn gives {test.probs.shape[1]} classes but {dataset.name} has "
            f"{dataset.num_classes}"
        )
    results = classification_metrics(test.probs, labels, log_probs=test.log_probabilities())
    if test.member_probs is not None:
        results.update(diversity_metrics(test.member_probs))
        results.update(member_metrics(test.member_probs, labels))
    scores_in = test.scores()
    ood_predictions: dict[str, Predictions] = {}
    for ood_set in ood:
        ood_predictions[ood_set.name] = collect(
            predict_fn,
            ood_inputs(ood_set),
            target,
            batch_size,
            progress=progress,
            label=f"OOD set {ood_set.name}",
        )
        results.update(ood_metrics(scores_in, ood_predictions[ood_set.name].scores(), ood_set.name))
    corrupted_predictions: dict[str, tuple[Predictions, np.ndarray]] = {}
    if corrupted is not None and len(corrupted):
        from uqbench.training.robustness import evaluate_corrupted  # it builds on this module

        values, corrupted_predictions = evaluate_corrupted(
            predict_fn, corrupted, target, batch_size, progress=progress
        )
        results.update(values)
    eval_seconds = time.perf_counter() - start
    if latency is not None:
        latency = dict(latency)
        results["cost/ms_per_example"] = float(latency["ms_per_example"])
    elif measure_latency:
        sample = dataset.x_test[:sample_size].to(target)
        with torch.no_grad():
            latency = latency_record(
                _counted(predict_fn, progress, "latency"),
                sample,
                warmup=LATENCY_WARMUP,
                repeats=LATENCY_REPEATS,
                device=target,
            )
        results["cost/ms_per_example"] = latency["ms_per_example"]
    if train_seconds is not None:
        results["cost/train_seconds"] = float(train_seconds)
    if params is not None:
        results["cost/params"] = float(params)
    results["cost/peak_memory_mb"] = peak_memory_mb(target)
    summary = build_summary(
        kind="baseline",
        method=method,
        dataset={
            "name": dataset.name,
            "root": Path(str(dataset.source)).name,
            "source": str(dataset.source),
        },
        data_hash=dataset.data_hash,
        seed=seed,
        split="test",
        device=describe_device(target),
        metrics=results,
        timings={
            **({"train_seconds": float(train_seconds)} if train_seconds is not None else {}),
            "eval_seconds": eval_seconds,
        },
        params=params,
        peak_memory_mb=results["cost/peak_memory_mb"],
        extra={
            "ood_sets": {s.name: s.description for s in ood},
            **({"corruptions": corrupted.describe()} if corrupted is not None else {}),
            **({"latency": latency} if latency else {}),
            **dict(extra or {}),
        },
    )
    if output_dir is not None:
        _write(
            output_dir,
            overwrite,
            summary,
            test,
            labels,
            scores_in,
            ood_predictions,
            corrupted_predictions,
            history,
            flag_lines,
            checkpoint,
        )
    if table if table is not None else not quiet:
        print(result_table(summary))
    return summary


def _write(
    output_dir: str | Path,
    overwrite: bool,
    summary: Mapping[str, Any],
    test: Predictions,
    labels: np.ndarray,
    scores_in: Mapping[str, np.ndarray],
    ood_predictions: Mapping[str, Predictions],
    corrupted_predictions: Mapping[str, tuple[Predictions, np.ndarray]],
    history: Sequence[Mapping[str, Any]],
    flag_lines: Sequence[str] | None,
    checkpoint: tuple[Mapping[str, torch.Tensor], Mapping[str, Any]] | None,
) -> None:
    with RunDirectory(output_dir, overwrite=overwrite) as run:
        run.write_flags(
            flag_lines if flag_lines is not None else ["# evaluated with uqbench.evaluate()"]
        )
        run.write_text("history.jsonl", "")
        for record in history:
            run.append_history(record)
        run.save_predictions(
            "test",
            labels=labels,
            **test.arrays(),
            **{f"score_{k}": v for k, v in scores_in.items()},
        )
        for name, predictions in ood_predictions.items():
            run.save_predictions(
                f"ood_{_safe_name(name)}",
                **predictions.arrays(),
                **{f"score_{k}": v for k, v in predictions.scores().items()},
            )
        for name, (predictions, set_labels) in corrupted_predictions.items():
            run.save_predictions(f"corrupted_{name}", labels=set_labels, **predictions.arrays())
        if checkpoint is not None:
            run.save_checkpoint(*checkpoint)
        run.write_summary(summary)
        run.commit()


def result_table(summary: Mapping[str, Any]) -> str:
    """Test metrics, per OOD set the max-probability AUROC / FPR95, and the mean corrupted
    accuracy / NLL / ECE, as a text table."""
    values = summary["metrics"]
    rows = [
        [key.split("/", 1)[1], f"{values[key]:.4f}"]
        for key in (
            "test/accuracy",
            "test/nll",
            "test/brier",
            "test/ece",
            "test/aurc",
        )
        if key in values
    ]
    for name in summary.get("ood_sets", {}):
        for key in (f"ood/{name}/auroc", f"ood/{name}/fpr95"):
            if key in values:
                rows.append([key, f"{values[key]:.4f}"])
    for key in ("corrupted/mean/accuracy", "corrupted/mean/nll", "corrupted/mean/ece"):
        if key in values:
            rows.append([key, f"{values[key]:.4f}"])
    if "cost/ms_per_example" in values:
        rows.append(["ms per example", f"{values['cost/ms_per_example']:.4f}"])
    if "train_seconds" in summary.get("timings", {}):
        rows.append(["train time", format_seconds(summary["timings"]["train_seconds"])])
    return format_table(
        ["", "value"], rows, title=f"{summary['method']} / {summary['dataset']['name']}"
    )
