"""Figures of searches: the best objective so far against trials and against time (one line per
search, coloured by algorithm), the parent-child tree of a search's trials, and the Pareto front
of accuracy against parameters (and latency, where measured) coloured by ECE."""

from __future__ import annotations

import math

from uqbench.analysis.plotting import PANEL, Figure, render, slug, subplots
from uqbench.analysis.searches import ENSEMBLE_HOW, Search, Trial


def progress(dataset: str, searches: list[Search]) -> list[Figure]:
    """Best objective so far against trial number and against elapsed seconds."""
    curves = [(s, s.best_so_far()) for s in searches]
    curves = [(s, c) for s, c in curves if c]
    if not curves:
        return []
    algorithms = sorted({s.algorithm for s, _ in curves})
    colours = {a: f"C{i}" for i, a in enumerate(algorithms)}
    fig, (by_trial, by_time) = subplots(1, 2, figsize=(PANEL[0] * 2.4, PANEL[1] * 1.2))
    labelled: set[str] = set()
    for search, curve in curves:
        label = search.algorithm if search.algorithm not in labelled else None
        labelled.add(search.algorithm)
        ids = [c[0] for c in curve]
        best = [c[1] for c in curve]
        by_trial.step(ids, best, where="post", color=colours[search.algorithm], label=label)
        timed = [(c[2], c[1]) for c in curve if c[2] is not None]
        if timed:
            by_time.step(*zip(*timed, strict=True), where="post", color=colours[search.algorithm])
    objectives = sorted({s.objective for s, _ in curves})
    by_trial.set(xlabel="trial", ylabel=f"best {', '.join(objectives)} so far")
    by_time.set(xlabel="seconds since the search started", ylabel="best so far")
    by_trial.legend(fontsize=7, title="algorithm", title_fontsize=7)
    return [
        Figure(
            slug(dataset, "search-progress"),
            dataset,
            "Search progress",
            "Best validation objective among the completed single-network trials so far, "
            "against the trial number and against wall time (from the trial store; without it "
            "the sum of the trials' durations); one line per search, coloured by algorithm.",
            render(fig),
        )
    ]


def tree(search: Search) -> Figure | None:
    """Each trial at (trial number, objective), joined to its parent; ensembles as squares."""
    done = {t.id: t for t in search.trials if t.status == "done" and t.objective is not None}
    if not done:
        return None
    fig, ax = subplots(figsize=(PANEL[0] * 2.4, PANEL[1] * 1.3))
    for trial in done.values():
        parent = done.get(trial.parent) if trial.parent is not None else None
        if parent is not None:
            ax.plot(
                [parent.id, trial.id],
                [parent.objective, trial.objective],
                color="grey",
                linewidth=0.7,
            )
    single = [t for t in done.values() if t.how != ENSEMBLE_HOW]
    ensembles = [t for t in done.values() if t.how == ENSEMBLE_HOW]
    ax.scatter([t.id for t in single], [t.objective for t in single], s=18, zorder=3, label="trial")
    if ensembles:
        ax.scatter(
            [t.id for t in ensembles],
            [t.objective for t in ensembles],
            marker="s",
            s=22,
            zorder=3,
            label="ensemble trial",
        )
    if single:
        best = (min if search.minimise else max)(single, key=lambda t: t.objective)
        ax.scatter(
            [best.id],
            [best.objective],
            s=80,
            facecolors="none",
            edgecolors="red",
            zorder=4,
            label=f"best (trial {best.id})",
        )
    ax.set(xlabel="trial", ylabel=search.objective, title=search.name)
    ax.legend(fontsize=7)
    return Figure(
        slug(search.run.path.name, "tree"),
        search.run.dataset,
        f"Trial tree: {search.name}",
        "Every completed trial at its number and validation objective, a line from its parent "
        "(the trial it grew or mutated from); the best single trial circled.",
        render(fig),
    )


def _front(points: list[tuple[Trial, float, float]]) -> list[Trial]:
    """Trials not beaten in both cost (lower) and accuracy (higher), in order of cost."""
    kept: list[tuple[Trial, float, float]] = []
    for point in sorted(points, key=lambda p: (p[1], -p[2])):
        if not kept or point[2] > kept[-1][2]:
            kept.append(point)
    return [p[0] for p in kept]


def pareto(search: Search) -> Figure | None:
    """Validation accuracy against parameters (and latency), coloured by validation ECE."""
    trials = [
        t
        for t in search.trials
        if t.status == "done" and t.how != ENSEMBLE_HOW and "val/accuracy" in t.metrics
    ]
    costs = [("cost/params", "parameters"), ("cost/ms_per_example", "ms per example")]
    costs = [(k, label) for k, label in costs if any(k in t.metrics for t in trials)]
    if not trials or not costs:
        return None
    fig, axes = subplots(
        1, len(costs), figsize=(PANEL[0] * 1.5 * len(costs), PANEL[1] * 1.3), squeeze=False
    )
    for ax, (key, label) in zip(axes[0], costs, strict=True):
        points = [
            (t, t.metrics[key], t.metrics["val/accuracy"]) for t in trials if key in t.metrics
        ]
        ece = [t.metrics.get("val/ece", math.nan) for t, _, _ in points]
        shown = ax.scatter(
            [p[1] for p in points], [p[2] for p in points], c=ece, cmap="viridis", s=22, zorder=3
        )
        front = _front(points)
        ax.plot(
            [t.metrics[key] for t in front],
            [t.metrics["val/accuracy"] for t in front],
            "r-",
            linewidth=1,
            label="Pareto front",
        )
        ax.set(xscale="log", xlabel=label, ylabel="validation accuracy")
        ax.legend(fontsize=7)
        fig.colorbar(shown, ax=ax, label="validation ECE")
    fig.suptitle(search.name, fontsize=9)
    return Figure(
        slug(search.run.path.name, "pareto"),
        search.run.dataset,
        f"Pareto front: {search.name}",
        "Completed single-network trials: validation accuracy against parameters (and "
        "prediction latency), coloured by validation ECE; the red line joins the trials no other "
        "trial beats in both.",
        render(fig),
    )


def search_figures(dataset: str, searches: list[Search]) -> list[Figure]:
    """Progress of all searches of a data set, then each search's tree and Pareto front."""
    figures = progress(dataset, searches)
    for search in searches:
        figures += [f for f in (tree(search), pareto(search)) if f is not None]
    return figures
