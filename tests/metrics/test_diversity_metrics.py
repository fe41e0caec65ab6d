"""Entropy decomposition and pairwise diversity of ensembles (members on axis 0)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cosine
from scipy.stats import entropy

import uqbench.metrics as M


def random_members(m: int, n: int, k: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).dirichlet(np.ones(k) * 0.7, size=(m, n))


def test_entropies_match_scipy():
    probs = random_members(4, 25, 3, 0)
    np.testing.assert_allclose(
        M.predictive_entropy(probs), entropy(probs.mean(axis=0), axis=-1), rtol=1e-12
    )
    np.testing.assert_allclose(
        M.expected_entropy(probs), entropy(probs, axis=-1).mean(axis=0), rtol=1e-12
    )
    expected_mi = entropy(probs.mean(axis=0), axis=-1) - entropy(probs, axis=-1).mean(axis=0)
    np.testing.assert_allclose(M.mutual_information(probs), expected_mi, atol=1e-12)
    assert (M.mutual_information(probs) >= 0).all()


def test_zero_log_zero_is_zero():
    probs = np.array([[[1.0, 0.0, 0.0], [0.5, 0.5, 0.0]]])  # one member, two examples
    np.testing.assert_allclose(M.predictive_entropy(probs), [0.0, np.log(2)])
    np.testing.assert_allclose(M.expected_entropy(probs), [0.0, np.log(2)])
    assert np.isfinite(M.mutual_information(probs)).all()


def test_mutual_information_is_zero_when_members_agree():
    one = random_members(1, 10, 4, 1)
    probs = np.repeat(one, 5, axis=0)
    np.testing.assert_allclose(M.mutual_information(probs), 0.0, atol=1e-12)
    np.testing.assert_allclose(M.predictive_entropy(probs), M.expected_entropy(probs), rtol=1e-12)


def test_mutual_information_of_confident_opposite_members_is_log_two():
    # members [1, 0] and [0, 1]: mean [.5, .5] has entropy log 2; each member has entropy 0
    probs = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])
    np.testing.assert_allclose(M.mutual_information(probs), [np.log(2)])
    np.testing.assert_allclose(M.expected_entropy(probs), [0.0])


def test_disagreement_hand_case():
    # top labels: m0 = 0 0 1 1, m1 = 0 1 1 1, m2 = 1 1 1 0
    # pairs: (0,1) differ on 1 of 4; (0,2) on 3 of 4; (1,2) on 2 of 4 -> mean (.25 + .75 + .5) / 3
    top = np.array([[0, 0, 1, 1], [0, 1, 1, 1], [1, 1, 1, 0]])
    probs = np.where(np.eye(2)[top] == 1, 0.8, 0.2)
    assert M.disagreement(probs) == pytest.approx(0.5)
    assert M.disagreement(probs[:1]) == 0.0  # one member
    assert M.disagreement(np.repeat(probs[:1], 3, axis=0)) == 0.0


def test_torch_and_numpy_agree():
    probs = random_members(3, 8, 5, 2)
    t = torch.from_numpy(probs)
    for metric in (M.predictive_entropy, M.expected_entropy, M.mutual_information):
        np.testing.assert_allclose(metric(t), metric(probs))
    assert M.disagreement(t) == M.disagreement(probs)


@pytest.mark.parametrize(
    "metric",
    [
        M.predictive_entropy,
        M.expected_entropy,
        M.mutual_information,
        M.disagreement,
        M.average_kl,
        M.cosine_similarity,
    ],
    ids=lambda f: f.__name__,
)
@pytest.mark.parametrize(
    ("probs", "words"),
    [
        (np.full((4, 2), 0.5), ["member_probs", "3 dimension", "(4, 2)"]),
        (np.full((2, 3, 2), 0.7), ["sum to 1"]),
        (np.array([[[1.5, -0.5]]]), ["[0, 1]"]),
        (np.array([[[np.nan, 1.0]]]), ["NaN"]),
    ],
    ids=["2d", "row-sum", "range", "nan"],
)
def test_bad_member_probs_raise(metric, probs, words):
    with pytest.raises(ValueError) as info:
        metric(probs)
    for word in words:
        assert word in str(info.value)


def test_disagreement_matches_pairwise_sklearn_accuracy():
    from sklearn.metrics import accuracy_score

    probs = random_members(5, 40, 4, 3)
    top = probs.argmax(axis=2)
    pairs = [1 - accuracy_score(top[a], top[b]) for a in range(5) for b in range(a + 1, 5)]
    assert M.disagreement(probs) == pytest.approx(np.mean(pairs), rel=1e-12)


def test_entropies_in_nats_of_uniform_predictions():
    # K uniform classes: entropy log K; two members agreeing on it: mutual information 0
    probs = np.full((2, 3, 4), 0.25)
    np.testing.assert_allclose(M.predictive_entropy(probs), np.log(4) * np.ones(3))
    np.testing.assert_allclose(M.expected_entropy(probs), np.log(4) * np.ones(3))
    np.testing.assert_allclose(M.mutual_information(probs), 0.0, atol=1e-15)


def test_per_example_outputs_are_float64_arrays():
    probs = torch.from_numpy(random_members(3, 6, 2, 4)).float()
    for metric in (M.predictive_entropy, M.expected_entropy, M.mutual_information):
        out = metric(probs)
        assert isinstance(out, np.ndarray) and out.dtype == np.float64 and out.shape == (6,)
    assert type(M.disagreement(probs)) is float


# two members, two examples: example 0 differs, example 1 is shared
P0 = np.array([[0.5, 0.5], [0.8, 0.2]])
P1 = np.array([[0.25, 0.75], [0.8, 0.2]])


def test_average_kl_hand_case_and_direction():
    # KL(P0 || P1) on example 0: .5 ln(.5/.25) + .5 ln(.5/.75) = .5 ln(4/3); example 1: 0
    assert M.average_kl(np.stack([P0, P1])) == pytest.approx(0.5 * 0.5 * np.log(4 / 3))
    # the member of lower index is p (robustness_metrics' kl_divergence(probs_1, probs_2)):
    # KL(P1 || P0) on example 0: .25 ln(.25/.5) + .75 ln(.75/.5)
    expected = 0.5 * (0.25 * np.log(0.5) + 0.75 * np.log(1.5))
    assert M.average_kl(np.stack([P1, P0])) == pytest.approx(expected)
    assert expected != pytest.approx(0.25 * np.log(4 / 3))


def test_cosine_similarity_hand_case():
    # example 0: <(.5,.5), (.25,.75)> = .5, norms sqrt(.5) and sqrt(.625) -> 2 / sqrt(5);
    # example 1: identical vectors -> 1
    expected = (2 / np.sqrt(5) + 1) / 2
    assert M.cosine_similarity(np.stack([P0, P1])) == pytest.approx(expected)
    assert M.cosine_similarity(np.stack([P0, P0, P0])) == pytest.approx(1.0)


def test_pairwise_diversity_averages_unordered_pairs():
    # three members P0, P1, P1: pairs (0,1), (0,2), (1,2) -> (KL01 + KL01 + 0) / 3 (the code's
    # itertools.combinations, not the M**2 average over ordered pairs of its docstring)
    kl01 = 0.5 * 0.5 * np.log(4 / 3)
    assert M.average_kl(np.stack([P0, P1, P1])) == pytest.approx(2 * kl01 / 3)
    cos01 = (2 / np.sqrt(5) + 1) / 2
    assert M.cosine_similarity(np.stack([P0, P1, P1])) == pytest.approx((2 * cos01 + 1) / 3)


def test_pairwise_diversity_matches_scipy():
    probs = random_members(4, 30, 5, 6)
    pairs = [(a, b) for a in range(4) for b in range(a + 1, 4)]
    kl = np.mean([entropy(probs[a], probs[b], axis=-1).mean() for a, b in pairs])
    cos = np.mean(
        [[1 - cosine(u, v) for u, v in zip(probs[a], probs[b], strict=True)] for a, b in pairs]
    )
    assert M.average_kl(probs) == pytest.approx(kl, rel=1e-12)
    assert M.cosine_similarity(probs) == pytest.approx(cos, rel=1e-12)
    t = torch.from_numpy(probs)
    assert M.average_kl(t) == M.average_kl(probs)
    assert M.cosine_similarity(t) == M.cosine_similarity(probs)


def test_average_kl_zero_probabilities():
    # p = 0 contributes 0 (the limit): KL((1, 0) || (.5, .5)) = ln 2
    probs = np.array([[[1.0, 0.0]], [[0.5, 0.5]]])
    assert M.average_kl(probs) == pytest.approx(np.log(2))
    # q = 0 where p > 0: infinite divergence
    assert M.average_kl(probs[::-1]) == np.inf


@pytest.mark.parametrize("metric", [M.average_kl, M.cosine_similarity], ids=lambda f: f.__name__)
def test_pairwise_diversity_needs_two_members(metric):
    with pytest.raises(ValueError, match="at least 2 members"):
        metric(random_members(1, 3, 2, 7))
