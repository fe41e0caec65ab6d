"""Baseline scripts, one file per method, and the runner that starts them by name.

The registry maps names to modules without importing them: descriptions come from each script's
docstring (read with ``ast``), so ``uqbench list`` is fast and never defines a flag.
"""

from __future__ import annotations

import ast
import difflib
import importlib
import importlib.util
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from absl import flags

BASELINES = {
    "image/batchensemble": "uqbench.baselines.image.batchensemble",
    "image/deterministic": "uqbench.baselines.image.deterministic",
    "image/dropout": "uqbench.baselines.image.dropout",
    "image/ensemble": "uqbench.baselines.image.ensemble",
    "image/mimo": "uqbench.baselines.image.mimo",
    "image/sngp": "uqbench.baselines.image.sngp",
    "image/rank1": "uqbench.baselines.image.rank1",
    "image/heteroscedastic": "uqbench.baselines.image.heteroscedastic",
    "text/batchensemble": "uqbench.baselines.text.batchensemble",
    "text/deterministic": "uqbench.baselines.text.deterministic",
    "text/dropout": "uqbench.baselines.text.dropout",
    "text/ensemble": "uqbench.baselines.text.ensemble",
    "text/sngp": "uqbench.baselines.text.sngp",
    "uci/deterministic": "uqbench.baselines.uci.deterministic",
    "uci/dropout": "uqbench.baselines.uci.dropout",
    "uci/ensemble": "uqbench.baselines.uci.ensemble",
}

# absl's own flags that every script accepts (flag files, help).
_ALWAYS_ALLOWED = {"flagfile", "undefok", "help", "helpshort", "helpfull", "helpxml"}


class BaselineError(ValueError):
    """Unknown baseline name or a flag the baseline does not take."""


def names() -> list[str]:
    """The registered baseline names, sorted."""
    return sorted(BASELINES)


def module_name(name: str) -> str:
    """The module of baseline ``name``; a clear error, with the closest names, if unknown."""
    if name in BASELINES:
        return BASELINES[name]
    close = difflib.get_close_matches(name, BASELINES, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise BaselineError(f"unknown baseline {name!r}.{hint} Known: {', '.join(names())}")


def describe(name: str) -> str:
    """First line of the baseline script's docstring, read without importing it."""
    spec = importlib.util.find_spec(module_name(name))
    if spec is None or spec.origin is None:
        raise BaselineError(f"baseline {name} is registered but its module is missing")
    with open(spec.origin) as handle:
        doc = ast.get_docstring(ast.parse(handle.read())) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def run(name: str, argv: Sequence[str]) -> dict:
    """Run baseline ``name`` in this process with command-line flags ``argv``; returns its summary.

    Flags are reset to their defaults first, so several baselines can run one after another.
    A flag that exists in the process but is not one of this baseline's ``FLAGS_USED`` is refused.
    """
    module = importlib.import_module(module_name(name))
    allowed = {holder.name for holder in module.FLAGS_USED} | _ALWAYS_ALLOWED
    FLAGS = flags.FLAGS
    FLAGS.unparse_flags()
    try:
        rest = FLAGS([f"uqbench run {name}", *argv])[1:]
    except flags.Error as err:
        FLAGS.unparse_flags()
        raise BaselineError(f"{name}: {err}. Its flags: {_flag_list(allowed)}") from None
    if rest:
        FLAGS.unparse_flags()
        raise BaselineError(
            f"{name} takes only --flags, got {rest[0]!r} (did you mean --{rest[0].lstrip('-')}?). "
            f"Its flags: {_flag_list(allowed)}"
        )
    foreign = sorted(f for f in FLAGS if FLAGS[f].present and f not in allowed)
    if foreign:
        FLAGS.unparse_flags()
        raise BaselineError(
            f"{name} does not take --{foreign[0]}. Its flags: {_flag_list(allowed)}"
        )
    import torch

    from uqbench.training.rundir import RunDirectoryError

    threads = torch.get_num_threads()  # --threads sets a process-wide value: restore it after
    try:
        return module.run()
    except RunDirectoryError as err:
        if _from_flagfile_only("output_dir", argv):
            raise RunDirectoryError(
                f"{err} (--output_dir came from the --flagfile: give a new --output_dir after "
                "--flagfile on the command line, later flags win)"
            ) from None
        raise
    finally:
        FLAGS.unparse_flags()
        torch.set_num_threads(threads)


def _from_flagfile_only(flag: str, argv: Sequence[str]) -> bool:
    """Whether ``argv`` reads a ``--flagfile`` and does not itself give ``--<flag>``."""
    names = [a.lstrip("-").split("=", 1)[0] for a in argv if a.startswith("-")]
    return "flagfile" in names and flag not in names


def run_as_script(run: Callable[[], object]) -> NoReturn:
    """``python -m uqbench.baselines.<family>.<method> [--flags]`` (``run`` is the script's
    ``run``): exactly ``uqbench run <family>/<method> [--flags]``, with the same help, one-line
    errors and exit codes."""
    from uqbench.cli import main

    module = sys.modules[run.__module__]
    name = _registered_name(module)
    # `python -m` executes the script as __main__; register it under its own name as well, so
    # the runner does not import it a second time (its flags are process-global).
    sys.modules.setdefault(BASELINES[name], module)
    sys.exit(main(["run", name, *sys.argv[1:]]))


def _registered_name(module: object) -> str:
    """The registry name of a baseline module, from its module name or else its file."""
    spec = getattr(module, "__spec__", None)
    by_module = {module_path: name for name, module_path in BASELINES.items()}
    if spec is not None and spec.name in by_module:
        return by_module[spec.name]
    relative = Path(getattr(module, "__file__", "")).resolve().relative_to(Path(__file__).parent)
    name = relative.with_suffix("").as_posix()
    module_name(name)  # a clear error if the file is not a registered baseline
    return name


def _flag_list(allowed: set[str]) -> str:
    return " ".join(f"--{f}" for f in sorted(allowed - _ALWAYS_ALLOWED))


def flag_help(name: str) -> str:
    """Help text for the flags baseline ``name`` takes."""
    module = importlib.import_module(module_name(name))
    lines = [f"{name}: {describe(name)}", "", "flags:"]
    for holder in module.FLAGS_USED:
        flag = flags.FLAGS[holder.name]
        lines.append(f"  --{flag.name}: {flag.help} (default: {flag.default!r})")
    return "\n".join(lines)
