"""``--model=package.module:factory``: a user's own network through the model registry."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from uqbench import models
from uqbench.layers.mc_dropout import mc_dropout
from uqbench.models.user_factory import UserModel

HELPERS = "user_models_for_tests"


@pytest.fixture(autouse=True)
def helpers_importable(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parent))


def test_factory_builds_checks_and_rebuilds_from_its_config():
    models.check_name(f"{HELPERS}:small_cnn")
    torch.manual_seed(0)
    model = models.get(f"{HELPERS}:small_cnn", num_classes=4, in_channels=1, image_size=8)
    assert isinstance(model, UserModel)
    assert model.config == {
        "factory": f"{HELPERS}:small_cnn",
        "num_classes": 4,
        "in_channels": 1,
        "image_size": 8,
        "dropout_rate": 0.0,
    }
    x = torch.randn(3, 1, 8, 8)
    rebuilt = models.from_config("uqbench.models.user_factory.UserModel", model.config)
    rebuilt.load_state_dict(model.state_dict())
    torch.testing.assert_close(rebuilt(x), model(x))
    # dropout_rate reaches a factory that takes it, so MC dropout samples.
    dropout = models.get(f"{HELPERS}:small_cnn", 4, 1, 8, dropout_rate=0.5).eval()
    with mc_dropout(dropout):
        assert not torch.equal(dropout(x), dropout(x))


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("no_such_module_xyz:f", {}, "cannot import 'no_such_module_xyz'"),
        (f"{HELPERS}:missing", {}, "has no 'missing'"),
        (f"{HELPERS}:NOT_CALLABLE", {}, "is not callable"),
        (f"{HELPERS}:not_a_module", {}, "must return an nn.Module, got function"),
        (f"{HELPERS}:wrong_width", {}, r"to logits \(2, 4\), got \(2, 5\)"),
        (f"{HELPERS}:fails", {}, r"fails on a probe batch of shape \(2, 1, 8, 8\)"),
        (f"{HELPERS}:no_dropout", {"dropout_rate": 0.1}, "takes no dropout_rate"),
        (f"{HELPERS}:small_cnn", {"width": 3}, "built by its factory alone"),
        (":small_cnn", {}, "package.module:factory"),
    ],
)
def test_unsuitable_factories_are_clear_errors(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        models.get(name, num_classes=4, in_channels=1, image_size=8, **kwargs)
