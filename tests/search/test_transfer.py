"""Weight sharing between a parent trial and its child: which blocks are copied in each mode,
the warm-started fraction (counted by hand), and a missing parent checkpoint."""

from __future__ import annotations

import pytest
import torch

from uqbench.search.blocks import build_network
from uqbench.search.transfer import candidate_blocks, warm_start, warm_start_from
from uqbench.training.checkpoint import save_checkpoint

PARENT = ("conv3x3_16", "max_pool", "fc_64")
# conv3x3_16 on 1x8x8: 16*9 weights, batch norm 2*16 -> 176; fc_64 on 16*4*4 -> 256*64 + 64
# = 16448; linear head 64*10 + 10 = 650
CONV, FC, HEAD = 176, 16448, 650


def trained_parent(tmp_path):
    """A parent network with non-trivial weights and batch-norm statistics, saved as a trial
    checkpoint is."""
    torch.manual_seed(1)
    parent = build_network(PARENT, (1, 8, 8), 10)
    parent.train()
    with torch.no_grad():
        for _ in range(3):  # moves the batch-norm running statistics
            parent(torch.randn(32, 1, 8, 8) * 2 + 1)
        for p in parent.parameters():
            p.add_(0.1 * torch.randn_like(p))
    path = tmp_path / "checkpoint.safetensors"
    save_checkpoint(path, parent.state_dict(), {"kwargs": parent.config})
    return parent.eval(), path


@pytest.mark.parametrize("mode", ["prefix", "matching"])
def test_a_child_identical_to_its_parent_starts_with_its_parents_outputs(tmp_path, mode):
    parent, path = trained_parent(tmp_path)
    torch.manual_seed(2)
    child = build_network(PARENT, (1, 8, 8), 10).eval()
    x = torch.randn(16, 1, 8, 8)
    assert not torch.equal(child(x), parent(x))
    warm = warm_start_from(child, path, mode)
    assert warm.fraction == 1.0 and warm.blocks == (0, 2) and warm.head
    assert torch.equal(child(x), parent(x))


def test_prefix_copies_up_to_the_first_difference_and_matching_every_fitting_block(tmp_path):
    parent, path = trained_parent(tmp_path)
    mutated = ("conv3x3_16", "avg_pool", "fc_64")  # same shapes after the pool
    torch.manual_seed(3)
    prefix_child = build_network(mutated, (1, 8, 8), 10)
    fresh_fc = prefix_child.blocks[2][0].weight.detach().clone()
    warm = warm_start_from(prefix_child, path, "prefix")
    assert warm.blocks == (0,) and not warm.head
    assert warm.fraction == pytest.approx(CONV / (CONV + FC + HEAD))
    assert torch.equal(prefix_child.blocks[0][0].weight, parent.blocks[0][0].weight)
    assert torch.equal(prefix_child.blocks[0][1].running_mean, parent.blocks[0][1].running_mean)
    assert torch.equal(prefix_child.blocks[2][0].weight, fresh_fc)  # left as initialised

    matching_child = build_network(mutated, (1, 8, 8), 10)
    warm = warm_start_from(matching_child, path, "matching")
    assert warm.blocks == (0, 2) and warm.head and warm.fraction == 1.0

    wider = ("conv3x3_32", "max_pool", "fc_64")  # fc_64 now sees 32*4*4 inputs: no fit
    child = build_network(wider, (1, 8, 8), 10)
    warm = warm_start_from(child, path, "matching")
    assert warm.blocks == () and warm.head  # only the head: 64 -> 10 fits
    total = sum(p.numel() for p in child.parameters())
    assert warm.fraction == pytest.approx(HEAD / total)


def test_a_missing_parent_checkpoint_trains_from_scratch_and_says_so(tmp_path):
    torch.manual_seed(4)
    child = build_network(PARENT, (1, 8, 8), 10)
    before = {k: v.clone() for k, v in child.state_dict().items()}
    warm = warm_start_from(child, tmp_path / "gone" / "checkpoint.safetensors", "prefix")
    assert warm.fraction == 0.0 and "missing: trained from scratch" in warm.note
    assert all(torch.equal(before[k], v) for k, v in child.state_dict().items())


def test_candidate_blocks():
    assert candidate_blocks("abcd", "abxd", "prefix") == ([0, 1], False)
    assert candidate_blocks("abcd", "abxd", "matching") == ([0, 1, 3], True)
    assert candidate_blocks("ab", "ab", "prefix") == ([0, 1], True)
    assert candidate_blocks("ab", "ab", "none") == ([], False)
    with pytest.raises(ValueError, match="transfer mode must be one of none, prefix, matching"):
        candidate_blocks("ab", "ab", "snapshot")
    net = build_network(PARENT, (1, 8, 8), 10)
    assert warm_start(net, {}, PARENT, "matching").fraction == 0.0
