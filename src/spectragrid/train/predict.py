"""Class probabilities of a trained model on rows held in memory."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from spectragrid.train.batches import Arrays


@torch.no_grad()
def predict_proba(model: nn.Module, data: Arrays, batch_size: int = 1024) -> np.ndarray:
    """(N, C) float32 softmax probabilities, in float32 whatever the training precision."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(data.labels), batch_size):
        sl = slice(start, start + batch_size)
        # each batch gathers its rows: the part's rows are never copied out together
        logits = model(data.spectra_of(sl).to(device), data.tabular[sl].to(device))
        out.append(torch.softmax(logits.float(), dim=1).cpu())
    if not out:
        return np.zeros((0, 0), dtype=np.float32)
    return torch.cat(out).numpy()
