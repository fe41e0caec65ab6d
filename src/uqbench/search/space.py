"""The search space: which blocks, how deep, which training settings to search, what to optimise.

A space is written as TOML (``docs/search_spaces/digits.toml`` shows and explains every field)
and read by :func:`load_space`. It is checked completely before anything trains: every bad value
is a :class:`SpecError` that names the field and says what would be valid. A
:class:`SearchSpace` also samples and perturbs the searched hyperparameters, and round-trips
through :meth:`SearchSpace.to_dict` / :func:`space_from_dict` (JSON, as the trial store keeps it).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from uqbench.training.schedules import SCHEDULES

METRICS = (
    "accuracy",
    "nll",
    "brier",
    "ece",
    "adaptive_ece",
    "classwise_ece",
    "aurc",
    "accuracy_at_90",
    "ece_penalised_accuracy",
    "ood_auroc",
    "rmse",
    "crps",
)
MAXIMIZED = ("accuracy", "accuracy_at_90", "ece_penalised_accuracy", "ood_auroc")
REGRESSION_METRICS = ("nll", "rmse", "crps")
COSTS = ("params", "ms_per_example")
DIRECTIONS = ("minimize", "maximize")

DEFAULTS: dict[str, int] = {
    "min_depth": 1,
    "max_depth": 8,
    "depth_every": 5,
    "beam_size": 5,
    "population": 20,
    "sample": 5,
}
# An absent [hyperparameters] / [training] table takes these (less what the other table sets):
# short trials with the learning rate and weight decay searched, good for small images on a CPU
# (the data set's protocol gives every other recipe setting).
DEFAULT_HYPERPARAMETERS: dict[str, Any] = {
    "learning_rate": [0.01, 0.2],
    "weight_decay": [1e-4, 5e-3],
}
DEFAULT_TRAINING: dict[str, Any] = {"epochs": 15}
# For tables: the table recipe's 40 epochs, rates suited to small dense networks.
TABLE_HYPERPARAMETERS: dict[str, Any] = {
    "learning_rate": [0.003, 0.1],
    "weight_decay": [1e-5, 1e-3],
}
TABLE_TRAINING: dict[str, Any] = {}
# Model Search's increase_complexity_probability in both its shipped adaptive configs.
GROW_PROBABILITY = 0.9
HYPERPARAMETER_MODES = ("inherit", "fresh")
FRESH_SHARE = 0.2
TRANSFER_MODES = ("none", "prefix", "matching")
DISTILLATION_LOSSES = ("kl", "mse")
# Model Search's intermixed ensemble search in its shipped configs: every 5th trial, 3 members,
# from the 15 best trials.
ENSEMBLE_DEFAULTS: dict[str, Any] = {
    "enabled": True,
    "every": 5,
    "size": 3,
    "pool": 15,
    "counts_toward_trials": True,
}
DISTILLATION_DEFAULTS: dict[str, Any] = {"weight": 0.0, "temperature": 1.0, "loss": "kl"}
TOP_LEVEL_KEYS = (
    "blocks",
    "head",
    *DEFAULTS,
    "grow_probability",
    "hyperparameter_mode",
    "fresh_share",
    "hyperparameters",
    "training",
    "objective",
    "constraints",
    "transfer",
    "distillation",
    "ensemble",
)
OBJECTIVE_KEYS = ("metric", "direction", "terms", "budgets", "ood")
CONSTRAINT_KEYS = ("max_params", "max_ms_per_example")
RANGE_KEYS = ("low", "high", "log")


class SpecError(ValueError):
    """A search space that cannot work; the message names the field and what would be valid."""


@dataclass(frozen=True)
class _Rule:
    """What one Recipe field accepts: its type (``int``, ``float``, ``str``, ``bool``), a test
    of the value and the words for a valid value."""

    kind: str
    ok: Callable[[Any], bool]
    what: str


RECIPE_FIELDS: dict[str, _Rule] = {
    "epochs": _Rule("int", lambda v: v >= 1, "a positive integer"),
    "batch_size": _Rule("int", lambda v: v >= 1, "a positive integer"),
    "learning_rate": _Rule("float", lambda v: v > 0, "a positive number"),
    "schedule": _Rule("str", lambda v: v in SCHEDULES, f"one of {', '.join(SCHEDULES)}"),
    "warmup_epochs": _Rule("float", lambda v: v >= 0, "a number >= 0"),
    "momentum": _Rule("float", lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "weight_decay": _Rule("float", lambda v: v >= 0, "a number >= 0"),
    "label_smoothing": _Rule("float", lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "crop_padding": _Rule("int", lambda v: v >= 0, "an integer >= 0"),
    "flip": _Rule("bool", lambda v: True, "true or false"),
    "test_flips": _Rule("bool", lambda v: True, "true or false"),
}
INTEGER_FIELDS = tuple(name for name, rule in RECIPE_FIELDS.items() if rule.kind == "int")


@dataclass(frozen=True)
class Range:
    """A numeric range: log-uniform when ``log`` (both ends > 0), else uniform; whole numbers
    when ``integer``."""

    low: float
    high: float
    log: bool = True
    integer: bool = False

    def _to(self, value: float) -> float:
        return math.log(value) if self.log else float(value)

    def _from(self, value: float) -> float | int:
        out = math.exp(value) if self.log else value
        if self.integer:
            return int(min(max(round(out), self.low), self.high))
        return float(min(max(out, self.low), self.high))

    def sample(self, rng: np.random.Generator) -> float | int:
        """A value drawn uniformly on the (log) scale; integers get equal (log) mass each."""
        if self.integer and not self.log:
            return int(rng.integers(int(self.low), int(self.high) + 1))
        if self.integer:
            drawn = math.exp(rng.uniform(math.log(self.low), math.log(self.high + 1)))
            return int(min(math.floor(drawn), self.high))
        return self._from(rng.uniform(self._to(self.low), self._to(self.high)))

    def perturb(self, value: Any, rng: np.random.Generator, scale: float) -> float | int:
        """``value`` moved by a Gaussian step of ``scale`` times the range's width on the (log)
        scale, clipped to the range; a value that does not fit the range is drawn afresh."""
        if not _is_number(value) or not self.low <= value <= self.high:
            return self.sample(rng)
        step = scale * (self._to(self.high) - self._to(self.low)) * rng.standard_normal()
        if not step:
            return round(value) if self.integer else float(value)
        return self._from(self._to(value) + step)

    def to_raw(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "log": self.log}


@dataclass(frozen=True)
class Choice:
    """One of a list of values, each equally likely."""

    values: tuple[Any, ...]

    def sample(self, rng: np.random.Generator) -> Any:
        return self.values[int(rng.integers(len(self.values)))]

    def perturb(self, value: Any, rng: np.random.Generator, scale: float) -> Any:
        """Another value, drawn uniformly, with probability ``scale``; else ``value``."""
        if value not in self.values:
            return self.sample(rng)
        others = [v for v in self.values if v != value]
        if not others or rng.uniform() >= scale:
            return value
        return others[int(rng.integers(len(others)))]

    def to_raw(self) -> dict[str, Any]:
        return {"choices": list(self.values)}


@dataclass(frozen=True)
class Fixed:
    """A single value, not searched."""

    value: Any

    def sample(self, rng: np.random.Generator) -> Any:
        return self.value

    def perturb(self, value: Any, rng: np.random.Generator, scale: float) -> Any:
        return self.value

    def to_raw(self) -> Any:
        return self.value


Param = Range | Choice | Fixed


@dataclass(frozen=True)
class SearchSpace:
    """A checked search space (build one with :func:`load_space` or :func:`space_from_dict`)."""

    blocks: tuple[str, ...]
    min_depth: int = DEFAULTS["min_depth"]
    max_depth: int = DEFAULTS["max_depth"]
    depth_every: int = DEFAULTS["depth_every"]
    beam_size: int = DEFAULTS["beam_size"]
    population: int = DEFAULTS["population"]
    sample: int = DEFAULTS["sample"]
    hyperparameters: dict[str, Param] = field(default_factory=dict)
    training: dict[str, object] = field(default_factory=dict)
    metric: str = "nll"
    direction: str = "minimize"
    terms: dict[str, float] = field(default_factory=dict)
    budgets: dict[str, float] = field(default_factory=dict)
    ood: Any = None
    max_params: int | None = None
    max_ms_per_example: float | None = None
    head: str = "linear"
    grow_probability: float = GROW_PROBABILITY
    hyperparameter_mode: str = "inherit"
    fresh_share: float = FRESH_SHARE
    transfer: str = "none"
    distill_weight: float = DISTILLATION_DEFAULTS["weight"]
    distill_temperature: float = DISTILLATION_DEFAULTS["temperature"]
    distill_loss: str = DISTILLATION_DEFAULTS["loss"]
    ensemble_enabled: bool = ENSEMBLE_DEFAULTS["enabled"]
    ensemble_every: int = ENSEMBLE_DEFAULTS["every"]
    ensemble_size: int = ENSEMBLE_DEFAULTS["size"]
    ensemble_pool: int = ENSEMBLE_DEFAULTS["pool"]
    ensemble_counts: bool = ENSEMBLE_DEFAULTS["counts_toward_trials"]

    @property
    def objective_key(self) -> str:
        """The validation metric the search optimises, as the runner records it
        (``val/objective`` for a weighted sum)."""
        return "val/objective" if self.terms else f"val/{self.metric}"

    @property
    def metrics_used(self) -> tuple[str, ...]:
        """The validation metrics the objective reads (costs left out)."""
        if self.terms:
            return tuple(name for name in self.terms if name not in COSTS)
        return (self.metric,)

    @property
    def sign(self) -> int:
        """+1 when minimising, -1 when maximising: ``sign * objective`` is lower-is-better."""
        return 1 if self.direction == "minimize" else -1

    @property
    def searched(self) -> tuple[str, ...]:
        """The hyperparameters that vary (ranges and choices), in spec order."""
        return tuple(n for n, p in self.hyperparameters.items() if not isinstance(p, Fixed))

    def allowed_depth(self, completed: int) -> int:
        """How deep the adaptive search may go after ``completed`` completed trials."""
        return min(self.max_depth, self.min_depth + completed // self.depth_every)

    def sample_hparams(self, rng: np.random.Generator) -> dict[str, Any]:
        """One value for every hyperparameter (fixed ones included), drawn independently."""
        return {name: param.sample(rng) for name, param in self.hyperparameters.items()}

    def perturb_hparams(
        self,
        hparams: Mapping[str, Any],
        rng: np.random.Generator,
        scale: float = 0.25,
        only: Iterable[str] | None = None,
    ) -> dict[str, Any]:
        """A neighbour of ``hparams``: each range moves by a Gaussian step of ``scale`` times
        its width on its (log) scale, clipped; each choice changes with probability ``scale``.
        With ``only``, just those names move, and their choices always change."""
        chosen = set(self.hyperparameters if only is None else only)
        out = {}
        for name, param in self.hyperparameters.items():
            if name not in hparams:
                out[name] = param.sample(rng)
            elif name in chosen:
                surely = only is not None and isinstance(param, Choice)
                out[name] = param.perturb(hparams[name], rng, 1.0 if surely else scale)
            else:
                out[name] = hparams[name]
        return out

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain JSON-able data (the TOML's structure, every default filled in)."""
        constraints = {"max_params": self.max_params, "max_ms_per_example": self.max_ms_per_example}
        return {
            "blocks": list(self.blocks),
            "head": self.head,
            **{key: getattr(self, key) for key in DEFAULTS},
            "hyperparameters": {n: p.to_raw() for n, p in self.hyperparameters.items()},
            "training": dict(self.training),
            "objective": self._objective_dict(),
            "constraints": {k: v for k, v in constraints.items() if v is not None},
            "grow_probability": self.grow_probability,
            "hyperparameter_mode": self.hyperparameter_mode,
            "fresh_share": self.fresh_share,
            "transfer": {"mode": self.transfer},
            "distillation": {
                "weight": self.distill_weight,
                "temperature": self.distill_temperature,
                "loss": self.distill_loss,
            },
            "ensemble": {
                "enabled": self.ensemble_enabled,
                "every": self.ensemble_every,
                "size": self.ensemble_size,
                "pool": self.ensemble_pool,
                "counts_toward_trials": self.ensemble_counts,
            },
        }

    def _objective_dict(self) -> dict[str, Any]:
        if self.terms:
            out: dict[str, Any] = {"terms": dict(self.terms)}
            if self.budgets:
                out["budgets"] = dict(self.budgets)
        else:
            out = {"metric": self.metric, "direction": self.direction}
        if self.ood is not None:
            out["ood"] = self.ood
        return out


