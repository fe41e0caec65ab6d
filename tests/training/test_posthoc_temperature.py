"""``uqbench eval RUN --temperature_scaling`` calibrates a finished run post hoc exactly as
``--temperature_scaling`` during training would, and refuses what it cannot calibrate."""

from __future__ import annotations

import pytest

from uqbench import baselines, cli
from uqbench.training.reevaluate import reevaluate

FAST = ["--dataset=digits", "--epochs=2", "--device=cpu", "--holdout_classes=8,9", "--quiet"]

pytestmark = pytest.mark.usefixtures("one_thread")


def test_posthoc_temperature_scaling_equals_scaling_during_training(tmp_path):
    plain = tmp_path / "plain"
    baselines.run("image/deterministic", [*FAST, f"--output_dir={plain}"])
    during = baselines.run(
        "image/deterministic", [*FAST, "--temperature_scaling", f"--output_dir={tmp_path / 'ts'}"]
    )
    posthoc = reevaluate(
        plain, temperature_scaling=True, output_dir=tmp_path / "posthoc", quiet=True
    )
    assert posthoc["temperature"] == pytest.approx(during["temperature"], rel=1e-6)
    assert posthoc["temperature"] != pytest.approx(1.0, abs=1e-3)
    assert posthoc["posthoc"] == "temperature_scaling"
    for key in ("test/accuracy", "test/nll", "test/ece", "ood/holdout/auroc"):
        assert posthoc["metrics"][key] == pytest.approx(during["metrics"][key], rel=1e-6), key
    for key in ("val/nll", "val_scaled/nll"):
        assert posthoc["validation"][key] == pytest.approx(during["validation"][key], rel=1e-6)
    assert posthoc["validation"]["val_scaled/nll"] <= posthoc["validation"]["val/nll"]
    with pytest.raises(ValueError, match="already temperature-scaled"):
        reevaluate(tmp_path / "ts", temperature_scaling=True, output_dir=tmp_path / "again")


def test_posthoc_temperature_scaling_needs_a_validation_set(tmp_path, capsys):
    run = tmp_path / "run"
    baselines.run("image/deterministic", [*FAST, "--validation_fraction=0", f"--output_dir={run}"])
    code = cli.main(["eval", str(run), "--temperature_scaling", f"--output_dir={tmp_path / 'x'}"])
    assert code != 0 and "validation_fraction 0" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
