"""The search space spec: defaults, the example file, every validation error, sampling and
perturbing hyperparameters, and the JSON round trip the trial store relies on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from uqbench.search.space import (
    TOP_LEVEL_KEYS,
    Choice,
    Fixed,
    Range,
    SearchSpace,
    SpecError,
    load_space,
    space_from_dict,
)

blocks = pytest.importorskip(
    "uqbench.search.blocks", reason="uqbench.search.blocks (the block registry) is not written yet"
)

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "search_spaces" / "digits.toml"
BLOCKS = ["conv3x3_32", "max_pool", "fc_256", "resnet_basic_32"]


def spec(**raw: Any) -> dict[str, Any]:
    """A raw spec with real blocks and the given keys."""
    return {"blocks": BLOCKS, **raw}


def test_defaults() -> None:
    space = load_space(None)
    assert space.blocks == tuple(blocks.DEFAULT_BLOCKS)
    assert (space.min_depth, space.max_depth, space.depth_every) == (1, 8, 5)
    assert (space.beam_size, space.population, space.sample) == (5, 20, 5)
    assert space.hyperparameters == {
        "learning_rate": Range(0.01, 0.2, log=True),
        "weight_decay": Range(1e-4, 5e-3, log=True),
    }
    assert space.training == {"epochs": 15}
    assert (space.metric, space.direction, space.sign) == ("nll", "minimize", 1)
    assert space.objective_key == "val/nll" and space.head == "linear"
    assert space.max_params is None and space.max_ms_per_example is None


def test_an_absent_table_takes_the_defaults_less_what_the_other_table_sets() -> None:
    space = space_from_dict(spec(training={"learning_rate": 0.05}))
    assert set(space.hyperparameters) == {"weight_decay"}
    assert space.training == {"learning_rate": 0.05}
    space = space_from_dict(spec(hyperparameters={"epochs": [5, 10]}))
    assert space.training == {} and set(space.hyperparameters) == {"epochs"}
    assert space_from_dict(spec(hyperparameters={}, training={})).hyperparameters == {}


@pytest.mark.parametrize("metric", ["accuracy", "accuracy_at_90"])
def test_accuracy_is_maximized_by_default(metric: str) -> None:
    space = space_from_dict(spec(objective={"metric": metric}))
    assert (space.direction, space.sign, space.objective_key) == ("maximize", -1, f"val/{metric}")


def test_the_cifar10_example_loads() -> None:
    space = load_space(EXAMPLE.with_name("cifar10.toml"))
    assert space.training["batch_size"] == 512 and space.max_depth == 12
    assert "nasa_cell_64" in space.blocks and space.objective_key == "val/nll"


def test_example_file_loads() -> None:
    space = load_space(EXAMPLE)
    assert space.hyperparameters["learning_rate"] == Range(0.01, 0.2, log=True)
    assert space.hyperparameters["label_smoothing"] == Range(0.0, 0.1, log=False)
    assert space.hyperparameters["batch_size"] == Choice((32, 64, 128))
    assert space.hyperparameters["momentum"] == Fixed(0.9)
    assert space.training["epochs"] == 30 and space.training["flip"] is False
    assert space.max_params == 200_000 and space.max_ms_per_example == 1.0
    assert space.searched == ("learning_rate", "weight_decay", "label_smoothing", "batch_size")


def test_example_file_sets_every_field() -> None:
    raw = tomllib.loads(EXAMPLE.read_text())
    assert set(raw) == set(TOP_LEVEL_KEYS)
    assert set(raw["objective"]) == {"metric", "direction"}
    assert set(raw["constraints"]) == {"max_params", "max_ms_per_example"}
    assert set(raw["transfer"]) == {"mode"}
    assert set(raw["distillation"]) == {"weight", "temperature", "loss"}
    assert set(raw["ensemble"]) == {"enabled", "every", "size", "pool", "counts_toward_trials"}


def test_the_mechanisms_default_as_in_model_search_configs() -> None:
    space = load_space(None)
    assert (space.grow_probability, space.hyperparameter_mode, space.fresh_share) == (
        0.9,
        "inherit",
        0.2,
    )
    assert space.transfer == "none" and space.distill_weight == 0.0
    assert (space.ensemble_enabled, space.ensemble_every, space.ensemble_size) == (True, 5, 3)
    assert (space.ensemble_pool, space.ensemble_counts) == (15, True)
    custom = space_from_dict(
        spec(
            grow_probability=0.5,
            hyperparameter_mode="fresh",
            transfer={"mode": "matching"},
            distillation={"weight": 0.5, "temperature": 4.0, "loss": "mse"},
            ensemble={"every": 0, "size": 4, "counts_toward_trials": False},
        )
    )
    assert custom.grow_probability == 0.5 and custom.hyperparameter_mode == "fresh"
    assert custom.transfer == "matching"
    assert (custom.distill_weight, custom.distill_temperature, custom.distill_loss) == (
        0.5,
        4.0,
        "mse",
    )
    assert (custom.ensemble_every, custom.ensemble_size, custom.ensemble_counts) == (0, 4, False)
    assert space_from_dict(json.loads(json.dumps(custom.to_dict()))) == custom


BAD_SPECS = {
    "distillation weight above 1": (
        spec(distillation={"weight": 1.5}),
        "[distillation] weight must be a number in [0, 1], got 1.5",
    ),
    "distillation weight negative": (
        spec(distillation={"weight": -0.1}),
        "[distillation] weight must be a number in [0, 1], got -0.1",
    ),
    "distillation temperature zero": (
        spec(distillation={"temperature": 0}),
        "[distillation] temperature must be a positive number, got 0",
    ),
    "distillation loss": (
        spec(distillation={"loss": "kld"}),
        "[distillation] loss 'kld' is unknown; did you mean 'kl'? (choose from kl, mse)",
    ),
    "ensemble of one": (
        spec(ensemble={"size": 1}),
        "[ensemble] size must be an integer >= 2 (an ensemble has at least two members), got 1",
    ),
    "ensemble every trial": (
        spec(ensemble={"every": 1}),
        "[ensemble] every must be 0 (only at the end) or an integer >= 2, got 1",
    ),
    "ensemble unknown key": (spec(ensemble={"width": 3}), "[ensemble] unknown key 'width'"),
    "transfer mode": (
        spec(transfer={"mode": "snapshot"}),
        "[transfer] mode 'snapshot' is unknown (choose from none, prefix, matching)",
    ),
    "grow probability": (
        spec(grow_probability=2),
        "grow_probability must be a number in [0, 1], got 2",
    ),
    "hyperparameter mode": (
        spec(hyperparameter_mode="inherited"),
        "hyperparameter_mode 'inherited' is unknown; did you mean 'inherit'?",
    ),
    "unknown head": (
        spec(head="gaussian_process"),
        "head 'gaussian_process' is unknown (choose from linear, dropout_linear, mlp)",
    ),
    "head typo": (spec(head="lineer"), "did you mean 'linear'?"),
    "epochs zero": (
        spec(training={"epochs": 0}),
        "[training] epochs must be a positive integer, got 0",
    ),
    "epochs bool": (
        spec(training={"epochs": True}),
        "[training] epochs must be a positive integer, got true",
    ),
    "epochs float": (
        spec(training={"epochs": 2.5}),
        "[training] epochs must be a positive integer",
    ),
    "momentum one": (spec(training={"momentum": 1.0}), "[training] momentum must be a number in"),
    "lr nan": (
        spec(training={"learning_rate": float("nan")}),
        "[training] learning_rate must be a positive number, got nan",
    ),
    "range in training": (
        spec(training={"learning_rate": [0.01, 0.1]}),
        "[training] learning_rate must be a positive number, got [0.01, 0.1]; ranges",
    ),
    "schedule unknown": (
        spec(training={"schedule": "linear"}),
        "[training] schedule must be one of step, onecycle, cosine",
    ),
    "flip int": (spec(hyperparameters={"flip": 1}), "[hyperparameters] flip must be true or false"),
    "depth order": (spec(min_depth=3, max_depth=2), "min_depth (3) must be <= max_depth (2)"),
    "min_depth zero": (spec(min_depth=0), "min_depth must be a positive integer, got 0"),
    "depth_every bool": (
        spec(depth_every=True),
        "depth_every must be a positive integer, got true",
    ),
    "beam_size float": (spec(beam_size=2.0), "beam_size must be a positive integer, got 2.0"),
    "sample > population": (spec(population=5, sample=6), "sample (6) must be <= population (5)"),
    "low >= high": (
        spec(hyperparameters={"learning_rate": [0.2, 0.01]}),
        "[hyperparameters] learning_rate: low must be < high",
    ),
    "log from zero": (
        spec(hyperparameters={"weight_decay": [0.0, 1e-3]}),
        "[hyperparameters] weight_decay: a log range needs low > 0",
    ),
    "log from zero in a table": (
        spec(hyperparameters={"label_smoothing": {"low": 0.0, "high": 0.2}}),
        "label_smoothing: a log range needs low > 0, got low=0.0; write { low = 0.0, high = 0.2, "
        "log = false }",
    ),
    "lr not positive": (
        spec(hyperparameters={"learning_rate": {"low": -1, "high": 1, "log": False}}),
        "[hyperparameters] learning_rate: low must be a positive number, got -1",
    ),
    "three numbers": (
        spec(hyperparameters={"learning_rate": [0.01, 0.1, 0.2]}),
        "[hyperparameters] learning_rate: a range is [low, high], got 3 values",
    ),
    "no high": (
        spec(hyperparameters={"learning_rate": {"low": 0.1}}),
        "[hyperparameters] learning_rate: a range needs both low and high",
    ),
    "range key typo": (
        spec(hyperparameters={"learning_rate": {"low": 0.01, "hgh": 0.1}}),
        "[hyperparameters] learning_rate: unknown key 'hgh'; did you mean 'high'?",
    ),
    "log not bool": (
        spec(hyperparameters={"label_smoothing": {"low": 0.0, "high": 0.2, "log": "no"}}),
        "[hyperparameters] label_smoothing: log must be true or false, got 'no'",
    ),
    "integer range of floats": (
        spec(hyperparameters={"batch_size": [16.0, 128]}),
        "[hyperparameters] batch_size: low must be a positive integer, got 16.0",
    ),
    "string range": (
        spec(hyperparameters={"schedule": ["step", "cosine"]}),
        "[hyperparameters] schedule cannot be a range",
    ),
    "empty choices": (
        spec(hyperparameters={"batch_size": {"choices": []}}),
        "[hyperparameters] batch_size: choices must be a non-empty list",
    ),
    "bad choice": (
        spec(hyperparameters={"batch_size": {"choices": [32, 64.5]}}),
        "[hyperparameters] batch_size: choices[1] must be a positive integer, got 64.5",
    ),
    "bool choice": (
        spec(hyperparameters={"batch_size": {"choices": [32, True]}}),
        "[hyperparameters] batch_size: choices[1] must be a positive integer, got true",
    ),
    "repeated choice": (
        spec(hyperparameters={"batch_size": {"choices": [32, 32]}}),
        "[hyperparameters] batch_size: choices lists 32 twice",
    ),
    "choices and range": (
        spec(hyperparameters={"batch_size": {"choices": [32], "low": 16}}),
        "[hyperparameters] batch_size: choices cannot be combined with low",
    ),
    "unknown recipe field": (
        spec(hyperparameters={"learning_rat": [0.01, 0.1]}),
        "[hyperparameters] 'learning_rat' is not a training recipe setting; did you mean "
        "'learning_rate'?",
    ),
    "not searchable": (
        spec(training={"nesterov": False}),
        "[training] 'nesterov' is not a training recipe setting",
    ),
    "in both tables": (
        spec(hyperparameters={"learning_rate": [0.01, 0.1]}, training={"learning_rate": 0.1}),
        "[hyperparameters] learning_rate is also set in [training]",
    ),
    "top-level key in a table": (
        spec(training={"max_depth": 3}),
        "must come before the first [table]",
    ),
    "warm-up too long": (
        spec(training={"epochs": 5, "warmup_epochs": 6}),
        "warmup_epochs (up to 6.0) must be <= epochs (as few as 5)",
    ),
    "warm-up longer than the shortest epochs": (
        spec(hyperparameters={"epochs": [2, 10]}, training={"warmup_epochs": 3}),
        "warmup_epochs (up to 3.0) must be <= epochs (as few as 2)",
    ),
    "metric typo": (
        spec(objective={"metric": "nlll"}),
        "[objective] metric 'nlll' is unknown; did you mean 'nll'? (choose from accuracy, nll,",
    ),
    "direction typo": (
        spec(objective={"direction": "minimise"}),
        "[objective] direction 'minimise' is unknown; did you mean 'minimize'?",
    ),
    "wrong direction": (
        spec(objective={"metric": "accuracy", "direction": "minimize"}),
        "[objective] direction 'minimize' would search for the worst accuracy",
    ),
    "objective key typo": (
        spec(objective={"metrc": "nll"}),
        "[objective] unknown key 'metrc'; did you mean 'metric'?",
    ),
    "max_params zero": (
        spec(constraints={"max_params": 0}),
        "[constraints] max_params must be a positive integer, got 0",
    ),
    "max_params float": (
        spec(constraints={"max_params": 1.5e5}),
        "[constraints] max_params must be a positive integer, got 150000.0",
    ),
    "max_ms negative": (
        spec(constraints={"max_ms_per_example": -1.0}),
        "[constraints] max_ms_per_example must be a positive number",
    ),
    "constraint typo": (
        spec(constraints={"max_param": 10}),
        "[constraints] unknown key 'max_param'; did you mean 'max_params'?",
    ),
    "top-level typo": (spec(min_dept=2), "unknown key 'min_dept'; did you mean 'min_depth'?"),
    "table not a table": (spec(training=3), "[training] must be a table, got 3"),
    "no blocks": (spec(blocks=[]), "blocks must be a non-empty list of block names"),
    "blocks a string": (spec(blocks="conv3x3_32"), "blocks must be a non-empty list"),
    "block not a string": (spec(blocks=[3]), "blocks must hold block names (strings), got 3"),
    "block twice": (spec(blocks=["fc_256", "fc_256"]), "blocks: 'fc_256' is listed twice"),
    "unknown block": (spec(blocks=["conv3x3_23"]), "blocks: unknown block 'conv3x3_23'"),
    "unknown user block": (
        spec(blocks=["no_such_package_xyz.mod:factory"]),
        "blocks: ",
    ),
}


@pytest.mark.parametrize(("raw", "message"), BAD_SPECS.values(), ids=BAD_SPECS.keys())
def test_bad_values_raise_spec_errors_naming_the_field(raw: dict, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        space_from_dict(raw)
    assert message in str(caught.value)


def test_unknown_block_suggests_close_names() -> None:
    with pytest.raises(SpecError, match="conv3x3_32"):
        space_from_dict(spec(blocks=["conv3x3_23"]))


def tiny_block(in_shape: tuple[int, ...]) -> Any:
    """A user's block for the test below: a plain module, its shape found by a forward pass."""
    import torch

    return torch.nn.Identity()


