"""image/sngp end to end on digits: the run, its exact re-evaluation from the checkpoint, and the
errors before training (a model without residual layers, bad GP settings)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.nn.utils.parametrize import is_parametrized

from uqbench import baselines
from uqbench.training.predictors import load_networks
from uqbench.training.reevaluate import reevaluate

FAST = [
    "--dataset=digits",
    "--epochs=1",
    "--device=cpu",
    "--holdout_classes=8,9",
    "--quiet",
    "--gp_hidden_dim=64",
]


pytestmark = pytest.mark.usefixtures("one_thread")


def test_sngp_runs_on_a_residual_network_and_reloads_exactly(tmp_path):
    out = tmp_path / "run"
    summary = baselines.run("image/sngp", [*FAST, f"--output_dir={out}"])
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["model"] == "resnet8" and on_disk["protocol"] == "cpu"
    assert on_disk["sngp"]["spec_norm_bound"] == 3.0 and on_disk["sngp"]["num_features"] == 64
    assert "ood/holdout/auroc" in summary["metrics"]
    again = reevaluate(out, output_dir=tmp_path / "again", quiet=True)
    # Same weights, precision and mean-field factor: the same test predictions.
    first = np.load(out / "predictions" / "test.npz")["probs"]
    second = np.load(tmp_path / "again" / "predictions" / "test.npz")["probs"]
    np.testing.assert_allclose(first, second, atol=1e-5)
    assert again["metrics"]["test/nll"] == pytest.approx(summary["metrics"]["test/nll"], rel=1e-4)


def test_sngp_refuses_networks_without_residual_layers_and_bad_settings(tmp_path):
    with pytest.raises(ValueError, match="residual.*resnet<6n\\+2>.*wrn"):
        baselines.run("image/sngp", [*FAST, "--model=lenet", f"--output_dir={tmp_path / 'a'}"])
    with pytest.raises(ValueError, match="coefficient must be positive"):
        baselines.run(
            "image/sngp", [*FAST, "--spec_norm_bound=0", f"--output_dir={tmp_path / 'b'}"]
        )
    with pytest.raises(ValueError, match="ridge"):
        baselines.run(
            "image/sngp", [*FAST, "--gp_cov_ridge_penalty=-1", f"--output_dir={tmp_path / 'c'}"]
        )
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("switch", "gp_head", "bounded"),
    [("--nouse_gp_layer", False, True), ("--nouse_spec_norm", True, False)],
)
def test_ubs_ablation_switches_drop_one_part_and_reload_exactly(tmp_path, switch, gp_head, bounded):
    out = tmp_path / "run"
    summary = baselines.run("image/sngp", [*FAST, switch, f"--output_dir={out}"])
    (network,), _ = load_networks(out)
    assert (type(network.fc).__name__ == "RandomFeatureGaussianProcess") == gp_head
    convs = [m for m in network.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(is_parametrized(c) == bounded for c in convs)
    assert summary["sngp"]["use_gp_layer"] == gp_head
    assert summary["sngp"]["use_spec_norm"] == bounded
    again = reevaluate(out, output_dir=tmp_path / "again", quiet=True)
    assert again["metrics"]["test/nll"] == pytest.approx(summary["metrics"]["test/nll"], rel=1e-4)
