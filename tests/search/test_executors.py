"""What a Ray task runs and returns, without Ray: one trial in a folder of its own, its run
directory sent back as bytes or through a storage folder, and installed by the driver."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from uqbench.search.executors import _receive, run_remote_trial
from uqbench.search.runner import load_data
from uqbench.search.space import space_from_dict
from uqbench.search.store import TrialRow, TrialStore

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def task_inputs():
    space = space_from_dict({"blocks": ["fc_64"], "hyperparameters": {}, "training": {"epochs": 1}})
    settings = {
        "dataset": "digits",
        "algorithm": "random",
        "seed": 0,
        "validation_fraction": 0.2,
        "space": space.to_dict(),
    }
    data = load_data(settings)
    settings["data_hash"] = data.data_hash
    trial = TrialRow(3, None, ("fc_64",), {}, "random", "running")
    return settings, data, trial


@pytest.mark.parametrize("through", ["bytes", "storage"])
def test_a_task_s_run_directory_reaches_the_driver_and_the_store_installs_it(
    tmp_path, task_inputs, through
):
    settings, data, trial = task_inputs
    search = tmp_path / "search"  # never created by the task
    storage = tmp_path / "storage"
    storage.mkdir()
    result = run_remote_trial(
        settings, data, trial, "cpu", 1, str(search), str(storage) if through == "storage" else None
    )
    assert not search.exists()
    assert result["outcome"]["status"] == "done"
    assert result["outcome"]["checkpoint"] == "trials/0003/checkpoint.safetensors"
    assert (result["archive"] is None) == (through == "storage")
    store = TrialStore(search / "search.db")
    assert store.claim(5, lambda *_: {"architecture": ["fc_64"], "hparams": {}}).id == 1
    staged = _receive(result, store.staging_dir(), trial.id)
    assert staged == store.staging_dir() / "trials" / "0003"
    assert not any(storage.iterdir())  # the storage copy is gone once received
    summary = json.loads((staged / "summary.json").read_text())
    assert summary["trial"] == 3 and summary["validation"]["val/nll"] == pytest.approx(
        result["outcome"]["objective"]
    )
    outcome = {**result["outcome"], "checkpoint": "trials/0003/checkpoint.safetensors"}
    assert store.finish(1, run_dir=staged, **outcome)
    assert (search / "trials" / "0003" / "checkpoint.safetensors").is_file()
    assert not staged.exists()


def test_an_archive_with_other_paths_is_refused(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("../escape.txt")
        archive.addfile(info, io.BytesIO(b""))
    result = {"archive": buffer.getvalue(), "path": None}
    with pytest.raises(ValueError, match="unexpected files"):
        _receive(result, tmp_path / "staging", 3)
    assert not (tmp_path / "escape.txt").exists()
