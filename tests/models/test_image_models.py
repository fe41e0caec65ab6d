"""The image classifiers and their registry: published parameter counts, shapes, memory formats,
bf16 autocast, MC dropout, rebuilding from a checkpoint's config, vmap over stacked members."""

from __future__ import annotations

import copy
import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from uqbench import models
from uqbench.layers.mc_dropout import mc_dropout
from uqbench.models.bottleneck_resnet import BottleneckResNet
from uqbench.models.fast_cifar import FastCifarNet, PatchWhitening, ShiftBatchNorm
from uqbench.models.lenet import LeNet5
from uqbench.models.mlp_classifier import MLPClassifier
from uqbench.models.resnet import ResNet, ZeroPadShortcut, cifar_resnet
from uqbench.models.wide_resnet import WideBlock, WideResNet

pytestmark = pytest.mark.usefixtures("one_thread")


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# Small members of every family, for the behavioural tests: (name, options, smallest image side).
SMALL = {
    "mlp": ("mlp", {"hidden_sizes": (16,)}, 1),
    "lenet": ("lenet", {}, 4),
    "resnet": ("resnet8", {"width": 4}, 1),
    "resnet18": ("resnet18", {"width": 4}, 1),
    "resnet50": ("resnet50", {"width": 2}, 1),
    "wrn": ("wrn10_1", {}, 1),
    "fast_cifar": ("fast_cifar", {"widths": (8, 8, 8)}, 9),
}
SHAPES = [(1, 8), (1, 28), (3, 32)]  # (channels, side): sklearn digits, MNIST, CIFAR


def small(
    key: str, channels: int = 3, side: int = 32, dropout_rate: float = 0.0, seed: int = 0
) -> nn.Module:
    name, options, _ = SMALL[key]
    torch.manual_seed(seed)
    return models.get(name, 5, channels, side, dropout_rate, **options)


# --- parameter counts against published numbers ---------------------------------------------

LENET_HAND = (5 * 5 * 1 + 1) * 6 + (5 * 5 * 6 + 1) * 16 + (400 + 1) * 120 + (120 + 1) * 84 + 85 * 10
FAST_CIFAR_HAND = (
    24  # whitening bias (its 2x2 filters are a fixed buffer)
    + 9 * (24 * 64 + 64 * 64 + 64 * 256 + 256 * 256 + 256 * 256 + 256 * 256)  # 3x3 convolutions
    + 2 * (64 + 256 + 256)  # batch-norm shifts (no scales)
    + 256 * 10  # bias-free linear layer
)
# torchvision's resnet50 has 25,557,032 parameters (1000 classes, 7x7 stem); for 10 classes the
# linear layer shrinks by 2048 * 990 + 990, and the CIFAR stem's 3x3 kernel saves 40 * 3 * 64.
RESNET50_CIFAR10 = 25_557_032 - 2048 * 990 - 990 - 40 * 3 * 64


@pytest.mark.parametrize(
    ("name", "num_classes", "image_size", "expected"),
    [
        # He et al. (2016) Table 6: 0.27M, 0.85M, 1.7M; these exact option-A counts are the ones
        # of the widely used pytorch_resnet_cifar10 reproduction.
        ("resnet20", 10, 32, 269_722),
        ("resnet56", 10, 32, 853_018),
        ("resnet110", 10, 32, 1_727_962),
        # The common CIFAR ResNet-18 (kuangliu/pytorch-cifar): 11,173,962; with the ImageNet stem
        # and 1000 classes, torchvision's resnet18: 11,689,512.
        ("resnet18", 10, 32, 11_173_962),
        ("resnet18", 1000, 224, 11_689_512),
        # torchvision's resnet50 (v1.5): 25,557,032.
        ("resnet50", 1000, 224, 25_557_032),
        ("resnet50", 10, 32, RESNET50_CIFAR10),
        # Zagoruyko & Komodakis (2016) Table 1: WRN-28-10 36.5M, WRN-16-4 2.7M (exact counts of
        # the reference implementation, 10 classes).
        ("wrn28_10", 10, 32, 36_479_194),
        ("wrn16_4", 10, 32, 2_748_890),
        # LeNet-5 with full C3 connections and a linear output: 61,706 (hand count above).
        ("lenet", 10, 32, LENET_HAND),
        # airbench94's network: "1.97M parameters" (hand count above).
        ("fast_cifar", 10, 32, FAST_CIFAR_HAND),
        ("mlp", 10, 28, 784 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10),
    ],
)
def test_parameter_counts_match_published_numbers(name, num_classes, image_size, expected):
    channels = 1 if name in ("lenet", "mlp") else 3
    model = models.get(name, num_classes, channels, image_size)
    assert count(model) == expected


