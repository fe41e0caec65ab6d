"""The uqbench command: list, run, errors and exit codes."""

from __future__ import annotations

import subprocess
import sys

from uqbench import baselines, data, metrics
from uqbench.cli import main


def test_list_shows_every_dataset_baseline_and_metric(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in [*data.names(), *baselines.names(), *metrics.names()]:
        assert f"  {name} " in out, name
    assert "Deep ensemble" in out


def test_registry_descriptions_come_from_the_scripts():
    for name in baselines.names():
        assert baselines.describe(name), name


def test_run_help_lists_the_baseline_flags(capsys):
    assert main(["run", "uci/ensemble", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--num_members" in out and "--dataset" in out


def test_bad_input_gives_a_message_and_exit_code_2(capsys, tmp_path):
    assert main(["run", "uci/ensmble", "--dataset=gap1d"]) == 2
    assert "Did you mean uci/ensemble" in capsys.readouterr().err
    assert main(["run", "uci/ensemble", "--dataset=bostn", f"--output_dir={tmp_path / 'x'}"]) == 2
    err = capsys.readouterr().err
    assert "unknown data set 'bostn'" in err and "boston" in err
    assert (
        main(
            [
                "run",
                "uci/ensemble",
                "--dataset=boston",
                f"--data_dir={tmp_path}",
                f"--output_dir={tmp_path / 'y'}",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert str(tmp_path / "uci" / "bostonHousing") in err and "--download" in err
    assert main(["frobnicate"]) == 2
    assert (
        main(
            [
                "run",
                "uci/deterministic",
                "--dataset=gap1d",
                "--learning_rate=1e30",
                "--split=0",
                "--epochs=2",
                f"--output_dir={tmp_path / 'z'}",
            ]
        )
        == 1
    )
    assert "training failed" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_installed_command_runs_a_baseline(tmp_path):
    out = tmp_path / "run"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "uqbench",
            "run",
            "uci/ensemble",
            "--dataset=gap1d",
            "--split=0",
            "--epochs=2",
            "--num_members=2",
            f"--output_dir={out}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert (out / "summary.json").exists() and "uci/ensemble / gap1d" in result.stdout


def test_demo_runs_all_baselines_in_one_process(tmp_path, capsys):
    from uqbench.demo import DEMO_DATASETS, DEMO_METHODS, run_demo

    summaries = run_demo(tmp_path, splits="0,1", search_trials=2)
    assert len(summaries) == len(DEMO_DATASETS) * len(DEMO_METHODS) + 1
    assert summaries[-1]["kind"] == "search" and summaries[-1]["trials"]["done"] == 2
    out = capsys.readouterr().out
    assert "uqbench demo" in out and all(m in out for m in DEMO_METHODS)
    assert "top 2 trials" in out
    assert all(
        (tmp_path / d / m.replace("/", "_") / "summary.json").exists()
        for d in DEMO_DATASETS
        for m in DEMO_METHODS
    )
