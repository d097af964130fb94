"""The features a classical model sees: its preprocessed spectra flattened, then its
tabular columns standardised, as one torch module.

The same module turns the cell's spectra into the estimator's input and is
exported as the first part of the model's ONNX graph, so that the file takes
raw spectra and tabular columns, as a network's does. Tabular columns are
standardised over the training rows whatever the spectral steps, so that no
column outweighs another in a penalised or kernel model (trees ignore it).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from spectragrid.train.preprocessing import Preprocessing, StandardScale, as_tensor


class FeatureMap(nn.Module):
    def __init__(self, preprocessing: Preprocessing, n_tabular: int) -> None:
        super().__init__()
        self.preprocessing = preprocessing
        self.tabular_scale = StandardScale((n_tabular,))
        self.n_tabular = n_tabular

    @property
    def n_features(self) -> int:
        prep = self.preprocessing
        return prep.n_channels * prep.out_length + self.n_tabular

    @torch.no_grad()
    def fit(self, spectra: np.ndarray, tabular: np.ndarray) -> None:
        self.preprocessing.fit(spectra)
        self.tabular_scale.fit(tabular)

    def forward(self, spectra: torch.Tensor, tabular: torch.Tensor) -> torch.Tensor:
        spectral = self.preprocessing(spectra).flatten(1)
        # Concatenated even when there are no tabular columns: the (B, 0) input then
        # stays an input of the exported graph, so every model is called the same way.
        return torch.cat([spectral, self.tabular_scale(tabular)], dim=1)

    @torch.no_grad()
    def transform(
        self, spectra: np.ndarray, tabular: np.ndarray, batch_size: int = 4096
    ) -> np.ndarray:
        """float32 (N, n_features) features of numpy arrays, in batches."""
        self.eval()
        parts = [
            self(
                as_tensor(spectra[i : i + batch_size]),
                as_tensor(tabular[i : i + batch_size]),
            ).numpy()
            for i in range(0, len(spectra), batch_size)
        ]
        if not parts:
            return np.zeros((0, self.n_features), dtype=np.float32)
        return np.concatenate(parts)
