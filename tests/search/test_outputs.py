"""summary.json / history.jsonl, `search show` and `search export` from a hand-filled store."""

from __future__ import annotations

import json

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
