"""The text baselines end to end on a tiny synthetic intent set: the run-directory contract,
metrics recomputed from the saved predictions (scikit-learn), re-evaluation from the
checkpoint, --resume after a kill, ``uqbench.evaluate`` on token batches, and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, log_loss, roc_auc_score
from text_fakes import intent_parts, write_json

import uqbench
from uqbench import baselines, cli, data
from uqbench.training import text_task
from uqbench.training.checkpoint import CheckpointError
from uqbench.training.reevaluate import reevaluate

pytestmark = pytest.mark.usefixtures("one_thread")
FAST = ["--epochs=2", "--device=cpu", "--quiet", "--batch_size=16"]


@pytest.fixture
def intents(tmp_path):
    return write_json(tmp_path / "data" / "intents.json", per_class=16)


def _run(name, intents, out, *extra):
    return baselines.run(name, [f"--dataset={intents}", *FAST, f"--output_dir={out}", *extra])


@pytest.mark.parametrize(
    ("name", "extra", "members"),
    [
        ("text/deterministic", ["--temperature_scaling"], 0),
        ("text/dropout", ["--mc_samples=3"], 3),
        ("text/ensemble", ["--num_members=2"], 2),
        ("text/sngp", ["--gp_hidden_dim=64"], 0),
        ("text/batchensemble", ["--num_members=2"], 2),
    ],
)
def test_text_baseline_writes_the_contract_and_its_metrics_recompute(
    name, extra, members, intents, tmp_path
):
    out = tmp_path / "run"
    summary = _run(name, intents, out, *extra)
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoint.safetensors",
        "flags.txt",
        "history.jsonl",
        "predictions",
        "summary.json",
    ]
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk == json.loads(json.dumps(summary))
    assert on_disk["method"] == name and on_disk["dataset"]["name"] == "intents"
    assert on_disk["classes"] == ["music", "travel", "weather"]
    test = np.load(out / "predictions" / "test.npz")
    probs, labels = test["probs"].astype(np.float64), test["labels"]
    assert probs.shape == (24, 3)
    metrics = on_disk["metrics"]
    assert metrics["test/accuracy"] == pytest.approx(np.mean(probs.argmax(1) == labels))
    renormalised = probs / probs.sum(1, keepdims=True)
    assert metrics["test/nll"] == pytest.approx(log_loss(labels, renormalised), rel=1e-4)
    oos = np.load(out / "predictions" / "ood_oos_test.npz")
    assert oos["probs"].shape == (12, 3)
    truth = np.r_[np.ones(24), np.zeros(12)]
    for score, key in [("max_prob", "ood/oos_test"), ("entropy", "ood/oos_test/entropy")]:
        scores = np.r_[test[f"score_{score}"], oos[f"score_{score}"]]
        assert metrics[f"{key}/auroc"] == pytest.approx(roc_auc_score(truth, scores), abs=1e-6)
        assert metrics[f"{key}/aupr_out"] == pytest.approx(
            average_precision_score(1 - truth, -scores), abs=1e-6
        )
    assert "val/ood/oos_val/auroc" in on_disk["validation"]
    if members:
        assert test["member_probs"].shape == (members, 24, 3)
        assert "ood/oos_test/mutual_information/auroc" in metrics
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history][:2] == [1, 2]
    assert "--epochs=2" in (out / "flags.txt").read_text().splitlines()
    # Re-evaluated from the checkpoint alone: the same predictions (MC dropout resamples).
    again = reevaluate(out, output_dir=tmp_path / "again", device="cpu", quiet=True)
    if name != "text/dropout":
        np.testing.assert_allclose(
            np.load(tmp_path / "again" / "predictions" / "test.npz")["probs"],
            test["probs"],
            atol=1e-5,
        )
        assert again["metrics"]["ood/oos_test/auroc"] == pytest.approx(
            metrics["ood/oos_test/auroc"], abs=1e-6
        )
    if name == "text/deterministic":  # the command line, with both out-of-scope sets
        cli_dir = tmp_path / "cli"
        args = [
            "eval",
            str(out),
            f"--output_dir={cli_dir}",
            "--device=cpu",
            "--ood=oos_test,oos_val",
        ]
        assert cli.main(args) == 0
        evaluated = json.loads((cli_dir / "summary.json").read_text())
        assert {"ood/oos_val/auroc", "ood/oos_test/auroc"} <= set(evaluated["metrics"])
        assert cli.main([*args[:2], f"--output_dir={tmp_path / 'x'}", "--ood=uniform_noise"]) == 2
        with pytest.raises(CheckpointError, match="is a text run"):
            uqbench.load_run(out)


def test_resume_after_a_kill_ends_as_an_uninterrupted_run(intents, tmp_path, monkeypatch):
    whole = tmp_path / "whole"
    _run("text/deterministic", intents, whole, "--epochs=3")
    train = text_task.TextTask.train

    def killed_after_epoch_1(self, model, *args, **kwargs):
        def stop(record):
            if record["epoch"] == 1:
                raise KeyboardInterrupt

        return train(self, model, *args, on_epoch_end=stop, **kwargs)

    monkeypatch.setattr(text_task.TextTask, "train", killed_after_epoch_1)
    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        _run("text/deterministic", intents, out, "--epochs=3")
    assert not out.exists() and (tmp_path / ".resumed.training" / "fit-0.pt").is_file()
    monkeypatch.setattr(text_task.TextTask, "train", train)
    with pytest.raises(ValueError, match="pass --resume"):
        _run("text/deterministic", intents, out, "--epochs=3")
    _run("text/deterministic", intents, out, "--epochs=3", "--resume")
    for part in ("test", "ood_oos_test"):
        np.testing.assert_array_equal(
            np.load(out / "predictions" / f"{part}.npz")["probs"],
            np.load(whole / "predictions" / f"{part}.npz")["probs"],
        )
    assert not (tmp_path / ".resumed.training").exists()


def test_evaluate_takes_token_batches(intents, tmp_path):
    texts = data.get_text(intents)
    weather = texts.tokenizer.token_to_id("weather")

    def predict(ids: torch.Tensor) -> torch.Tensor:
        """Weather when the query says so, else uniform over the other two intents."""
        says = (ids == weather).any(dim=1, keepdim=True).float()
        other = torch.tensor([[0.5, 0.5, 0.0]]).expand(len(ids), 3)
        return says * torch.tensor([[0.0, 0.0, 1.0]]) + (1 - says) * other

    summary = uqbench.evaluate(
        predict, texts, ood=[texts.ood_test], output_dir=tmp_path / "mine", quiet=True
    )
    said = (texts.x_test == weather).any(dim=1).numpy()
    expected = predict(texts.x_test).numpy()
    labels = texts.y_test.numpy()
    assert summary["metrics"]["test/accuracy"] == pytest.approx(
        np.mean(expected.argmax(1) == labels)
    )
    assert summary["dataset"]["name"] == "intents" and said.any()
    assert "ood/oos_test/auroc" in summary["metrics"]


def test_bad_input_gives_clear_errors_and_writes_nothing(intents, tmp_path, capsys):
    out = tmp_path / "run"
    with pytest.raises(ValueError, match="unknown text model 'resnet20'"):
        _run("text/deterministic", intents, out, "--model=resnet20")
    with pytest.raises(ValueError, match="at least 2"):
        _run("text/ensemble", intents, out, "--num_members=1")
    with pytest.raises(ValueError, match="dropout_rate"):
        _run("text/dropout", intents, out, "--dropout_rate=1.5")
    with pytest.raises(ValueError, match="has its own validation part"):
        _run("text/deterministic", intents, out, "--validation_fraction=0.2")
    with pytest.raises(ValueError, match="brings its own"):
        _run("text/deterministic", intents, out, f"--tokenizer={intents}", "--vocab_size=99")
    with pytest.raises(baselines.BaselineError, match="does not take --holdout_classes"):
        _run("text/deterministic", intents, out, "--holdout_classes=1")
    parts = intent_parts()
    parts["test"].append(["book a table for two", "restaurant"])
    bad = write_json(tmp_path / "bad.json", parts)
    assert (
        cli.main(["run", "text/deterministic", f"--dataset={bad}", *FAST, f"--output_dir={out}"])
        == 2
    )
    assert "never has: restaurant" in capsys.readouterr().err
    assert cli.main(["run", "text/sngp", "--quiet"]) == 2
    assert "--dataset is required" in capsys.readouterr().err
    assert not out.exists()