def test_user_blocks_are_dotted_paths() -> None:
    user = f"{__name__}:tiny_block"
    space = space_from_dict(spec(blocks=[*BLOCKS, user]))
    assert space.blocks[-1] == user
    assert space_from_dict(json.loads(json.dumps(space.to_dict()))) == space


def test_spec_error_is_a_value_error() -> None:
    assert issubclass(SpecError, ValueError)


def test_load_space_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    with pytest.raises(SpecError, match="missing.toml: no such search space file"):
        load_space(missing)
    broken = tmp_path / "broken.toml"
    broken.write_text("min_depth = = 1\n")
    with pytest.raises(SpecError, match=r"broken\.toml: not valid TOML"):
        load_space(broken)
    bad = tmp_path / "bad.toml"
    bad.write_text('blocks = ["fc_256"]\n[training]\nepochs = 0\n')
    with pytest.raises(SpecError) as caught:
        load_space(str(bad))
    assert f"{bad}: [training] epochs must be a positive integer, got 0" in str(caught.value)
    with pytest.raises(SpecError, match="is a directory"):
        load_space(tmp_path)


@pytest.mark.parametrize("source", ["example", "defaults", "integers"])
def test_round_trip_through_json(source: str) -> None:
    if source == "example":
        space = load_space(EXAMPLE)
    elif source == "defaults":
        space = load_space(None)
    else:
        space = space_from_dict(
            spec(
                hyperparameters={
                    "epochs": [2, 20],
                    "crop_padding": {"low": 0, "high": 4, "log": False},
                },
                objective={"metric": "accuracy"},
            )
        )
    raw = json.loads(json.dumps(space.to_dict()))
    again = space_from_dict(raw)
    assert again == space
    assert again.to_dict() == space.to_dict()


