"""summary.json / history.jsonl, `search show`, `search export` and the line a search ends with
(its status), from hand-filled stores."""

from __future__ import annotations

import json
import socket

import pytest
import torch

from uqbench.search import outputs
from uqbench.search.blocks import build_network
from uqbench.search.space import load_space
from uqbench.search.store import TrialStore
from uqbench.training.checkpoint import save_checkpoint

SUGGESTIONS = {
    1: (["conv3x3_16"], None, "random"),
    2: (["conv3x3_16", "fc_64"], 1, "grow"),
    3: (["conv3x3_32"], 1, "mutate"),
    4: (["conv3x3_32", "max_pool"], 3, "grow"),
    5: (["conv3x3_32", "max_pool", "fc_64"], 4, "grow"),
}
# val/nll per trial (None: failed); trial 4 is the best, its lineage 1 -> 3 -> 4
OBJECTIVES = {1: 0.50, 2: 0.40, 3: 0.30, 4: 0.10, 5: None}


def fill(directory, metric="nll"):
    """A finished search as the runner would leave it, without training anything."""
    store = TrialStore(directory / "search.db")
    space = load_space(None).to_dict()
    space["objective"] = {
        "metric": metric,
        "direction": "maximize" if metric == "accuracy" else "minimize",
    }
    store.start_experiment(
        {"dataset": "digits", "algorithm": "adaptive", "seed": 0, "space": space, "trials": 5},
        resume=False,
    )

    def suggest(history, number):
        architecture, parent, how = SUGGESTIONS[number]
        return {"architecture": architecture, "parent": parent, "how": how, "hparams": {}}

    for number in SUGGESTIONS:
        trial = store.claim(5, suggest)
        value = OBJECTIVES[number]
        if value is None:
            store.finish(trial.id, status="failed", error="NonFiniteLossError: nan", seconds=0.1)
            continue
        network = build_network(trial.architecture, (1, 8, 8), 10)
        path = f"trials/{trial.id:04d}/checkpoint.safetensors"
        metadata = {
            "method": "search/trial",
            "class": "uqbench.search.blocks.SearchNet",
            "kwargs": network.config,
            "mean": [0.3],
            "std": [0.4],
        }
        save_checkpoint(directory / path, network.state_dict(), metadata)
        store.finish(
            trial.id,
            status="done",
            objective=value,
            val_metrics={"val/nll": value, "val/accuracy": 1 - value},
            test_metrics={"test/accuracy": 0.9 + number / 100, "test/nll": value + 0.01},
            params=sum(p.numel() for p in network.parameters()),
            seconds=1.0,
            checkpoint=path,
        )
    return store


