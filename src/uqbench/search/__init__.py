"""Model search: blocks, a search space, adaptive / random / evolution / Optuna TPE algorithms,
a trial store that loses nothing, and executors (in-process, local workers, Ray).

    from uqbench import search
    summary = search.run_search(search.SearchRequest(dataset="digits", output_dir="runs/s1"))
    model, metadata = search.load_model("runs/s1/best_model.safetensors")

A user's own block plugs in with ``@search.register_block("name")`` or by dotted path in the
spec (``"my_package.blocks:my_block"``); a search algorithm of one's own with
``--algorithm=my_package.module:factory`` (an :class:`Algorithm`). See docs/search.md.
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> (module, attribute), imported on first access
_LAZY = {
    "register_block": ("uqbench.search.blocks", "register_block"),
    "build_network": ("uqbench.search.blocks", "build_network"),
    "SearchNet": ("uqbench.search.blocks", "SearchNet"),
    "ShapeError": ("uqbench.search.blocks", "ShapeError"),
    "SearchSpace": ("uqbench.search.space", "SearchSpace"),
    "SpecError": ("uqbench.search.space", "SpecError"),
    "load_space": ("uqbench.search.space", "load_space"),
    "make_algorithm": ("uqbench.search.algorithms", "make_algorithm"),
    "Algorithm": ("uqbench.search.algorithms", "Algorithm"),
    "Suggestion": ("uqbench.search.algorithms", "Suggestion"),
    "Trial": ("uqbench.search.algorithms", "Trial"),
    "TrialStore": ("uqbench.search.store", "TrialStore"),
    "SearchRequest": ("uqbench.search.driver", "SearchRequest"),
    "run_search": ("uqbench.search.driver", "run_search"),
    "show": ("uqbench.search.outputs", "show"),
    "export": ("uqbench.search.outputs", "export"),
    "load_model": ("uqbench.search.outputs", "load_model"),
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    """Import the search's modules on first use (PEP 562)."""
    if name in _LAZY:
        module, attribute = _LAZY[name]
        value = getattr(importlib.import_module(module), attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'uqbench.search' has no attribute {name!r}")
