"""The image baselines end to end on digits: the run-directory contract, metrics recomputed from
the saved predictions, re-evaluation from the checkpoint, ensembles of earlier runs, errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from sklearn.metrics import log_loss, roc_auc_score

from uqbench import baselines, cli, data
from uqbench.data.images import channel_stats
from uqbench.training import image_task
from uqbench.training.reevaluate import reevaluate

FAST = [
    "--dataset=digits",
    "--epochs=2",
    "--device=cpu",
    "--holdout_classes=8,9",
    "--ood=uniform_noise",
    "--quiet",
]


pytestmark = pytest.mark.usefixtures("one_thread")


def _run(name: str, out, *extra: str) -> dict:
    return baselines.run(name, [*FAST, f"--output_dir={out}", *extra])


@pytest.mark.parametrize(
    ("name", "extra"),
    [
        ("image/deterministic", ["--temperature_scaling"]),
        ("image/dropout", ["--mc_samples=3"]),
        ("image/ensemble", ["--num_members=2"]),
    ],
)
def test_baseline_writes_the_contract_and_its_metrics_recompute(name, extra, tmp_path):
    out = tmp_path / "run"
    summary = _run(name, out, *extra)
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoint.safetensors",
        "flags.txt",
        "history.jsonl",
        "predictions",
        "summary.json",
    ]
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk == json.loads(json.dumps(summary))
    assert on_disk["method"] == name and on_disk["dataset"]["name"] == "digits"
    assert on_disk["classes"] == [str(c) for c in range(8)]
    saved = np.load(out / "predictions" / "test.npz")
    probs, labels = saved["probs"].astype(np.float64), saved["labels"]
    assert probs.shape == (289, 8) and set(labels) == set(range(8))
    metrics = on_disk["metrics"]
    assert metrics["test/accuracy"] == pytest.approx(np.mean(probs.argmax(1) == labels))
    renormalised = probs / probs.sum(1, keepdims=True)
    assert metrics["test/nll"] == pytest.approx(log_loss(labels, renormalised), rel=1e-4)
    holdout = np.load(out / "predictions" / "ood_holdout.npz")
    truth = np.r_[np.ones(len(probs)), np.zeros(len(holdout["probs"]))]
    scores = np.r_[saved["score_max_prob"], holdout["score_max_prob"]]
    assert metrics["ood/holdout/auroc"] == pytest.approx(roc_auc_score(truth, scores), abs=1e-6)
    if name != "image/deterministic":
        assert "ood/holdout/mutual_information/auroc" in metrics
        assert saved["member_probs"].shape[1:] == (289, 8)
    else:
        assert on_disk["temperature"] > 0
        assert {"val/ece", "val_scaled/ece"} <= set(on_disk["validation"])
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history][:2] == [1, 2]
    assert "--epochs=2" in (out / "flags.txt").read_text()


def test_eval_rebuilds_the_predictor_from_the_checkpoint(tmp_path):
    out = tmp_path / "run"
    first = _run("image/dropout", out, "--mc_samples=4", "--temperature_scaling")
    again = reevaluate(out, ood=["uniform_noise"], output_dir=tmp_path / "again", quiet=True)
    # Same networks, same temperature, same held-out classes: same accuracy (MC noise aside,
    # accuracy of 4-sample averages on 289 images moves by at most a few examples).
    assert again["metrics"]["test/accuracy"] == pytest.approx(
        first["metrics"]["test/accuracy"], abs=0.03
    )
    assert "ood/holdout/auroc" in again["metrics"]
    assert again["evaluated_from"] == str(out.resolve())
    # the dropout masks are drawn from the run's seed: a second evaluation is identical, and
    # the caller's random state is not touched
    state = torch.get_rng_state()
    twice = reevaluate(out, ood=["uniform_noise"], output_dir=tmp_path / "twice", quiet=True)
    assert torch.equal(torch.get_rng_state(), state)
    assert twice["metrics"]["test/nll"] == again["metrics"]["test/nll"]
    for name in ("test.npz", "ood_holdout.npz"):
        a = np.load(tmp_path / "again" / "predictions" / name)
        b = np.load(tmp_path / "twice" / "predictions" / name)
        np.testing.assert_array_equal(a["probs"], b["probs"])
    assert cli.main(["eval", str(out), "--output_dir", str(tmp_path / "cli"), "--device=cpu"]) == 0
    assert (tmp_path / "cli" / "summary.json").is_file()


def test_ensemble_of_earlier_runs_equals_the_mean_of_their_predictions(tmp_path):
    runs = []
    for seed in (0, 1):
        runs.append(tmp_path / f"det{seed}")
        _run("image/deterministic", runs[-1], f"--seed={seed}")
    combined = tmp_path / "ensemble"
    summary = _run("image/ensemble", combined, f"--members_from={runs[0]},{runs[1]}")
    member_probs = [np.load(r / "predictions" / "test.npz")["probs"] for r in runs]
    saved = np.load(combined / "predictions" / "test.npz")
    np.testing.assert_allclose(saved["probs"], np.mean(member_probs, axis=0), atol=1e-5)
    assert summary["num_members"] == 2


def test_clear_errors_and_nothing_half_written(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(ValueError, match="unknown model"):
        _run("image/deterministic", out, "--model=resnet21x")
    with pytest.raises(ValueError, match="--validation_fraction"):
        _run("image/deterministic", out, "--temperature_scaling", "--validation_fraction=0")
    with pytest.raises(ValueError, match="dropout_rate"):
        _run("image/dropout", out, "--dropout_rate=1.5")
    with pytest.raises(ValueError, match="not a run directory"):
        _run("image/ensemble", out, f"--members_from={tmp_path},{tmp_path}")
    with pytest.raises(baselines.BaselineError, match="does not take --hidden"):
        _run("image/deterministic", out, "--hidden=3")
    assert not out.exists()
    assert cli.main(["run", "image/deterministic", "--dataset=nonexistent_set", "--quiet"]) == 2


def test_eval_prints_where_it_writes_and_keeps_search_trials_folder_clean(tmp_path, capsys):
    run = tmp_path / "run"
    _run("image/deterministic", run)
    capsys.readouterr()
    assert cli.main(["eval", str(run), "--device=cpu"]) == 0
    (written,) = [p for p in tmp_path.iterdir() if p.name.startswith("run-eval-")]
    assert f"eval: run directory {written}\n" in capsys.readouterr().out
    # A search trial (SEARCH/trials/<id> with SEARCH/search.db): evaluated beside the search.
    search = tmp_path / "search"
    trial = search / "trials" / "0003"
    shutil.copytree(run, trial)
    summary = json.loads((trial / "summary.json").read_text())
    (trial / "summary.json").write_text(json.dumps({**summary, "method": "search/trial"}))
    (search / "search.db").touch()
    assert cli.main(["eval", str(trial), "--device=cpu"]) == 0
    assert [p.name for p in (search / "trials").iterdir()] == ["0003"]
    (written,) = (tmp_path / "search-evals").iterdir()
    assert written.name.startswith("trial0003-") and (written / "summary.json").is_file()
    assert f"eval: run directory {written}\n" in capsys.readouterr().out


def test_train_subset_is_stratified_the_same_for_every_seed_and_checked():
    digits = data.get_images("digits", validation_fraction=0.1)
    subset = image_task.train_subset(digits, 100)
    labels = subset.y_train.numpy()
    share = 100 * np.bincount(digits.y_train.numpy()) / len(digits.y_train)
    assert len(labels) == 100 and np.all(np.abs(np.bincount(labels, minlength=10) - share) < 1)
    again = image_task.train_subset(digits, 100)
    assert torch.equal(subset.x_train, again.x_train)
    # Every image kept is one of the training images (none from validation or test).
    rows = {bytes(x.numpy()) for x in digits.x_train}
    assert all(bytes(x.numpy()) in rows for x in subset.x_train)
    assert subset.mean == channel_stats(subset.x_train)[0] != digits.mean
    assert subset.x_test is digits.x_test and subset.x_val is digits.x_val
    with pytest.raises(ValueError, match="from 10 to 1293"):
        image_task.train_subset(digits, 1294)
    with pytest.raises(ValueError, match="from 10 to 1293"):
        image_task.train_subset(digits, 9)


def test_train_subset_trains_on_that_many_images(tmp_path, capsys):
    flags = [*FAST[:-1], "--train_subset=40"]  # not --quiet: the first line says what trains
    summary = baselines.run("image/deterministic", [*flags, f"--output_dir={tmp_path / 'a'}"])
    assert "digits (40 train, 116 validation" in capsys.readouterr().out
    assert summary["train_subset"] == 40
    assert "--train_subset=40" in (tmp_path / "a" / "flags.txt").read_text().splitlines()
    assert cli.main(["run", "image/deterministic", *FAST, "--train_subset=7"]) == 2
    assert "8 classes; give a number from 8 to" in capsys.readouterr().err
