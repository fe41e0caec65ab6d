"""--download against a file:// mirror of the published layout: works, resumes, never leaves a
partial file."""

from __future__ import annotations

import shutil
import urllib.request

import pytest

import uqbench.data as data
from uqbench.data import DataError, uci


@pytest.fixture
def mirror(tmp_path, monkeypatch, fake):
    """``<base>/bostonHousing/data/<files>``, with uci.BASE_URL pointing at it."""
    base = tmp_path / "mirror"
    fake.write(base / "bostonHousing" / "data")
    monkeypatch.setattr(uci, "BASE_URL", base.as_uri())
    return base / "bostonHousing" / "data"


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or "part" in p.name)


def test_download_fetches_every_file(tmp_path, mirror):
    target = tmp_path / "dd"
    with pytest.raises(DataError, match="--download"):
        data.get("boston", data_dir=target)
    s = data.get("boston", split=2, data_dir=target, download=True)
    folder = target / "uci" / "bostonHousing"
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in mirror.iterdir())
    for source in mirror.iterdir():
        assert (folder / source.name).read_bytes() == source.read_bytes()
    reference = data.get(str(mirror), split=2)
    assert s.data_hash == reference.data_hash
    assert s.x_train.tobytes() == reference.x_train.tobytes()
    assert s.tau_values == (0.25, 0.5, 1.0)


def test_download_with_everything_present_makes_no_request(tmp_path, mirror, monkeypatch):
    data.get("boston", data_dir=tmp_path / "dd", download=True)

    def offline(*args, **kwargs):
        raise AssertionError("no request expected")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    assert data.get("boston", split=1, data_dir=tmp_path / "dd", download=True).split == 1


def test_a_missing_remote_file_fails_cleanly_and_the_download_resumes(tmp_path, mirror):
    hidden = tmp_path / "hidden.txt"
    shutil.move(mirror / "index_test_2.txt", hidden)
    target = tmp_path / "dd"
    with pytest.raises(DataError) as info:
        data.get("boston", data_dir=target, download=True)
    assert "index_test_2.txt" in str(info.value)
    folder = target / "uci" / "bostonHousing"
    assert not (folder / "index_test_2.txt").exists()
    assert leftovers(folder) == []
    for present in folder.iterdir():  # what is there is complete
        assert present.read_bytes() == (mirror / present.name).read_bytes()
    # the file comes back online: --download picks up where it stopped
    shutil.move(hidden, mirror / "index_test_2.txt")
    assert data.get("boston", split=2, data_dir=target, download=True).x_test.shape == (6, 4)


def test_a_connection_dropped_mid_file_leaves_no_partial_file(tmp_path, mirror, monkeypatch):
    real_urlopen = urllib.request.urlopen

    class Dropped:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self):
            raise ConnectionResetError("connection reset by peer halfway through")

    def flaky(url, *args, **kwargs):
        if url.endswith("/data.txt"):
            return Dropped()
        return real_urlopen(url, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", flaky)
    target = tmp_path / "dd"
    with pytest.raises(DataError, match="data.txt"):
        data.get("boston", data_dir=target, download=True)
    folder = target / "uci" / "bostonHousing"
    assert not (folder / "data.txt").exists()
    assert not folder.exists() or leftovers(folder) == []


def test_a_write_failing_midway_leaves_no_partial_file(tmp_path, mirror, monkeypatch):
    real_fsync = uci.os.fsync
    calls = []

    def failing_fsync(fd):
        calls.append(fd)
        if len(calls) == 2:  # the second file written
            raise OSError(28, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(uci.os, "fsync", failing_fsync)
    target = tmp_path / "dd"
    with pytest.raises(OSError, match="No space"):
        data.get("boston", data_dir=target, download=True)
    folder = target / "uci" / "bostonHousing"
    assert sorted(p.name for p in folder.iterdir()) == ["data.txt"]


def test_download_of_a_folder_path_is_refused(tmp_path):
    with pytest.raises(DataError, match="nine UCI sets"):
        data.download_uci(str(tmp_path / "mine"), data_dir=tmp_path)
