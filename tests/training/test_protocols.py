"""Which protocol ``auto`` picks, and that every protocol's method defaults resolve."""

from __future__ import annotations

import pytest

from uqbench import models
from uqbench.training.protocols import PROTOCOLS, choose_protocol, for_images


@pytest.mark.parametrize(
    ("asked", "device", "shape", "expected"),
    [
        ("auto", "cpu", (3, 32, 32), "cpu32"),
        ("auto", "cpu", (3, 64, 64), "cpu32"),
        ("auto", "cpu", (1, 8, 8), "cpu"),  # digits
        ("auto", "cpu", (1, 32, 32), "cpu"),  # grey images keep LeNet-5's digits recipe
        ("auto", "cpu", (3, 16, 16), "cpu"),
        ("auto", "cuda", (3, 32, 32), "fast"),
        ("cpu", "cpu", (3, 32, 32), "cpu"),  # asked for by name: kept
        ("cpu32", "cpu", (1, 8, 8), "cpu32"),
    ],
)
def test_auto_picks_by_device_then_image_shape(asked, device, shape, expected):
    protocol = for_images(choose_protocol(asked, None, device), asked, shape)
    assert protocol.name == expected


def test_every_protocol_names_known_networks_and_valid_recipes():
    methods = ("image/deterministic", "image/sngp", "image/mimo", "image/batchensemble")
    for protocol in PROTOCOLS.values():
        for method in methods:
            models.check_name(protocol.model_for(method))
            protocol.recipe_for(method).check()


@pytest.mark.parametrize("name", ["image.heteroscedastic", "image.mimo", "image.sngp"])
def test_methods_with_per_protocol_defaults_cover_every_protocol(name):
    import importlib

    module = importlib.import_module(f"uqbench.baselines.{name}")
    assert set(module.DEFAULTS) == set(PROTOCOLS)
