"""Search algorithms of your own: ``--algorithm=package.module:factory``.

The factory is imported (``package.module`` must be importable: installed, or on ``PYTHONPATH``
in the search's process and its workers) and called as ``factory(space, seed, check)``; it
returns an object with the :class:`~uqbench.search.algorithms.Algorithm` interface: a ``name``
and ``suggest(history, trial_number) -> Suggestion``. Every suggestion is checked here
(:class:`CheckedAlgorithm`): blocks of the space, a depth within its limits, known
hyperparameters, a parent that completed. A path that does not import, a factory that fails or
an object without ``suggest`` is a :class:`PluginError` before anything trains
(:func:`check_first_suggestion`); a bad suggestion during the search is a :class:`BadSuggestion`
that stops it (finished trials are kept).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from uqbench.dotted_path import resolve_callable
from uqbench.search.algorithms import Algorithm, Suggestion, Trial
from uqbench.search.space import SearchSpace


class PluginError(ValueError):
    """A plug-in algorithm that cannot be used; the message names its path and what is wrong."""


class BadSuggestion(RuntimeError):
    """A plug-in's suggestion that the search cannot run; the message says why."""


def is_plugin_path(name: object) -> bool:
    """Whether an ``--algorithm`` value is a dotted path ``package.module:factory``."""
    return isinstance(name, str) and ":" in name


def resolve_factory(path: str) -> Callable[..., Any]:
    """The callable named by ``package.module:factory`` (``factory`` may be dotted)."""
    return resolve_callable(path, "--algorithm", "a search algorithm of your own", PluginError)


def make_plugin(
    path: str, space: SearchSpace, seed: int, check: Callable[[tuple[str, ...]], bool]
) -> CheckedAlgorithm:
    """The algorithm ``factory(space, seed, check)`` of ``path`` makes, its suggestions checked."""
    factory = resolve_factory(path)
    try:
        algorithm = factory(space, seed, check)
    except PluginError:
        raise
    except Exception as err:
        raise PluginError(
            f"--algorithm={path}: factory(space, seed, check) raised {type(err).__name__}: {err}"
        ) from err
    if not callable(getattr(algorithm, "suggest", None)):
        raise PluginError(
            f"--algorithm={path} made {type(algorithm).__name__}, which has no method "
            "suggest(history, trial_number) (see the Algorithm interface in docs/search.md)"
        )
    return CheckedAlgorithm(algorithm, space, path)


class CheckedAlgorithm:
    """A plug-in algorithm whose every suggestion is checked against the space and history."""

    def __init__(self, inner: Algorithm, space: SearchSpace, path: str):
        self.inner, self.space, self.path = inner, space, path
        self.name = str(getattr(inner, "name", path))

    def suggest(self, history: Sequence[Trial], trial_number: int) -> Suggestion:
        """The plug-in's suggestion, or a :class:`BadSuggestion` saying what is wrong with it."""
        made = self.inner.suggest(history, trial_number)
        where = f"--algorithm={self.path}: suggestion for trial {trial_number}"
        if not isinstance(made, Suggestion):
            raise BadSuggestion(f"{where} is {type(made).__name__}, not a Suggestion")
        space = self.space
        architecture = made.architecture
        if isinstance(architecture, str) or not isinstance(architecture, (list, tuple)):
            raise BadSuggestion(f"{where}: architecture must be a tuple of block names")
        unknown = [b for b in architecture if b not in space.blocks]
        if unknown:
            raise BadSuggestion(f"{where}: blocks {unknown} are not in the space's blocks")
        if not space.min_depth <= len(architecture) <= space.max_depth:
            raise BadSuggestion(
                f"{where}: depth {len(architecture)} is outside "
                f"[{space.min_depth}, {space.max_depth}]"
            )
        if not isinstance(made.hparams, dict):
            raise BadSuggestion(f"{where}: hparams must be a dict")
        extra = [k for k in made.hparams if k not in space.hyperparameters]
        if extra:
            raise BadSuggestion(
                f"{where}: hyperparameters {extra} are not in the space's [hyperparameters]"
            )
        if any(isinstance(v, float) and not math.isfinite(v) for v in made.hparams.values()):
            raise BadSuggestion(f"{where}: a hyperparameter is not finite: {made.hparams}")
        if made.parent is not None:
            completed = {t.id for t in history if t.completed}
            if made.parent not in completed:
                raise BadSuggestion(f"{where}: parent {made.parent!r} is not a completed trial")
        return Suggestion(tuple(architecture), dict(made.hparams), made.parent, str(made.how))


def check_first_suggestion(name: str, algorithm: Algorithm) -> None:
    """Ask ``algorithm`` for a first suggestion; any error is a :class:`PluginError` (raised
    before anything trains)."""
    try:
        algorithm.suggest([], 1)
    except Exception as err:
        raise PluginError(
            f"--algorithm={name}: its first suggestion failed: {type(err).__name__}: {err}"
        ) from err
