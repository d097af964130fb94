"""What a fitted classical model computes from its features, as plain arrays.

Every family reduces to one of three heads, from features (B, F) (the
preprocessed spectra flattened, then the scaled tabular columns) to class
probabilities (B, C):

- `AffineHead`: softmax(x W^T + b). Logistic regression, and PLS-DA, whose
  projection onto its latent scores, their standardisation and its logistic
  layer are affine maps composed into one.
- `KernelHead`: softmax(k(x) W^T + b), k(x)_s = exp(-gamma |x - s|^2) over the
  support vectors s. The SVM: its one-vs-one decision values are linear in
  k(x), and so is the logistic layer that calibrates them.
- `TreeHead`: sums (or averages) of leaf values over an ensemble of trees,
  then the identity (random forest: averaged class frequencies), a softmax
  (gradient boosting, several classes) or a sigmoid (gradient boosting, two
  classes).

A two-class logistic layer gives p(class 1) = sigmoid(z); it is written as
softmax([0, z]), which is the same, so that one softmax serves every head.
The arrays go into model.ckpt (loadable with weights_only=True: no estimator
is pickled) and into the ONNX graph (spectragrid.train.classical.onnx_heads).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np


def two_class_logits(coef: np.ndarray, intercept: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A logistic layer's (coef, intercept) as softmax weights: a binary layer's
    single row z becomes the rows (0, z)."""
    coef = np.asarray(coef, dtype=np.float64)
    intercept = np.asarray(intercept, dtype=np.float64).reshape(-1)
    if coef.shape[0] == 1:
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.concatenate([[0.0], intercept])
    return coef, intercept


@dataclass(frozen=True)
class AffineHead:
    weight: np.ndarray  # (C, F)
    bias: np.ndarray  # (C,)

    kind = "affine"

    def n_parameters(self) -> int:
        return int(self.weight.size + self.bias.size)

    def flops_per_sample(self) -> int:
        return 2 * int(self.weight.size)


@dataclass(frozen=True)
class KernelHead:
    support: np.ndarray  # (S, F) support vectors
    gamma: float
    weight: np.ndarray  # (C, S)
    bias: np.ndarray  # (C,)

    kind = "rbf_kernel"

    def n_parameters(self) -> int:
        return int(self.support.size + self.weight.size + self.bias.size + 1)

    def flops_per_sample(self) -> int:
        # the distances to every support vector (a matmul), then the linear layer
        return 2 * int(self.support.size) + 2 * int(self.weight.size)


# How a TreeHead turns its summed leaf values into probabilities.
TREE_OUTPUTS: tuple[str, ...] = ("identity", "softmax", "sigmoid")


@dataclass(frozen=True)
class TreeHead:
    """Every node of every tree; a sample goes left (to `left`) when
    feature <= threshold, as scikit-learn's trees do."""

    tree: np.ndarray  # (N,) int64 tree of each node
    node: np.ndarray  # (N,) int64 node id within its tree
    feature: np.ndarray  # (N,) int64, 0 at leaves
    threshold: np.ndarray  # (N,) float32, 0 at leaves
    left: np.ndarray  # (N,) int64 node id, 0 at leaves
    right: np.ndarray  # (N,) int64 node id, 0 at leaves
    is_leaf: np.ndarray  # (N,) bool
    missing_left: np.ndarray  # (N,) bool: a NaN goes left
    leaf_tree: np.ndarray  # (M,) int64 tree of each leaf value
    leaf_node: np.ndarray  # (M,) int64 node of each leaf value
    leaf_target: np.ndarray  # (M,) int64 output column of each leaf value
    leaf_value: np.ndarray  # (M,) float32
    base: np.ndarray  # (n_targets,) float32 added to the sum
    n_targets: int
    average: bool  # average over trees rather than sum
    output: str  # one of TREE_OUTPUTS

    kind = "trees"

    def n_parameters(self) -> int:
        # a threshold per split, a value per leaf output
        return int((~self.is_leaf).sum() + self.leaf_value.size + self.base.size)

    def flops_per_sample(self) -> None:
        # Comparisons down the trees are not floating-point multiply-adds.
        return None


Head = AffineHead | KernelHead | TreeHead


def head_arrays(head: Head) -> dict[str, np.ndarray]:
    """The head's arrays by field name (its numbers go separately: head_settings)."""
    return {f.name: getattr(head, f.name) for f in fields(head) if _is_array(getattr(head, f.name))}


def head_settings(head: Head) -> dict[str, object]:
    """The head's kind and its plain (non-array) fields."""
    settings = {
        f.name: getattr(head, f.name) for f in fields(head) if not _is_array(getattr(head, f.name))
    }
    return {"kind": head.kind, **settings}


def _is_array(value: object) -> bool:
    return isinstance(value, np.ndarray)


def float32_at_or_below(threshold: np.ndarray) -> np.ndarray:
    """The largest float32 <= each float64 threshold.

    For a float32 x, x <= t exactly when x <= this value, so a tree compared in
    float32 (ONNX) routes every sample as scikit-learn does in float64.
    """
    threshold = np.asarray(threshold, dtype=np.float64)
    out = threshold.astype(np.float32)
    above = out.astype(np.float64) > threshold
    out[above] = np.nextafter(out[above], np.float32(-np.inf))
    return out
