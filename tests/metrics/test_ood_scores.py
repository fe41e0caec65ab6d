"""OOD scores (higher = more in-distribution) against hand values, SciPy and UB's definitions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import softmax
from scipy.stats import entropy

import uqbench.metrics as M
from uqbench.metrics.ood_scores import OOD_SCORES, ood_scores


def random_logits(n: int, k: int, seed: int, scale: float = 2.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, scale, size=(n, k))


def ub_dempster_shafer_uncertainty(logits: np.ndarray) -> np.ndarray:
    """Uncertainty Baselines' ``DempsterShaferUncertainty``, written out naively."""
    k = logits.shape[-1]
    return k / (k + np.sum(np.exp(logits), axis=-1))


def test_max_probability_and_negative_entropy_by_hand():
    probs = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
    np.testing.assert_allclose(M.max_probability(probs), [1.0, 0.5, 0.5])
    np.testing.assert_allclose(
        M.negative_entropy(probs),
        [0.0, -np.log(2), 0.2 * np.log(0.2) + 0.3 * np.log(0.3) + 0.5 * np.log(0.5)],
        rtol=1e-12,
    )


def test_negative_entropy_matches_scipy_and_is_in_range():
    probs = softmax(random_logits(50, 7, 0), axis=1)
    scores = M.negative_entropy(probs)
    np.testing.assert_allclose(scores, -entropy(probs, axis=1), rtol=1e-12)
    assert (scores <= 0).all() and (scores >= -np.log(7) - 1e-12).all()
    np.testing.assert_allclose(M.negative_entropy(np.full((1, 7), 1 / 7)), [-np.log(7)])


def test_dempster_shafer_matches_uncertainty_baselines():
    logits = random_logits(40, 10, 1)
    np.testing.assert_allclose(
        M.dempster_shafer(logits), -ub_dempster_shafer_uncertainty(logits), rtol=1e-12
    )
    # hand value: K = 2, logits (0, 0): u = 2 / (2 + 2) = 1/2; logits (log 2, log 2): 2 / (2 + 4)
    np.testing.assert_allclose(
        M.dempster_shafer([[0.0, 0.0], [np.log(2), np.log(2)]]), [-0.5, -1 / 3], rtol=1e-12
    )


def test_dempster_shafer_keeps_the_ordering_where_the_naive_form_overflows():
    big = np.array([[700.0, 0.0], [702.0, 0.0], [90.0, 0.0], [100.0, 0.0], [-30.0, -30.0]])
    with np.errstate(over="ignore"):
        assert np.isinf(np.exp(big.astype(np.float32))).any()  # the float32 naive form overflows
    scores = M.dempster_shafer(big)
    assert np.isfinite(scores).all()
    assert scores[1] > scores[0] > scores[3] > scores[2] > scores[4]
    # larger logits mean more evidence and so a higher (less uncertain) score
    np.testing.assert_allclose(scores[2], -2 / (2 + np.exp(90.0) + 1), rtol=1e-12)


def test_dempster_shafer_is_constant_on_log_probabilities():
    log_probs = np.log(softmax(random_logits(5, 4, 2), axis=1))
    np.testing.assert_allclose(M.dempster_shafer(log_probs), -4 / 5, rtol=1e-12)


def test_negative_mutual_information_negates_the_decomposition():
    members = np.random.default_rng(3).dirichlet(np.ones(4), size=(5, 30))
    mean = members.mean(axis=0)
    expected = -(entropy(mean, axis=1) - entropy(members, axis=2).mean(axis=0))
    np.testing.assert_allclose(M.negative_mutual_information(members), expected, atol=1e-12)
    agreeing = np.repeat(members[:1], 3, axis=0)
    np.testing.assert_allclose(M.negative_mutual_information(agreeing), 0.0, atol=1e-12)


def test_scores_rank_in_distribution_higher_for_ood_auroc():
    # confident in-distribution predictions, flat OOD predictions
    logits_in, logits_out = random_logits(200, 10, 4, scale=4.0), random_logits(200, 10, 5, 0.3)
    probs_in, probs_out = softmax(logits_in, axis=1), softmax(logits_out, axis=1)
    for score in (M.max_probability, M.negative_entropy):
        assert M.ood_auroc(score(probs_in), score(probs_out)) > 0.95, score.__name__
    assert M.ood_auroc(M.dempster_shafer(logits_in), M.dempster_shafer(logits_out)) > 0.95


def test_ood_scores_computes_what_the_inputs_allow():
    logits = random_logits(20, 5, 6)
    members = np.stack([softmax(logits + s, axis=1) for s in random_logits(3, 5, 7)])
    probs = members.mean(axis=0)
    assert list(ood_scores(probs)) == ["max_prob", "entropy"]
    assert list(ood_scores(probs, logits=logits)) == ["max_prob", "entropy", "dempster_shafer"]
    everything = ood_scores(probs, logits=logits, member_probs=members)
    assert list(everything) == list(OOD_SCORES)
    np.testing.assert_array_equal(everything["max_prob"], M.max_probability(probs))
    np.testing.assert_array_equal(everything["entropy"], M.negative_entropy(probs))
    np.testing.assert_array_equal(everything["dempster_shafer"], M.dempster_shafer(logits))
    np.testing.assert_array_equal(
        everything["mutual_information"], M.negative_mutual_information(members)
    )
    for values in everything.values():
        assert values.dtype == np.float64 and values.shape == (20,)
    assert set(ood_scores(probs, member_probs=members)) == {
        "max_prob",
        "entropy",
        "mutual_information",
    }


def test_table_names_each_function_with_its_input():
    assert {name: score.needs for name, score in OOD_SCORES.items()} == {
        "max_prob": "probs",
        "entropy": "probs",
        "dempster_shafer": "logits",
        "mutual_information": "member_probs",
    }
    assert OOD_SCORES["dempster_shafer"].function is M.dempster_shafer


def test_torch_input_gives_the_numpy_result():
    logits = random_logits(10, 3, 8)
    probs = softmax(logits, axis=1)
    from_torch = ood_scores(torch.from_numpy(probs).float(), logits=torch.from_numpy(logits))
    from_numpy = ood_scores(probs.astype(np.float32), logits=logits)
    for name in from_numpy:
        np.testing.assert_allclose(from_torch[name], from_numpy[name], rtol=1e-12)


PROBS = softmax(random_logits(4, 3, 9), axis=1)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: M.max_probability(PROBS[0]), r"probs must have 2 dimension\(s\)"),
        (lambda: M.max_probability(np.zeros((0, 3))), "probs is empty"),
        (lambda: M.negative_entropy(PROBS * 2), "must lie in"),
        (lambda: M.negative_entropy(PROBS * 0.5), "must sum to 1"),
        (lambda: M.dempster_shafer([[0.0, np.inf]]), "logits contains an infinity"),
        (lambda: M.dempster_shafer([[0.0, np.nan]]), "logits contains NaN"),
        (lambda: M.negative_mutual_information(PROBS), "member_probs must have 3"),
        (lambda: M.max_probability(torch.ones(2, 2).bfloat16() / 2), "bfloat16"),
        (lambda: ood_scores(PROBS, logits=np.zeros((4, 4))), r"logits has shape \(4, 4\)"),
        (lambda: ood_scores(PROBS, member_probs=PROBS[None, :3]), r"member_probs must be \(M"),
        (lambda: ood_scores(PROBS, member_probs=PROBS[None] * 3), "member_probs must lie in"),
    ],
)
def test_bad_input_is_refused_with_a_clear_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
