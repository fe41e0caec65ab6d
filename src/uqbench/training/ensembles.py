"""Ensembles of one architecture trained and evaluated as a single module (``torch.func``).

:class:`VectorizedEnsemble` stacks the parameters and buffers of M member networks and runs
them with ``torch.func.vmap`` over ``functional_call``: one forward/backward pass trains all M,
batch norm keeps per-member statistics, and because SGD, momentum and weight decay act on each
parameter element on its own, one optimiser over the stacked tensors trains every member exactly
as it would be trained alone.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap


def _key(name: str) -> str:
    """Parameter names may not contain dots: ``layer.0.weight`` -> ``layer__0__weight``."""
    return name.replace(".", "__")


class VectorizedEnsemble(nn.Module):
    """M networks of one architecture as one module: ``(N, ...)`` or ``(M, N, ...)`` -> ``(M, N, K)``.

    An image batch ``(N, C, H, W)`` is shared by every member; ``(M, N, C, H, W)`` gives each
    member its own batch (e.g. its own shuffled, augmented minibatch). ``members()`` returns
    ordinary modules holding each member's current weights.
    """

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if len(members) < 1:
            raise ValueError("a VectorizedEnsemble needs at least one member")
        kinds = {type(m) for m in members}
        if len(kinds) > 1:
            raise ValueError(f"members must share one architecture, got {sorted(map(str, kinds))}")
        shapes = [{k: tuple(v.shape) for k, v in m.state_dict().items()} for m in members]
        if any(s != shapes[0] for s in shapes[1:]):
            raise ValueError("members must have identical parameter names and shapes")
        params, buffers = stack_module_state(list(members))
        self.num_members = len(members)
        self._param_names = list(params)
        self._buffer_names = list(buffers)
        for name, value in params.items():
            self.register_parameter(_key(name), nn.Parameter(value.detach().clone()))
        for name, value in buffers.items():
            self.register_buffer(_key(name), value.detach().clone())
        # The template is kept outside the module tree (a list), on the meta device: it only
        # supplies the forward code; the tensors are always the stacked ones above.
        self._template = [copy.deepcopy(members[0]).to("meta")]
        self.config = dict(getattr(members[0], "config", {}))

    def train(self, mode: bool = True) -> VectorizedEnsemble:
        super().train(mode)
        self._template[0].train(mode)
        return self

    def _state(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        params = {n: getattr(self, _key(n)) for n in self._param_names}
        buffers = {n: getattr(self, _key(n)) for n in self._buffer_names}
        return params, buffers

    def forward(self, x: torch.Tensor, per_member: bool | None = None) -> torch.Tensor:
        """Outputs of every member, stacked on a new first axis.

        ``per_member`` says whether ``x``'s first axis holds one batch per member; by default a
        5-D input whose first axis has length M is per member (image batches), anything else is
        shared.
        """
        template = self._template[0]
        params, buffers = self._state()
        if per_member is None:
            per_member = x.dim() == 5 and x.shape[0] == self.num_members
        if per_member and x.shape[0] != self.num_members:
            raise ValueError(
                f"a per-member input needs first dimension {self.num_members}, got {tuple(x.shape)}"
            )

        def run(p: dict, b: dict, inputs: torch.Tensor) -> torch.Tensor:
            return functional_call(template, (p, b), (inputs,))

        in_dims = (0, 0, 0 if per_member else None)
        return vmap(run, in_dims=in_dims, randomness="different")(params, buffers, x)

    def members(self) -> list[nn.Module]:
        """Ordinary modules (on this ensemble's device) holding each member's current weights."""
        params, buffers = self._state()
        device = next(iter(params.values())).device
        out = []
        for i in range(self.num_members):
            member = copy.deepcopy(self._template[0]).to_empty(device=device)
            state = {n: t[i].detach().clone() for n, t in {**params, **buffers}.items()}
            member.load_state_dict(state)
            member.train(self.training)
            out.append(member)
        return out
