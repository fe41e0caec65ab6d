"""Inference latency: wall-clock milliseconds per example of a prediction function.

``fn(inputs)`` is called ``warmup`` times untimed (lazy initialisation, cuDNN autotuning,
allocator growth), then ``repeats`` times, each call timed on its own with
``time.perf_counter``. On an accelerator the device is synchronised before each call starts and
after it returns (``torch.cuda.synchronize(device)``, ``torch.mps.synchronize()``), so the time
covers the queued kernels and not only their launch; on the CPU nothing is synchronised. The
batch size is the first dimension of ``inputs``. Wrap ``fn`` in ``torch.inference_mode()`` and
put the model in ``eval()`` yourself: what is timed is exactly what ``fn`` does.
"""

from __future__ import annotations

import numbers
import statistics
import time
from collections.abc import Callable
from typing import Any

_SYNCHRONISED = ("cuda", "mps")


def _integer_at_least(name: str, value: int, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _batch_size(inputs: Any) -> int:
    shape = getattr(inputs, "shape", None)
    if shape is None or len(shape) == 0:
        raise ValueError(
            "inputs must be an array or tensor with the batch on its first dimension, "
            f"got {type(inputs).__name__}" + ("" if shape is None else " with no dimensions")
        )
    if shape[0] < 1:
        raise ValueError(f"inputs has an empty batch (shape {tuple(shape)}): time at least one")
    return int(shape[0])


def _device(inputs: Any, device: Any) -> str:
    """The device as a string (``"cpu"``, ``"cuda:0"``): ``device``, else the tensor's own."""
    if device is None:
        device = getattr(inputs, "device", "cpu")
    name = str(device)
    kind = name.split(":")[0]
    if kind not in ("cpu", *_SYNCHRONISED):
        raise ValueError(
            f"device {name!r} is not supported for timing: use 'cpu', 'cuda[:index]' or 'mps'"
        )
    return name


def _synchronizer(device: str) -> Callable[[], None]:
    """A function that waits for the device's queued work (nothing to wait for on the CPU)."""
    kind = device.split(":")[0]
    if kind == "cpu":
        return lambda: None
    import torch  # only for an accelerator, so that uqbench.metrics stays free of torch

    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} was asked for but CUDA is not available")
        target = torch.device(device)
        return lambda: torch.cuda.synchronize(target)
    if not torch.backends.mps.is_available():
        raise ValueError(f"device {device!r} was asked for but MPS is not available")
    return torch.mps.synchronize


def latency_record(
    fn: Callable[[Any], Any],
    inputs: Any,
    *,
    warmup: int = 3,
    repeats: int = 10,
    device: Any = None,
) -> dict[str, Any]:
    """Timing of ``fn(inputs)`` per example, as a record for ``summary.json``.

    Returns ``ms_per_example`` (median over the ``repeats`` timed calls of the call's
    milliseconds, divided by the batch size), ``min_ms_per_example`` (the fastest call, the same
    way), ``batch_size``, ``warmup``, ``repeats`` and ``device`` (a string; ``None`` takes the
    device of ``inputs`` if it is a tensor, else the CPU). Raises ``ValueError`` for a ``fn``
    that is not callable, ``inputs`` without a non-empty first dimension, ``warmup < 0``,
    ``repeats < 1`` or a device that is unsupported or not available."""
    if not callable(fn):
        raise ValueError(f"fn must be callable (a model or function of inputs), got {fn!r}")
    warmup = _integer_at_least("warmup", warmup, 0)
    repeats = _integer_at_least("repeats", repeats, 1)
    batch = _batch_size(inputs)
    device_name = _device(inputs, device)
    synchronize = _synchronizer(device_name)
    for _ in range(warmup):
        fn(inputs)
    seconds = []
    for _ in range(repeats):
        synchronize()
        start = time.perf_counter()
        fn(inputs)
        synchronize()
        seconds.append(time.perf_counter() - start)
    return {
        "ms_per_example": 1000.0 * statistics.median(seconds) / batch,
        "min_ms_per_example": 1000.0 * min(seconds) / batch,
        "batch_size": batch,
        "warmup": warmup,
        "repeats": repeats,
        "device": device_name,
    }


def ms_per_example(
    fn: Callable[[Any], Any],
    inputs: Any,
    *,
    warmup: int = 3,
    repeats: int = 10,
    device: Any = None,
) -> float:
    """Inference latency: median wall-clock milliseconds per example of ``fn(inputs)``.

    ``median_r t_r / B`` over ``repeats`` timed calls after ``warmup`` untimed ones, with ``t_r``
    the milliseconds of call r (device synchronised before and after it on an accelerator) and
    ``B`` the first dimension of ``inputs``; the ``cost/ms_per_example`` of a run. See
    ``latency_record`` for the arguments and the full record."""
    record = latency_record(fn, inputs, warmup=warmup, repeats=repeats, device=device)
    return record["ms_per_example"]