def test_allowed_depth_grows_every_depth_every_trials() -> None:
    space = space_from_dict(spec(min_depth=2, max_depth=4, depth_every=3))
    assert [space.allowed_depth(n) for n in (0, 2, 3, 5, 6, 100)] == [2, 2, 3, 3, 4, 4]


def sampling_space() -> SearchSpace:
    return space_from_dict(
        spec(
            hyperparameters={
                "learning_rate": [1e-4, 1.0],
                "label_smoothing": {"low": 0.0, "high": 0.2, "log": False},
                "batch_size": {"choices": [32, 64, 128]},
                "epochs": [2, 20],
                "crop_padding": {"low": 0, "high": 4, "log": False},
                "momentum": 0.9,
            }
        )
    )


def test_sampling_stays_in_ranges_and_choices() -> None:
    space = sampling_space()
    rng = np.random.default_rng(0)
    draws = [space.sample_hparams(rng) for _ in range(4000)]
    json.dumps(draws)
    lr = np.array([d["learning_rate"] for d in draws])
    smoothing = np.array([d["label_smoothing"] for d in draws])
    assert lr.min() >= 1e-4 and lr.max() <= 1.0
    # Log-uniform: the median is near the geometric mean (1e-2), not the arithmetic one (0.5).
    assert abs(np.log10(np.median(lr)) + 2) < 0.15
    assert smoothing.min() >= 0 and smoothing.max() <= 0.2 and abs(smoothing.mean() - 0.1) < 0.01
    assert {d["batch_size"] for d in draws} == {32, 64, 128}
    assert {d["momentum"] for d in draws} == {0.9}
    for name, low, high in (("epochs", 2, 20), ("crop_padding", 0, 4)):
        values = [d[name] for d in draws]
        assert all(type(v) is int for v in values)
        assert set(values) == set(range(low, high + 1))
    epochs = np.array([d["epochs"] for d in draws])
    # Log-uniform integers: as many draws in [2, 6) as in [6, 18) (both a factor of 3).
    assert abs(np.mean(epochs < 6) - np.mean((epochs >= 6) & (epochs < 18))) < 0.05


