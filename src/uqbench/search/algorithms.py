"""Search algorithms: the next architecture and hyperparameters to try, given the trials so far.

Three algorithms are built in and share one interface (:class:`Algorithm`): ``adaptive`` (Model
Search's greedy, incremental search: grow or mutate one of the best trials so far), ``random``,
and ``evolution`` (regularized evolution, Real et al. 2019). ``optuna`` (Optuna's TPE, an
optional extra) and any ``package.module:factory`` plug in through the same interface
(:mod:`uqbench.search.plugins`). A suggestion depends only on the space, the seed, the history
and the trial number (randomness comes only from ``numpy.random.default_rng([seed,
trial_number])``), so a resumed search suggests exactly what it would have. Every suggestion
passes ``check`` (its architecture builds for the data) and repeats no earlier trial when
another try can avoid it.
"""

from __future__ import annotations

import difflib
import importlib.util
import itertools
import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from uqbench.search.space import SearchSpace

ALGORITHMS = ("adaptive", "random", "evolution")
# Algorithms that plug in like a user's own, with the extra that installs what they need.
OPTIONAL = {"optuna": ("uqbench.search.tpe:TPESearch", "optuna")}
CHOICES = (*ALGORITHMS, *OPTIONAL)
WITH_PARENTS = ("adaptive", "evolution")  # algorithms whose trials have a parent to learn from
RETRIES = 50  # proposals tried before falling back to a neighbour or a random architecture
RANDOM_TRIES = 2000  # random architectures tried before concluding that none builds
ENUMERATE_LIMIT = 2000  # spaces with at most this many architectures are tried exhaustively

Architecture = tuple[str, ...]
Check = Callable[[Architecture], bool]
KindOf = Callable[[str], str]


def registered_kind(name: str) -> str:
    """The kind (``conv``, ``fc`` or ``any``) of a block; ``any`` for a name not registered."""
    from uqbench.search.blocks import get_block

    try:
        return get_block(name).kind
    except ValueError:
        return "any"


def conv_before_dense(architecture: Sequence[str], kind_of: KindOf) -> Architecture:
    """``architecture`` with every ``conv`` block that follows the first ``fc`` block moved to
    just before it, order kept (Model Search's ``fix_architecture_order`` for CNNs)."""
    kinds = [kind_of(b) for b in architecture]
    if "fc" not in kinds:
        return tuple(architecture)
    first = kinds.index("fc")
    tail = list(zip(architecture[first:], kinds[first:], strict=True))
    moved = [b for b, k in tail if k == "conv"]
    kept = [b for b, k in tail if k != "conv"]
    return (*architecture[:first], *moved, *kept)


def check_algorithm_space(name: str, space: SearchSpace) -> None:
    """Refuse settings that the algorithm ``name`` cannot honour (before anything trains); a
    plug-in's trials warm-start from the parents its suggestions name."""
    if space.transfer != "none" and name in CHOICES and name not in WITH_PARENTS:
        raise ValueError(
            f"[transfer] mode = {space.transfer!r} starts a trial from its parent's weights, but "
            f"--algorithm={name} suggests trials without parents; use --algorithm=adaptive or "
            'evolution, or set [transfer] mode = "none"'
        )


@dataclass(frozen=True)
class Trial:
    """What an algorithm sees of a trial; ``objective`` is signed so that lower is better."""

    id: int
    parent: int | None
    architecture: Architecture
    hparams: dict
    status: str
    objective: float | None

    @property
    def completed(self) -> bool:
        """Done with a finite objective: the only trials that rank or become parents."""
        return (
            self.status == "done" and self.objective is not None and math.isfinite(self.objective)
        )


@dataclass(frozen=True)
class Suggestion:
    """The next trial to run: what to build and train, its parent and how it was made."""

    architecture: Architecture
    hparams: dict
    parent: int | None
    how: str


class Algorithm(Protocol):
    """Suggests the next trial from the trials so far (any order; any statuses: ``running``
    trials have no objective yet, and are architectures not to repeat, not results). The
    suggestion must depend only on the space, the seed, the history and ``trial_number``, so a
    resumed search suggests the same."""

    name: str

    def suggest(self, history: Sequence[Trial], trial_number: int) -> Suggestion: ...


