"""Progress lines: how often they are written, the ETA, and silence before a delay."""

from __future__ import annotations

import io

from uqbench.training.progress import Progress


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_a_log_gets_a_line_at_most_every_interval_and_always_the_last():
    clock, stream = FakeClock(), io.StringIO()
    progress = Progress(9, "work", stream=stream, log_interval=10.0, clock=clock)
    for done in range(1, 10):
        clock.now += 4.0
        progress.update(done, f"step {done}")
    # Lines at 4 s (the first), 16 s and 28 s (10 s apart at least), and the final one at 36 s
    # although only 8 s have passed since the one before.
    assert [line.split(": ")[1].split(" ")[0] for line in _lines(stream)] == [
        "1/9",
        "4/9",
        "7/9",
        "9/9",
    ]
    assert _lines(stream)[-1].endswith("  step 9")


def test_the_eta_is_the_elapsed_time_per_unit_times_the_units_left():
    clock, stream = FakeClock(), io.StringIO()
    progress = Progress(100, "work", stream=stream, unit="steps", clock=clock)
    clock.now += 30.0
    progress.update(20)
    # 30 s for 20 steps: 1.5 s each, 80 left -> 120 s.
    assert _lines(stream) == ["work: 20/100 steps (20%) 30.0s elapsed, ETA 2m00s"]


def test_nothing_is_written_before_the_delay():
    clock, stream = FakeClock(), io.StringIO()
    short = Progress(5, "short", stream=stream, log_interval=0.0, delay=10.0, clock=clock)
    for done in range(1, 6):
        clock.now += 1.0
        short.update(done)
    assert stream.getvalue() == ""  # finished in 5 s: not even the final line

    long = Progress(5, "long", stream=stream, log_interval=0.0, delay=10.0, clock=clock)
    for done in range(1, 6):
        clock.now += 4.0
        long.update(done)
    assert [line.split(" ")[1] for line in _lines(stream)] == ["3/5", "4/5", "5/5"]


def test_quiet_writes_nothing_but_counts_and_advance_adds_up():
    clock, stream = FakeClock(), io.StringIO()
    progress = Progress(3, "work", stream=stream, quiet=True, clock=clock)
    progress.advance(2)
    progress.advance()
    assert progress.done == 3 and stream.getvalue() == ""
