"""Search algorithms on hand-built histories with fake blocks and a fake ``check``: determinism,
adaptive's grow/mutate rule, random's depths, evolution's aging and tournament, the ``check``
fallbacks, and a small simulated search where adaptive beats random."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np
import pytest

from uqbench.search.algorithms import (
    ALGORITHMS,
    Algorithm,
    Suggestion,
    Trial,
    make_algorithm,
)
from uqbench.search.space import Choice, Range, SearchSpace

BLOCKS = ("a", "b", "c", "d")
HPARAMS = {"learning_rate": Range(1e-3, 1e-1), "batch_size": Choice((32, 64, 128))}


def make_space(**overrides: object) -> SearchSpace:
    """A space of fake blocks; adaptive always grows when allowed and always inherits the
    parent's hyperparameters unless the test says otherwise."""
    settings: dict = {
        "blocks": BLOCKS,
        "max_depth": 5,
        "hyperparameters": HPARAMS,
        "grow_probability": 1.0,
        "fresh_share": 0.0,
    }
    return SearchSpace(**{**settings, **overrides})


def always(architecture: tuple[str, ...]) -> bool:
    return True


def trial(
    id: int,
    architecture: Sequence[str],
    objective: float | None,
    status: str = "done",
    hparams: dict | None = None,
) -> Trial:
    hparams = {"learning_rate": 0.01, "batch_size": 64} if hparams is None else hparams
    return Trial(id, None, tuple(architecture), hparams, status, objective)


def history(n: int, depth: int = 2, seed: int = 0) -> list[Trial]:
    """``n`` done trials of ``depth`` random blocks with random objectives."""
    rng = np.random.default_rng(seed)
    return [
        trial(
            i,
            tuple(rng.choice(BLOCKS, depth)),
            float(rng.normal()),
            hparams={"learning_rate": float(rng.uniform(1e-3, 1e-1)), "batch_size": 64},
        )
        for i in range(n)
    ]


def suggestions(
    algorithm: Algorithm, trials: Sequence[Trial], numbers: range = range(200)
) -> list[Suggestion]:
    return [algorithm.suggest(trials, n) for n in numbers]


def test_names_and_unknown_names() -> None:
    assert ALGORITHMS == ("adaptive", "random", "evolution")
    for name in ALGORITHMS:
        assert make_algorithm(name, make_space(), 0, always).name == name
    with pytest.raises(ValueError, match=r"did you mean 'evolution'\? \(choose from adaptive"):
        make_algorithm("evolutoin", make_space(), 0, always)


@pytest.mark.parametrize("name", ALGORITHMS)
def test_same_seed_and_history_give_the_same_suggestion(name: str) -> None:
    space = make_space(population=5, sample=2)
    trials = history(12)
    first = make_algorithm(name, space, 7, always)
    again = make_algorithm(name, space, 7, always)
    shuffled = list(reversed(trials))
    for number in range(12, 20):
        assert first.suggest(trials, number) == again.suggest(shuffled, number)
    assert len({repr(first.suggest(trials, n)) for n in range(12, 20)}) > 1
    other_seed = make_algorithm(name, space, 8, always)
    assert any(first.suggest(trials, n) != other_seed.suggest(trials, n) for n in range(12, 20))


def test_adaptive_starts_with_random_shallow_architectures() -> None:
    space = make_space(min_depth=2)
    for s in suggestions(make_algorithm("adaptive", space, 0, always), [], range(50)):
        assert len(s.architecture) == 2 and set(s.architecture) <= set(BLOCKS)
        assert (s.parent, s.how) == (None, "random")
        assert 1e-3 <= s.hparams["learning_rate"] <= 1e-1 and s.hparams["batch_size"] in (
            32,
            64,
            128,
        )


def test_adaptive_grows_while_the_allowed_depth_exceeds_the_parent() -> None:
    space = make_space(depth_every=2, beam_size=2)
    trials = [trial(0, "a", 1.0), trial(1, "b", 0.5), trial(2, "c", 2.0)]  # allowed depth 2
    parents = {t.id: t for t in trials}
    for s in suggestions(make_algorithm("adaptive", space, 0, always), trials):
        assert s.how == "grow" and s.parent in (0, 1)
        assert s.architecture[:-1] == parents[s.parent].architecture and len(s.architecture) == 2
        assert 1e-3 <= s.hparams["learning_rate"] <= 1e-1