def make_algorithm(
    name: str,
    space: SearchSpace,
    seed: int,
    check: Check,
    kind_of: KindOf = registered_kind,
) -> Algorithm:
    """The search algorithm ``name`` (one of :data:`CHOICES`, or ``package.module:factory``)
    for ``space``; ``check`` says whether an architecture builds for the data and fits the
    parameter budget; ``kind_of`` gives a block's kind (where a grown block goes)."""
    from uqbench.search import plugins

    kinds: dict[str, type[_Search]] = {
        "adaptive": Adaptive,
        "random": RandomSearch,
        "evolution": Evolution,
    }
    if name in kinds:
        return kinds[name](space, seed, check, kind_of)
    if name in OPTIONAL:
        path, extra = OPTIONAL[name]
        if importlib.util.find_spec(extra) is None:
            raise plugins.PluginError(
                f"--algorithm={name} needs {extra}, which is not installed: "
                f"pip install 'uqbench[{extra}]'"
            )
        return plugins.make_plugin(path, space, seed, check)
    if plugins.is_plugin_path(name):
        return plugins.make_plugin(name, space, seed, check)
    match = difflib.get_close_matches(str(name), CHOICES, n=1)
    hint = f"; did you mean {match[0]!r}?" if match else ""
    raise ValueError(
        f"unknown search algorithm {name!r}{hint} (choose from {', '.join(CHOICES)}, or "
        "package.module:factory for your own)"
    )


def _key(architecture: Sequence[str], hparams: dict) -> tuple[Architecture, str]:
    """What makes two trials the same: the architecture and every hyperparameter value."""
    return tuple(architecture), json.dumps(hparams, sort_keys=True, default=str)


class _Search:
    """What the algorithms share: proposals retried until one builds and is new, then a random
    architecture that builds; ``check`` is remembered per architecture."""

    name = ""

    def __init__(
        self, space: SearchSpace, seed: int, check: Check, kind_of: KindOf = registered_kind
    ):
        self.space, self.seed, self._check, self.kind_of = space, int(seed), check, kind_of
        self._builds: dict[Architecture, bool] = {}

    def builds(self, architecture: Architecture) -> bool:
        """Whether ``architecture`` builds for the data (``check``, asked once per architecture)."""
        if architecture not in self._builds:
            self._builds[architecture] = bool(self._check(architecture))
        return self._builds[architecture]

    def suggest(self, history: Sequence[Trial], trial_number: int) -> Suggestion:
        """The suggestion for trial ``trial_number`` (the same for the same history)."""
        rng = np.random.default_rng([self.seed, int(trial_number)])
        trials = sorted(history, key=lambda t: t.id)
        seen = {_key(t.architecture, t.hparams) for t in trials}
        repeat = None
        for proposal in itertools.islice(self._proposals(trials, rng), RETRIES):
            if not self.builds(proposal.architecture):
                continue
            if _key(proposal.architecture, proposal.hparams) not in seen:
                return proposal
            repeat = repeat or proposal
        return self._fallback(trials, rng, seen, repeat)

    def _fallback(
        self, trials: list[Trial], rng: np.random.Generator, seen: set, repeat: Suggestion | None
    ) -> Suggestion:
        """What to suggest when no proposal is new and builds: a random architecture."""
        return self._random_valid(rng, seen, repeat)

    def _proposals(self, trials: list[Trial], rng: np.random.Generator) -> Iterator[Suggestion]:
        """Endless candidate suggestions, from trials sorted by id."""
        raise NotImplementedError

    def _block(self, rng: np.random.Generator, other_than: str | None = None) -> str:
        """A block drawn uniformly (from those other than ``other_than`` where there are)."""
        choices = [b for b in self.space.blocks if b != other_than] or list(self.space.blocks)
        return choices[int(rng.integers(len(choices)))]

    def _architecture(self, rng: np.random.Generator, depth: int | None = None) -> Architecture:
        """Random blocks; ``depth`` of them, else a depth uniform in [min_depth, max_depth]."""
        if depth is None:
            depth = int(rng.integers(self.space.min_depth, self.space.max_depth + 1))
        return tuple(self._block(rng) for _ in range(depth))

    def _random(self, rng: np.random.Generator, depth: int | None = None) -> Suggestion:
        """A random suggestion; depth uniform in [min_depth, max_depth] unless given."""
        architecture = self._architecture(rng, depth)
        return Suggestion(architecture, self.space.sample_hparams(rng), None, "random")

    def _candidates(
        self, rng: np.random.Generator, deepest: int
    ) -> tuple[Iterator[Architecture], bool]:
        """Architectures of depth ``min_depth`` to ``deepest`` in random order: all of them when
        there are few (second value True), else :data:`RANDOM_TRIES` random ones."""
        space, total = self.space, 0
        depths = range(space.min_depth, deepest + 1)
        for depth in depths:
            total += len(space.blocks) ** depth
            if total > ENUMERATE_LIMIT:
                tries = (
                    self._architecture(rng, int(rng.integers(space.min_depth, deepest + 1)))
                    for _ in range(RANDOM_TRIES)
                )
                return tries, False
        every = [arch for depth in depths for arch in itertools.product(space.blocks, repeat=depth)]
        return (every[i] for i in rng.permutation(len(every))), True

    def _random_valid(
        self,
        rng: np.random.Generator,
        seen: set,
        repeat: Suggestion | None,
        deepest: int | None = None,
    ) -> Suggestion:
        """A random architecture (at most ``deepest`` blocks, default ``max_depth``) that builds,
        preferring one that is new; else ``repeat``; a ``ValueError`` when none builds."""
        hparams = self.space.sample_hparams(rng)
        deepest = self.space.max_depth if deepest is None else deepest
        candidates, exhaustive = self._candidates(rng, deepest)
        first, tried = None, 0
        for architecture in candidates:
            tried += 1
            if not self.builds(architecture):
                continue
            if _key(architecture, hparams) not in seen:
                return Suggestion(architecture, hparams, None, "random")
            first = first or architecture
        if repeat is not None:
            return repeat
        if first is not None:
            return Suggestion(first, hparams, None, "random")
        space = self.space
        budget = f" within max_params {space.max_params}" if space.max_params is not None else ""
        raise ValueError(
            f"the blocks {', '.join(space.blocks)} cannot form any valid architecture of depth "
            f"within [{space.min_depth}, {deepest}] for this data{budget} "
            f"({'all ' if exhaustive else ''}{tried} architectures tried)"
        )


