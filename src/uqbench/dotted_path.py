"""``package.module:attribute`` paths to a user's own code (a model factory, a search algorithm)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def resolve_callable(
    path: str, flag: str, what: str, error: type[ValueError] = ValueError
) -> Callable[..., Any]:
    """The callable at ``package.module:attribute`` (``attribute`` may be dotted, e.g.
    ``Class.build``), or ``error`` naming ``flag`` (e.g. ``--model``) and saying what is wrong;
    ``what`` names the thing in the message (e.g. ``a model of your own``)."""
    module_name, _, attribute = path.strip().partition(":")
    if not module_name or not attribute:
        raise error(f"{what} is 'package.module:factory', got {path!r}")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as err:
        raise error(
            f"cannot import {module_name!r} for {flag}={path}: {err} (is it installed or on "
            "PYTHONPATH?)"
        ) from err
    try:
        for part in attribute.split("."):
            target = getattr(target, part)
    except AttributeError:
        raise error(f"module {module_name!r} has no {attribute!r} ({flag}={path})") from None
    if not callable(target):
        raise error(f"{flag}={path} is not callable: {target!r}")
    return target