def test_adaptive_mutates_when_the_parent_is_as_deep_as_allowed() -> None:
    space = make_space(depth_every=100, beam_size=3)
    trials = [trial(i, arch, float(i)) for i, arch in enumerate(["ab", "cd", "da", "bb"])]
    parents = {t.id: t for t in trials}
    made = suggestions(make_algorithm("adaptive", space, 0, always), trials)
    for s in made:
        assert s.how == "mutate" and s.parent in (0, 1, 2)  # allowed depth 1: never grow
        before = parents[s.parent].architecture
        assert sum(x != y for x, y in zip(before, s.architecture, strict=True)) == 1
        assert len(s.architecture) == len(before)
    moved = [s.hparams["learning_rate"] != 0.01 for s in made]
    assert all(moved)


def test_adaptive_parents_come_from_the_top_k() -> None:
    space = make_space(beam_size=3, depth_every=1000)
    trials = history(20)
    top = {t.id for t in sorted(trials, key=lambda t: t.objective)[:3]}
    parents = Counter(
        s.parent for s in suggestions(make_algorithm("adaptive", space, 1, always), trials)
    )
    assert set(parents) == top
    assert min(parents.values()) > 40  # uniform over the beam: about 67 each of 200


def test_adaptive_ignores_failed_and_unfinished_trials() -> None:
    space = make_space(depth_every=2, beam_size=5)
    trials = [
        trial(0, "a", 3.0),
        trial(1, "b", -100.0, status="failed"),
        trial(2, "c", -100.0, status="infeasible"),
        trial(3, "d", float("nan")),
        trial(4, "ab", None),
        trial(5, "cc", -50.0, status="running"),
    ]
    for s in suggestions(make_algorithm("adaptive", space, 0, always), trials):
        # One completed trial: the allowed depth stays 1, so trial 0 is mutated, never grown.
        assert (s.parent, s.how) == (0, "mutate")
    only_failures = [t for t in trials if t.id != 0]
    for s in suggestions(make_algorithm("adaptive", space, 0, always), only_failures, range(20)):
        assert (s.parent, s.how, len(s.architecture)) == (None, "random", 1)


def test_random_covers_every_depth() -> None:
    space = make_space(min_depth=2, max_depth=6)
    made = suggestions(make_algorithm("random", space, 0, always), history(30), range(500))
    depths = Counter(len(s.architecture) for s in made)
    assert set(depths) == {2, 3, 4, 5, 6} and min(depths.values()) > 60
    assert all(s.parent is None and s.how == "random" for s in made)
    assert {b for s in made for b in s.architecture} == set(BLOCKS)


def test_evolution_is_random_until_the_population_is_full() -> None:
    space = make_space(population=10, sample=3)
    trials = [*history(9), trial(9, "ab", 0.0, status="failed")]
    for s in suggestions(make_algorithm("evolution", space, 0, always), trials, range(30)):
        assert (s.parent, s.how) == (None, "random")


def test_evolution_parents_age_out() -> None:
    space = make_space(population=5, sample=2)
    old = trial(0, "ab", -100.0)  # excellent, but older than the last 5 completed trials
    newer = [trial(i, "cd", float(i)) for i in range(1, 11)]
    made = suggestions(make_algorithm("evolution", space, 0, always), [old, *newer])
    parents = Counter(s.parent for s in made)
    assert set(parents) <= {6, 7, 8, 9}  # the last five, but never the worst of them (10)
    assert parents[6] == max(parents.values())  # the best wins every tournament it is in


def test_evolution_tournament_of_the_whole_population_picks_the_best() -> None:
    space = make_space(population=4, sample=4)
    trials = [trial(i, "abc", obj) for i, obj in enumerate([0.0, 5.0, 2.0, 1.0, 3.0])]
    made = suggestions(make_algorithm("evolution", space, 0, always), trials, range(50))
    assert {s.parent for s in made} == {3}


