"""Figures of a data set's groups, drawn per group from the runs' saved predictions (pooled over
seeds) or recorded metrics (mean ± standard error over seeds): reliability diagrams with bin
counts, risk-coverage curves, OOD score histograms and ROC curves, accuracy / NLL / ECE against
corruption severity (mean over types, and per type), and NLL against ensemble size."""

from __future__ import annotations

import textwrap

import numpy as np

from uqbench import metrics
from uqbench.analysis.aggregate import aggregate
from uqbench.analysis.grouping import Group
from uqbench.analysis.plotting import (
    PANEL,
    Figure,
    PredictionCache,
    chunks,
    close,
    render,
    slug,
    subplots,
)
from uqbench.analysis.recompute import parse_set

CORRUPTED_METRICS = ("accuracy", "nll", "ece")


def reliability(
    dataset: str, groups: list[Group], cache: PredictionCache, num_bins: int
) -> list[Figure]:
    """Accuracy against confidence in ``num_bins`` equal-width bins, with each bin's count."""
    pooled = {g.name: cache.pooled(g, "test", ("probs", "labels")) for g in groups}
    usable = [g for g in groups if pooled[g.name] is not None]
    figures = []
    for part, chunk in enumerate(chunks(usable)):
        fig, axes = subplots(
            2,
            len(chunk),
            figsize=(PANEL[0] * len(chunk), PANEL[1] * 1.4),
            squeeze=False,
            gridspec_kw={"height_ratios": [3, 1]},
        )
        edges = np.linspace(0, 1, num_bins + 1)
        for j, group in enumerate(chunk):
            probs, labels = pooled[group.name]["probs"], pooled[group.name]["labels"]
            confidence = probs.max(axis=1)
            correct = probs.argmax(axis=1) == labels
            bins = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, num_bins - 1)
            counts = np.bincount(bins, minlength=num_bins)
            hits = np.bincount(bins, weights=correct, minlength=num_bins)
            accuracy = np.divide(hits, counts, out=np.zeros(num_bins), where=counts > 0)
            centres = (edges[:-1] + edges[1:]) / 2
            top, bottom = axes[0, j], axes[1, j]
            top.bar(centres, accuracy, width=1 / num_bins, edgecolor="k", linewidth=0.4)
            top.plot([0, 1], [0, 1], "r--", linewidth=1)
            top.set(xlim=(0, 1), ylim=(0, 1), ylabel="accuracy")
            _title(top, group.name)
            ece = metrics.ece(probs, labels, num_bins)
            top.text(0.03, 0.9, f"ECE {ece:.4f}", transform=top.transAxes, fontsize=8)
            bottom.bar(centres, counts, width=1 / num_bins, color="grey")
            bottom.set(xlim=(0, 1), xlabel="confidence (top label)", ylabel="count")
        figures.append(
            Figure(
                slug(dataset, "reliability", str(part)),
                dataset,
                "Reliability diagrams",
                f"Test accuracy against top-label confidence in {num_bins} equal-width bins, "
                "predictions pooled over each group's runs; below, the examples per bin.",
                render(fig),
            )
        )
    return figures


def risk_coverage(dataset: str, groups: list[Group], cache: PredictionCache) -> list[Figure]:
    """Selective risk against coverage, one curve per group (pooled predictions)."""
    fig, ax = subplots(figsize=(PANEL[0] * 1.6, PANEL[1] * 1.2))
    drawn = 0
    for group in groups:
        pooled = cache.pooled(group, "test", ("probs", "labels"))
        if pooled is None:
            continue
        coverage, risk = metrics.risk_coverage_curve(pooled["probs"], pooled["labels"])
        aurc = metrics.aurc(pooled["probs"], pooled["labels"])
        ax.step(coverage, risk, where="post", label=f"{_short(group.name)} (AURC {aurc:.4f})")
        drawn += 1
    if not drawn:
        close(fig)
        return []
    ax.set(xlabel="coverage", ylabel="risk (error among accepted)", xlim=(0, 1))
    ax.legend(fontsize=7)
    return [
        Figure(
            slug(dataset, "risk-coverage"),
            dataset,
            "Risk-coverage curves",
            "Error rate among the accepted test examples as the least confident are rejected "
            "(max probability), predictions pooled over each group's runs.",
            render(fig),
        )
    ]


