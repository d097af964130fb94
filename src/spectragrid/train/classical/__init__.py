"""Classical model families (scikit-learn) as grid models beside the networks.

`arch: pls_da`, `logreg`, `svm`, `random_forest` or `hist_gradient_boosting`
makes a model of the grid that is fitted, not trained by epochs: every
combination of its hyper-parameter candidates is fitted on the cell's
training rows and scored on its validation fold, and the best one on
`train.monitor` is kept (spectragrid.train.classical.selection). Its cell
writes the same outputs as a network's (spectragrid.train.classical.cell).

This module stays light: the network cell imports it to dispatch.
"""

from __future__ import annotations

FAMILIES: tuple[str, ...] = ("pls_da", "logreg", "svm", "random_forest", "hist_gradient_boosting")


def is_classical(arch: str) -> bool:
    return arch in FAMILIES
