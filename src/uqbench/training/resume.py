"""Training state saved after every epoch, so a killed image run continues with ``--resume``.

The state of a run whose output is ``runs/x`` lives beside it in ``runs/.x.training/`` (hidden,
like the staging folder, so analysis never reads it): ``config.json`` (what the run is: method,
data hash, network, recipe, seed and every flag that changes the result) and ``fit-<i>.pt`` for
the i-th network the run trains (its weights, optimiser and schedule, the random-number states
and the history after its last finished epoch). A resumed run restores all of it, so it ends
with the same result as an uninterrupted run of the same seed; the folder is removed once the
run directory is written.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

CONFIG = "config.json"


class ResumeError(ValueError):
    """``--resume`` cannot continue this run (finished, another configuration, corrupt state),
    or a killed run's state would be lost without it."""


def state_folder(output_dir: str | Path) -> Path:
    """Where the training state of the run writing ``output_dir`` lives."""
    output_dir = Path(output_dir).expanduser().resolve()
    return output_dir.parent / f".{output_dir.name}.training"


def _differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    keys = sorted(set(saved) | set(current))
    return [
        f"{key}: {saved.get(key, '(unset)')!r} then, {current.get(key, '(unset)')!r} now"
        for key in keys
        if saved.get(key) != current.get(key)
    ]


class FitCheckpoint:
    """The saved state of one network's training (``fit-<i>.pt``): ``load`` it before training,
    ``save`` it after every epoch (atomically: a kill mid-write keeps the previous epoch)."""

    def __init__(self, path: Path, prepare: Callable[[], None] | None = None) -> None:
        self.path = path
        self.prepare = prepare
        self.restored_seconds = 0.0

    def load(self) -> dict[str, Any] | None:
        """The saved state, or None when this network has not finished an epoch yet."""
        if not self.path.is_file():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as err:  # torch raises many types for a truncated or foreign file
            raise ResumeError(
                f"the training checkpoint {self.path} is corrupt ({type(err).__name__}: {err}); "
                "pass --overwrite instead of --resume to start the run again"
            ) from err
        if not isinstance(state, dict) or "epoch" not in state or "model" not in state:
            raise ResumeError(
                f"the training checkpoint {self.path} lacks the state uqbench writes; pass "
                "--overwrite instead of --resume to start the run again"
            )
        self.restored_seconds = float(sum(r.get("seconds", 0.0) for r in state["history"]))
        return state

    def save(self, state: Mapping[str, Any]) -> None:
        """Write ``state`` to a temporary file in the folder, then rename it into place."""
        if self.prepare is not None:
            self.prepare()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp"
        )
        os.close(fd)
        try:
            torch.save(dict(state), tmp)
            os.replace(tmp, self.path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


class TrainingState:
    """The training-state folder of one run: checks ``--resume`` against what is on disk and
    hands out one :class:`FitCheckpoint` per network trained, in training order."""

    def __init__(self, folder: Path, config: Mapping[str, Any], resumed: bool) -> None:
        self.folder = folder
        self.config = dict(config)
        self.resumed = resumed
        self._next = 0

    @classmethod
    def open(
        cls, output_dir: str | Path, config: Mapping[str, Any], *, resume: bool, overwrite: bool
    ) -> TrainingState:
        """The state folder of the run writing ``output_dir`` with ``config``. With ``resume``,
        the existing folder (which must hold this configuration) or a fresh one when there is
        none; without it, a fresh folder (an existing one is an error unless ``overwrite``).
        Every refusal is a :class:`ResumeError` raised before anything is changed."""
        output_dir = Path(output_dir).expanduser().resolve()
        folder = state_folder(output_dir)
        config = json.loads(json.dumps(dict(config), sort_keys=True, default=str))
        if folder.is_dir() and not any(folder.glob("fit-*.pt")):
            shutil.rmtree(folder)  # a run that stopped before its first epoch: nothing to keep
        if resume and folder.is_dir():
            try:
                saved = json.loads((folder / CONFIG).read_text())
            except (OSError, json.JSONDecodeError) as err:
                raise ResumeError(
                    f"cannot read {folder / CONFIG} ({err}): the saved training state is corrupt; "
                    "pass --overwrite instead of --resume to start the run again"
                ) from err
            if saved != config:
                raise ResumeError(
                    f"--resume: the training state in {folder} belongs to a run of another "
                    f"configuration ({'; '.join(_differences(saved, config))}); run with the "
                    "flags of that run, or pass --overwrite instead of --resume to start again"
                )
            return cls(folder, config, resumed=True)
        if resume and (output_dir / "summary.json").is_file():
            raise ResumeError(
                f"--resume: the run in {output_dir} has finished (its summary.json is there and "
                "no training state is left); nothing to resume. Choose another --output_dir, or "
                "pass --overwrite without --resume to run it again"
            )
        if folder.exists() and not resume:
            if not overwrite:
                raise ResumeError(
                    f"a killed run left its training state in {folder} ({_saved_epochs(folder)}): "
                    "pass --resume "
                    "to continue it, or --overwrite to discard it and start again"
                )
            shutil.rmtree(folder)
        return cls(folder, config, resumed=False)

    def next_fit(self) -> FitCheckpoint:
        """The checkpoint of the next network this run trains (the folder and its
        ``config.json`` are written with the first epoch's state, so a run that stops before
        then leaves nothing behind)."""
        checkpoint = FitCheckpoint(self.folder / f"fit-{self._next}.pt", self._write_config)
        self._next += 1
        return checkpoint

    def _write_config(self) -> None:
        if not (self.folder / CONFIG).is_file():
            self.folder.mkdir(parents=True, exist_ok=True)
            text = json.dumps(self.config, indent=2, sort_keys=True) + "\n"
            (self.folder / CONFIG).write_text(text)

    def remove(self) -> None:
        """Delete the folder (the run directory has been written)."""
        shutil.rmtree(self.folder, ignore_errors=True)


def _saved_epochs(folder: Path) -> str:
    """What a state folder holds, for messages: e.g. ``fit-0.pt: epoch 12``."""
    parts = []
    for path in sorted(folder.glob("fit-*.pt")):
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            parts.append(f"{path.name}: epoch {state['epoch']}/{state.get('epochs', '?')}")
        except Exception:
            parts.append(f"{path.name}: unreadable")
    return ", ".join(parts)


def rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    """The global random-number states training draws from (dropout, sampling layers)."""
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: Mapping[str, torch.Tensor], device: torch.device) -> None:
    """Restore what :func:`rng_state` saved."""
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)
