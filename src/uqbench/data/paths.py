"""Where data lives: ``--data_dir``, else ``$UQBENCH_DATA_DIR``, else a per-user cache folder."""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "UQBENCH_DATA_DIR"


class DataError(ValueError):
    """A data set cannot be loaded; the message says what is missing and what to do."""


def resolve_data_dir(data_dir: str | Path | None = None) -> Path:
    """The data directory: the argument, else ``$UQBENCH_DATA_DIR``, else
    ``$XDG_CACHE_HOME/uqbench/data`` (``~/.cache/uqbench/data``). Never created here."""
    if data_dir:
        return Path(data_dir).expanduser()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "uqbench" / "data"


def data_dir_origin(data_dir: str | Path | None = None) -> str:
    """How the data directory was chosen, for error messages."""
    if data_dir:
        return "from --data_dir"
    if os.environ.get(ENV_VAR):
        return f"from ${ENV_VAR}"
    return f"the default; set --data_dir or ${ENV_VAR}"
