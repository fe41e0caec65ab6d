"""Uncertainty-aware objectives (weighted sums, budgets, ECE-penalised accuracy, OOD AUROC) and
the Pareto front of `search show --pareto`, against hand computations and a brute force."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from uqbench.search import objectives, pareto
from uqbench.search.space import SpecError, space_from_dict
from uqbench.search.store import TrialRow


def brute_force_front(points):
    """Every point that no other point dominates (<= in both, < in one)."""
    out = []
    for i, a, b in points:
        dominated = any(
            (a2 <= a and b2 <= b) and (a2 < a or b2 < b) for j, a2, b2 in points if j != i
        )
        if not dominated:
            out.append(i)
    return sorted(out)


@pytest.mark.parametrize("seed", range(30))
def test_the_front_is_the_brute_force_front(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 40))
    # few distinct values, so ties in one or both metrics are common
    values = rng.integers(0, 6, size=(n, 2)).astype(float)
    points = [(i, a, b) for i, (a, b) in enumerate(values)]
    assert sorted(pareto.front(points)) == brute_force_front(points)


def row(trial_id, params, val, test, how="grow", status="done"):
    return TrialRow(
        id=trial_id,
        parent=None,
        how=how,
        architecture=("fc_64",),
        hparams={"pool": [1, 2]} if how == "ensemble" else {},
        status=status,
        objective=val.get("val/nll"),
        val_metrics=val,
        test_metrics=test,
        params=params,
        seconds=1.0,
        worker=None,
        attempts=1,
        checkpoint=None,
        error=None,
    )


def test_pareto_trials_signs_metrics_and_skips_unfinished_trials():
    trials = [
        row(1, 100, {"val/nll": 0.5, "val/accuracy": 0.8}, {"test/ece": 0.05}),
        row(2, 300, {"val/nll": 0.3, "val/accuracy": 0.9}, {"test/ece": 0.02}),
        row(3, 400, {"val/nll": 0.4, "val/accuracy": 0.85}, {"test/ece": 0.01}),
        row(4, 50, {"val/nll": 0.2, "val/accuracy": 0.95}, {}, status="failed"),
        row(5, 600, {"val/nll": 0.25, "val/accuracy": 0.92}, {"test/ece": 0.03}, how="ensemble"),
    ]
    chosen, a, b = pareto.pareto_trials(trials, "nll", "params")
    assert (a, b) == ("val/nll", "params")
    assert [t.id for t in chosen] == [5, 2, 1]  # 3 is dominated by 2; 4 failed
    # accuracy is maximised: 2 (0.9, ece .02) and 3 (0.85, .01) and 5 (0.92, .03)
    chosen, _, _ = pareto.pareto_trials(trials, "accuracy", "test/ece")
    assert sorted(t.id for t in chosen) == [2, 3, 5]
    with pytest.raises(ValueError, match="no completed trial has both"):
        pareto.pareto_trials(trials, "nll", "test/nope")
    with pytest.raises(ValueError, match="two different metrics"):
        pareto.pareto_trials(trials, "nll", "val/nll")


def space(objective):
    return space_from_dict({"objective": objective})


def test_a_weighted_sum_with_a_parameter_budget_is_computed_by_hand():
    s = space({"terms": {"nll": 1.0, "ece": 2.0, "params": 0.5}, "budgets": {"params": 1000}})
    assert s.objective_key == "val/objective" and s.sign == 1
    val = {"val/nll": 0.4, "val/ece": 0.05}
    within = objectives.value(s, val, {"params": 800.0, "ms_per_example": 1.0})
    assert within == pytest.approx(0.4 + 2 * 0.05)
    over = objectives.value(s, val, {"params": 1500.0, "ms_per_example": 1.0})
    assert over == pytest.approx(0.4 + 2 * 0.05 + 0.5 * (1500 / 1000 - 1))
    latency = space({"terms": {"accuracy": -1.0, "ms_per_example": 0.1}})
    assert objectives.value(
        latency, {"val/accuracy": 0.9}, {"ms_per_example": 2.0, "params": 1}
    ) == (pytest.approx(-0.9 + 0.2))
    assert space_from_dict(s.to_dict()) == s  # round-trips through the store


def test_ece_penalised_accuracy_and_ood_auroc_are_what_they_say():
    derived = objectives.derived({"val/accuracy": 0.9, "val/ece": 0.07})
    assert derived == {"val/ece_penalised_accuracy": pytest.approx(0.83)}
    assert space({"metric": "ece_penalised_accuracy"}).direction == "maximize"
    rng = np.random.default_rng(0)
    val = rng.dirichlet(np.ones(4) * 0.3, size=50)
    ood = rng.dirichlet(np.ones(4) * 2.0, size=30)
    truth = np.r_[np.ones(50), np.zeros(30)]
    scores = np.r_[val.max(1), ood.max(1)]
    assert objectives.ood_auroc(val, ood)["val/ood_auroc"] == pytest.approx(
        roc_auc_score(truth, scores)
    )


@pytest.mark.parametrize(
    ("objective", "message"),
    [
        ({"metric": "nlll"}, "did you mean 'nll'"),
        ({"metric": "ood_auroc"}, "needs a validation OOD set"),
        ({"terms": {"nll": 1.0, "ood_auroc": -1.0}}, "needs a validation OOD set"),
        ({"terms": {"nll": 1.0, "bogus": 1.0}}, "'bogus' is unknown"),
        ({"terms": {"nll": 0}}, "non-zero weight"),
        ({"terms": {"nll": 1.0}, "budgets": {"params": 10}}, "no weight in terms"),
        ({"terms": {"nll": 1.0, "params": 1.0}, "budgets": {"params": -1}}, "positive"),
        ({"metric": "nll", "terms": {"nll": 1.0}}, "not both"),
        ({"metric": "nll", "budgets": {"params": 1}}, "cost terms"),
        ({"metric": "ood_auroc", "ood": {"held_out_classes": []}}, "ood must be"),
    ],
)
def test_bad_objectives_are_refused_naming_the_field(objective, message):
    with pytest.raises(SpecError, match=message):
        space(objective)


def test_an_ood_objective_with_a_set_is_accepted():
    for ood in ("uniform_noise", {"held_out_classes": [8, 9]}):
        s = space({"terms": {"nll": 1.0, "ood_auroc": -1.0}, "ood": ood})
        assert s.ood == ood and space_from_dict(s.to_dict()) == s


def test_the_front_of_many_random_clouds_matches_brute_force_with_signs():
    rng = np.random.default_rng(1)
    trials = [
        row(i, int(rng.integers(10, 20)), {"val/accuracy": float(rng.integers(0, 4)) / 4}, {})
        for i in range(1, 25)
    ]
    chosen, _, _ = pareto.pareto_trials(trials, "accuracy", "params")
    points = [(t.id, -t.val_metrics["val/accuracy"], t.params) for t in trials]
    assert sorted(t.id for t in chosen) == brute_force_front(points)
    for first, second in itertools.permutations(["accuracy", "params"]):
        assert {t.id for t in pareto.pareto_trials(trials, first, second)[0]} == {
            t.id for t in chosen
        }


OOD_SPEC = """
blocks = ["conv3x3_16", "max_pool", "fc_64"]
max_depth = 2
[training]
epochs = 1
batch_size = 128
[objective]
terms = { nll = 1.0, ood_auroc = -1.0 }
ood = { held_out_classes = [8, 9] }
"""


@pytest.mark.usefixtures("one_thread")
def test_an_ood_aware_search_holds_out_classes_and_scores_nll_minus_auroc(tmp_path):
    from uqbench.search import outputs
    from uqbench.search.driver import SearchRequest, run_search

    (tmp_path / "space.toml").write_text(OOD_SPEC)
    out = tmp_path / "search"
    request = SearchRequest(
        dataset="digits",
        output_dir=str(out),
        trials=2,
        spec=str(tmp_path / "space.toml"),
        quiet=True,
    )
    assert run_search(request)["status"] == "complete"
    trials = outputs.open_store(out).trials()
    assert len(trials) == 2 and all(t.how != "ensemble" for t in trials)
    for trial in trials:
        val = trial.val_metrics
        assert 0 <= val["val/ood_auroc"] <= 1
        assert trial.objective == pytest.approx(val["val/nll"] - val["val/ood_auroc"])
        assert val["val/objective"] == pytest.approx(trial.objective)
        run = out / "trials" / f"{trial.id:04d}"
        saved = np.load(run / "predictions" / "test.npz")
        assert saved["probs"].shape[1] == 8  # classes 8 and 9 left training
        assert set(saved["labels"]) == set(range(8))
        summary = json.loads((run / "summary.json").read_text())
        assert "ood/holdout/auroc" in summary["metrics"]
        holdout = np.load(run / "predictions" / "ood_holdout.npz")
        truth = np.r_[np.ones(len(saved["probs"])), np.zeros(len(holdout["probs"]))]
        scores = np.r_[saved["probs"].max(1), holdout["probs"].max(1)]
        assert summary["metrics"]["ood/holdout/auroc"] == pytest.approx(
            roc_auc_score(truth, scores), abs=1e-6
        )
    # the end-of-search ensemble is evaluated on the same test OOD set as its trials
    final = json.loads((out / "ensemble" / "summary.json").read_text())
    assert 0 <= final["metrics"]["ood/holdout/auroc"] <= 1


@pytest.mark.usefixtures("one_thread")
def test_show_pareto_prints_the_front_and_export_takes_any_point_of_it(tmp_path, capsys):
    import re

    import uqbench
    from uqbench import data
    from uqbench.cli import main
    from uqbench.search import outputs

    (tmp_path / "space.toml").write_text(
        'blocks = ["fc_32", "fc_64", "layer_norm"]\nmax_depth = 3\ndepth_every = 1\n'
        "[training]\nepochs = 2\n[ensemble]\nenabled = false\n"
    )
    out = tmp_path / "search"
    flags = ["--dataset=wine_recognition", "--trials=5", "--quiet", "--seed=1"]
    assert main(["search", *flags, f"--output_dir={out}", f"--spec={tmp_path / 'space.toml'}"]) == 0
    capsys.readouterr()
    assert main(["search", "show", str(out), "--pareto=nll,params"]) == 0
    text = capsys.readouterr().out
    listed = [int(m) for m in re.findall(r"^(\d+) ", text, flags=re.M)]
    trials = outputs.open_store(out).trials()
    points = [(t.id, t.val_metrics["val/nll"], t.params) for t in trials if t.status == "done"]
    assert sorted(listed) == brute_force_front(points)
    assert "search export" in text
    chosen = listed[-1]
    assert (
        main(["search", "export", str(out), f"--trial={chosen}", f"--output={tmp_path / 'm'}"]) == 0
    )
    split = data.get("wine_recognition", split=0, validation_fraction=0.2)
    from sklearn.datasets import load_wine

    probs = uqbench.load_run(tmp_path / "m").predict(load_wine().data[split.test_index])
    saved = np.load(out / "trials" / f"{chosen:04d}" / "predictions" / "test.npz")
    np.testing.assert_array_equal(probs, saved["probs"])
    assert main(["search", "show", str(out), "--pareto=nll"]) == 2
