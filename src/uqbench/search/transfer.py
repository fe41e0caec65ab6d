"""Weight sharing: a child trial starts from its parent's trained weights where they fit.

Model Search's ``SNAPSHOT_TRANSFER_LEARNING`` warm-starts every variable whose scope name is
in the parent's checkpoint; a block's scope is ``<index>_<type>_<signature of every block up to
it>``, so exactly the blocks before the first difference from the parent are copied, and the
logits layer only when the whole architecture is the parent's. Here that is ``mode="prefix"``;
``mode="matching"`` copies every block whose position, name and parameter shapes match the
parent's (a superset of the prefix), and the head when its shapes match. Everything not copied
keeps its fresh initialisation. Buffers (batch-norm statistics) travel with their block.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from uqbench.training.checkpoint import load_checkpoint

MODES = ("none", "prefix", "matching")


@dataclass(frozen=True)
class WarmStart:
    """What a child took from its parent: the fraction of its parameters copied, the blocks
    copied, whether the head was, and a note when nothing could be (e.g. no checkpoint)."""

    fraction: float
    blocks: tuple[int, ...] = ()
    head: bool = False
    note: str = ""

    def as_record(self) -> dict:
        return {
            "warm_fraction": self.fraction,
            "blocks": list(self.blocks),
            "head": self.head,
            **({"note": self.note} if self.note else {}),
        }


def candidate_blocks(
    child: Sequence[str], parent: Sequence[str], mode: str
) -> tuple[list[int], bool]:
    """The block positions that may be copied under ``mode`` and whether the head may be."""
    if mode not in MODES:
        raise ValueError(f"transfer mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "none":
        return [], False
    if mode == "prefix":
        same = 0
        while same < min(len(child), len(parent)) and child[same] == parent[same]:
            same += 1
        return list(range(same)), tuple(child) == tuple(parent)
    positions = [i for i, (a, b) in enumerate(zip(child, parent, strict=False)) if a == b]
    return positions, True


def warm_start(
    network: nn.Module,
    parent_state: Mapping[str, torch.Tensor],
    parent_architecture: Sequence[str],
    mode: str,
) -> WarmStart:
    """Copy into ``network`` (a :class:`~uqbench.search.blocks.SearchNet`) the parent's weights
    of every block ``mode`` allows whose tensors all have the same names and shapes."""
    child_architecture = list(network.config["architecture"])
    positions, head = candidate_blocks(child_architecture, parent_architecture, mode)
    own = network.state_dict()
    total = sum(p.numel() for p in network.parameters())
    parameter_names = {name for name, _ in network.named_parameters()}
    copied, blocks, head_copied = 0, [], False
    prefixes = [(f"blocks.{i}.", i) for i in positions] + ([("head.", None)] if head else [])
    updates: dict[str, torch.Tensor] = {}
    for prefix, index in prefixes:
        names = [n for n in own if n.startswith(prefix)]
        fits = all(
            n in parent_state and tuple(parent_state[n].shape) == tuple(own[n].shape) for n in names
        )
        if not names or not fits:
            continue
        updates.update({n: parent_state[n] for n in names})
        copied += sum(own[n].numel() for n in names if n in parameter_names)
        if index is None:
            head_copied = True
        else:
            blocks.append(index)
    if updates:
        network.load_state_dict(updates, strict=False)
    return WarmStart(copied / total if total else 0.0, tuple(blocks), head_copied)


def warm_start_from(network: nn.Module, checkpoint: str | Path, mode: str) -> WarmStart:
    """:func:`warm_start` from a trial's ``checkpoint.safetensors``; a missing checkpoint leaves
    the network as initialised and says so in the note."""
    path = Path(checkpoint)
    if not path.is_file():
        return WarmStart(
            0.0, note=f"the parent's checkpoint {path} is missing: trained from scratch"
        )
    tensors, metadata = load_checkpoint(path)
    architecture = metadata.get("kwargs", {}).get("architecture")
    if architecture is None:
        return WarmStart(0.0, note=f"{path} holds no search architecture: trained from scratch")
    device = next(network.parameters()).device
    state = {k: v.to(device) for k, v in tensors.items()}
    return warm_start(network, state, architecture, mode)
