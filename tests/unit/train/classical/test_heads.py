"""Heads: the two-class logistic layer as a softmax, and tree thresholds in float32."""

import numpy as np
import pytest

from spectragrid.train.classical.heads import (
    AffineHead,
    KernelHead,
    float32_at_or_below,
    head_arrays,
    head_settings,
    two_class_logits,
)


def test_a_binary_logistic_layer_becomes_the_softmax_of_zero_and_its_logit():
    weight, bias = two_class_logits(np.array([[2.0, -1.0]]), np.array([0.5]))
    assert weight.tolist() == [[0, 0], [2, -1]] and bias.tolist() == [0, 0.5]
    z = 2.0 * 0.3 - 1.0 * 0.1 + 0.5
    logits = weight @ np.array([0.3, 0.1]) + bias
    p = np.exp(logits) / np.exp(logits).sum()
    assert p[1] == pytest.approx(1 / (1 + np.exp(-z)))
    # several classes are kept as they are
    weight, bias = two_class_logits(np.ones((3, 2)), np.zeros(3))
    assert weight.shape == (3, 2) and bias.shape == (3,)


def test_float32_thresholds_route_every_float32_value_as_the_float64_ones_do():
    rng = np.random.default_rng(0)
    # midpoints of float32 neighbours are the hard case: they lie between two floats
    base = rng.normal(0, 100, 2000).astype(np.float32)
    neighbour = np.nextafter(base, np.float32(np.inf))
    thresholds = (base.astype(np.float64) + neighbour.astype(np.float64)) / 2
    rounded = float32_at_or_below(thresholds)
    assert rounded.dtype == np.float32 and (rounded.astype(np.float64) <= thresholds).all()
    for x in (base, neighbour, np.nextafter(base, np.float32(-np.inf))):
        assert np.array_equal(x <= thresholds, x <= rounded)
    exact = np.array([0.5, -2.0, 2.0**100])
    assert float32_at_or_below(exact).tolist() == exact.tolist()


def test_head_arrays_and_settings_split_the_tensors_from_the_plain_values():
    head = KernelHead(np.zeros((3, 2)), 0.5, np.ones((2, 3)), np.zeros(2))
    assert set(head_arrays(head)) == {"support", "weight", "bias"}
    assert head_settings(head) == {"kind": "rbf_kernel", "gamma": 0.5}
    assert head.n_parameters() == 6 + 6 + 2 + 1
    affine = AffineHead(np.ones((2, 4)), np.zeros(2))
    assert affine.n_parameters() == 10 and affine.flops_per_sample() == 16