def roc_points(scores_in: np.ndarray, scores_out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(FPR, TPR)`` at every distinct threshold ``score >= t``, from (0, 0), in-distribution
    positive (the curve whose area is ``metrics.ood_auroc``)."""
    scores = np.r_[scores_in, scores_out]
    positive = np.r_[np.ones(len(scores_in)), np.zeros(len(scores_out))]
    order = np.argsort(-scores, kind="stable")
    scores, positive = scores[order], positive[order]
    last = np.r_[scores[1:] != scores[:-1], True]
    tpr = np.cumsum(positive)[last] / len(scores_in)
    fpr = np.cumsum(1 - positive)[last] / len(scores_out)
    return np.r_[0.0, fpr], np.r_[0.0, tpr]


def _ood_sets(groups: list[Group]) -> list[str]:
    names = set()
    for group in groups:
        for run in group.runs:
            ood = list((run.summary.get("ood_sets") or {}).keys())
            for name in run.prediction_sets():
                parsed = parse_set(name, ood)
                if parsed and parsed[0] == "ood":
                    names.add(name)
    return sorted(names)


def ood_figures(dataset: str, groups: list[Group], cache: PredictionCache) -> list[Figure]:
    """Per OOD set: ROC curves of every group, and per group the max-probability histograms of
    in-distribution and OOD test examples."""
    figures = []
    keys = ("score_max_prob",)
    for name in _ood_sets(groups):
        pairs = []
        for group in groups:
            inside, outside = cache.pooled(group, "test", keys), cache.pooled(group, name, keys)
            if inside is not None and outside is not None:
                pairs.append((group, inside[keys[0]], outside[keys[0]]))
        for part, chunk in enumerate(chunks(pairs, 5)):
            fig, axes = subplots(
                1, len(chunk) + 1, figsize=(PANEL[0] * (len(chunk) + 1), PANEL[1]), squeeze=False
            )
            roc = axes[0, 0]
            for group, a, b in chunk:
                fpr, tpr = roc_points(a, b)
                roc.plot(fpr, tpr, label=f"{_short(group.name)} ({metrics.ood_auroc(a, b):.3f})")
            roc.plot([0, 1], [0, 1], "k:", linewidth=0.8)
            roc.set(xlabel="OOD accepted (FPR)", ylabel="in-dist. accepted (TPR)", title="ROC")
            roc.legend(fontsize=6)
            for j, (group, a, b) in enumerate(chunk, start=1):
                bins = np.linspace(min(a.min(), b.min()), 1, 26)
                axes[0, j].hist(a, bins=bins, alpha=0.6, density=True, label="in-distribution")
                axes[0, j].hist(b, bins=bins, alpha=0.6, density=True, label="OOD")
                axes[0, j].set(xlabel="max probability")
                _title(axes[0, j], group.name)
                axes[0, j].legend(fontsize=6)
            set_name = name.removeprefix("ood_")
            figures.append(
                Figure(
                    slug(dataset, "ood", set_name, str(part)),
                    dataset,
                    f"OOD detection: {set_name}",
                    f"Max-probability scores of the test set (in-distribution, positive) and of "
                    f"{set_name}, pooled over each group's runs: ROC curves (AUROC in the legend) "
                    "and histograms.",
                    render(fig),
                )
            )
    return figures


def _severity_curves(group: Group, kind: str, metric: str) -> tuple[list[int], list, list]:
    """Severities, means and standard errors of ``corrupted/<kind>/<severity>/<metric>``."""
    cells = aggregate(group.units())
    rows = []
    for key, cell in cells.items():
        parts = key.split("/")
        if len(parts) == 4 and parts[1] == kind and parts[3] == metric and parts[2].isdigit():
            rows.append((int(parts[2]), cell.mean, cell.se or 0.0))
    rows.sort()
    return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]


def corruption_figures(dataset: str, groups: list[Group]) -> list[Figure]:
    """Accuracy, NLL and ECE against severity: the mean over types per group (± standard error
    over seeds), and per group every type."""
    corrupted = [g for g in groups if _severity_curves(g, "mean", "accuracy")[0]]
    if not corrupted:
        return []
    fig, axes = subplots(1, 3, figsize=(PANEL[0] * 3, PANEL[1] * 1.1))
    for ax, metric in zip(axes, CORRUPTED_METRICS, strict=True):
        for group in corrupted:
            x, y, se = _severity_curves(group, "mean", metric)
            ax.errorbar(x, y, yerr=se, marker="o", capsize=2, label=_short(group.name))
        ax.set(xlabel="severity", ylabel=metric, title=f"{metric} (mean over types)")
    axes[0].legend(fontsize=6)
    figures = [
        Figure(
            slug(dataset, "corrupted-mean"),
            dataset,
            "Corruption severity (mean over types)",
            "Accuracy, NLL and ECE on the corrupted test sets, the mean over corruption types at "
            "each severity; mean ± standard error over each group's runs.",
            render(fig),
        )
    ]
    for part, chunk in enumerate(chunks(corrupted)):
        fig, axes = subplots(
            3, len(chunk), figsize=(PANEL[0] * len(chunk), PANEL[1] * 2.4), squeeze=False
        )
        for j, group in enumerate(chunk):
            kinds = sorted(
                {
                    k.split("/")[1]
                    for u in group.units().values()
                    for k in u
                    if k.startswith("corrupted/")
                }
                - {"mean"}
            )
            for i, metric in enumerate(CORRUPTED_METRICS):
                for kind in kinds:
                    x, y, _ = _severity_curves(group, kind, metric)
                    axes[i, j].plot(x, y, marker=".", linewidth=0.8, label=kind)
                axes[i, j].set(ylabel=metric, xlabel="severity")
            _title(axes[0, j], group.name)
            axes[0, j].legend(fontsize=5, ncol=2)
        figures.append(
            Figure(
                slug(dataset, "corrupted-types", str(part)),
                dataset,
                "Corruption severity per type",
                "Accuracy, NLL and ECE per corruption type against severity (mean over each "
                "group's runs).",
                render(fig),
            )
        )
    return figures


def ensemble_size(dataset: str, groups: list[Group], cache: PredictionCache) -> list[Figure]:
    """Test NLL of the first k members' mean probabilities, k = 1..M, for groups with members."""
    fig, ax = subplots(figsize=(PANEL[0] * 1.6, PANEL[1] * 1.2))
    drawn = 0
    for group in groups:
        curves = []
        for run in group.runs:
            arrays = cache.get(run, "test")
            if (
                arrays is None
                or "member_probs" not in arrays
                or arrays["member_probs"].shape[0] < 2
            ):
                continue
            members, labels = arrays["member_probs"].astype(np.float64), arrays["labels"]
            means = np.cumsum(members, axis=0) / np.arange(1, len(members) + 1)[:, None, None]
            curves.append([metrics.nll(m / m.sum(axis=1, keepdims=True), labels) for m in means])
        if not curves:
            continue
        size = min(len(c) for c in curves)
        values = np.array([c[:size] for c in curves])
        se = values.std(axis=0, ddof=1) / np.sqrt(len(values)) if len(values) > 1 else None
        ax.errorbar(
            np.arange(1, size + 1),
            values.mean(axis=0),
            yerr=se,
            marker="o",
            capsize=2,
            label=_short(group.name),
        )
        drawn += 1
    if not drawn:
        close(fig)
        return []
    ax.set(xlabel="ensemble size (first k members)", ylabel="test NLL")
    ax.legend(fontsize=7)
    return [
        Figure(
            slug(dataset, "ensemble-size"),
            dataset,
            "NLL against ensemble size",
            "Test NLL of the mean probabilities of the first k members (from the saved member "
            "probabilities, an exact zero floored), mean ± standard error over each group's runs.",
            render(fig),
        )
    ]


def _short(name: str, limit: int = 40) -> str:
    """A legend label: ``name`` cut to ``limit`` characters."""
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _title(ax, name: str) -> None:
    """A panel title: the group's name wrapped to the panel's width."""
    ax.set_title(textwrap.fill(name, 34), fontsize=8)


def run_figures(
    dataset: str, groups: list[Group], cache: PredictionCache, num_bins: int = 15
) -> list[Figure]:
    """Every figure of one data set's groups that their files allow."""
    return [
        *reliability(dataset, groups, cache, num_bins),
        *risk_coverage(dataset, groups, cache),
        *ood_figures(dataset, groups, cache),
        *corruption_figures(dataset, groups),
        *ensemble_size(dataset, groups, cache),
    ]
