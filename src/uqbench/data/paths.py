"""Where data lives: ``--data_dir``, else ``$UQBENCH_DATA_DIR``, else a per-user cache folder."""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "UQBENCH_DATA_DIR"


class DataError(ValueError):
    """A data set cannot be loaded; the message says what is wrong and what to do about it."""


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The data directory, chosen in this order:

    1. ``data_dir`` (the ``--data_dir`` flag), if given and not empty;
    2. ``$UQBENCH_DATA_DIR``, if set and not empty;
    3. ``$XDG_CACHE_HOME/uqbench/data``, or ``~/.cache/uqbench/data`` when ``XDG_CACHE_HOME``
       is unset.

    ``~`` is expanded. Nothing is created here; only a download creates the folder.
    """
    if data_dir is not None and os.fspath(data_dir):
        return Path(data_dir).expanduser()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "uqbench" / "data"


def data_dir_origin(data_dir: str | os.PathLike | None = None) -> str:
    """How :func:`resolve_data_dir` chose the directory, worded for error messages."""
    if data_dir is not None and os.fspath(data_dir):
        return "given by --data_dir / data_dir="
    if os.environ.get(ENV_VAR):
        return f"given by ${ENV_VAR}"
    return f"the default cache folder, because neither --data_dir nor ${ENV_VAR} is set"
