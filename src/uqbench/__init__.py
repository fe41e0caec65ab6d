"""uqbench: uncertainty & robustness baselines and model search for PyTorch.

``uqbench.evaluate(predict_fn, dataset, ood=...)`` evaluates any classifier with every metric and
writes a run directory (see ``uqbench.training.evaluation``); ``uqbench.load_run(path)`` loads a
run's model, which predicts from raw input (see ``uqbench.runs``). Both are imported on first
use so that ``import uqbench`` stays light.
"""

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "evaluate":
        from uqbench.training.evaluation import evaluate

        return evaluate
    if name == "load_run":
        from uqbench.runs import load_run

        return load_run
    raise AttributeError(f"module 'uqbench' has no attribute {name!r}")
