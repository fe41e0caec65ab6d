"""Search algorithms: the next architecture and hyperparameters to try, given the trials so far.

Three algorithms share one interface (:class:`Algorithm`): ``adaptive`` (Model Search's greedy,
incremental search: grow or mutate one of the best trials so far), ``random``, and
``evolution`` (regularized evolution, Real et al. 2019). A suggestion depends only on the space,
the seed, the history and the trial number (randomness comes only from
``numpy.random.default_rng([seed, trial_number])``), so a resumed search suggests exactly what
it would have. Every suggestion passes ``check`` (its architecture builds for the data) and
repeats no earlier trial when another try can avoid it.
"""

from __future__ import annotations

import difflib
import itertools
import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from uqbench.search.space import SearchSpace

ALGORITHMS = ("adaptive", "random", "evolution")
RETRIES = 50  # proposals tried before falling back to a random architecture that builds
RANDOM_TRIES = 2000  # random architectures tried before concluding that none builds
ENUMERATE_LIMIT = 2000  # spaces with at most this many architectures are tried exhaustively

Architecture = tuple[str, ...]
Check = Callable[[Architecture], bool]


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
    """Suggests the next trial from the trials so far (any order; any statuses)."""

    name: str

    def suggest(self, history: Sequence[Trial], trial_number: int) -> Suggestion: ...


def make_algorithm(name: str, space: SearchSpace, seed: int, check: Check) -> Algorithm:
    """The search algorithm ``name`` (one of :data:`ALGORITHMS`) for ``space``; ``check`` says
    whether an architecture builds for the data (e.g. by ``blocks.infer_shapes``)."""
    kinds: dict[str, type[_Search]] = {
        "adaptive": Adaptive,
        "random": RandomSearch,
        "evolution": Evolution,
    }
    if name not in kinds:
        match = difflib.get_close_matches(str(name), ALGORITHMS, n=1)
        hint = f"; did you mean {match[0]!r}?" if match else ""
        raise ValueError(
            f"unknown search algorithm {name!r}{hint} (choose from {', '.join(ALGORITHMS)})"
        )
    return kinds[name](space, seed, check)


def _key(architecture: Sequence[str], hparams: dict) -> tuple[Architecture, str]:
    """What makes two trials the same: the architecture and every hyperparameter value."""
    return tuple(architecture), json.dumps(hparams, sort_keys=True, default=str)


class _Search:
    """What the algorithms share: proposals retried until one builds and is new, then a random
    architecture that builds; ``check`` is remembered per architecture."""

    name = ""

    def __init__(self, space: SearchSpace, seed: int, check: Check):
        self.space, self.seed, self._check = space, int(seed), check
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

    def _candidates(self, rng: np.random.Generator) -> tuple[Iterator[Architecture], bool]:
        """Architectures of every allowed depth in random order: all of them when there are few
        (second value True), else :data:`RANDOM_TRIES` random ones."""
        space, total = self.space, 0
        for depth in range(space.min_depth, space.max_depth + 1):
            total += len(space.blocks) ** depth
            if total > ENUMERATE_LIMIT:
                tries = (self._architecture(rng) for _ in range(RANDOM_TRIES))
                return tries, False
        every = [
            arch
            for depth in range(space.min_depth, space.max_depth + 1)
            for arch in itertools.product(space.blocks, repeat=depth)
        ]
        return (every[i] for i in rng.permutation(len(every))), True

    def _random_valid(
        self, rng: np.random.Generator, seen: set, repeat: Suggestion | None
    ) -> Suggestion:
        """A random architecture that builds, preferring one that is new; else ``repeat``; a
        ``ValueError`` when no architecture of the allowed depths builds."""
        hparams = self.space.sample_hparams(rng)
        candidates, exhaustive = self._candidates(rng)
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
        raise ValueError(
            f"the blocks {', '.join(space.blocks)} cannot form any valid architecture of depth "
            f"within [{space.min_depth}, {space.max_depth}] for this data "
            f"({'all ' if exhaustive else ''}{tried} architectures tried)"
        )


class Adaptive(_Search):
    """Model Search's adaptive search: start shallow; then take a parent uniformly from the
    best ``beam_size`` completed trials and grow it by a block (while the allowed depth, rising
    every ``depth_every`` completed trials, exceeds the parent's) or replace one of its blocks,
    with its hyperparameters perturbed."""

    name = "adaptive"

    def _proposals(self, trials: list[Trial], rng: np.random.Generator) -> Iterator[Suggestion]:
        space = self.space
        completed = [t for t in trials if t.completed]
        if not completed:
            while True:
                yield self._random(rng, space.min_depth)
        beam = sorted(completed, key=lambda t: (t.objective, t.id))[: space.beam_size]
        allowed = space.allowed_depth(len(completed))
        while True:
            parent = beam[int(rng.integers(len(beam)))]
            architecture = tuple(parent.architecture)
            if allowed > len(architecture) or not architecture:
                architecture, how = (*architecture, self._block(rng)), "grow"
            else:
                i = int(rng.integers(len(architecture)))
                new = self._block(rng, other_than=architecture[i])
                architecture, how = (*architecture[:i], new, *architecture[i + 1 :]), "mutate"
            hparams = space.perturb_hparams(parent.hparams, rng)
            yield Suggestion(architecture, hparams, parent.id, how)


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