def test_evolution_mutations() -> None:
    space = make_space(min_depth=1, max_depth=5, population=3, sample=3)
    parent = trial(2, "abc", 0.0)
    trials = [trial(0, "dd", 1.0), trial(1, "aa", 2.0), parent]
    made = suggestions(make_algorithm("evolution", space, 0, always), trials, range(400))
    kinds = Counter(s.how for s in made)
    assert set(kinds) == {"evolve:replace", "evolve:insert", "evolve:remove", "evolve:perturb"}
    assert min(kinds.values()) > 60
    for s in made:
        assert s.parent == 2
        arch, before = s.architecture, parent.architecture
        if s.how == "evolve:perturb":
            assert arch == before
            assert sum(s.hparams[k] != parent.hparams[k] for k in HPARAMS) == 1
            continue
        assert s.hparams == parent.hparams
        if s.how == "evolve:replace":
            assert len(arch) == 3 and sum(x != y for x, y in zip(arch, before, strict=True)) == 1
        elif s.how == "evolve:insert":
            assert any(arch[:i] + arch[i + 1 :] == before for i in range(4))
        else:
            assert any(before[:i] + before[i + 1 :] == arch for i in range(3))


def test_evolution_only_applies_possible_mutations() -> None:
    space = make_space(min_depth=2, max_depth=2, population=1, sample=1, hyperparameters={})
    made = suggestions(
        make_algorithm("evolution", space, 0, always), [trial(0, "ab", 0.0, hparams={})]
    )
    assert {s.how for s in made} == {"evolve:replace"}


@pytest.mark.parametrize("name", ALGORITHMS)
def test_suggestions_always_pass_check(name: str) -> None:
    calls: Counter = Counter()

    def no_b(architecture: tuple[str, ...]) -> bool:
        calls[architecture] += 1
        return "b" not in architecture

    space = make_space(depth_every=2, population=5, sample=2)
    algorithm = make_algorithm(name, space, 0, no_b)
    trials = [trial(i, "ac" if i % 2 else "d", float(i)) for i in range(8)]
    for s in suggestions(algorithm, trials) + suggestions(algorithm, [], range(50)):
        assert "b" not in s.architecture
    assert max(calls.values()) == 1  # check is asked once per architecture


def test_only_architecture_that_builds_is_found() -> None:
    space = make_space(min_depth=1, max_depth=3)
    target = ("c", "a")
    for name in ALGORITHMS:
        algorithm = make_algorithm(name, space, 0, lambda arch: arch == target)
        s = algorithm.suggest([], 0)
        assert (s.architecture, s.parent, s.how) == (target, None, "random")


@pytest.mark.parametrize("max_depth", [3, 8])
def test_no_valid_architecture_is_an_error(max_depth: int) -> None:
    space = make_space(min_depth=2, max_depth=max_depth)
    for name in ALGORITHMS:
        algorithm = make_algorithm(name, space, 0, lambda arch: False)
        with pytest.raises(
            ValueError,
            match=rf"a, b, c, d cannot form any valid architecture of depth within \[2, {max_depth}\]",
        ):
            algorithm.suggest([], 0)


def test_duplicates_are_avoided_while_possible() -> None:
    space = make_space(blocks=("a", "b"), min_depth=1, max_depth=1, hyperparameters={})
    seen = [trial(0, "a", 1.0, hparams={})]
    for name in ALGORITHMS:
        algorithm = make_algorithm(name, space, 0, always)
        assert {s.architecture for s in suggestions(algorithm, seen, range(30))} == {("b",)}
        both = [*seen, trial(1, "b", 2.0, hparams={})]
        assert {s.architecture for s in suggestions(algorithm, both, range(30))} <= {("a",), ("b",)}


def _edit_objective(target: tuple[str, ...]) -> Callable[[Suggestion], float]:
    """Mismatches against a hidden target architecture, a small price per extra block and the
    distance of the learning rate from 0.03 in decades."""

    def objective(s: Suggestion) -> float:
        arch = s.architecture
        missed = sum(x != y for x, y in itertools.zip_longest(arch[: len(target)], target))
        extra = 0.5 * max(0, len(arch) - len(target))
        return missed + extra + abs(math.log10(s.hparams["learning_rate"] / 0.03))

    return objective