def test_perturbing_stays_in_range_and_stays_local() -> None:
    space = sampling_space()
    rng = np.random.default_rng(1)
    start = {
        "learning_rate": 1e-4,
        "label_smoothing": 0.2,
        "batch_size": 64,
        "epochs": 20,
        "crop_padding": 0,
        "momentum": 0.9,
    }
    moved = [space.perturb_hparams(start, rng) for _ in range(2000)]
    lr = np.array([m["learning_rate"] for m in moved])
    assert lr.min() >= 1e-4 and lr.max() <= 1.0
    assert np.median(lr) < 1e-3  # a step of a quarter of the range, not a fresh draw
    assert all(0 <= m["label_smoothing"] <= 0.2 for m in moved)
    assert all(type(m["epochs"]) is int and 2 <= m["epochs"] <= 20 for m in moved)
    assert all(type(m["crop_padding"]) is int and 0 <= m["crop_padding"] <= 4 for m in moved)
    assert {m["momentum"] for m in moved} == {0.9}
    changed = np.mean([m["batch_size"] != 64 for m in moved])
    assert 0.2 < changed < 0.3  # a choice changes with probability `scale`
    assert space.perturb_hparams(start, rng, scale=0.0) == start


def test_perturbing_only_some_names() -> None:
    space = sampling_space()
    rng = np.random.default_rng(2)
    start = space.sample_hparams(rng)
    for _ in range(50):
        moved = space.perturb_hparams(start, rng, only=["batch_size"])
        assert moved["batch_size"] != start["batch_size"]
        assert {k: v for k, v in moved.items() if k != "batch_size"} == {
            k: v for k, v in start.items() if k != "batch_size"
        }


def test_perturbing_fills_in_missing_and_out_of_range_values() -> None:
    space = sampling_space()
    rng = np.random.default_rng(3)
    for _ in range(100):
        moved = space.perturb_hparams({"learning_rate": 5.0, "batch_size": 48, "epochs": "x"}, rng)
        assert set(moved) == set(space.hyperparameters)
        assert 1e-4 <= moved["learning_rate"] <= 1.0 and moved["batch_size"] in (32, 64, 128)
        assert type(moved["epochs"]) is int and 2 <= moved["epochs"] <= 20
