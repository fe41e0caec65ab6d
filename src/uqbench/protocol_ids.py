"""Protocol ids: which published protocol a run followed, recorded as ``protocol_id`` in
``summary.json`` and used by ``uqbench report`` to put published numbers beside ours.

A run has an id only when nothing that the published protocol fixes was changed: a flag that
overrides the recipe (epochs, batch size, learning rate, ...), held-out classes or a training
subset makes it another protocol (``None``). The ids:

- ``uci-standard``: a ``uci/`` baseline on one of the nine UCI sets, every standard split, the
  baseline's defaults (40 epochs, 50 hidden units, 100 for protein; MC dropout's grids; 5 deep
  ensemble members; no adversarial training): Lakshminarayanan et al. (2017), Table 1.
- ``uci-dropout-long``: ``uci/dropout`` with the long protocol of Gal's re-runs (400 epochs, 200
  for protein, batch 128, learning rate 1e-3, 10,000 MC samples).
- ``ub-wrn28-10``: an ``image/`` baseline under ``--protocol=ub`` on WRN-28-10 with its recipe
  (Uncertainty Baselines' CIFAR tables).
- ``image-<protocol>``: an ``image/`` baseline with another protocol's recipe untouched (ours;
  no published numbers).

Pure functions of the flags and summary fields; nothing is imported but the standard library.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

UCI_SETS = frozenset(
    {"boston", "concrete", "energy", "kin8nm", "naval", "power", "protein", "wine", "yacht"}
)
UCI_CHANGES = ("epochs", "batch_size", "learning_rate", "hidden", "num_members", "mc_samples")
UCI_CHANGES += ("dropout_rates", "tau_values")
IMAGE_CHANGES = ("epochs", "batch_size", "learning_rate", "weight_decay", "schedule")
IMAGE_CHANGES += ("warmup_epochs", "label_smoothing", "validation_fraction", "train_subset")
IMAGE_CHANGES += ("holdout_classes",)


def flag_values(lines: Sequence[str]) -> dict[str, str]:
    """``--name=value`` lines as ``{name: value}`` (``--noname`` is ``false``, ``--name``
    ``true``); comments (unset flags) are left out."""
    out: dict[str, str] = {}
    for raw in lines:
        line = raw.strip()
        if not line.startswith("--"):
            continue
        name, sep, value = line[2:].partition("=")
        if sep:
            out[name] = value
        elif name.startswith("no") and len(name) > 2:
            out[name[2:]] = "false"
        else:
            out[name] = "true"
    return out


def _long_dropout(dataset: str, flags: Mapping[str, str]) -> bool:
    epochs = "200" if dataset == "protein" else "400"
    wanted = {"epochs": epochs, "batch_size": "128", "mc_samples": "10000"}
    if any(flags.get(k) != v for k, v in wanted.items()):
        return False
    try:
        return float(flags.get("learning_rate", "nan")) == 1e-3
    except ValueError:
        return False


def uci_protocol_id(method: str, dataset: str, flags: Mapping[str, str]) -> str | None:
    """The id of a ``uci/`` baseline run with these flags (``flag_values`` of flags.txt)."""
    if dataset not in UCI_SETS or flags.get("split", "all") != "all":
        return None
    if flags.get("adversarial", "false") != "false":
        return None
    if method == "uci/dropout" and _long_dropout(dataset, flags):
        return "uci-dropout-long"
    if any(name in flags for name in UCI_CHANGES):
        return None
    return "uci-standard"


def image_protocol_id(
    protocol: str | None, model: str | None, flags: Mapping[str, str]
) -> str | None:
    """The id of an ``image/`` baseline run under ``protocol`` on ``model`` with these flags."""
    if not protocol or any(name in flags for name in IMAGE_CHANGES):
        return None
    if protocol == "ub":
        return "ub-wrn28-10" if model == "wrn28_10" else None
    return f"image-{protocol}"


def protocol_id(summary: Mapping[str, object], flags: Mapping[str, str]) -> str | None:
    """The recorded ``protocol_id``, else the one these flags and summary fields imply (for
    runs written before the field existed)."""
    if summary.get("protocol_id"):
        return str(summary["protocol_id"])
    method = str(summary.get("method", ""))
    dataset = summary.get("dataset")
    name = str(dataset.get("name", "")) if isinstance(dataset, Mapping) else str(dataset)
    if summary.get("evaluated_from") or summary.get("posthoc"):
        return None
    if method.startswith("uci/"):
        return uci_protocol_id(method, name, {"split": str(summary.get("split")), **flags})
    if method.startswith("image/"):
        protocol, model = summary.get("protocol"), summary.get("model")
        return image_protocol_id(
            str(protocol) if protocol else None, str(model) if model else None, flags
        )
    return None
