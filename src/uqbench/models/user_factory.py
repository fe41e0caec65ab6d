"""Your own image classifier as ``--model=package.module:factory``.

The factory is imported (``package.module`` must be importable: installed, or on ``PYTHONPATH``)
and called with ``num_classes``, ``in_channels`` and ``image_size`` as keywords, plus
``dropout_rate`` if it takes that argument (or ``**kwargs``); it returns an ``nn.Module`` that
maps normalised images ``(N, in_channels, image_size, image_size)`` to logits
``(N, num_classes)``. :class:`UserModel` wraps it and records the dotted path and arguments in its
``config``, so a checkpoint rebuilds it: loading that checkpoint (``uqbench eval``) imports and
runs the factory's module, so evaluate only checkpoints whose code you trust.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from uqbench.dotted_path import resolve_callable
from uqbench.models._common import check_dropout_rate, positive_int


def is_factory_path(name: object) -> bool:
    """Whether a model name is a dotted path ``package.module:factory`` (it contains ``:``)."""
    return isinstance(name, str) and ":" in name


def resolve_factory(path: str) -> Callable[..., Any]:
    """The callable ``factory`` of ``package.module:factory`` (``factory`` may be dotted, e.g.
    ``Class.build``), or a ``ValueError`` saying what is wrong."""
    return resolve_callable(path, "--model", "a model of your own")


def takes(factory: Callable[..., Any], name: str) -> bool:
    """Whether ``factory`` accepts a keyword argument ``name`` (or ``**kwargs``)."""
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == name or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


class UserModel(nn.Module):
    """A user's network built by ``factory`` (``package.module:factory``), checked on a probe
    batch of zeros: it must be an ``nn.Module`` returning ``(2, num_classes)`` for two images."""

    def __init__(
        self,
        factory: str,
        num_classes: int,
        in_channels: int = 3,
        image_size: int = 32,
        dropout_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.config = {
            "factory": factory,
            "num_classes": positive_int("num_classes", num_classes),
            "in_channels": positive_int("in_channels", in_channels),
            "image_size": positive_int("image_size", image_size),
            "dropout_rate": check_dropout_rate(dropout_rate),
        }
        build = resolve_factory(factory)
        arguments: dict[str, Any] = {
            "num_classes": num_classes,
            "in_channels": in_channels,
            "image_size": image_size,
        }
        if takes(build, "dropout_rate"):
            arguments["dropout_rate"] = self.config["dropout_rate"]
        elif dropout_rate > 0:
            raise ValueError(
                f"--model={factory} takes no dropout_rate argument, so it cannot build the "
                f"dropout network this method asks for (rate {dropout_rate}); add a dropout_rate "
                "parameter to the factory"
            )
        try:
            network = build(**arguments)
        except TypeError as err:
            raise ValueError(
                f"--model={factory} must accept num_classes, in_channels and image_size as "
                f"keywords: {err}"
            ) from err
        if not isinstance(network, nn.Module):
            raise ValueError(
                f"--model={factory} must return an nn.Module, got {type(network).__name__}"
            )
        self.net = network
        self._probe()

    def _probe(self) -> None:
        """Run two zero images through the network (eval mode, no gradients, on its device)."""
        shape = (
            2,
            self.config["in_channels"],
            self.config["image_size"],
            self.config["image_size"],
        )
        first = next(iter(self.net.parameters()), None)
        device = first.device if first is not None else torch.device("cpu")
        training = self.net.training
        self.net.eval()
        try:
            with torch.no_grad():
                out = self.net(torch.zeros(shape, device=device))
        except Exception as err:  # any failure of the user's code, reported as such
            raise ValueError(
                f"--model={self.config['factory']} fails on a probe batch of shape {shape}: "
                f"{type(err).__name__}: {err}"
            ) from err
        finally:
            self.net.train(training)
        expected = (2, self.config["num_classes"])
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != expected:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(
                f"--model={self.config['factory']} must map images {shape} to logits {expected}, "
                f"got {got}"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The user's network's logits."""
        return self.net(x)