class Adaptive(_Search):
    """Model Search's adaptive coordinate descent (``coordinate_descent.py``): start shallow;
    then take a parent uniformly from the best ``beam_size`` completed trials; while the allowed
    depth (rising every ``depth_every`` completed trials) exceeds the parent's, grow it by a
    random block with probability ``grow_probability``, else replace one of its blocks. A
    ``conv`` block goes before the first ``fc`` block (``increase_structure_depth``,
    ``fix_architecture_order``). Hyperparameters follow the parent with a nudge
    (``hyperparameter_mode = "inherit"``; a ``fresh_share`` of trials draws them afresh) or are
    all drawn afresh (``"fresh"``, Model Search's tuner). When every proposal repeats an
    earlier trial or does not build, the fallback is another neighbour of a completed trial
    within the allowed depth."""

    name = "adaptive"

    def _proposals(self, trials: list[Trial], rng: np.random.Generator) -> Iterator[Suggestion]:
        space = self.space
        completed = [t for t in trials if t.completed]
        if not completed:
            while True:
                first = self._random(rng, space.min_depth)
                architecture = conv_before_dense(first.architecture, self.kind_of)
                yield Suggestion(architecture, first.hparams, None, "random")
        beam = sorted(completed, key=lambda t: (t.objective, t.id))[: space.beam_size]
        allowed = space.allowed_depth(len(completed))
        while True:
            parent = beam[int(rng.integers(len(beam)))]
            architecture = tuple(parent.architecture)
            grow = rng.uniform() < space.grow_probability
            if not architecture or (allowed > len(architecture) and grow):
                architecture, how = self._grown(architecture, self._block(rng)), "grow"
            else:
                i = int(rng.integers(len(architecture)))
                new = self._block(rng, other_than=architecture[i])
                architecture, how = self._replaced(architecture, i, new), "mutate"
            hparams, fresh = self._hparams(parent, rng)
            yield Suggestion(architecture, hparams, parent.id, how + (":fresh" if fresh else ""))

    def _grown(self, architecture: Architecture, block: str) -> Architecture:
        """``architecture`` with ``block`` added: a conv block before the first fc block."""
        return conv_before_dense((*architecture, block), self.kind_of)

    def _replaced(self, architecture: Architecture, i: int, block: str) -> Architecture:
        """``architecture`` with block ``i`` replaced by ``block``, conv blocks before fc."""
        return conv_before_dense((*architecture[:i], block, *architecture[i + 1 :]), self.kind_of)

    def _hparams(self, parent: Trial, rng: np.random.Generator) -> tuple[dict, bool]:
        """The child's hyperparameters and whether they were drawn afresh."""
        space = self.space
        if space.hyperparameter_mode == "fresh" or rng.uniform() < space.fresh_share:
            return space.sample_hparams(rng), bool(space.searched)
        return space.perturb_hparams(parent.hparams, rng), False

    def _fallback(
        self, trials: list[Trial], rng: np.random.Generator, seen: set, repeat: Suggestion | None
    ) -> Suggestion:
        """A new neighbour (one block grown or replaced, within the allowed depth) of a beam
        trial, then of any completed trial (best first); else a random architecture no deeper
        than allowed; else ``repeat``."""
        space = self.space
        completed = sorted((t for t in trials if t.completed), key=lambda t: (t.objective, t.id))
        if not completed:
            return self._shallow_valid(rng, seen, repeat, space.min_depth)
        allowed = space.allowed_depth(len(completed))
        beam, rest = completed[: space.beam_size], completed[space.beam_size :]
        for parent in [beam[i] for i in rng.permutation(len(beam))] + rest:
            for architecture, how in self._neighbours(parent.architecture, allowed, rng):
                if not self.builds(architecture):
                    continue
                hparams, fresh = self._hparams(parent, rng)
                if _key(architecture, hparams) not in seen:
                    how += ":fresh" if fresh else ""
                    return Suggestion(architecture, hparams, parent.id, how)
        return self._shallow_valid(rng, seen, repeat, allowed)

    def _shallow_valid(
        self, rng: np.random.Generator, seen: set, repeat: Suggestion | None, deepest: int
    ) -> Suggestion:
        """A random architecture no deeper than ``deepest``; deeper only when none that
        shallow builds."""
        try:
            return self._random_valid(rng, seen, repeat, deepest=deepest)
        except ValueError:
            return self._random_valid(rng, seen, repeat)

    def _neighbours(
        self, architecture: Architecture, allowed: int, rng: np.random.Generator
    ) -> list[tuple[Architecture, str]]:
        """Every architecture one grow (while shallower than ``allowed``) or one replacement
        away from ``architecture``, in random order."""
        out = []
        if len(architecture) < allowed:
            out += [(self._grown(architecture, b), "grow") for b in self.space.blocks]
        for i, old in enumerate(architecture):
            out += [
                (self._replaced(architecture, i, b), "mutate")
                for b in self.space.blocks
                if b != old
            ]
        return [out[i] for i in rng.permutation(len(out))]


