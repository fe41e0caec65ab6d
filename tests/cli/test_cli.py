"""The uqbench command: list, run, errors and exit codes."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

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


def test_a_demo_whose_search_fails_exits_1(tmp_path, monkeypatch, capsys):
    import uqbench.search.runner
    from uqbench.training.divergence import DivergedError

    def diverge(*args, **kwargs):
        raise DivergedError("the training loss of the network rose to 1e+27 in epoch 1")

    monkeypatch.setattr(uqbench.search.runner, "fit", diverge)
    monkeypatch.setattr("uqbench.demo.DEMO_DATASETS", ())
    assert main(["demo", f"--output_dir={tmp_path}"]) == 1
    err = capsys.readouterr().err
    assert (
        err.strip()
        .splitlines()[-1]
        .startswith(
            "uqbench: the demo's search failed: all 8 trials failed; first error (trial 1): "
            "DivergedError: the training loss"
        )
    )


def _help(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 0
    return " ".join(capsys.readouterr().out.split())


def test_search_help_gives_every_flag_a_help_line_with_its_true_default(capsys):
    from uqbench.cli import _search_parser
    from uqbench.search.driver import SearchRequest

    text = _help(capsys, ["search", "--help"])
    defaults = {f.name: f.default for f in dataclasses.fields(SearchRequest)}
    flags = [a for a in _search_parser()._actions if a.dest != "help"]
    assert sorted(a.dest for a in flags) == sorted(defaults)
    for action in flags:
        assert " ".join(action.help.split()) in text, action.dest
        if action.required:
            assert action.help.startswith("required: "), action.dest
            continue
        assert action.default == defaults[action.dest], action.dest  # the API's default too
        if action.default is None:  # the help says what None means
            assert "(default: " in action.help, action.dest
        else:
            shown = "off" if action.default is False else str(action.default)
            assert f"(default: {shown})" in action.help, action.dest
    assert "--algorithm {adaptive,random,evolution,optuna}" in text
    assert "--executor {local,ray}" in text
    assert "Failed and infeasible trials count toward --trials" in text
    assert "0 finished: the budget is done" in text and "1 failed" in text


def test_search_show_and_export_help_give_their_defaults(capsys):
    text = _help(capsys, ["search", "show", "--help"])
    assert "--top TOP trials to list (default: 10)" in text
    text = _help(capsys, ["search", "export", "--help"])
    assert "(default: DIR/best_model.safetensors)" in text
    assert "--trial TRIAL the trial to export (default: the best)" in text
