"""resolve_data_dir: the argument, else $UQBENCH_DATA_DIR, else $XDG_CACHE_HOME/uqbench/data."""

from __future__ import annotations

from pathlib import Path

from uqbench.data import resolve_data_dir


def test_argument_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("UQBENCH_DATA_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_data_dir(str(tmp_path / "arg")) == tmp_path / "arg"


def test_environment_variable_next(tmp_path, monkeypatch):
    monkeypatch.setenv("UQBENCH_DATA_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert resolve_data_dir() == tmp_path / "env"
    assert resolve_data_dir(None) == tmp_path / "env"
    assert resolve_data_dir("") == tmp_path / "env"  # an empty flag counts as not given


def test_xdg_cache_then_home_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("UQBENCH_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert resolve_data_dir() == tmp_path / "xdg" / "uqbench" / "data"
    monkeypatch.setenv("UQBENCH_DATA_DIR", "")  # empty counts as unset
    assert resolve_data_dir() == tmp_path / "xdg" / "uqbench" / "data"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_data_dir() == tmp_path / "home" / ".cache" / "uqbench" / "data"


def test_tilde_is_expanded_and_nothing_is_created(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_data_dir("~/d") == tmp_path / "home" / "d"
    monkeypatch.setenv("UQBENCH_DATA_DIR", "~/e")
    assert resolve_data_dir() == tmp_path / "home" / "e"
    assert not (tmp_path / "home").exists()
    assert isinstance(resolve_data_dir(), Path)
