"""``--algorithm=optuna``: Optuna's TPE sampler (Bergstra et al. 2011) as a plug-in algorithm.

The space maps to Optuna distributions: ``depth`` (an integer in [min_depth, max_depth]), one
categorical ``block_<i>`` per block position below the depth (a conditional parameter), and
every searched hyperparameter with its range type (log or uniform, integer or float, or a
categorical for choices); fixed ones are added to each suggestion. At every suggestion a fresh
in-memory study is built from the trials so far, sorted by id: ``done`` trials as complete with
their signed objective, ``infeasible`` ones as complete with a violated constraint (TPE ranks
them below every feasible trial), ``failed`` ones as failed, and ``running`` ones as running,
which TPE's constant liar treats as bad so that parallel workers spread out. The sampler's seed
comes from the search's seed and the trial number, so the same history gives the same
suggestion: ``--resume``, workers and Ray work as with the built-in algorithms.
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from uqbench.search.algorithms import Check, KindOf, Suggestion, Trial, _Search, registered_kind
from uqbench.search.plugins import PluginError
from uqbench.search.space import Choice, Fixed, Range, SearchSpace

try:
    import optuna
except ImportError as err:  # make_algorithm checks first; this is for a direct import
    raise PluginError(
        "--algorithm=optuna needs Optuna, which is not installed: pip install 'uqbench[optuna]'"
    ) from err

if "constraints" not in inspect.signature(optuna.trial.create_trial).parameters:
    raise PluginError(
        f"--algorithm=optuna needs Optuna >= 5.1 (constraints on trials), found "
        f"{optuna.__version__}: pip install -U 'uqbench[optuna]'"
    )

STARTUP_TRIALS = 10  # Optuna's default: random suggestions until this many trials completed
DEPTH = "depth"


def block_param(position: int) -> str:
    """The name of the categorical parameter for the block at ``position`` (from 0)."""
    return f"block_{position}"


class TPESearch(_Search):
    """Optuna's TPE (independent per parameter, constant liar on), seeded per trial number; its
    first :data:`STARTUP_TRIALS` completed trials are random (Optuna's default)."""

    name = "optuna"

    def __init__(
        self, space: SearchSpace, seed: int, check: Check, kind_of: KindOf = registered_kind
    ):
        super().__init__(space, seed, check, kind_of)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.distributions = distributions(space)

    def _proposals(self, trials: list[Trial], rng: np.random.Generator) -> Iterator[Suggestion]:
        sampler = optuna.samplers.TPESampler(
            n_startup_trials=STARTUP_TRIALS,
            seed=int(rng.integers(2**31)),
            constant_liar=True,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study = optuna.create_study(direction="minimize", sampler=sampler)
            for trial in trials:
                frozen = self.frozen(trial)
                if frozen is not None:
                    study.add_trial(frozen)
            while True:
                # A proposal left running counts as bad (constant liar), so a proposal that
                # repeats or does not build pushes the next one elsewhere.
                yield self.ask(study)

    def ask(self, study: optuna.Study) -> Suggestion:
        """One suggestion from ``study``'s sampler (its trial is left running)."""
        asked, dists = study.ask(), self.distributions
        depth = _suggest(asked, DEPTH, dists[DEPTH])
        architecture = tuple(
            _suggest(asked, block_param(i), dists[block_param(i)]) for i in range(depth)
        )
        hparams = {
            name: param.value if isinstance(param, Fixed) else _suggest(asked, name, dists[name])
            for name, param in self.space.hyperparameters.items()
        }
        return Suggestion(architecture, hparams, None, "tpe")

    def frozen(self, trial: Trial) -> optuna.trial.FrozenTrial | None:
        """``trial`` as Optuna records it, or None when its values are outside the space."""
        params = {DEPTH: len(trial.architecture)}
        params.update({block_param(i): b for i, b in enumerate(trial.architecture)})
        params.update({n: trial.hparams[n] for n in self.space.searched if n in trial.hparams})
        dists = {name: self.distributions[name] for name in params if name in self.distributions}
        if len(dists) < len(params):
            return None
        state, value, constraints = _state(trial)
        try:
            return optuna.trial.create_trial(
                state=state,
                value=value,
                params=params,
                distributions=dists,
                constraints=constraints,
            )
        except ValueError:  # a value its distribution does not contain
            return None


def _state(trial: Trial) -> tuple[Any, float | None, dict[str, float] | None]:
    """Optuna's state, value and constraints for a trial of the store."""
    states = optuna.trial.TrialState
    if trial.status == "running":
        return states.RUNNING, None, None
    finite = trial.objective is not None and math.isfinite(trial.objective)
    if trial.status == "infeasible":
        return states.COMPLETE, trial.objective if finite else math.inf, {"constraint": 1.0}
    if trial.completed:
        return states.COMPLETE, trial.objective, {"constraint": 0.0}
    return states.FAIL, None, None


def distributions(space: SearchSpace) -> dict[str, Any]:
    """Optuna distributions of the space: depth, one categorical per block position, and every
    searched hyperparameter with its range type."""
    dists: dict[str, Any] = {
        DEPTH: optuna.distributions.IntDistribution(space.min_depth, space.max_depth)
    }
    for i in range(space.max_depth):
        dists[block_param(i)] = optuna.distributions.CategoricalDistribution(space.blocks)
    for name, param in space.hyperparameters.items():
        if isinstance(param, Range) and param.integer:
            low, high = int(param.low), int(param.high)
            dists[name] = optuna.distributions.IntDistribution(low, high, log=param.log)
        elif isinstance(param, Range):
            dists[name] = optuna.distributions.FloatDistribution(
                param.low, param.high, log=param.log
            )
        elif isinstance(param, Choice):
            dists[name] = optuna.distributions.CategoricalDistribution(param.values)
    return dists


def _suggest(asked: optuna.Trial, name: str, dist: Any) -> Any:
    """``asked``'s value for ``name`` from ``dist``, as a plain Python value."""
    dists = optuna.distributions
    if isinstance(dist, dists.IntDistribution):
        return int(asked.suggest_int(name, dist.low, dist.high, log=dist.log))
    if isinstance(dist, dists.FloatDistribution):
        return float(asked.suggest_float(name, dist.low, dist.high, log=dist.log))
    value = asked.suggest_categorical(name, dist.choices)
    return value.item() if isinstance(value, np.generic) else value
