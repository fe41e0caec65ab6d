"""Search blocks: every block builds and declares its true output shape, shape errors name both
blocks, user blocks plug in by dotted path, and SearchNet trains, round-trips through
``uqbench.models.from_config`` and runs as a VectorizedEnsemble member."""

from __future__ import annotations

import copy
import json
import textwrap

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from uqbench import models
from uqbench.search import blocks
from uqbench.search.blocks import (
    DEFAULT_BLOCKS,
    SearchNet,
    ShapeError,
    block_names,
    build_network,
    describe,
    get_block,
    infer_shapes,
    register_block,
)
from uqbench.training.ensembles import VectorizedEnsemble

DIGITS = (1, 8, 8)
CIFAR = (3, 32, 32)
# One of every family that holds parameters or state, on 8x8 digits.
MIXED = [
    "conv3x3_16",
    "resnet_basic_32",
    "sn_residual_64",
    "max_pool",
    "se_32",
    "nasa_cell_32",
    "sepconv3x3_32",
    "resnet_bottleneck_64",
    "batchensemble_fc_128",
    "sn_fc_residual_128",
    "fc_residual_256",
    "fc_64",
]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def scratch_names():
    """Names a test registers, removed from the registry afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        blocks._REGISTRY.pop(name, None)


def shapes_for(kind: str) -> list[tuple[int, ...]]:
    """Inputs a block of ``kind`` gets in a network on digits or CIFAR (fc blocks: pooled)."""
    return [DIGITS, CIFAR] if kind == "conv" else [(1,), (3,), (64,)]


@pytest.mark.parametrize("name", block_names())
def test_every_block_outputs_the_shape_it_declares(name):
    spec = get_block(name)
    assert spec.name == name and spec.kind in blocks.KINDS and spec.description
    for shape in shapes_for(spec.kind):
        module, out_shape = spec.builder(shape)
        for training in (True, False):
            module.train(training)
            with torch.no_grad():
                out = module(torch.randn(2, *shape))
            assert tuple(out.shape) == (2, *out_shape), (name, shape, training)
            assert torch.isfinite(out).all()


def test_builders_refuse_the_wrong_kind_of_input():
    with pytest.raises(ShapeError, match=r"needs an image \(C, H, W\) input, got \(64,\)"):
        get_block("conv3x3_32").builder((64,))
    with pytest.raises(ShapeError, match=r"needs a vector \(D,\) input"):
        get_block("fc_256").builder(CIFAR)


def test_block_lists_and_descriptions():
    names = block_names()
    assert len(names) == len(set(names)) == len(describe())
    assert {n for n, _, _ in describe()} == set(names)
    assert set(block_names("conv")) | set(block_names("fc")) | set(block_names("any")) == set(names)
    assert "fc_1024" in block_names("fc") and "fc_1024" not in block_names("conv")
    assert {"max_pool", "avg_pool", "downsample_conv_64", "nasa_cell_32"} <= set(
        block_names("conv")
    )
    with pytest.raises(ValueError, match="kind must be one of"):
        block_names("dense")


def test_default_blocks_mix_convolutions_residuals_downsampling_and_dense_layers():
    assert set(DEFAULT_BLOCKS) <= set(block_names())
    assert {"max_pool", "fc_256"} <= set(DEFAULT_BLOCKS)
    assert any(n.startswith("resnet_") for n in DEFAULT_BLOCKS)
    for shape in (DIGITS, CIFAR):
        assert infer_shapes(DEFAULT_BLOCKS, shape)[-1] == (256,)


def test_infer_shapes_follows_convolutions_pooling_and_flattening():
    architecture = ["conv3x3_32", "max_pool", "resnet_basic_64", "downsample_conv_128", "fc_256"]
    assert infer_shapes(architecture, CIFAR) == [
        (32, 32, 32),
        (32, 16, 16),
        (64, 16, 16),
        (128, 8, 8),
        (256,),
    ]
    # Odd sides: a stride-2 convolution rounds up, 2x2 pooling rounds down.
    odd = ["downsample_conv_32", "max_pool", "avg_pool"]
    assert infer_shapes(odd, (3, 7, 7)) == [(32, 4, 4), (32, 2, 2), (32, 1, 1)]
    net = build_network(odd, (3, 7, 7), 4)
    assert net.shapes == ((32, 4, 4), (32, 2, 2), (32, 1, 1))
    assert infer_shapes([], DIGITS) == []
    assert infer_shapes(["fc_128", "fc_residual_256"], (20,)) == [(128,), (256,)]


def test_infer_shapes_leaves_the_global_random_state_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    infer_shapes(MIXED, DIGITS)
    torch.testing.assert_close(torch.rand(3), expected)


def test_shape_errors_name_both_blocks_and_their_shapes():
    with pytest.raises(ShapeError) as err:
        infer_shapes(["conv3x3_32", "fc_256", "conv3x3_32"], CIFAR)
    assert str(err.value) == (
        "conv3x3_32 (block 3) needs an image (C, H, W) input but fc_256 (block 2) outputs (256,)"
    )
    with pytest.raises(ShapeError) as err:
        infer_shapes(["max_pool", "max_pool", "max_pool", "downsample_conv_32"], DIGITS)
    message = str(err.value)
    assert "downsample_conv_32 (block 4)" in message and "max_pool (block 3)" in message
    assert "(1, 1, 1)" in message and "1x1" in message
    with pytest.raises(ShapeError, match=r"avg_pool \(block 1\) .*the input is \(10,\)"):
        build_network(["avg_pool"], (10,), 3)
    with pytest.raises(ShapeError, match=r"max_pool \(block 1\) cannot take the input \(1, 1, 5\)"):
        infer_shapes(["max_pool"], (1, 1, 5))
    for bad in [(3, 32), (0, 8, 8), "abc", (3.5,), 7]:
        with pytest.raises(ShapeError, match="must be"):
            infer_shapes([], bad)
    assert issubclass(ShapeError, ValueError)


def test_unknown_names_list_close_matches_and_where_to_look():
    with pytest.raises(ValueError, match=r"unknown block 'conv3x3_23'") as err:
        get_block("conv3x3_23")
    assert "'conv3x3_32'" in str(err.value) and "uqbench search blocks" in str(err.value)
    with pytest.raises(ValueError, match="'resnet_basic_64'"):
        build_network(["resnet_basic64"], CIFAR, 10)
    with pytest.raises(ValueError, match="sequence of block names"):
        infer_shapes("conv3x3_32", CIFAR)


def test_register_block_refuses_duplicates_unless_replaced(scratch_names):
    scratch_names.append("scaled_identity")

    @register_block("scaled_identity", kind="any", description="x -> 2x")
    def double(in_shape):
        class Double(nn.Module):
            def forward(self, x):
                return 2 * x

        return Double(), in_shape

    spec = get_block("scaled_identity")
    assert (spec.kind, spec.description, spec.builder) == ("any", "x -> 2x", double)
    assert "scaled_identity" in block_names("any")
    # An ``any`` block takes the previous output as it is, image or vector.
    assert infer_shapes(["conv3x3_16", "scaled_identity", "fc_64", "scaled_identity"], DIGITS) == [
        (16, 8, 8),
        (16, 8, 8),
        (64,),
        (64,),
    ]
    with pytest.raises(ValueError, match="already registered"):
        register_block("scaled_identity")(double)
    register_block("scaled_identity", "any", "replaced", replace=True)(double)
    assert get_block("scaled_identity").description == "replaced"
    with pytest.raises(ValueError, match="kind must be one of"):
        register_block("x", kind="dense")
    with pytest.raises(ValueError, match="':'"):
        register_block("my.module:factory")


USER_MODULE = '''
import torch
from torch import nn


def narrow_conv(in_shape):
    """A valid 3x3 convolution to 5 channels (the output shape is inferred)."""
    return nn.Sequential(nn.Conv2d(in_shape[0], 5, 3), nn.BatchNorm2d(5), nn.ReLU())


narrow_conv.kind = "conv"


def halve(in_shape):
    return nn.Linear(in_shape[0], in_shape[0] // 2), (in_shape[0] // 2,)


halve.kind = "fc"
halve.description = "a dense layer to half the width"


def needs_three_channels(in_shape):
    return nn.Conv2d(3, 4, 3, padding=1)


def not_a_module(in_shape):
    return 42
'''


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """A module of user blocks importable as ``user_blocks_for_tests``."""
    (tmp_path / "user_blocks_for_tests.py").write_text(textwrap.dedent(USER_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    return "user_blocks_for_tests"


def test_user_factories_plug_in_by_dotted_path(user_module):
    conv, half = f"{user_module}:narrow_conv", f"{user_module}:halve"
    spec = get_block(conv)
    assert (spec.name, spec.kind) == (conv, "conv")
    assert spec.description.startswith("A valid 3x3 convolution")
    assert get_block(half).description == "a dense layer to half the width"
    architecture = ["conv3x3_16", conv, conv, "fc_64", half]
    assert infer_shapes(architecture, DIGITS) == [(16, 8, 8), (5, 6, 6), (5, 4, 4), (64,), (32,)]
    net = build_network(architecture, DIGITS, 3)
    # Inferring the shape ran the user's module in eval mode: its batch norm is untouched.
    assert net.blocks[1][1].num_batches_tracked.item() == 0 and net.blocks[1].training
    assert net(torch.randn(4, *DIGITS)).shape == (4, 3)
    rebuilt = models.from_config("uqbench.search.blocks.SearchNet", net.config)
    rebuilt.load_state_dict(net.state_dict())


def test_user_factory_errors_are_clear(user_module):
    with pytest.raises(ShapeError, match=r"needs_three_channels \(block 2\) cannot follow"):
        infer_shapes(["conv3x3_16", f"{user_module}:needs_three_channels"], DIGITS)
    with pytest.raises(ValueError, match="must return an nn.Module"):
        infer_shapes([f"{user_module}:not_a_module"], DIGITS)
    with pytest.raises(ValueError, match="has no 'missing'"):
        get_block(f"{user_module}:missing")
    with pytest.raises(ValueError, match="cannot import 'no_such_module_xyz'"):
        get_block("no_such_module_xyz:factory")
    with pytest.raises(ValueError, match="package.module:factory"):
        get_block(":factory")


def test_searchnet_forward_backward_config_and_state_dict():
    torch.manual_seed(0)
    architecture = ["conv3x3_32", "max_pool", "resnet_basic_64", "fc_128"]
    net = SearchNet(architecture, CIFAR, 10)
    # 64 channels at 16x16 are too many values to flatten: fc_128 sees them pooled
    assert net.depth == 4 and net.to_vector == (None, None, None, "pool")
    x = torch.randn(4, *CIFAR)
    logits = net(x)
    assert logits.shape == (4, 10)
    logits.square().mean().backward()
    assert all(p.grad is not None for p in net.parameters())

    config = json.loads(json.dumps(net.config))
    assert config == {
        "architecture": architecture,
        "in_shape": list(CIFAR),
        "num_classes": 10,
        "head": "linear",
    }
    assert "uqbench.search.blocks.SearchNet" in models.registry.MODEL_CLASSES
    rebuilt = models.from_config("uqbench.search.blocks.SearchNet", config)
    assert isinstance(rebuilt, SearchNet) and rebuilt.config == net.config
    rebuilt.load_state_dict(net.state_dict())
    net.eval(), rebuilt.eval()
    torch.testing.assert_close(rebuilt(x), net(x))
    assert SearchNet.from_config(config).config == net.config


def test_small_images_are_flattened_and_large_ones_pooled_before_fc_blocks():
    small = build_network(["conv3x3_16", "fc_64"], DIGITS, 10)  # 16 x 8 x 8 = 1024 values
    assert small.to_vector == (None, "flatten") and small.blocks[1][0].in_features == 1024
    large = build_network(["conv3x3_128", "fc_64"], DIGITS, 10)  # 8192 values
    assert large.to_vector == (None, "pool") and large.blocks[1][0].in_features == 128
    x = torch.randn(3, *DIGITS)
    assert large.head_to_vector is None and small(x).shape == large(x).shape == (3, 10)


def test_empty_architecture_is_just_the_head():
    net = build_network([], DIGITS, 3)
    assert net.depth == 0 and net.head.in_features == 64  # a small image is flattened
    assert net(torch.randn(5, *DIGITS)).shape == (5, 3)
    vectors = build_network([], (7,), 2)
    assert vectors(torch.randn(5, 7)).shape == (5, 2)
    dropout = build_network(["conv3x3_16"], DIGITS, 3, head="dropout_linear")
    assert isinstance(dropout.head[0], nn.Dropout) and dropout.head[1].in_features == 1024
    mlp = build_network(["fc_64"], DIGITS, 3, head="mlp")
    assert [m.in_features for m in mlp.head if isinstance(m, nn.Linear)] == [64, 256]
    assert mlp(torch.randn(5, *DIGITS)).shape == (5, 3)
    with pytest.raises(ValueError, match="head must be one of"):
        build_network([], DIGITS, 3, head="gp")


def test_a_few_sgd_steps_reduce_the_loss():
    torch.manual_seed(0)
    x = torch.randn(64, *DIGITS)
    x = x + torch.randn(64, 1, 1, 1)  # brightness: the class is how bright an image is
    y = torch.bucketize(x.mean((1, 2, 3)), torch.tensor([-0.5, 0.5]))
    net = build_network(["conv3x3_16", "max_pool", "resnet_basic_16", "fc_64"], DIGITS, 3)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(20):
        loss = F.cross_entropy(net(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_vectorized_ensemble_equals_separate_networks():
    members = []
    for seed in range(2):
        torch.manual_seed(seed)
        members.append(build_network(MIXED, DIGITS, 3))
    ensemble = VectorizedEnsemble([copy.deepcopy(m) for m in members])
    assert ensemble.config == members[0].config
    x = torch.randn(6, *DIGITS)
    for training in (True, False):  # training mode: batch statistics, power iterations
        ensemble.train(training)
        out = ensemble(x)
        assert out.shape == (2, 6, 3)
        for i, member in enumerate(members):
            torch.testing.assert_close(out[i], member.train(training)(x))
    for trained, member in zip(ensemble.members(), members, strict=True):
        for (key, a), b in zip(
            trained.state_dict().items(), member.state_dict().values(), strict=True
        ):
            torch.testing.assert_close(a, b, msg=key)
