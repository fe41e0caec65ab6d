"""What the text baselines added to the shared training loop: AdamW in a recipe, a batch
``prepare`` hook for inputs other than images, and unchanged image records."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from uqbench.training.classifier import Recipe, Runtime, fit, make_optimizer

pytestmark = pytest.mark.usefixtures("one_thread")
CPU = Runtime(torch.device("cpu"))


def test_adamw_recipe_and_records():
    model = nn.Linear(3, 2)
    sgd = Recipe(epochs=1, batch_size=4, learning_rate=0.1)
    assert "optimizer" not in sgd.as_dict()  # image runs' records read as before
    assert isinstance(make_optimizer(model, sgd), torch.optim.SGD)
    adamw = sgd.with_overrides(optimizer="adamw", weight_decay=0.01, momentum=0.8)
    optimizer = make_optimizer(model, adamw)
    assert isinstance(optimizer, torch.optim.AdamW) and adamw.as_dict()["optimizer"] == "adamw"
    assert optimizer.param_groups[0]["betas"] == (0.8, 0.999)
    assert optimizer.param_groups[0]["weight_decay"] == 0.01
    with pytest.raises(ValueError, match="optimizer must be one of sgd, adamw"):
        sgd.with_overrides(optimizer="adam").check()


class LastTokenWidth(nn.Module):
    """Logits that record the width of every batch it sees."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(10, 2)
        self.widths: list[int] = []

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        self.widths.append(ids.shape[1])
        return self.embedding(ids).mean(dim=1)


def test_fit_passes_token_batches_through_prepare():
    ids = torch.zeros(8, 6, dtype=torch.int64)
    ids[:, 0] = torch.arange(1, 9) % 10
    labels = torch.arange(8) % 2
    model = LastTokenWidth()
    recipe = Recipe(epochs=2, batch_size=4, learning_rate=0.1, optimizer="adamw")
    history = fit(model, ids, labels, (), (), recipe, CPU, quiet=True, prepare=lambda b: b[:, :2])
    assert len(history) == 2 and set(model.widths) == {2} and len(model.widths) == 4
    with pytest.raises(ValueError, match=r"expected images \(N, C, H, W\)"):
        fit(model, ids, labels, (), (), recipe, CPU, quiet=True)