def load_space(path: str | Path | None, table: bool = False) -> SearchSpace:
    """The search space in the TOML file ``path`` (``None``: every default), checked; errors
    name the file. ``table`` takes the defaults for tables (dense blocks, their rates)."""
    if path is None:
        return space_from_dict({}, table)
    path = Path(path)
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise SpecError(f"{path}: no such search space file") from None
    except IsADirectoryError:
        raise SpecError(f"{path}: is a directory, not a search space file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise SpecError(f"{path}: not valid TOML: {err}") from None
    try:
        return space_from_dict(raw, table)
    except SpecError as err:
        raise SpecError(f"{path}: {err}") from None


def space_from_dict(raw: Mapping[str, Any], table: bool = False) -> SearchSpace:
    """A checked :class:`SearchSpace` from the TOML's structure (as :meth:`SearchSpace.to_dict`
    writes it); missing keys take their defaults (those for tables with ``table``)."""
    if not isinstance(raw, Mapping):
        raise SpecError(f"a search space must be a table of settings, got {_show(raw)}")
    _reject_unknown(raw, TOP_LEVEL_KEYS, "")
    depths = {key: _count(raw.get(key, default), key) for key, default in DEFAULTS.items()}
    if depths["min_depth"] > depths["max_depth"]:
        raise SpecError(
            f"min_depth ({depths['min_depth']}) must be <= max_depth ({depths['max_depth']})"
        )
    if depths["sample"] > depths["population"]:
        raise SpecError(
            f"sample ({depths['sample']}) must be <= population ({depths['population']}): "
            "the tournament draws its members from the population"
        )
    hyper_raw = _table(raw, "hyperparameters")
    training_raw = _table(raw, "training")
    default_hyper = TABLE_HYPERPARAMETERS if table else DEFAULT_HYPERPARAMETERS
    default_training = TABLE_TRAINING if table else DEFAULT_TRAINING
    if "hyperparameters" not in raw:
        hyper_raw = {k: v for k, v in default_hyper.items() if k not in training_raw}
    if "training" not in raw:
        training_raw = {k: v for k, v in default_training.items() if k not in hyper_raw}
    for name in hyper_raw:
        if name in training_raw:
            raise SpecError(
                f"[hyperparameters] {name} is also set in [training]; set it in one table only "
                "([hyperparameters] to search it, [training] to fix it)"
            )
    hyperparameters = {name: _param(name, value) for name, value in hyper_raw.items()}
    training = {name: _setting(name, value) for name, value in training_raw.items()}
    _check_warmup(hyperparameters, training)
    objective = _objective(_table(raw, "objective"))
    max_params, max_ms = _constraints(_table(raw, "constraints"))
    adaptive = _adaptive(raw)
    distillation = _distillation(_table(raw, "distillation"))
    ensemble = _ensemble(_table(raw, "ensemble"))
    return SearchSpace(
        blocks=_blocks(raw.get("blocks"), table),
        head=_head(raw.get("head", "linear")),
        **depths,
        hyperparameters=hyperparameters,
        training=training,
        **objective,
        max_params=max_params,
        max_ms_per_example=max_ms,
        transfer=_transfer(_table(raw, "transfer")),
        **adaptive,
        **distillation,
        **ensemble,
    )


# --- checks --------------------------------------------------------------------------------


def _show(value: Any) -> str:
    """``value`` as a TOML user would write it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, Mapping):
        return "a table"
    return repr(value)


def _close(word: str, choices: Iterable[str]) -> str:
    """``; did you mean 'x'?`` for the nearest of ``choices``, or nothing."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {match[0]!r}?" if match else ""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _reject_unknown(raw: Mapping[str, Any], known: Iterable[str], where: str) -> None:
    known = tuple(known)
    for key in raw:
        if key not in known:
            prefix = f"{where} " if where else ""
            raise SpecError(
                f"{prefix}unknown key {key!r}{_close(str(key), known)} "
                f"(choose from {', '.join(known)})"
            )


def _table(raw: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = raw.get(name, {})
    if not isinstance(value, Mapping):
        raise SpecError(f"[{name}] must be a table, got {_show(value)}")
    return value


def _count(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecError(f"{key} must be a positive integer, got {_show(value)}")
    return value


def _blocks(value: Any, table: bool = False) -> tuple[str, ...]:
    from uqbench.search import blocks as registry

    if value is None:
        value = list(registry.DEFAULT_TABLE_BLOCKS if table else registry.DEFAULT_BLOCKS)
    if not isinstance(value, (list, tuple)) or not value:
        raise SpecError(f"blocks must be a non-empty list of block names, got {_show(value)}")
    seen: set[str] = set()
    for name in value:
        if not isinstance(name, str):
            raise SpecError(f"blocks must hold block names (strings), got {_show(name)}")
        if name in seen:
            raise SpecError(f"blocks: {name!r} is listed twice")
        seen.add(name)
        try:
            registry.get_block(name)
        except ValueError as err:
            raise SpecError(f"blocks: {err}") from None
    return tuple(value)


def _head(value: Any) -> str:
    from uqbench.search.blocks import HEADS

    if value not in HEADS:
        raise SpecError(
            f"head {_show(value)} is unknown{_close(str(value), HEADS)} (choose from "
            f"{', '.join(HEADS)})"
        )
    return value


def _known_field(name: str, table: str) -> _Rule:
    """The rule for Recipe field ``name``, or a :class:`SpecError` naming the close ones."""
    if name in RECIPE_FIELDS:
        return RECIPE_FIELDS[name]
    hint = (
        " (top-level keys such as this one must come before the first [table] in the file)"
        if name in TOP_LEVEL_KEYS
        else ""
    )
    raise SpecError(
        f"[{table}] {name!r} is not a training recipe setting{_close(name, RECIPE_FIELDS)} "
        f"(choose from {', '.join(RECIPE_FIELDS)}){hint}"
    )


def _value(rule: _Rule, value: Any, where: str) -> Any:
    """``value`` checked against ``rule`` (ints for ``int``, floats for ``float``), or a
    :class:`SpecError` starting with ``where``."""
    if rule.kind == "int":
        fits = isinstance(value, int) and not isinstance(value, bool)
    elif rule.kind == "float":
        fits = _is_number(value)
    elif rule.kind == "str":
        fits = isinstance(value, str)
    else:
        fits = isinstance(value, bool)
    if not fits or not rule.ok(value):
        raise SpecError(f"{where} must be {rule.what}, got {_show(value)}")
    return float(value) if rule.kind == "float" else value


def _setting(name: str, value: Any) -> Any:
    """A fixed ``[training]`` setting, checked."""
    rule = _known_field(name, "training")
    if isinstance(value, (list, Mapping)):
        raise SpecError(
            f"[training] {name} must be {rule.what}, got {_show(value)}; "
            "ranges and choices to search go in [hyperparameters]"
        )
    return _value(rule, value, f"[training] {name}")


def _param(name: str, raw: Any) -> Param:
    """A ``[hyperparameters]`` entry: ``[low, high]`` (log-uniform), ``{ low, high, log }``,
    ``{ choices = [...] }`` or a single value (fixed)."""
    rule = _known_field(name, "hyperparameters")
    where = f"[hyperparameters] {name}"
    if isinstance(raw, (list, tuple)):
        if len(raw) != 2:
            raise SpecError(
                f"{where}: a range is [low, high], got {len(raw)} values; "
                "write { choices = [...] } for a list of values to choose from"
            )
        return _range(name, rule, raw[0], raw[1], True)
    if isinstance(raw, Mapping):
        if "choices" in raw:
            others = [str(key) for key in raw if key != "choices"]
            if others:
                raise SpecError(
                    f"{where}: choices cannot be combined with {', '.join(others)} "
                    "(a setting is a range or a list of choices)"
                )
            return _choice(rule, raw["choices"], where)
        _reject_unknown(raw, (*RANGE_KEYS, "choices"), f"{where}:")
        if "low" not in raw or "high" not in raw:
            raise SpecError(f"{where}: a range needs both low and high")
        log = raw.get("log", True)
        if not isinstance(log, bool):
            raise SpecError(f"{where}: log must be true or false, got {_show(log)}")
        return _range(name, rule, raw["low"], raw["high"], log)
    return Fixed(_value(rule, raw, where))


def _range(name: str, rule: _Rule, low: Any, high: Any, log: bool) -> Range:
    where = f"[hyperparameters] {name}"
    if rule.kind not in ("int", "float"):
        raise SpecError(
            f"{where} cannot be a range (it must be {rule.what}); "
            "write { choices = [...] } or a single value"
        )
    low = _value(rule, low, f"{where}: low")
    high = _value(rule, high, f"{where}: high")
    if not low < high:
        raise SpecError(f"{where}: low must be < high, got low={low}, high={high}")
    if log and low <= 0:
        raise SpecError(
            f"{where}: a log range needs low > 0, got low={low}; write "
            f"{{ low = {low}, high = {high}, log = false }} for a uniform range"
        )
    return Range(low, high, log, rule.kind == "int")


def _choice(rule: _Rule, values: Any, where: str) -> Choice:
    if not isinstance(values, (list, tuple)) or not values:
        raise SpecError(f"{where}: choices must be a non-empty list, got {_show(values)}")
    checked = [_value(rule, v, f"{where}: choices[{i}]") for i, v in enumerate(values)]
    for i, v in enumerate(checked):
        if v in checked[:i]:
            raise SpecError(f"{where}: choices lists {_show(v)} twice")
    return Choice(tuple(checked))


def _extreme(param: Param | object, pick: Callable[..., Any]) -> Any:
    """The smallest or largest value (``pick`` is ``min`` or ``max``) a setting can take."""
    if isinstance(param, Range):
        return pick(param.low, param.high)
    if isinstance(param, Choice):
        return pick(param.values)
    if isinstance(param, Fixed):
        return param.value
    return param


def _check_warmup(hyperparameters: Mapping[str, Param], training: Mapping[str, Any]) -> None:
    """The warm-up can never be longer than training (when the space sets both)."""
    settings = {**training, **hyperparameters}
    if "warmup_epochs" not in settings or "epochs" not in settings:
        return
    warmup = _extreme(settings["warmup_epochs"], max)
    epochs = _extreme(settings["epochs"], min)
    if warmup > epochs:
        raise SpecError(
            f"warmup_epochs (up to {warmup}) must be <= epochs (as few as {epochs}) in every trial"
        )


def _objective(raw: Mapping[str, Any]) -> dict[str, Any]:
    _reject_unknown(raw, OBJECTIVE_KEYS, "[objective]")
    ood = _ood(raw.get("ood"))
    if "terms" in raw:
        if "metric" in raw or "direction" in raw:
            raise SpecError(
                "[objective] give either metric (one metric) or terms (a weighted sum, "
                "minimised), not both"
            )
        terms, budgets = _terms(raw["terms"], raw.get("budgets", {}))
        uses_ood = "ood_auroc" in terms
        result = {
            "metric": "objective",
            "direction": "minimize",
            "terms": terms,
            "budgets": budgets,
        }
    else:
        if "budgets" in raw:
            raise SpecError("[objective] budgets apply to the cost terms of terms = { ... }")
        metric, direction = _metric(raw)
        uses_ood = metric == "ood_auroc"
        result = {"metric": metric, "direction": direction}
    if uses_ood and ood is None:
        raise SpecError(
            "[objective] ood_auroc needs a validation OOD set: ood = { held_out_classes = "
            '[8, 9] } or ood = "uniform_noise" (or another named set)'
        )
    return {**result, "ood": ood}


def _ood(value: Any) -> Any:
    """The validation OOD set: held-out classes or a named set."""
    if value is None:
        return None
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, Mapping):
        _reject_unknown(value, ("held_out_classes",), "[objective] ood:")
        classes = value.get("held_out_classes")
        if (
            isinstance(classes, (list, tuple))
            and classes
            and all(isinstance(c, (int, str)) and not isinstance(c, bool) for c in classes)
        ):
            return {"held_out_classes": list(classes)}
    raise SpecError(
        f'[objective] ood must be a named OOD set (e.g. "uniform_noise") or '
        f"{{ held_out_classes = [8, 9] }}, got {_show(value)}"
    )


def _terms(raw: Any, budgets_raw: Any) -> tuple[dict[str, float], dict[str, float]]:
    names = (*METRICS, *COSTS)
    if not isinstance(raw, Mapping) or not raw:
        raise SpecError(f"[objective] terms must be a table of name = weight, got {_show(raw)}")
    terms = {}
    for name, weight in raw.items():
        if name not in names:
            raise SpecError(
                f"[objective] terms: {name!r} is unknown{_close(str(name), names)} (choose from "
                f"{', '.join(names)})"
            )
        if not _is_number(weight) or weight == 0:
            raise SpecError(
                f"[objective] terms: {name} needs a non-zero weight, got {_show(weight)}"
            )
        terms[name] = float(weight)
    if not isinstance(budgets_raw, Mapping):
        raise SpecError(f"[objective] budgets must be a table, got {_show(budgets_raw)}")
    budgets = {}
    for name, budget in budgets_raw.items():
        if name not in COSTS:
            raise SpecError(
                f"[objective] budgets: {name!r} is not a cost (choose from {', '.join(COSTS)})"
            )
        if name not in terms:
            raise SpecError(
                f"[objective] budgets: {name} has a budget but no weight in terms; add "
                f"{name} = 1.0 to terms"
            )
        if not _is_number(budget) or budget <= 0:
            raise SpecError(f"[objective] budgets: {name} must be positive, got {_show(budget)}")
        budgets[name] = float(budget)
    return terms, budgets


def _metric(raw: Mapping[str, Any]) -> tuple[str, str]:
    metric = raw.get("metric", "nll")
    if not isinstance(metric, str) or metric not in METRICS:
        hint = _close(metric, METRICS) if isinstance(metric, str) else ""
        raise SpecError(
            f"[objective] metric {_show(metric)} is unknown{hint} (choose from {', '.join(METRICS)})"
        )
    natural = "maximize" if metric in MAXIMIZED else "minimize"
    direction = raw.get("direction", natural)
    if not isinstance(direction, str) or direction not in DIRECTIONS:
        hint = _close(direction, DIRECTIONS) if isinstance(direction, str) else ""
        raise SpecError(
            f"[objective] direction {_show(direction)} is unknown{hint} "
            f"(choose from {', '.join(DIRECTIONS)})"
        )
    if direction != natural:
        raise SpecError(
            f"[objective] direction {direction!r} would search for the worst {metric}: "
            f"{metric} is {'higher' if natural == 'maximize' else 'lower'} when better "
            f"(use {natural!r} or leave direction out)"
        )
    return metric, direction


def _constraints(raw: Mapping[str, Any]) -> tuple[int | None, float | None]:
    _reject_unknown(raw, CONSTRAINT_KEYS, "[constraints]")
    max_params = raw.get("max_params")
    if max_params is not None:
        max_params = _value(
            _Rule("int", lambda v: v >= 1, "a positive integer"),
            max_params,
            "[constraints] max_params",
        )
    max_ms = raw.get("max_ms_per_example")
    if max_ms is not None:
        max_ms = _value(
            _Rule("float", lambda v: v > 0, "a positive number"),
            max_ms,
            "[constraints] max_ms_per_example",
        )
    return max_params, max_ms


def _probability(value: Any, where: str) -> float:
    if not _is_number(value) or not 0 <= value <= 1:
        raise SpecError(f"{where} must be a number in [0, 1], got {_show(value)}")
    return float(value)


def _one_of(value: Any, choices: tuple[str, ...], where: str) -> str:
    if not isinstance(value, str) or value not in choices:
        hint = _close(value, choices) if isinstance(value, str) else ""
        raise SpecError(
            f"{where} {_show(value)} is unknown{hint} (choose from {', '.join(choices)})"
        )
    return value


def _adaptive(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The adaptive search's grow probability and hyperparameter mode, checked."""
    return {
        "grow_probability": _probability(
            raw.get("grow_probability", GROW_PROBABILITY), "grow_probability"
        ),
        "hyperparameter_mode": _one_of(
            raw.get("hyperparameter_mode", "inherit"), HYPERPARAMETER_MODES, "hyperparameter_mode"
        ),
        "fresh_share": _probability(raw.get("fresh_share", FRESH_SHARE), "fresh_share"),
    }


def _transfer(raw: Mapping[str, Any]) -> str:
    _reject_unknown(raw, ("mode",), "[transfer]")
    return _one_of(raw.get("mode", "none"), TRANSFER_MODES, "[transfer] mode")


def _distillation(raw: Mapping[str, Any]) -> dict[str, Any]:
    _reject_unknown(raw, DISTILLATION_DEFAULTS, "[distillation]")
    values = {**DISTILLATION_DEFAULTS, **raw}
    temperature = values["temperature"]
    if not _is_number(temperature) or temperature <= 0:
        raise SpecError(
            f"[distillation] temperature must be a positive number, got {_show(temperature)}"
        )
    return {
        "distill_weight": _probability(values["weight"], "[distillation] weight"),
        "distill_temperature": float(temperature),
        "distill_loss": _one_of(values["loss"], DISTILLATION_LOSSES, "[distillation] loss"),
    }


def _ensemble(raw: Mapping[str, Any]) -> dict[str, Any]:
    _reject_unknown(raw, ENSEMBLE_DEFAULTS, "[ensemble]")
    values = {**ENSEMBLE_DEFAULTS, **raw}
    for key in ("enabled", "counts_toward_trials"):
        if not isinstance(values[key], bool):
            raise SpecError(f"[ensemble] {key} must be true or false, got {_show(values[key])}")
    every = values["every"]
    if isinstance(every, bool) or not isinstance(every, int) or every < 0 or every == 1:
        raise SpecError(
            f"[ensemble] every must be 0 (only at the end) or an integer >= 2, got {_show(every)}"
        )
    size = values["size"]
    if isinstance(size, bool) or not isinstance(size, int) or size < 2:
        raise SpecError(
            f"[ensemble] size must be an integer >= 2 (an ensemble has at least two members), "
            f"got {_show(size)}"
        )
    pool = values["pool"]
    if isinstance(pool, bool) or not isinstance(pool, int) or pool < 2:
        raise SpecError(f"[ensemble] pool must be an integer >= 2, got {_show(pool)}")
    return {
        "ensemble_enabled": values["enabled"],
        "ensemble_every": every,
        "ensemble_size": size,
        "ensemble_pool": pool,
        "ensemble_counts": values["counts_toward_trials"],
    }