class RandomSearch(_Search):
    """Random search: depth uniform in [min_depth, max_depth], blocks and hyperparameters
    drawn independently."""

    name = "random"

    def _proposals(self, trials: list[Trial], rng: np.random.Generator) -> Iterator[Suggestion]:
        while True:
            yield self._random(rng)


class Evolution(_Search):
    """Regularized evolution (Real et al. 2019): random trials until ``population`` have
    completed; then the best of ``sample`` members drawn from the ``population`` most recent
    completed trials (the old die out) is the parent of one mutation: replace, insert or remove
    a block, or perturb one hyperparameter."""

    name = "evolution"

    def _proposals(self, trials: list[Trial], rng: np.random.Generator) -> Iterator[Suggestion]:
        space = self.space
        completed = [t for t in trials if t.completed]
        if len(completed) < space.population:
            while True:
                yield self._random(rng)
        population = completed[-space.population :]
        size = min(space.sample, len(population))
        while True:
            members = rng.choice(len(population), size=size, replace=False)
            parent = min((population[i] for i in members), key=lambda t: (t.objective, t.id))
            mutations = self._mutations(parent)
            if not mutations:
                yield self._random(rng)
                continue
            mutation = mutations[int(rng.integers(len(mutations)))]
            yield self._mutate(parent, mutation, rng)

    def _mutations(self, parent: Trial) -> list[str]:
        """The mutations that can change ``parent``."""
        space, depth = self.space, len(parent.architecture)
        possible = []
        if depth and len(space.blocks) > 1:
            possible.append("replace")
        if depth < space.max_depth:
            possible.append("insert")
        if depth > space.min_depth:
            possible.append("remove")
        if space.searched:
            possible.append("perturb")
        return possible

    def _mutate(self, parent: Trial, mutation: str, rng: np.random.Generator) -> Suggestion:
        architecture, hparams = tuple(parent.architecture), dict(parent.hparams)
        if mutation == "replace":
            i = int(rng.integers(len(architecture)))
            new = self._block(rng, other_than=architecture[i])
            architecture = (*architecture[:i], new, *architecture[i + 1 :])
        elif mutation == "insert":
            i = int(rng.integers(len(architecture) + 1))
            architecture = (*architecture[:i], self._block(rng), *architecture[i:])
        elif mutation == "remove":
            i = int(rng.integers(len(architecture)))
            architecture = (*architecture[:i], *architecture[i + 1 :])
        else:
            searched = self.space.searched
            name = searched[int(rng.integers(len(searched)))]
            hparams = self.space.perturb_hparams(hparams, rng, only=[name])
        return Suggestion(architecture, hparams, parent.id, f"evolve:{mutation}")