def _best_of(name: str, space: SearchSpace, objective: Callable, seed: int, trials: int) -> float:
    algorithm = make_algorithm(name, space, seed, always)
    done: list[Trial] = []
    for number in range(trials):
        s = algorithm.suggest(done, number)
        done.append(Trial(number, s.parent, s.architecture, s.hparams, "done", objective(s)))
    return min(t.objective for t in done)


def test_adaptive_beats_random_on_a_simulated_search() -> None:
    space = SearchSpace(
        blocks=tuple("abcdef"),
        max_depth=8,
        depth_every=5,
        beam_size=3,
        hyperparameters={"learning_rate": Range(1e-3, 1.0)},
    )
    objective = _edit_objective(("c", "a", "f"))
    seeds = range(40)
    adaptive = np.mean([_best_of("adaptive", space, objective, s, 30) for s in seeds])
    random = np.mean([_best_of("random", space, objective, s, 30) for s in seeds])
    # Over 10 disjoint sets of 40 seeds adaptive averaged 1.26-1.62 and random 1.99-2.17.
    assert adaptive < random - 0.25


def fake_kind(name: str) -> str:
    """Blocks named c* are convolutions, f* dense layers."""
    return {"c": "conv", "f": "fc"}.get(name[0], "any")


def test_adaptive_grows_only_with_the_grow_probability() -> None:
    space = make_space(depth_every=2, beam_size=2, grow_probability=0.9)
    trials = [trial(0, "a", 1.0), trial(1, "b", 0.5), trial(2, "c", 2.0)]  # allowed depth 2
    hows = Counter(s.how for s in suggestions(make_algorithm("adaptive", space, 0, always), trials))
    assert set(hows) == {"grow", "mutate"}
    # 400 draws of a 0.9 coin: 360 expected, standard deviation 6
    made = suggestions(make_algorithm("adaptive", space, 0, always), trials, range(400))
    assert 340 <= sum(s.how == "grow" for s in made) <= 380
    never = make_space(depth_every=2, beam_size=2, grow_probability=0.0)
    made = suggestions(make_algorithm("adaptive", never, 0, always), trials)
    assert {s.how for s in made} == {"mutate"}


def test_a_grown_conv_block_goes_before_the_first_dense_block() -> None:
    space = make_space(
        blocks=("c1", "c2", "f1", "f2"), min_depth=2, depth_every=1, beam_size=3, max_depth=8
    )  # allowed depth 5: every parent grows
    trials = [
        trial(0, ("c1", "f1"), 1.0),
        trial(1, ("c2", "c1", "f2"), 0.5),
        trial(2, ("c1", "c1", "f1", "f2"), 0.7),
    ]
    parents = {t.id: t.architecture for t in trials}
    made = suggestions(make_algorithm("adaptive", space, 0, always, fake_kind), trials, range(400))
    deeper_trunk = 0
    for s in made:
        assert s.how == "grow"
        before = parents[s.parent]
        first_fc = next(i for i, b in enumerate(before) if b.startswith("f"))
        new = s.architecture
        if new[first_fc].startswith("c"):  # a conv block inserted just before the dense part
            assert new[:first_fc] + new[first_fc + 1 :] == before
            deeper_trunk += 1
        else:  # a dense block appended
            assert new[:-1] == before and new[-1].startswith("f")
    assert 150 < deeper_trunk < 250  # half the blocks are convolutions


def test_a_mutation_keeps_convolutions_before_dense_blocks() -> None:
    space = make_space(blocks=("c1", "c2", "f1", "f2"), depth_every=100, beam_size=1)
    parent = trial(0, ("c1", "f1", "f2"), 1.0)
    made = suggestions(make_algorithm("adaptive", space, 0, always, fake_kind), [parent])
    for s in made:
        kinds = [b[0] for b in s.architecture]
        assert kinds == sorted(kinds)  # every c before every f
        assert Counter(s.architecture) != Counter(parent.architecture)
    assert ("c1", "c2", "f1") in {s.architecture for s in made}  # f2 -> c2, moved before f1