def test_summary_and_history_describe_the_search(tmp_path):
    fill(tmp_path)
    summary = outputs.write_outputs(tmp_path, elapsed=12.0)
    assert summary["kind"] == "search" and summary["method"] == "search/adaptive"
    assert summary["trials"]["done"] == 4 and summary["trials"]["failed"] == 1
    assert summary["best_trial"]["trial"] == 4 and summary["top"] == [4, 3, 2, 1]
    assert summary["metrics"] == pytest.approx(
        {"val/nll": 0.10, "val/accuracy": 0.90, "test/accuracy": 0.94, "test/nll": 0.11}
    )
    assert json.loads((tmp_path / "summary.json").read_text())["timings"]["search_seconds"] == 12
    lines = [json.loads(x) for x in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert [r["trial"] for r in lines] == [1, 2, 3, 4, 5]
    assert lines[4]["status"] == "failed" and lines[4]["error"].startswith("NonFinite")
    assert lines[3]["val/nll"] == 0.10 and lines[3]["test/accuracy"] == pytest.approx(0.94)


def test_show_ranks_trials_and_traces_the_lineage(tmp_path):
    fill(tmp_path)
    text = outputs.show(tmp_path, top=3)
    assert "4 done, 1 failed" in text
    table = text[text.index("top 3 trials") :].splitlines()
    assert [line.split()[0] for line in table[3:6]] == ["4", "3", "2"]
    assert "lineage of the best: 1 (random, 0.5) -> 3 (mutate, 0.3) -> 4 (grow, 0.1)" in text
    assert "trial 5 failed: NonFiniteLossError: nan" in text


def test_lineage_stops_at_unknown_or_cyclic_parents():
    class Row:
        def __init__(self, parent):
            self.parent = parent

    assert outputs.lineage({1: Row(None), 2: Row(1), 3: Row(2)}, 3) == [1, 2, 3]
    assert outputs.lineage({2: Row(7)}, 2) == [2]
    assert outputs.lineage({1: Row(2), 2: Row(1)}, 1) == [2, 1]


def test_export_writes_the_best_trial_and_load_model_rebuilds_it(tmp_path):
    fill(tmp_path)
    path = outputs.export(tmp_path)
    assert path == tmp_path / outputs.EXPORT_FILE
    model, metadata = outputs.load_model(path)
    assert metadata["search"]["trial"] == 4
    assert metadata["search"]["architecture"] == ["conv3x3_32", "max_pool"]
    assert not model.training
    original = build_network(["conv3x3_32", "max_pool"], (1, 8, 8), 10)
    original.load_state_dict(model.state_dict())
    x = torch.randn(2, 1, 8, 8)
    torch.testing.assert_close(model(x), original.eval()(x))
    other = outputs.export(tmp_path, tmp_path / "t2.safetensors", trial=2)
    assert outputs.load_model(other)[1]["search"]["trial"] == 2


def test_export_refuses_unfinished_trials_and_empty_searches(tmp_path):
    fill(tmp_path)
    with pytest.raises(ValueError, match="trial 5 .* has not completed"):
        outputs.export(tmp_path, trial=5)
    with pytest.raises(ValueError, match="trial 9 .* has not completed"):
        outputs.export(tmp_path, trial=9)
    empty = tmp_path / "empty"
    TrialStore(empty / "search.db").start_experiment(
        {
            "dataset": "digits",
            "algorithm": "random",
            "seed": 0,
            "space": load_space(None).to_dict(),
        },
        resume=False,
    )
    with pytest.raises(ValueError, match="no completed trial yet"):
        outputs.export(empty)
    with pytest.raises(FileNotFoundError, match="holds no search"):
        outputs.show(tmp_path / "nowhere")


def test_a_maximised_objective_ranks_the_largest_first(tmp_path):
    fill(tmp_path, metric="accuracy")
    ranked = outputs.ranked(TrialStore(tmp_path / "search.db").trials(), sign=-1)
    assert [t.id for t in ranked] == [1, 2, 3, 4]
    assert outputs.write_outputs(tmp_path)["best_trial"]["trial"] == 1


def test_a_finished_budget_with_a_failed_trial_is_complete_and_counts_the_failure(tmp_path):
    fill(tmp_path)  # 4 done, 1 failed, budget 5
    assert outputs.write_outputs(tmp_path)["status"] == "complete"
    assert outputs.conclusion(tmp_path) == (
        "complete",
        "search finished: 5 of 5 trials (4 done, 1 failed, 0 infeasible); best trial 4 "
        "val/nll 0.1000",
    )


DEAD = f"{socket.gethostname()}:999999999:dead00"  # a worker whose lease runs out


def fill_statuses(directory, budget, statuses):
    """Trials 1.. with the given ends: a finished status, ``dead`` (running, its worker gone),
    ``alive`` (running in this process, which holds its lease) or ``pending``."""
    store = TrialStore(directory / "search.db")
    space = load_space(None).to_dict()
    settings = {"dataset": "digits", "algorithm": "random", "seed": 0, "space": space}
    store.start_experiment({**settings, "trials": budget}, resume=False)

    def suggest(history, number):
        return {"architecture": ["conv3x3_16"], "hparams": {}}

    claimed = [store.claim(budget, suggest, DEAD if s == "dead" else None) for s in statuses]
    for trial, status in zip(claimed, statuses, strict=True):
        if status == "failed":
            store.finish(trial.id, status=status, error=f"RuntimeError: boom {trial.id}\n  at x")
        elif status == "infeasible":
            store.finish(trial.id, status=status, error=f"{4000 + trial.id} parameters > 3000")
        elif status == "done":
            store.finish(trial.id, status=status, objective=0.5)
        elif status == "pending":
            store.release(trial.id)
    with store.transaction() as db:  # the dead worker's lease ran out
        db.execute("UPDATE workers SET expires = 0 WHERE id = ?", (DEAD,))


@pytest.mark.parametrize(
    ("budget", "statuses", "status", "line"),
    [
        (
            6,
            ["done", "dead", "alive", "pending"],
            "incomplete",
            "search incomplete: 1 of 6 trials finished (1 done, 0 failed, 0 infeasible); "
            "1 abandoned by a worker that died (trial 2), 1 still running in another worker "
            "(trial 3), 1 handed back unfinished (trial 4), 2 not started: run the same command "
            "with --resume to finish them",
        ),
        (
            2,
            ["failed", "alive"],
            "incomplete",
            "search incomplete: 1 of 2 trials finished (0 done, 1 failed, 0 infeasible); "
            "1 still running in another worker (trial 2): once it ends, run the same command "
            "with --resume",
        ),
        (
            3,
            ["dead", "dead", "failed"],
            "incomplete",
            "search incomplete: 1 of 3 trials finished (0 done, 1 failed, 0 infeasible); "
            "2 abandoned by a worker that died (trials 1, 2): run the same command with --resume "
            "to finish them",
        ),
        (
            2,
            ["failed", "failed"],
            "failed",
            "search failed: all 2 trials failed; first error (trial 1): RuntimeError: boom 1 at x",
        ),
        (
            3,
            ["infeasible", "failed", "failed"],
            "failed",
            "search failed: none of the 3 trials completed (0 done, 2 failed, 1 infeasible); "
            "first error (trial 2): RuntimeError: boom 2 at x",
        ),
        (
            2,
            ["infeasible", "infeasible"],
            "failed",
            "search failed: all 2 trials were infeasible; first reason (trial 1): 4001 parameters "
            "> 3000",
        ),
    ],
)
def test_the_last_line_and_the_summary_say_how_the_search_ended(
    tmp_path, budget, statuses, status, line
):
    fill_statuses(tmp_path, budget, statuses)
    assert outputs.conclusion(tmp_path) == (status, line)
    summary = outputs.write_outputs(tmp_path)
    assert summary["status"] == status
    assert json.loads((tmp_path / "summary.json").read_text())["status"] == status


def test_the_status_needs_the_whole_budget_finished_and_one_trial_done():
    counts = {"pending": 0, "running": 0, "done": 0, "failed": 0, "infeasible": 0}
    assert outputs.search_status({**counts, "done": 3}, 3) == "complete"
    assert outputs.search_status({**counts, "done": 1, "failed": 2}, 3) == "complete"
    assert outputs.search_status({**counts, "done": 2}, 3) == "incomplete"
    assert outputs.search_status({**counts, "done": 2, "running": 1}, 3) == "incomplete"
    assert outputs.search_status({**counts, "done": 3, "pending": 1}, 3) == "incomplete"
    assert outputs.search_status({**counts, "failed": 2, "infeasible": 1}, 3) == "failed"
    assert outputs.search_status({**counts, "done": 4}, 3) == "complete"  # budget lowered
    assert outputs.search_status(counts, 0) == "incomplete"  # nothing has run
