"""The features of a classical model: preprocessed spectra flattened, then tabular columns."""

import numpy as np

from spectragrid.train.classical.features import FeatureMap
from spectragrid.train.preprocessing import build_preprocessing


def test_spectral_points_channel_by_channel_then_standardised_tabular_columns():
    spectra = np.arange(2 * 2 * 3, dtype=np.float32).reshape(2, 2, 3)
    tabular = np.array([[1.0, 5.0], [3.0, 5.0]], dtype=np.float32)
    features = FeatureMap(build_preprocessing([], 2, 3), n_tabular=2)
    features.fit(spectra, tabular)
    out = features.transform(spectra, tabular)
    assert features.n_features == 8 and out.shape == (2, 8)
    assert out[0, :6].tolist() == spectra[0].ravel().tolist()
    # mean 2, sd 1 for the first column; the constant one maps to 0
    assert out[:, 6:].tolist() == [[-1.0, 0.0], [1.0, 0.0]]


def test_without_tabular_columns_the_features_are_the_spectra():
    spectra = np.ones((3, 1, 4), dtype=np.float32)
    features = FeatureMap(build_preprocessing(["standard"], 1, 4), n_tabular=0)
    features.fit(spectra, np.zeros((3, 0), dtype=np.float32))
    assert features.transform(spectra, np.zeros((3, 0), dtype=np.float32)).shape == (3, 4)