def test_when_every_proposal_repeats_the_fallback_keeps_a_parent_within_the_allowed_depth() -> None:
    space = make_space(
        blocks=("a", "b"), depth_every=2, beam_size=1, grow_probability=0.0, hyperparameters={}
    )
    # allowed depth 2, but every proposal mutates "a" into "b", which already ran
    trials = [trial(0, "a", 0.5, hparams={}), trial(1, "b", 1.0, hparams={})]
    made = suggestions(make_algorithm("adaptive", space, 0, always), trials, range(50))
    assert {s.architecture for s in made} == {("a", "a"), ("a", "b")}
    assert all(s.parent == 0 and s.how == "grow" for s in made)
    # every architecture within the allowed depth ran: a repeat with its parent, never deeper
    ran = [*trials, *(trial(2 + i, arch, 2.0, hparams={}) for i, arch in enumerate(["aa", "ab"]))]
    ran += [trial(4, "ba", 3.0, hparams={}), trial(5, "bb", 3.0, hparams={})]
    shallow = make_space(blocks=("a", "b"), depth_every=5, beam_size=1, hyperparameters={})
    for s in suggestions(make_algorithm("adaptive", shallow, 0, always), ran, range(50)):
        assert len(s.architecture) <= 2 and s.parent is not None  # allowed depth 1 + 6 // 5


def test_fresh_hyperparameters_in_fresh_mode_and_for_a_share_of_inheriting_trials() -> None:
    trials = [trial(0, "ab", 0.5, hparams={"learning_rate": 0.01, "batch_size": 64})]
    fresh = make_space(hyperparameter_mode="fresh", depth_every=100)
    made = suggestions(make_algorithm("adaptive", fresh, 0, always), trials, range(300))
    assert all(s.how == "mutate:fresh" for s in made)
    rates = np.log10([s.hparams["learning_rate"] for s in made])
    # drawn log-uniformly on [1e-3, 1e-1], not around the parent's 1e-2
    assert abs(np.mean(rates) + 2) < 0.1 and np.mean(np.abs(rates + 2) > 0.5) > 0.4
    assert Counter(s.hparams["batch_size"] for s in made).keys() == {32, 64, 128}
    share = make_space(fresh_share=0.25, depth_every=100)
    made = suggestions(make_algorithm("adaptive", share, 0, always), trials, range(400))
    assert 70 <= sum(s.how == "mutate:fresh" for s in made) <= 130  # 100 expected, sd 8.7


def _trap(s: Suggestion) -> float:
    """A learning rate below 1e-3 is best (0.5); above it the objective falls as the rate rises
    (2 at 0.001, 1 at 1), so children that inherit a rate climb away from the good region."""
    rate = s.hparams["learning_rate"]
    return 0.5 if rate < 1e-3 else 1.0 + math.log10(1.0 / rate)


def test_a_share_of_fresh_hyperparameters_lets_a_search_leave_a_poor_region() -> None:
    space = SearchSpace(
        blocks=tuple("ab"),
        max_depth=3,
        hyperparameters={"learning_rate": Range(1e-4, 1.0)},
        fresh_share=0.0,
    )
    first = {s: make_algorithm("adaptive", space, s, always).suggest([], 0) for s in range(100)}
    seeds = [s for s in first if _trap(first[s]) > 0.5][:30]  # starting in the poor region
    assert len(seeds) == 30

    def escaped(settings: dict) -> float:
        changed = SearchSpace(**{**space.__dict__, **settings})
        return np.mean([_best_of("adaptive", changed, _trap, s, 30) == 0.5 for s in seeds])

    # Inheritance alone: a nudge of sd 1 decade per generation seldom crosses 3 decades back
    # (0.4 of these seeds); a fifth of the trials drawn afresh (each a quarter chance to land
    # below 1e-3) leaves in 0.93, Model Search's fresh draws in all.
    assert escaped({}) < 0.6
    assert escaped({"fresh_share": 0.2}) > 0.85
    assert escaped({"hyperparameter_mode": "fresh"}) > 0.95


def test_transfer_needs_an_algorithm_with_parents() -> None:
    from uqbench.search.algorithms import check_algorithm_space

    space = make_space(transfer="prefix")
    check_algorithm_space("adaptive", space)
    check_algorithm_space("evolution", space)
    check_algorithm_space("random", make_space())
    with pytest.raises(ValueError, match="--algorithm=random suggests trials without parents"):
        check_algorithm_space("random", space)
