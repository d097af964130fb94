"""Raw files of a user's own study, made up for the tests: other channels, other labels.

`grain_frame` is a near-infrared data set with one label column (three grain
varieties, a band per variety), lots of three replicates and no id column,
as public data sets often come.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

VARIETIES = ("barley", "wheat", "rye")
# where each variety's absorption band sits, in points of the 60-point axis
_BANDS = {"barley": 15, "wheat": 30, "rye": 45}
WAVELENGTHS = np.arange(1100, 1220, 2)


def grain_frame(n: int = 180, seed: int = 0, labels: tuple[str, ...] = VARIETIES) -> pd.DataFrame:
    """`n` spectra `nir_<wavelength>` with a `variety` label and a `lot` (3 rows per lot)."""
    rng = np.random.default_rng(seed)
    bands = dict(zip(labels, _BANDS.values(), strict=False))
    variety = np.array([labels[i % len(labels)] for i in range(n)], dtype=object)
    points = np.arange(len(WAVELENGTHS))
    spectra = np.stack(
        [
            1 + np.exp(-(((points - bands[v]) / 5.0) ** 2)) + rng.normal(0, 0.15, len(points))
            for v in variety
        ]
    )
    frame = pd.DataFrame(spectra, columns=[f"nir_{w}" for w in WAVELENGTHS])
    frame.insert(0, "variety", variety)
    frame.insert(1, "lot", [f"L{i // 3:03d}" for i in range(n)])
    frame["moisture"] = rng.normal(12, 1, n).round(2)
    return frame
