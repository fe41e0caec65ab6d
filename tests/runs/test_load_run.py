"""``uqbench.load_run``: a saved model applied to raw input reproduces the run's recorded test
predictions and metrics, for an image search, table searches and baseline runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from sklearn.metrics import accuracy_score

import uqbench
from uqbench import baselines, data, metrics
from uqbench.data import synthetic
from uqbench.search import outputs
from uqbench.search.driver import SearchRequest, run_search
from uqbench.training.checkpoint import CheckpointError

pytestmark = pytest.mark.usefixtures("one_thread")

IMAGE_SPEC = """
blocks = ["conv3x3_16", "max_pool", "fc_64"]
max_depth = 2
[training]
epochs = 1
batch_size = 128
[ensemble]
enabled = false
"""
TABLE_SPEC = """
blocks = ["fc_32", "dropout_10", "layer_norm"]
max_depth = 2
depth_every = 1
[training]
epochs = 3
batch_size = 32
[ensemble]
every = 3
"""


def search(tmp_path: Path, dataset: str, spec: str, trials: int, **extra) -> Path:
    (tmp_path / "space.toml").write_text(spec)
    out = tmp_path / "search"
    request = SearchRequest(
        dataset=dataset,
        output_dir=str(out),
        trials=trials,
        spec=str(tmp_path / "space.toml"),
        quiet=True,
        **extra,
    )
    assert run_search(request)["status"] == "complete"
    return out


def recorded(run_dir: Path) -> tuple[dict, np.lib.npyio.NpzFile]:
    summary = json.loads((run_dir / "summary.json").read_text())
    return summary["metrics"], np.load(run_dir / "predictions" / "test.npz")


def nll_by_hand(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(-np.mean(np.log(probs.astype(np.float64)[np.arange(len(labels)), labels])))


def test_an_exported_image_search_model_predicts_from_raw_uint8_images(tmp_path):
    out = search(tmp_path, "digits", IMAGE_SPEC, trials=2)
    exported = outputs.export(out)
    best = json.loads((out / "summary.json").read_text())["best_trial"]["trial"]
    values, saved = recorded(out / "trials" / f"{best:04d}")
    images = data.get_images("digits")  # raw uint8 test images, the official test part
    model = uqbench.load_run(exported)
    probs = model.predict(images.x_test.numpy())
    labels = images.y_test.numpy()
    np.testing.assert_array_equal(probs, saved["probs"])
    assert accuracy_score(labels, probs.argmax(1)) == values["test/accuracy"]
    assert nll_by_hand(probs, labels) == pytest.approx(values["test/nll"], rel=1e-6)
    assert model.class_names == [str(i) for i in range(10)]
    with pytest.raises(ValueError, match="raw uint8 images"):
        model.predict(images.x_test.float() / 255)


def test_a_table_search_on_a_csv_file_predicts_from_raw_rows(tmp_path):
    rng = np.random.default_rng(0)
    n = 200
    colour = rng.choice(["red", "green", "blue"], size=n)
    size = rng.normal(size=n)
    label = np.where((colour == "red") ^ (size > 0.3), "yes", "no")
    lines = ["size,colour,label"] + [
        f"{float(s)!r},{c},{y}" for s, c, y in zip(size, colour, label, strict=True)
    ]
    csv = tmp_path / "toy.csv"
    csv.write_text("\n".join(lines) + "\n")
    out = search(tmp_path, str(csv), TABLE_SPEC, trials=4, target="label")
    trials = outputs.open_store(out).trials()
    assert trials[2].how == "ensemble" and all(t.status == "done" for t in trials)
    test_rows = np.load(out / "trials" / "0001" / "predictions" / "test.npz")["labels"]
    for trial in (trials[0], trials[2]):  # a single network and an ensemble
        run_dir = out / "trials" / f"{trial.id:04d}"
        values, saved = recorded(run_dir)
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["task"] == "classification"
        from uqbench.data.csv_table import read_csv, split_rows

        table = read_csv(csv, "label")
        _, _, test = split_rows(table, 0, 0.2, seed=0)
        raw = {"size": size[test], "colour": colour[test]}
        probs = uqbench.load_run(run_dir).predict(raw)
        np.testing.assert_array_equal(probs, saved["probs"])
        truth = (label[test] == "yes").astype(int)  # classes sorted: no, yes
        np.testing.assert_array_equal(truth, test_rows)
        assert nll_by_hand(probs, truth) == pytest.approx(values["test/nll"], rel=1e-6)
    with pytest.raises(ValueError, match="never saw"):
        uqbench.load_run(out / "trials" / "0001").predict({"size": [0.0], "colour": ["pink"]})


def test_a_regression_table_search_predicts_mean_and_variance_in_target_units(tmp_path):
    out = search(tmp_path, "diabetes", TABLE_SPEC, trials=2, split=2)
    run_dir = out / "trials" / "0002"
    values, saved = recorded(run_dir)
    split = data.get("diabetes", split=2, validation_fraction=0.2)
    bunch = load_diabetes()
    mean, var = uqbench.load_run(run_dir).predict(bunch.data[split.test_index])
    np.testing.assert_allclose(mean, saved["mean"], rtol=1e-6)
    y = bunch.target[split.test_index]
    by_hand = np.mean(0.5 * np.log(2 * np.pi * var) + (y - mean) ** 2 / (2 * var))
    assert by_hand == pytest.approx(values["test/nll"], rel=1e-6)
    assert np.sqrt(np.mean((y - mean) ** 2)) == pytest.approx(values["test/rmse"], rel=1e-6)


def test_baseline_runs_predict_from_raw_input(tmp_path):
    image = tmp_path / "image"
    baselines.run(
        "image/deterministic",
        [
            "--dataset=digits",
            "--epochs=1",
            "--device=cpu",
            "--temperature_scaling",
            "--quiet",
            f"--output_dir={image}",
        ],
    )
    values, saved = recorded(image)
    images = data.get_images("digits")
    model = uqbench.load_run(image)
    assert model.metadata["temperature"] > 0
    probs = model.predict(images.x_test)
    np.testing.assert_array_equal(probs, saved["probs"])
    assert metrics.accuracy(probs, images.y_test.numpy()) == values["test/accuracy"]

    uci = tmp_path / "uci"
    flags = ["--dataset=gap1d", "--split=0,1", "--epochs=3", "--num_members=2", "--quiet"]
    baselines.run("uci/ensemble", [*flags, f"--output_dir={uci}"])
    summary = json.loads((uci / "summary.json").read_text())
    saved = np.load(uci / "predictions" / "test.npz")
    x, y = synthetic.gap1d()[:2]
    model = uqbench.load_run(uci)
    for position, split in enumerate((0, 1)):
        rows = x[saved["index"][position]]
        mean, var = model.predict(rows, split=split)
        np.testing.assert_allclose(mean, saved["mean"][position], rtol=1e-6)
        np.testing.assert_allclose(var, saved["variance"][position], rtol=1e-6)
        nll = metrics.mixture_gaussian_nll(
            saved["member_means"][position],
            saved["member_variances"][position],
            y[saved["index"][position]],
        )
        assert nll == pytest.approx(summary["splits"][str(split)]["test/nll"], rel=1e-5)
    with pytest.raises(ValueError, match="pass split="):
        model.predict(x[:3])


def test_a_checkpoint_without_preprocessing_is_refused(tmp_path):
    from uqbench.training.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "c.safetensors", {}, {"method": "x"})
    with pytest.raises(CheckpointError, match="no preprocessing"):
        uqbench.load_run(tmp_path / "c.safetensors")
