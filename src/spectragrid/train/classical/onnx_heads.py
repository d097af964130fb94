"""ONNX graphs of the heads, and the classical model's whole ONNX file.

A head's graph takes `features` (B, F) float32 and returns `probabilities`
(B, C). The model's file is the exported FeatureMap (raw `data_spectra`
(B, C, L) and `data_tabular` (B, T) -> `features`, torch's exporter, as for
the networks) followed by the head's graph (onnx.compose.merge_models), so
it takes what a network's file takes. Trees use ai.onnx.ml's
TreeEnsembleRegressor with thresholds rounded down to float32, which routes
every float32 feature exactly as scikit-learn's float64 comparison does.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from spectragrid.train.classical.features import FeatureMap
from spectragrid.train.classical.heads import AffineHead, Head, KernelHead, TreeHead
from spectragrid.train.export import OPSET, write_model

ML_OPSET = 3


def head_model(head: Head, n_features: int, n_classes: int, ir_version: int) -> onnx.ModelProto:
    """The head alone: `features` (B, n_features) -> `probabilities` (B, n_classes)."""
    graph = _Graph()
    if isinstance(head, AffineHead):
        logits = graph.affine("features", head.weight, head.bias, "logits")
        graph.node("Softmax", [logits], ["probabilities"], axis=-1)
    elif isinstance(head, KernelHead):
        kernel = graph.rbf_kernel("features", head.support, head.gamma)
        logits = graph.affine(kernel, head.weight, head.bias, "logits")
        graph.node("Softmax", [logits], ["probabilities"], axis=-1)
    elif isinstance(head, TreeHead):
        graph.trees("features", head)
    else:
        raise TypeError(f"unknown head {type(head).__name__}")
    features = helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", n_features])
    probabilities = helper.make_tensor_value_info(
        "probabilities", TensorProto.FLOAT, ["batch", n_classes]
    )
    proto = helper.make_graph(
        graph.nodes, "head", [features], [probabilities], initializer=graph.initializers
    )
    opsets = [helper.make_opsetid("", OPSET), helper.make_opsetid("ai.onnx.ml", ML_OPSET)]
    model = helper.make_model(proto, opset_imports=opsets)
    model.ir_version = ir_version
    return model


def features_model(features: FeatureMap, n_channels: int, length: int) -> onnx.ModelProto:
    """The FeatureMap exported by torch: data_spectra, data_tabular -> features."""
    features = features.to("cpu").eval()
    inputs = (torch.zeros(2, n_channels, length), torch.zeros(2, features.n_tabular))
    buffer = io.BytesIO()
    torch.onnx.export(
        features,
        inputs,
        buffer,
        input_names=["data_spectra", "data_tabular"],
        output_names=["features"],
        dynamic_axes={name: {0: "batch"} for name in ("data_spectra", "data_tabular", "features")},
        opset_version=OPSET,
        dynamo=False,
    )
    return onnx.load_model_from_string(buffer.getvalue())


def export_classical(
    features: FeatureMap,
    head: Head,
    path: Path,
    n_channels: int,
    length: int,
    n_classes: int,
    metadata: dict[str, object],
) -> None:
    """Write the model's ONNX file atomically, with its metadata."""
    first = features_model(features, n_channels, length)
    second = head_model(head, features.n_features, n_classes, first.ir_version)
    merged = onnx.compose.merge_models(first, second, io_map=[("features", "features")])
    write_model(merged, path, metadata)


class _Graph:
    """Nodes and initializers of a head, every name under `head.` (apart from the
    graph's input and output), so they cannot collide with the exported FeatureMap's."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def name(self, base: str) -> str:
        return f"head.{base}.{len(self.nodes) + len(self.initializers)}"

    def constant(self, value: np.ndarray, base: str) -> str:
        name = self.name(base)
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], outputs: list[str], **attributes) -> str:
        domain = "ai.onnx.ml" if op.startswith("TreeEnsemble") else ""
        self.nodes.append(
            helper.make_node(op, inputs, outputs, name=self.name(op), domain=domain, **attributes)
        )
        return outputs[0]

    def out(self, base: str) -> str:
        return self.name(base)

    def affine(self, x: str, weight: np.ndarray, bias: np.ndarray, result: str) -> str:
        """x W^T + b."""
        w = self.constant(np.asarray(weight, dtype=np.float32).T.copy(), "weight")
        b = self.constant(np.asarray(bias, dtype=np.float32), "bias")
        product = self.node("MatMul", [x, w], [self.out("product")])
        return self.node("Add", [product, b], [self.out(result)])

    def rbf_kernel(self, x: str, support: np.ndarray, gamma: float) -> str:
        """exp(-gamma |x - s|^2) for every support vector s, with |x - s|^2 written
        |x|^2 - 2 x.s + |s|^2 (one matmul) and clipped at 0 against rounding."""
        support = np.asarray(support, dtype=np.float64)
        s_t = self.constant(support.T.astype(np.float32), "support_t")
        s_sq = self.constant((support**2).sum(axis=1).astype(np.float32)[None, :], "support_sq")
        minus_two = self.constant(np.asarray(-2.0, dtype=np.float32), "minus_two")
        zero = self.constant(np.asarray(0.0, dtype=np.float32), "zero")
        minus_gamma = self.constant(np.asarray(-gamma, dtype=np.float32), "minus_gamma")
        x_sq = self.node("ReduceSumSquare", [x], [self.out("x_sq")], axes=[1], keepdims=1)
        cross = self.node("MatMul", [x, s_t], [self.out("cross")])
        scaled = self.node("Mul", [cross, minus_two], [self.out("scaled")])
        partial = self.node("Add", [scaled, x_sq], [self.out("partial")])
        squared = self.node("Add", [partial, s_sq], [self.out("squared")])
        clipped = self.node("Max", [squared, zero], [self.out("clipped")])
        exponent = self.node("Mul", [clipped, minus_gamma], [self.out("exponent")])
        return self.node("Exp", [exponent], [self.out("kernel")])

    def trees(self, x: str, head: TreeHead) -> None:
        leaf = head.is_leaf
        raw = self.node(
            "TreeEnsembleRegressor",
            [x],
            [self.out("raw")],
            n_targets=head.n_targets,
            aggregate_function="AVERAGE" if head.average else "SUM",
            base_values=[float(v) for v in head.base],
            post_transform="NONE",
            nodes_treeids=head.tree.tolist(),
            nodes_nodeids=head.node.tolist(),
            nodes_featureids=head.feature.tolist(),
            nodes_values=head.threshold.astype(np.float32).tolist(),
            nodes_modes=["LEAF" if is_leaf else "BRANCH_LEQ" for is_leaf in leaf],
            nodes_truenodeids=head.left.tolist(),
            nodes_falsenodeids=head.right.tolist(),
            nodes_missing_value_tracks_true=head.missing_left.astype(np.int64).tolist(),
            target_treeids=head.leaf_tree.tolist(),
            target_nodeids=head.leaf_node.tolist(),
            target_ids=head.leaf_target.tolist(),
            target_weights=head.leaf_value.astype(np.float32).tolist(),
        )
        if head.output == "identity":
            self.node("Identity", [raw], ["probabilities"])
            return
        logits = raw
        if head.output == "sigmoid":
            # p(class 1) = sigmoid(z) is the softmax of (0, z)
            zero = self.constant(np.asarray(0.0, dtype=np.float32), "zero")
            zeros = self.node("Mul", [raw, zero], [self.out("zeros")])
            logits = self.node("Concat", [zeros, raw], [self.out("logits")], axis=1)
        self.node("Softmax", [logits], ["probabilities"], axis=-1)
