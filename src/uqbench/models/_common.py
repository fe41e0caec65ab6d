"""Argument checks and the dropout layer shared by the image models.

Every model validates its constructor arguments with these helpers so a bad value fails at
construction with a message that says what is allowed, not later inside a convolution.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn


def positive_int(name: str, value: object) -> int:
    """``value`` as an ``int`` if it is a positive integer (not a bool), else a ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def positive_ints(name: str, values: object, length: int | None = None) -> list[int]:
    """A non-empty sequence of positive integers as a list (of ``length`` items if given)."""
    if isinstance(values, str | bytes) or not isinstance(values, Sequence) or not values:
        raise ValueError(
            f"{name} must be a non-empty sequence of positive integers, got {values!r}"
        )
    if length is not None and len(values) != length:
        raise ValueError(f"{name} must have {length} entries, got {len(values)}: {list(values)}")
    return [positive_int(f"{name}[{i}]", v) for i, v in enumerate(values)]


def check_dropout_rate(value: object) -> float:
    """``value`` as a float in ``[0, 1)``: the probability of zeroing a unit."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value < 1.0:
        raise ValueError(f"dropout_rate must be a number in [0, 1), got {value!r}")
    return float(value)


def choice(name: str, value: object, allowed: Sequence[str]) -> str:
    """``value`` if it is one of ``allowed`` (strings), else a ``ValueError`` listing them."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")
    return str(value)


def dropout(rate: float) -> nn.Module:
    """``nn.Dropout(rate)``, or ``nn.Identity()`` for rate 0.

    Neither layer has state, so a model's ``state_dict`` keys are the same with and without
    dropout (a deterministic checkpoint loads into a dropout model and back), and a rate of 0
    costs nothing and draws no random numbers (so it is safe under ``torch.func.vmap`` with its
    default ``randomness="error"``). ``uqbench.layers.mc_dropout.mc_dropout`` finds these layers.
    """
    return nn.Dropout(rate) if rate > 0 else nn.Identity()
