"""The validation scores a fit records after every epoch (and before the first)."""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from spectragrid.core.metrics import validation_scores
from spectragrid.train.batches import Arrays, batches

BATCH_SIZE = 1024


@torch.no_grad()
def validation_row(
    model: nn.Module,
    data: Arrays,
    forward_context: contextlib.AbstractContextManager,
    device: torch.device,
    n_classes: int,
) -> dict[str, float]:
    """val_loss (plain cross-entropy), val_accuracy, val_balanced_accuracy and
    val_macro_f1 of `model` on `data`, in the training precision."""
    was_training = model.training
    model.eval()
    logits = []
    with forward_context:
        for spectra, tabular, _labels, _weights in batches(data, BATCH_SIZE):
            logits.append(model(spectra.to(device), tabular.to(device)).float())
    model.train(was_training)
    all_logits = torch.cat(logits)
    val_loss = float(nn.functional.cross_entropy(all_logits, data.labels.to(device)))
    scores = validation_scores(
        data.labels.numpy(), all_logits.argmax(dim=1).cpu().numpy(), n_classes
    )
    return {
        "val_loss": val_loss,
        "val_accuracy": scores["accuracy"],
        "val_balanced_accuracy": scores["balanced_accuracy"],
        "val_macro_f1": scores["macro_f1"],
    }
