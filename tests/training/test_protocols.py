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


# Settings every protocol must give: the scripts read these keys with no fallback.
PER_PROTOCOL_SETTINGS = {
    "image/heteroscedastic": {"num_factors", "temperature", "train_mc_samples", "test_mc_samples"},
    "image/mimo": {"num_members", "input_repetition", "batch_repetition"},
    "image/sngp": {"spec_norm_bound", "gp_mean_field_factor"},
}


@pytest.mark.parametrize("method", sorted(PER_PROTOCOL_SETTINGS))
def test_methods_with_per_protocol_settings_have_them_in_every_protocol(method):
    for protocol in PROTOCOLS.values():
        assert set(protocol.settings_for(method)) == PER_PROTOCOL_SETTINGS[method], protocol.name
