"""Text models: TextCNN and the transformer against hand computations, padding invariance, a
user's encoder by dotted path, and the uncertainty layers applied to them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils.parametrize import is_parametrized

from uqbench import models
from uqbench.layers.batch_ensemble import BatchEnsembleConv2d, batch_ensemble_model
from uqbench.layers.random_feature_gp import RandomFeatureGaussianProcess
from uqbench.models import TextCNN, TextTransformer
from uqbench.training.text_predictors import sngp_network

pytestmark = pytest.mark.usefixtures("one_thread")


def _ids(seed: int = 0) -> torch.Tensor:
    """Five queries of lengths 1 to 9 over ids 2..29, right-padded with 0 to width 12."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.zeros(5, 12, dtype=torch.int64)
    for row, length in enumerate((1, 3, 5, 7, 9)):
        ids[row, :length] = torch.randint(2, 30, (length,), generator=g)
    return ids


def test_textcnn_parameters_and_features_match_a_hand_computation():
    torch.manual_seed(0)
    model = TextCNN(30, 4, embed_dim=6, num_filters=3, kernel_sizes=(2, 3)).eval()
    expected = 30 * 6 + (3 * 2 * 6 + 3) + (3 * 3 * 6 + 3) + (6 * 4 + 4)
    assert sum(p.numel() for p in model.parameters()) == expected
    ids = _ids()
    features = model.features(ids).detach().numpy()
    table = model.embedding.weight.detach().numpy()
    for row in range(len(ids)):
        tokens = [int(t) for t in ids[row] if t != 0]
        x = np.vstack([table[tokens], np.zeros((3, 6))])  # zero embeddings after the text
        column = 0
        for conv in model.convs:
            w = conv.weight.detach().numpy()[:, :, 0].transpose(0, 2, 1)  # (filters, width, dim)
            b = conv.bias.detach().numpy()
            windows = [
                np.maximum((w * x[s : s + w.shape[1]]).sum(axis=(1, 2)) + b, 0)
                for s in range(len(tokens))  # one window per start on a token
            ]
            np.testing.assert_allclose(
                features[row, column : column + 3], np.max(windows, axis=0), atol=1e-5
            )
            column += 3


@pytest.mark.parametrize("name", ["textcnn", "transformer"])
def test_predictions_do_not_depend_on_padding(name):
    torch.manual_seed(1)
    model = models.get_text_model(name, vocab_size=30, num_classes=4, max_length=24).eval()
    ids = _ids()
    logits = model(ids)
    assert logits.shape == (5, 4)
    wider = torch.cat([ids, torch.zeros(5, 8, dtype=torch.int64)], dim=1)
    torch.testing.assert_close(model(wider), logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(model(ids[:, :9]), logits, atol=1e-5, rtol=0)  # the longest: 9
    one = torch.cat([model(ids[i : i + 1, :n]) for i, n in enumerate((1, 3, 5, 7, 9))])
    torch.testing.assert_close(one, logits, atol=1e-5, rtol=0)


def test_transformer_checks_its_input_and_keeps_its_config():
    model = TextTransformer(30, 4, max_length=8, dim=16, depth=1, heads=2, mlp_dim=32)
    with pytest.raises(ValueError, match="L <= 8"):
        model(torch.ones(2, 9, dtype=torch.int64))
    rebuilt = models.from_config("uqbench.models.text_transformer.TextTransformer", model.config)
    assert rebuilt.config == model.config
    with pytest.raises(ValueError, match="divisible"):
        TextTransformer(30, 4, dim=10, heads=3)


def test_a_users_encoder_by_dotted_path():
    model = models.get_text_model("user_encoders:mean_encoder", 30, 4, max_length=16)
    assert isinstance(model, models.UserTextClassifier) and model.fc.in_features == 12
    assert model(_ids()).shape == (5, 4)
    rebuilt = models.from_config("uqbench.models.text_registry.UserTextClassifier", model.config)
    rebuilt.load_state_dict(model.state_dict())
    torch.testing.assert_close(rebuilt.eval()(_ids()), model.eval()(_ids()))
    with pytest.raises(ValueError, match="must return an nn.Module"):
        models.get_text_model("user_encoders:not_a_module", 30, 4)
    with pytest.raises(ValueError, match=r"to vectors \(2, D\)"):
        models.get_text_model("user_encoders:wrong_shape", 30, 4)
    with pytest.raises(ValueError, match="cannot import"):
        models.get_text_model("no_such_module:factory", 30, 4)
    with pytest.raises(ValueError, match="unknown text model 'resnet20'"):
        models.check_text_model("resnet20")


def test_batchensemble_of_a_textcnn_starts_as_the_network_with_ones():
    torch.manual_seed(2)
    network = TextCNN(30, 4, embed_dim=6, num_filters=3, kernel_sizes=(2, 3)).eval()
    ensemble = batch_ensemble_model(network, 3, "ones").eval()
    assert all(isinstance(c, BatchEnsembleConv2d) for c in ensemble.network.convs)
    out = ensemble(_ids())
    assert out.shape == (3, 5, 4)
    for member in out:
        torch.testing.assert_close(member, network(_ids()), atol=1e-5, rtol=0)


def test_sngp_bounds_the_hidden_layers_and_puts_a_gp_on_top():
    torch.manual_seed(3)
    network = TextCNN(30, 4, embed_dim=6, num_filters=3, kernel_sizes=(2, 3))
    with torch.no_grad():
        network.convs[0].weight.mul_(50)
    settings = {"spec_norm_bound": 0.95, "spec_norm_iteration": 1, "num_features": 32}
    model = sngp_network(network, settings)
    assert isinstance(model.fc, RandomFeatureGaussianProcess)
    model.train()
    for _ in range(20):  # power iterations converge
        model(_ids())
    matrix = model.convs[0].weight.detach().flatten(1)
    assert torch.linalg.matrix_norm(matrix, ord=2) <= 0.95 * 1.01
    with pytest.raises(ValueError, match="output layer fc"):
        sngp_network(nn.Sequential(nn.Linear(2, 2)), settings)


def test_sngp_ablation_switches_keep_the_dense_head_or_the_unbounded_layers():
    settings = {"spec_norm_bound": 0.95, "spec_norm_iteration": 1, "num_features": 32}
    no_gp = sngp_network(
        TextCNN(30, 4, embed_dim=6, num_filters=3), settings | {"use_gp_layer": False}
    )
    assert type(no_gp.fc) is nn.Linear
    assert all(is_parametrized(c) for c in no_gp.convs)
    no_sn = sngp_network(
        TextCNN(30, 4, embed_dim=6, num_filters=3), settings | {"use_spec_norm": False}
    )
    assert isinstance(no_sn.fc, RandomFeatureGaussianProcess)
    assert not any(is_parametrized(c) for c in no_sn.convs)
