"""Small feature sets the classical families' tests fit on."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from spectragrid.train.classical.heads import Head
from spectragrid.train.classical.onnx_heads import head_model


def blobs(n: int, n_features: int, n_classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Overlapping Gaussian classes: a problem neither trivial nor hopeless."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % n_classes
    centres = rng.normal(0, 1.0, (n_classes, n_features))
    x = centres[y] + rng.normal(0, 1.5, (n, n_features))
    return x.astype(np.float32), y


def onnx_probabilities(head: Head, x: np.ndarray, n_classes: int) -> np.ndarray:
    """The head's ONNX graph run by onnxruntime on float32 features."""
    model = head_model(head, x.shape[1], n_classes, ir_version=8)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(["probabilities"], {"features": x.astype(np.float32)})[0]


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)
