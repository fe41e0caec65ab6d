"""LeNet-5's batch-norm and widened variants: parameter counts by hand, checkpoint configs that
rebuild them, and LeNet-5's own config unchanged (old checkpoints read as before)."""

from __future__ import annotations

import pytest
import torch

from uqbench import models


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_parameter_counts_by_hand():
    # conv 5x5 without bias + batch norm (scale, shift): 12*3*25 + 2*12, 32*12*25 + 2*32;
    # 32x32 -> 28 -> 14 -> 10 -> 5: 32*5*5 = 800 features -> 192 -> 10.
    wide = models.get("lenet_wide", num_classes=10, in_channels=3, image_size=32)
    assert _count(wide) == (900 + 24) + (9600 + 64) + (800 * 192 + 192) + (192 * 10 + 10)
    bn = models.get("lenet_bn", num_classes=10, in_channels=3, image_size=32)
    plain = models.get("lenet", num_classes=10, in_channels=3, image_size=32)
    # batch norm adds 2 x (6 + 16) parameters and removes the 6 + 16 convolution biases
    assert _count(bn) == _count(plain) + 22


@pytest.mark.parametrize("name", ["lenet", "lenet_bn", "lenet_wide"])
def test_config_rebuilds_the_same_network(name):
    torch.manual_seed(0)
    model = models.get(name, num_classes=8, in_channels=3, image_size=32, dropout_rate=0.1)
    rebuilt = models.from_config("uqbench.models.lenet.LeNet5", model.config)
    rebuilt.load_state_dict(model.state_dict())
    x = torch.randn(5, 3, 32, 32)
    model.eval(), rebuilt.eval()
    torch.testing.assert_close(rebuilt(x), model(x), rtol=0, atol=0)


def test_lenet5_config_keeps_its_keys():
    model = models.get("lenet", num_classes=10, in_channels=1, image_size=8)
    assert set(model.config) == {"num_classes", "in_channels", "image_size", "dropout_rate"}


def test_bad_widths_are_refused():
    from uqbench.models.lenet import LeNet5

    with pytest.raises(ValueError, match="channels"):
        LeNet5(10, 3, 32, channels=(12,))
    with pytest.raises(ValueError, match="hidden"):
        LeNet5(10, 3, 32, hidden=(0,))
