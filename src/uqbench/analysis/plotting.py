"""What the figure modules share: the :class:`Figure` record, PNG rendering with matplotlib's
Agg backend (no display needed), and a group's pooled test predictions."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from uqbench.analysis.grouping import Group

DPI = 72
PANEL = (3.4, 2.8)  # inches per panel
MAX_PANELS = 6  # per row; more groups give more figures


@dataclass(frozen=True)
class Figure:
    """One drawn figure: a file name, the data set it belongs to, a title, a caption, PNG bytes."""

    name: str
    dataset: str
    title: str
    caption: str
    png: bytes


def pyplot():
    """matplotlib's pyplot on the Agg backend; a clear error if matplotlib is missing."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError(
            "figures need matplotlib: pip install 'uqbench[report]' (or matplotlib), or pass "
            "--no_figures"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# Fixed margins in inches: a layout engine would draw every figure twice (half the time).
MARGINS = {"left": 0.75, "right": 0.2, "bottom": 0.5, "top": 0.65}
GAPS = {"wspace": 0.4, "hspace": 0.55}


def subplots(rows: int = 1, cols: int = 1, *, figsize: tuple[float, float], **kwargs):
    """``plt.subplots`` with fixed margins (:data:`MARGINS`, room for a 3-line panel title)."""
    fig, axes = pyplot().subplots(rows, cols, figsize=figsize, **kwargs)
    width, height = figsize
    fig.subplots_adjust(
        left=MARGINS["left"] / width,
        right=1 - MARGINS["right"] / width,
        bottom=MARGINS["bottom"] / height,
        top=1 - MARGINS["top"] / height,
        **GAPS,
    )
    return fig, axes


def close(fig) -> None:
    """Discard a figure that was not drawn."""
    pyplot().close(fig)


def render(fig) -> bytes:
    """The matplotlib figure as PNG bytes; the figure is closed."""
    plt = pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    plt.close(fig)
    return buffer.getvalue()


def slug(*parts: str) -> str:
    """A file-name-safe name from ``parts``."""
    text = "-".join(parts).lower()
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text).strip("_")


def chunks(groups: list[Group], size: int = MAX_PANELS) -> list[list[Group]]:
    """``groups`` in runs of at most ``size`` (one figure each)."""
    return [groups[i : i + size] for i in range(0, len(groups), size)]


class PredictionCache:
    """Saved prediction sets, each read once, pooled over a group's runs on request."""

    def __init__(self) -> None:
        self._sets: dict[tuple[str, str], dict[str, np.ndarray] | None] = {}

    def get(self, run, name: str) -> dict[str, np.ndarray] | None:
        key = (str(run.path), name)
        if key not in self._sets:
            try:
                self._sets[key] = run.predictions(name)
            except (FileNotFoundError, OSError, ValueError):
                self._sets[key] = None
        return self._sets[key]

    def pooled(
        self, group: Group, name: str, keys: tuple[str, ...]
    ) -> dict[str, np.ndarray] | None:
        """``keys`` of prediction set ``name`` concatenated over the group's runs that saved them
        (classification sets only: probabilities and labels, scores); ``None`` if none did."""
        parts: dict[str, list[np.ndarray]] = {k: [] for k in keys}
        for run in group.runs:
            arrays = self.get(run, name)
            if arrays is None or not all(k in arrays for k in keys) or "split" in arrays:
                continue
            for key in keys:
                parts[key].append(arrays[key])
        if not parts[keys[0]]:
            return None
        return {k: np.concatenate(v) for k, v in parts.items()}
