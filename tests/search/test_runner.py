"""Pieces of the trial runner: the trial's recipe, its seed, and cleaning up after a kill."""

from __future__ import annotations

import pytest

from uqbench.search.runner import remove_stale_staging, trial_recipe, trial_seed
from uqbench.search.space import space_from_dict
from uqbench.training.protocols import choose_protocol


def test_stale_staging_folders_go_except_those_of_running_trials(tmp_path):
    trials = tmp_path / "trials"
    for name in ("0001", ".0003.partial-abc", ".0005.partial-xyz", ".0003.partial-def"):
        (trials / name).mkdir(parents=True)
    (trials / ".0003.partial-abc" / "summary.json").write_text("{}")
    removed = remove_stale_staging(tmp_path, running={5})
    assert sorted(p.name for p in removed) == [".0003.partial-abc", ".0003.partial-def"]
    assert sorted(p.name for p in trials.iterdir()) == [".0005.partial-xyz", "0001"]
    assert remove_stale_staging(tmp_path / "nothing-here", running=set()) == []


def test_the_trial_recipe_layers_space_and_hyperparameters_on_the_protocol():
    base = choose_protocol("cpu", None, "cpu").recipe  # 100 epochs, 10 of warm-up
    space = space_from_dict({"training": {"epochs": 20, "flip": True}, "hyperparameters": {}})
    recipe = trial_recipe(base, space, {"learning_rate": 0.07})
    assert (recipe.epochs, recipe.flip, recipe.learning_rate) == (20, True, 0.07)
    assert recipe.warmup_epochs == pytest.approx(2.0)  # the protocol's 10% of training
    assert recipe.batch_size == base.batch_size and recipe.momentum == base.momentum
    with pytest.raises(ValueError, match="learning_rate must be positive"):
        trial_recipe(base, space, {"learning_rate": -1.0})


def test_trial_seeds_differ_across_trials_and_searches_and_repeat_for_a_rerun():
    seeds = {trial_seed(s, t) for s in range(3) for t in range(1, 50)}
    assert len(seeds) == 3 * 49
    assert trial_seed(7, 3) == trial_seed(7, 3)


def test_ray_requests_that_no_node_can_meet_are_refused():
    from uqbench.search.executors import check_ray_resources

    check_ray_resources({"CPU": 2.0}, cpus_per_trial=1, gpus_per_trial=0)
    with pytest.raises(ValueError, match="--gpus_per_trial=1 but the Ray cluster has 0 GPUs"):
        check_ray_resources({"CPU": 2.0}, cpus_per_trial=1, gpus_per_trial=1)
    with pytest.raises(ValueError, match="--cpus_per_trial=4 but the Ray cluster has 2 CPUs"):
        check_ray_resources({"CPU": 2.0, "GPU": 1.0}, cpus_per_trial=4, gpus_per_trial=1)


def test_when_every_local_worker_fails_the_search_says_where_the_logs_are(tmp_path, monkeypatch):
    import sys

    from uqbench.search import executors

    monkeypatch.setattr(
        executors, "worker_command", lambda *_: [sys.executable, "-c", "raise SystemExit(3)"]
    )
    polls = []
    with pytest.raises(executors.WorkersFailed, match=r"exit codes 3, 3\); see .*worker\*\.log"):
        executors.run_local_workers(tmp_path, 2, lambda: polls.append(1), threads=1)
    assert polls and sorted(p.name for p in (tmp_path / "workers").iterdir()) == [
        "worker0.log",
        "worker1.log",
    ]
