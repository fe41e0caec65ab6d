"""Latency per example: warm-up excluded, median per example, device synchronisation, errors."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import uqbench.metrics as M
from uqbench.metrics.latency import latency_record


class SleepyModel:
    """Sleeps ``first_s`` on the first ``slow_calls`` calls and ``then_s`` afterwards."""

    def __init__(self, then_s: float, first_s: float = 0.0, slow_calls: int = 0) -> None:
        self.then_s, self.first_s, self.slow_calls = then_s, first_s, slow_calls
        self.calls = 0

    def __call__(self, inputs):
        self.calls += 1
        time.sleep(self.first_s if self.calls <= self.slow_calls else self.then_s)
        return inputs


def test_sleep_time_divided_by_the_batch_size():
    fn = SleepyModel(then_s=0.004)
    ms = M.ms_per_example(fn, np.zeros((4, 3)), warmup=1, repeats=5)
    # 4 ms per call of 4 examples: at least 1 ms each (sleep never returns early), generous above
    assert 1.0 <= ms < 4.0
    assert type(ms) is float
    assert fn.calls == 6


def test_warmup_calls_are_not_timed():
    fn = SleepyModel(then_s=0.002, first_s=0.15, slow_calls=3)
    record = latency_record(fn, torch.zeros(2, 5), warmup=3, repeats=4)
    assert fn.calls == 7
    # were a 150 ms warm-up call timed, the fastest call would be 75 ms per example
    assert 1.0 <= record["min_ms_per_example"] <= record["ms_per_example"] < 30.0


def test_median_ignores_one_slow_timed_call():
    fn = SleepyModel(then_s=0.002, first_s=0.2, slow_calls=1)
    ms = M.ms_per_example(fn, np.zeros(1), warmup=0, repeats=5)
    assert 2.0 <= ms < 100.0


def test_record_for_summary_json():
    record = latency_record(lambda x: x * 2, torch.zeros(8, 3), warmup=0, repeats=3)
    assert set(record) == {
        "ms_per_example",
        "min_ms_per_example",
        "batch_size",
        "warmup",
        "repeats",
        "device",
    }
    assert record["batch_size"] == 8 and record["repeats"] == 3 and record["warmup"] == 0
    assert record["device"] == "cpu"
    assert 0 <= record["min_ms_per_example"] <= record["ms_per_example"]


def test_cuda_synchronises_around_every_timed_call(monkeypatch):
    events = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device: events.append(("sync", device)))

    def fn(inputs):
        events.append(("call", None))

    record = latency_record(fn, np.zeros((2, 1)), warmup=2, repeats=3, device="cuda:0")
    cuda0 = torch.device("cuda:0")
    timed = [("sync", cuda0), ("call", None), ("sync", cuda0)]
    assert events == [("call", None)] * 2 + timed * 3
    assert record["device"] == "cuda:0"


def test_cpu_device_never_touches_cuda(monkeypatch):
    def fail(*args):
        raise AssertionError("CUDA must not be synchronised for a CPU run")

    monkeypatch.setattr(torch.cuda, "synchronize", fail)
    assert M.ms_per_example(lambda x: x, torch.zeros(3), repeats=2, device="cpu") >= 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_real_cuda_matmul_is_timed_after_synchronisation():
    x = torch.randn(64, 2048, device="cuda")
    w = torch.randn(2048, 2048, device="cuda")
    record = latency_record(lambda a: a @ w, x, warmup=2, repeats=5)
    assert record["device"] == str(x.device)
    assert record["ms_per_example"] > 0


class NoShape:
    pass


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"fn": "model"}, "fn must be callable"),
        ({"inputs": NoShape()}, "inputs must be an array or tensor"),
        ({"inputs": torch.tensor(1.0)}, "with no dimensions"),
        ({"inputs": np.zeros((0, 3))}, "empty batch"),
        ({"warmup": -1}, "warmup must be an integer >= 0"),
        ({"warmup": 1.5}, "warmup must be an integer"),
        ({"repeats": 0}, "repeats must be an integer >= 1"),
        ({"repeats": True}, "repeats must be an integer"),
        ({"device": "tpu"}, "device 'tpu' is not supported"),
    ],
)
def test_bad_arguments_are_refused(kwargs, match):
    arguments = {"fn": lambda x: x, "inputs": np.zeros((2, 2)), **kwargs}
    fn, inputs = arguments.pop("fn"), arguments.pop("inputs")
    with pytest.raises(ValueError, match=match):
        M.ms_per_example(fn, inputs, **arguments)


def test_unavailable_cuda_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="CUDA is not available"):
        M.ms_per_example(lambda x: x, np.zeros(2), device="cuda")


def test_cpu_timing_keeps_the_metrics_package_free_of_torch():
    code = (
        "import sys, numpy as np, uqbench.metrics as M\n"
        "M.ms_per_example(lambda x: x, np.zeros(2), warmup=0, repeats=1)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
