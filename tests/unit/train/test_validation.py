"""The validation row: plain cross-entropy and the scores of the predicted classes."""

from __future__ import annotations

import contextlib

import pytest
import torch
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, log_loss
from torch import nn

from spectragrid.train.batches import Arrays
from spectragrid.train.validation import validation_row


class Fixed(nn.Module):
    """Logits read from the first spectral point of each channel."""

    def forward(self, spectra: torch.Tensor, tabular: torch.Tensor) -> torch.Tensor:
        return spectra[:, :, 0]


def test_the_row_scores_the_validation_rows_over_every_batch():
    g = torch.Generator().manual_seed(0)
    n = 2500  # more than one evaluation batch
    spectra = torch.randn(n, 3, 4, generator=g)
    labels = torch.randint(0, 3, (n,), generator=g)
    spectra[torch.arange(n), labels, 0] += 1.0  # better than chance
    model = Fixed().train()
    row = validation_row(
        model, Arrays(spectra, torch.zeros(n, 0), labels), contextlib.nullcontext(),
        torch.device("cpu"), 3,
    )  # fmt: skip
    assert model.training  # the mode is restored
    logits = spectra[:, :, 0]
    predicted = logits.argmax(dim=1).numpy()
    proba = torch.softmax(logits.double(), dim=1).numpy()
    assert row["val_loss"] == pytest.approx(log_loss(labels.numpy(), proba), rel=1e-5)
    assert row["val_accuracy"] == pytest.approx(accuracy_score(labels, predicted))
    assert row["val_balanced_accuracy"] == pytest.approx(balanced_accuracy_score(labels, predicted))
    assert row["val_macro_f1"] == pytest.approx(f1_score(labels, predicted, average="macro"))
    assert 0.4 < row["val_accuracy"] < 0.9
