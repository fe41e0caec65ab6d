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


def test_architectures_over_the_parameter_budget_are_never_suggested():
    from types import SimpleNamespace

    from uqbench.search.blocks import build_network
    from uqbench.search.runner import SearchContext, as_trial
    from uqbench.search.store import TrialRow

    def params(architecture):
        return sum(p.numel() for p in build_network(architecture, (1, 8, 8), 10).parameters())

    def suggested(max_params):
        raw = {
            "blocks": ["conv3x3_16", "conv3x3_64", "max_pool", "fc_64", "fc_256"],
            "max_depth": 4,
            "depth_every": 1,
            "constraints": {} if max_params is None else {"max_params": max_params},
        }
        space = space_from_dict(raw)
        data = SimpleNamespace(image_shape=(1, 8, 8), num_classes=10)
        context = SearchContext(None, {"algorithm": "adaptive", "seed": 0}, space, data, None, None)
        rows = [
            TrialRow(1, None, ("conv3x3_16",), {}, "random", "done", objective=0.5),
            TrialRow(2, 1, ("conv3x3_16", "max_pool"), {}, "grow", "done", objective=0.4),
        ]
        history = [as_trial(t, space) for t in rows]
        return [context.algorithm().suggest(history, n) for n in range(3, 63)]

    counts = [params(s.architecture) for s in suggested(None)]
    assert sum(c > 20_000 for c in counts) > 10  # without a budget, many would break it
    within = [params(s.architecture) for s in suggested(20_000)]
    assert max(within) <= 20_000