def cifar_resnet_hand_count(n: int, w: int, classes: int = 10) -> int:
    """Parameters of a CIFAR ResNet with option-A shortcuts, layer by layer: a 3x3 stem,
    3 stages of n blocks of two 3x3 convolutions with batch norm (2 parameters per channel),
    widths w, 2w, 4w, and the linear layer."""

    def conv_bn(cin: int, cout: int) -> int:
        return 9 * cin * cout + 2 * cout

    stem = conv_bn(3, w)
    stage1 = n * 2 * conv_bn(w, w)
    stage2 = conv_bn(w, 2 * w) + (2 * n - 1) * conv_bn(2 * w, 2 * w)
    stage3 = conv_bn(2 * w, 4 * w) + (2 * n - 1) * conv_bn(4 * w, 4 * w)
    return stem + stage1 + stage2 + stage3 + 4 * w * classes + classes


@pytest.mark.parametrize(("depth", "width"), [(20, 16), (20, 32), (56, 16), (8, 4)])
def test_cifar_resnet_counts_by_hand_at_any_width(depth, width):
    assert cifar_resnet_hand_count(3, 16) == 269_722  # the hand count agrees with Table 6
    model = models.get(f"resnet{depth}", 10, width=width)
    assert model.config["widths"] == [width, 2 * width, 4 * width]
    assert count(model) == cifar_resnet_hand_count((depth - 2) // 6, width)


# --- shapes, memory formats, precision -------------------------------------------------------


@pytest.mark.parametrize("key", list(SMALL))
@pytest.mark.parametrize(("channels", "side"), SHAPES)
def test_output_shape_for_digits_mnist_and_cifar_inputs(key, channels, side):
    if side < SMALL[key][2]:
        with pytest.raises(ValueError, match="needs images of at least"):
            small(key, channels, side)
        return
    model = small(key, channels, side)
    out = model(torch.randn(2, channels, side, side))
    assert out.shape == (2, 5) and out.dtype == torch.float32 and bool(torch.isfinite(out).all())


@pytest.mark.parametrize("key", list(SMALL))
def test_channels_last_gives_the_same_logits(key):
    model = small(key).eval()
    x = torch.randn(3, 3, 32, 32)
    expected = model(x)
    fast = copy.deepcopy(model).to(memory_format=torch.channels_last)
    out = fast(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("key", list(SMALL))
def test_bf16_autocast_runs_and_stays_close_to_float32(key):
    model = small(key).eval()
    x = torch.randn(3, 3, 32, 32)
    expected = model(x).softmax(-1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float().softmax(-1), expected, rtol=0, atol=0.05)


# --- dropout ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "layers"),
    [
        ("mlp", 1),  # after the one hidden layer
        ("lenet", 4),  # after both pooled convolutions and both hidden linear layers
        ("resnet", 3),  # between the convolutions of each of the 3 blocks
        ("resnet18", 8),
        ("resnet50", 2 * 16 + 4 + 1),  # 2 per block, each projection shortcut, the stem
        ("wrn", 3),
        ("fast_cifar", 3),  # between the convolutions of each group
    ],
)
def test_mc_dropout_samples_in_eval_mode_and_nowhere_else(key, layers):
    model = small(key, dropout_rate=0.5).eval()
    assert sum(isinstance(m, nn.Dropout) for m in model.modules()) == layers
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        first = model(x)
        torch.testing.assert_close(model(x), first, rtol=0, atol=0)
        with mc_dropout(model):
            a, b = model(x), model(x)
        assert not torch.allclose(a, b)
        # Batch norm stayed in eval mode, and the switch is undone on exit.
        assert not any(m.training for m in model.modules() if isinstance(m, nn.BatchNorm2d))
        torch.testing.assert_close(model(x), first, rtol=0, atol=0)


def test_wrn_dropout_sits_after_the_first_convolution_before_the_second_batch_norm():
    # Uncertainty Baselines' wide_resnet_dropout with its default residual_dropout=True.
    model = small("wrn", dropout_rate=0.5)
    blocks = [m for m in model.modules() if isinstance(m, WideBlock)]
    dropouts = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    # One dropout layer per residual block (3 groups of 1 block), none after the stem.
    assert len(blocks) == len(dropouts) == 3
    assert all(any(d is m for m in b.modules()) for d, b in zip(dropouts, blocks, strict=True))
    block = blocks[0]
    seen: dict[str, torch.Tensor] = {}
    order: list[str] = []

    def record(name: str):
        def hook(module, inputs, output):
            order.append(name)
            seen[name + ".in"], seen[name + ".out"] = inputs[0].detach(), output.detach()

        return hook

    for name in ("bn1", "conv1", "dropout", "bn2", "conv2"):
        getattr(block, name).register_forward_hook(record(name))
    model.train()
    model(torch.randn(4, 3, 8, 8))
    assert order == ["bn1", "conv1", "dropout", "bn2", "conv2"]
    conv1, bn2_in = seen["conv1.out"], seen["bn2.in"]
    dropped = (bn2_in == 0) & (conv1 != 0)
    assert 0.3 < dropped.float().mean() < 0.7  # about half the units of conv1's output
    kept = bn2_in != 0
    torch.testing.assert_close(bn2_in[kept], 2 * conv1[kept])  # inverted dropout, 1 / (1 - p)
    # conv2's input is relu(bn2(.)) of exactly that tensor: no second dropout before conv2.
    torch.testing.assert_close(seen["conv2.in"], torch.relu(seen["bn2.out"]))


@pytest.mark.parametrize("key", list(SMALL))
def test_dropout_does_not_change_the_state_dict(key):
    plain, dropped = small(key), small(key, dropout_rate=0.3)
    assert not any(isinstance(m, nn.Dropout) for m in plain.modules())
    assert plain.state_dict().keys() == dropped.state_dict().keys()
    dropped.load_state_dict(plain.state_dict())


# --- rebuilding from a checkpoint's config ----------------------------------------------------


@pytest.mark.parametrize("key", list(SMALL))
def test_from_config_rebuilds_the_model(key):
    model = small(key, dropout_rate=0.1).eval()
    config = json.loads(json.dumps(model.config))  # as read back from checkpoint metadata
    class_path = f"{type(model).__module__}.{type(model).__qualname__}"
    for source in (class_path, SMALL[key][0]):
        rebuilt = models.from_config(source, config).eval()
        assert type(rebuilt) is type(model) and rebuilt.config == model.config
        shapes = {k: v.shape for k, v in model.state_dict().items()}
        assert {k: v.shape for k, v in rebuilt.state_dict().items()} == shapes
        rebuilt.load_state_dict(model.state_dict())
        x = torch.randn(2, 3, 32, 32)
        torch.testing.assert_close(rebuilt(x), model(x))


def test_from_config_rejects_foreign_classes_and_unknown_arguments():
    with pytest.raises(ValueError, match="neither a uqbench model class"):
        models.from_config("os.system", {})
    with pytest.raises(ValueError, match="does not take: colour"):
        models.from_config("uqbench.models.lenet.LeNet5", {"num_classes": 10, "colour": "red"})
    with pytest.raises(ValueError, match="config must be a mapping"):
        models.from_config("lenet", [10])


# --- architecture details ---------------------------------------------------------------


def test_option_a_shortcut_is_parameter_free_subsampling_with_zero_channels():
    shortcut = ZeroPadShortcut(2, 5, stride=2)
    assert list(shortcut.parameters()) == [] and list(shortcut.buffers()) == []
    x = torch.arange(2 * 2 * 5 * 5, dtype=torch.float32).view(2, 2, 5, 5)
    out = shortcut(x)
    assert out.shape == (2, 5, 3, 3)  # odd sides round up, as a stride-2 3x3 convolution does
    torch.testing.assert_close(out[:, :2], x[:, :, [0, 2, 4]][:, :, :, [0, 2, 4]])
    assert not out[:, 2:].any()
    # ResNet-20 with option A has no 1x1 convolutions; option B adds two projections.
    a, b = cifar_resnet(20, shortcut="A"), cifar_resnet(20, shortcut="B")
    assert not any(m.kernel_size == (1, 1) for m in a.modules() if isinstance(m, nn.Conv2d))
    assert count(b) - count(a) == (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)


def test_name_parser_and_stems():
    assert models.get("ResNet-20", 10).config["blocks"] == [3, 3, 3]
    assert models.get("resnet110", 10).config["blocks"] == [18, 18, 18]
    assert models.get("resnet18", 10).config["blocks"] == [2, 2, 2, 2]
    assert isinstance(models.get("resnet50", 10, width=2), BottleneckResNet)
    assert isinstance(models.get("LeNet5", 10, 1, 28), LeNet5)
    assert isinstance(models.get("fast-cifar", 10), FastCifarNet)
    wrn = models.get("wrn-16-2", 10)
    assert isinstance(wrn, WideResNet)
    assert (wrn.config["depth"], wrn.config["widen_factor"]) == (16, 2)
    # The CIFAR stem (3x3, full resolution) up to 64 pixels, the ImageNet stem above.
    assert models.get("resnet18", 10, image_size=64, width=2).config["stem"] == "cifar"
    assert models.get("resnet50", 10, image_size=96, width=2).config["stem"] == "imagenet"
    imagenet = models.get("resnet18", 10, image_size=96, width=2)
    assert imagenet.stem[0].kernel_size == (7, 7) and isinstance(imagenet.stem[-1], nn.MaxPool2d)
    assert imagenet(torch.randn(1, 3, 96, 96)).shape == (1, 10)
    assert set(models.names()) >= {"resnet20", "resnet56", "wrn28_10", "resnet50", "fast_cifar"}
    described = dict(models.describe())
    assert "resnet<6n+2>" in described and all(len(d.splitlines()) == 1 for d in described.values())


@pytest.mark.parametrize(
    ("side", "flattened"), [(8, 16 * 2 * 2), (28, 16 * 5 * 5), (32, 16 * 5 * 5), (4, 16)]
)
def test_lenet_adapts_its_padding_to_the_image(side, flattened):
    model = LeNet5(10, 1, side)
    assert model.classifier[1].in_features == flattened
    assert model(torch.randn(2, 1, side, side)).shape == (2, 10)


def test_registry_errors_say_what_to_do():
    with pytest.raises(ValueError, match="Did you mean 'resnet20'"):
        models.get("resnt20", 10)
    with pytest.raises(
        ValueError, match=r"resnet21 does not exist: CIFAR ResNets have depth 6n\+2"
    ):
        models.get("resnet21", 10)
    with pytest.raises(ValueError, match=r"depth 6n\+4 .* got depth 27"):
        models.get("wrn27_10", 10)
    with pytest.raises(ValueError, match="width k must be a positive integer"):
        models.get("wrn28_0", 10)
    with pytest.raises(ValueError, match=r"needs images of at least 9x9 pixels, got image_size=8"):
        models.get("fast_cifar", 10, image_size=8)
    with pytest.raises(
        ValueError, match=r"needs images of at least 11x11 pixels, got image_size=10"
    ):
        models.get("fast_cifar", 10, image_size=10, whiten_kernel_size=4)
    with pytest.raises(ValueError, match="needs images of at least 4x4"):
        models.get("lenet", 10, 1, 3)
    with pytest.raises(ValueError, match="has no option 'depth'; its options: width, shortcut"):
        models.get("resnet20", 10, depth=3)
    with pytest.raises(ValueError, match=r"dropout_rate must be a number in \[0, 1\)"):
        models.get("resnet20", 10, dropout_rate=1.0)
    with pytest.raises(ValueError, match="num_classes must be a positive integer"):
        models.get("lenet", 0)
    with pytest.raises(ValueError, match="a model name must be a string"):
        models.get(None, 10)


def test_constructor_errors_say_what_to_do():
    with pytest.raises(ValueError, match="shortcut must be one of 'A', 'B'"):
        cifar_resnet(20, shortcut="C")
    with pytest.raises(ValueError, match="widths must not decrease"):
        ResNet(widths=(32, 16, 64))
    with pytest.raises(ValueError, match=r"depth 6n\+2"):
        cifar_resnet(22)
    with pytest.raises(ValueError, match="widths must have 3 entries"):
        FastCifarNet(widths=(8, 8))
    with pytest.raises(ValueError, match="built for images of shape"):
        MLPClassifier(10, 1, 28)(torch.randn(2, 3, 32, 32))
    with pytest.raises(ValueError, match="set in_channels and image_size"):
        LeNet5(10, 1, 28)(torch.randn(2, 1, 32, 32))


# --- fast_cifar's pieces -------------------------------------------------------------------


def test_patch_whitening_whitens_patches():
    torch.manual_seed(0)
    # Images with strongly correlated channels and neighbouring pixels.
    base = torch.randn(64, 1, 9, 9)
    smooth = F.avg_pool2d(F.pad(base, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    images = torch.cat([smooth, 0.5 * smooth + 0.1 * torch.randn_like(smooth), base], 1)
    layer = PatchWhitening(3, kernel_size=2)
    layer.fit(images, eps=1e-9, chunk=10)
    with torch.no_grad():
        out = layer(images) - layer.bias[:, None, None]
    half = out[:, :12].permute(1, 0, 2, 3).reshape(12, -1)
    torch.testing.assert_close(half @ half.T / half.shape[1], torch.eye(12), rtol=0, atol=1e-4)
    torch.testing.assert_close(out[:, 12:], -out[:, :12])


def test_patch_whitening_passes_pixels_through_until_fitted():
    layer = PatchWhitening(1, kernel_size=2)
    x = torch.arange(9.0).view(1, 1, 3, 3)
    with torch.no_grad():
        out = layer(x)
    assert out.shape == (1, 8, 2, 2)
    torch.testing.assert_close(out[0, :4, 0, 0], torch.tensor([0.0, 1.0, 3.0, 4.0]))
    torch.testing.assert_close(out[0, 4:], -out[0, :4])
    with pytest.raises(ValueError, match=r"\(N >= 1, 1, H >= 2, W >= 2\)"):
        layer.fit(torch.randn(4, 3, 8, 8))
    with pytest.raises(ValueError, match="finite floating-point"):
        layer.fit(torch.full((2, 1, 4, 4), float("nan")))


def test_fast_cifar_init_from_images_sets_only_the_fixed_filters():
    model = FastCifarNet(widths=(8, 8, 8))
    trainable = {k: v.clone() for k, v in model.named_parameters()}
    before = model.whiten.weight.clone()
    model.init_from_images(torch.randn(16, 3, 32, 32))
    assert not torch.equal(model.whiten.weight, before)
    assert "whiten.weight" not in dict(model.named_parameters())  # a buffer: never trained
    assert all(torch.equal(v, dict(model.named_parameters())[k]) for k, v in trainable.items())


def test_fast_cifar_layers_start_as_identities_and_norms_learn_only_a_shift():
    model = FastCifarNet(widths=(8, 8, 8))
    x = torch.randn(2, 8, 5, 5)
    with torch.no_grad():
        torch.testing.assert_close(model.groups[1].conv2(x), x)  # Dirac initialisation
    norm = ShiftBatchNorm(3, momentum=0.4)
    assert [name for name, _ in norm.named_parameters()] == ["bias"]
    with torch.no_grad():
        norm.bias.fill_(1.5)
    out = norm(torch.randn(32, 3, 4, 4) * 7 + 2)
    torch.testing.assert_close(out.mean((0, 2, 3)), torch.full((3,), 1.5), rtol=0, atol=1e-5)
    torch.testing.assert_close(out.std((0, 2, 3)), torch.ones(3), rtol=0, atol=1e-2)


# --- vectorised members and training ---------------------------------------------------------


@pytest.mark.parametrize("key", ["lenet", "resnet", "fast_cifar"])
@pytest.mark.parametrize("train", [False, True])
def test_vmap_over_stacked_members_equals_each_member(key, train):
    members = [small(key, seed=seed).train(train) for seed in range(2)]
    params, buffers = stack_module_state(members)
    template = copy.deepcopy(members[0]).to("meta")
    x = torch.randn(4, 3, 32, 32)

    def run(p, b, inputs):
        return functional_call(template, (p, b), (inputs,))

    out = vmap(run, in_dims=(0, 0, None))(params, buffers, x)
    for i, member in enumerate(members):
        torch.testing.assert_close(out[i], member(x), rtol=1e-4, atol=1e-5)
        for name, buffer in member.named_buffers():
            torch.testing.assert_close(buffers[name][i], buffer)  # batch-norm statistics too


def test_lenet_overfits_64_examples():
    torch.manual_seed(0)
    x, y = torch.randn(64, 1, 8, 8), torch.randint(0, 10, (64,))
    model = LeNet5(10, 1, 8)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):
        loss = F.cross_entropy(model(x), y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert (model(x).argmax(-1) == y).float().mean() == 1.0


@pytest.mark.slow
def test_torch_compile_matches_eager():
    model = small("resnet").eval()
    x = torch.randn(2, 3, 16, 16)
    compiled = torch.compile(model)
    torch.testing.assert_close(compiled(x), model(x), rtol=1e-4, atol=1e-5)
