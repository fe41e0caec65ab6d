"""Ensemble selection: Caruana's greedy forward selection with replacement against a step-by-step
reference and a brute-force search over every multiset of members, on fake trials."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from uqbench.search.ensemble import (
    ensemble_due,
    ensemble_suggestion,
    greedy_selection,
    pool_of,
    store_budget,
)
from uqbench.search.space import SearchSpace
from uqbench.search.store import TrialRow


def nll(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(-np.mean(np.log(probs[np.arange(len(labels)), labels])))


def fake_trials(seed: int, members: int = 5, n: int = 60, k: int = 3):
    """Members that each know some examples: Dirichlet noise with a bump on the true class."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(k, size=n)
    out = []
    for _ in range(members):
        logits = rng.normal(size=(n, k))
        logits[np.arange(n), labels] += rng.uniform(-1, 3, size=n)
        probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        out.append(probs)
    return out, labels


def reference_greedy(members, labels, size):
    """Caruana et al. 2004, written out: ``size`` times add the member whose addition minimises
    the NLL of the plain average of the chosen list; keep the best prefix."""
    chosen, prefixes = [], []
    for _ in range(size):
        scores = [
            nll(np.mean([members[j] for j in [*chosen, i]], axis=0), labels)
            for i in range(len(members))
        ]
        chosen.append(int(np.argmin(scores)))
        prefixes.append((min(scores), len(chosen)))
    return chosen[: min(prefixes)[1]]


def brute_force(members, labels, size):
    """The multiset of at most ``size`` members with the lowest NLL of their average."""
    candidates = (
        combo
        for s in range(1, size + 1)
        for combo in itertools.combinations_with_replacement(range(len(members)), s)
    )
    return min(candidates, key=lambda c: nll(np.mean([members[i] for i in c], axis=0), labels))


@pytest.mark.parametrize("seed", range(5))
def test_greedy_selection_follows_caruana_and_gets_near_the_brute_force_optimum(seed):
    members, labels = fake_trials(seed)
    for size in (2, 3, 4):
        chosen = greedy_selection(members, labels, size)
        assert chosen == reference_greedy(members, labels, size)
        assert 1 <= len(chosen) <= size
        best_single = min(range(len(members)), key=lambda i: nll(members[i], labels))
        assert chosen[0] == best_single
        greedy = nll(np.mean([members[i] for i in chosen], axis=0), labels)
        optimum = nll(
            np.mean([members[i] for i in brute_force(members, labels, size)], axis=0), labels
        )
        assert optimum <= greedy + 1e-12
        assert greedy <= nll(members[best_single], labels)
        assert greedy - optimum < 0.03  # greedy is close on these members


def test_complementary_members_are_found_as_brute_force_finds_them():
    labels = np.array([0, 1] * 20)
    first = np.arange(40) < 20

    def member(confident: np.ndarray, p: float) -> np.ndarray:
        right = np.where(confident, p, 0.5)
        probs = np.empty((40, 2))
        probs[np.arange(40), labels] = right
        probs[np.arange(40), 1 - labels] = 1 - right
        return probs

    a, b = member(first, 0.9), member(~first, 0.9)  # each sure on its half, unsure elsewhere
    c = member(np.ones(40, bool), 0.6)  # mildly right everywhere
    assert greedy_selection([c, a, b], labels, 2) == [1, 2]
    assert tuple(sorted(brute_force([c, a, b], labels, 2))) == (1, 2)
    # with replacement: a member can be chosen again when that helps
    strong = member(np.ones(40, bool), 0.95)
    assert greedy_selection([strong, c], labels, 3) == [0]  # adding anything only hurts


def test_greedy_selection_can_repeat_a_member():
    labels = np.array([0, 0, 0, 1])
    sure = np.array([[0.99, 0.01]] * 3 + [[0.9, 0.1]])  # right three times, badly wrong once
    hedge = np.full((4, 2), 0.5)
    # by hand: NLL of sure 0.583, hedge 0.693; (sure + hedge) / 2 0.5215; then
    # (2 sure + hedge) / 3 0.5065 beats (sure + 2 hedge) / 3 0.517: sure is chosen twice
    chosen = greedy_selection([sure, hedge], labels, 3)
    assert chosen == reference_greedy([sure, hedge], labels, 3) == [0, 1, 0]
    assert greedy_selection([sure, sure], labels, 3) == [0]  # repeats that change nothing stop


def done(id: int, objective: float, how: str = "grow", status: str = "done") -> TrialRow:
    return TrialRow(id, None, ("a",), {}, how, status, objective=objective)


def test_ensemble_trials_every_nth_from_the_best_single_trials():
    space = SearchSpace(blocks=("a",), ensemble_every=3, ensemble_pool=2)
    rows = [done(1, 0.5), done(2, 0.3), done(3, 0.2, how="ensemble"), done(4, 0.1, status="failed")]
    assert [ensemble_due(space, n) for n in range(1, 7)] == [False, False, True] * 2
    assert pool_of(rows, space) == [2, 1]
    assert ensemble_suggestion(space, rows, 6) == {
        "architecture": [],
        "hparams": {"pool": [2, 1]},
        "parent": None,
        "how": "ensemble",
    }
    assert ensemble_suggestion(space, rows, 5) is None
    assert ensemble_suggestion(space, rows[:1], 3) is None  # one trial done: nothing to combine
    off = SearchSpace(blocks=("a",), ensemble_enabled=False)
    assert not any(ensemble_due(off, n) for n in range(1, 20))
    assert store_budget(10, space, rows) == 10
    apart = SearchSpace(blocks=("a",), ensemble_every=3, ensemble_counts=False)
    assert store_budget(10, apart, rows) == 11
