"""Tree ensembles: random forest and histogram gradient boosting.

Both are read out into a TreeHead, node by node. A random forest's
probabilities are the average over its trees of the class frequencies in the
leaf a sample reaches; gradient boosting sums one tree per class (one in all
for two classes) per iteration onto a baseline and takes the softmax (the
sigmoid for two classes) of the sums. Gradient boosting runs without early
stopping: its internal split of the training rows would be a second
validation set beside the cell's own.
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

from spectragrid.train.classical.heads import TreeHead, float32_at_or_below


class RandomForestModel:
    def __init__(self, candidate: dict, seed: int, threads: int) -> None:
        self.model = RandomForestClassifier(
            n_estimators=candidate["n_estimators"],
            max_features=candidate["max_features"],
            min_samples_leaf=candidate["min_samples_leaf"],
            max_depth=candidate["max_depth"],
            random_state=seed,
            n_jobs=threads,
        )

    def fit(self, x: np.ndarray, y: np.ndarray, weight: np.ndarray | None) -> None:
        self.model.fit(x, y, sample_weight=weight)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(x)

    def head(self) -> TreeHead:
        builder = _NodeTable()
        n_classes = len(self.model.classes_)
        for index, estimator in enumerate(self.model.estimators_):
            tree = estimator.tree_
            value = np.asarray(tree.value[:, 0, :n_classes], dtype=np.float64)
            total = value.sum(axis=1, keepdims=True)
            share = value / np.where(total > 0, total, 1.0)
            leaf = tree.children_left < 0
            builder.add_tree(
                index,
                feature=tree.feature,
                threshold=tree.threshold,
                left=tree.children_left,
                right=tree.children_right,
                is_leaf=leaf,
                missing_left=_missing_left(tree, leaf),
            )
            for node in np.flatnonzero(leaf):
                for target in range(n_classes):
                    builder.add_leaf(index, int(node), target, float(share[node, target]))
        return builder.head(np.zeros(n_classes), n_classes, average=True, output="identity")


def _missing_left(tree: object, leaf: np.ndarray) -> np.ndarray:
    """Where a NaN goes at each split (trees fitted without missing values send it right)."""
    missing = getattr(tree, "missing_go_to_left", None)
    if missing is None:
        return np.zeros(len(leaf), dtype=bool)
    return np.asarray(missing, dtype=bool) & ~leaf


class GradientBoostingModel:
    def __init__(self, candidate: dict, seed: int, threads: int) -> None:
        self.model = HistGradientBoostingClassifier(
            max_iter=candidate["max_iter"],
            learning_rate=candidate["learning_rate"],
            max_leaf_nodes=candidate["max_leaf_nodes"],
            min_samples_leaf=candidate["min_samples_leaf"],
            l2_regularization=candidate["l2_regularization"],
            early_stopping=False,
            random_state=seed,
        )

    def fit(self, x: np.ndarray, y: np.ndarray, weight: np.ndarray | None) -> None:
        self.model.fit(x, y, sample_weight=weight)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(x)

    def head(self) -> TreeHead:
        # scikit-learn has no public accessor for the fitted trees: `_predictors`
        # (iterations x trees per iteration) and `_baseline_prediction` are read
        # as its own ONNX converters read them. A change there fails the parity
        # check on the test fold, so it cannot go unnoticed.
        builder = _NodeTable()
        per_iteration = len(self.model._predictors[0]) if self.model._predictors else 1
        index = 0
        for trees in self.model._predictors:
            for target, predictor in enumerate(trees):
                nodes = predictor.nodes
                leaf = nodes["is_leaf"].astype(bool)
                builder.add_tree(
                    index,
                    feature=nodes["feature_idx"],
                    threshold=nodes["num_threshold"],
                    left=nodes["left"],
                    right=nodes["right"],
                    is_leaf=leaf,
                    missing_left=nodes["missing_go_to_left"].astype(bool) & ~leaf,
                )
                for node in np.flatnonzero(leaf):
                    builder.add_leaf(index, int(node), target, float(nodes["value"][node]))
                index += 1
        base = np.asarray(self.model._baseline_prediction, dtype=np.float64).reshape(-1)
        output = "sigmoid" if per_iteration == 1 else "softmax"
        return builder.head(base, per_iteration, average=False, output=output)


class _NodeTable:
    """The nodes and leaf values of several trees, gathered into a TreeHead."""

    def __init__(self) -> None:
        self.nodes: dict[str, list[np.ndarray]] = {
            k: [] for k in ("tree", "node", "feature", "threshold", "left", "right", "leaf", "nan")
        }
        self.leaves: list[tuple[int, int, int, float]] = []

    def add_tree(
        self,
        index: int,
        *,
        feature: np.ndarray,
        threshold: np.ndarray,
        left: np.ndarray,
        right: np.ndarray,
        is_leaf: np.ndarray,
        missing_left: np.ndarray,
    ) -> None:
        n = len(is_leaf)
        split = ~is_leaf
        self.nodes["tree"].append(np.full(n, index, dtype=np.int64))
        self.nodes["node"].append(np.arange(n, dtype=np.int64))
        self.nodes["feature"].append(np.where(split, feature, 0).astype(np.int64))
        self.nodes["threshold"].append(np.where(split, threshold, 0.0).astype(np.float64))
        self.nodes["left"].append(np.where(split, left, 0).astype(np.int64))
        self.nodes["right"].append(np.where(split, right, 0).astype(np.int64))
        self.nodes["leaf"].append(np.asarray(is_leaf, dtype=bool))
        self.nodes["nan"].append(np.asarray(missing_left, dtype=bool))

    def add_leaf(self, tree: int, node: int, target: int, value: float) -> None:
        self.leaves.append((tree, node, target, value))

    def head(self, base: np.ndarray, n_targets: int, average: bool, output: str) -> TreeHead:
        nodes = {k: np.concatenate(v) for k, v in self.nodes.items()}
        leaves = np.asarray(self.leaves, dtype=np.float64).reshape(-1, 4)
        return TreeHead(
            tree=nodes["tree"],
            node=nodes["node"],
            feature=nodes["feature"],
            threshold=float32_at_or_below(nodes["threshold"]),
            left=nodes["left"],
            right=nodes["right"],
            is_leaf=nodes["leaf"],
            missing_left=nodes["nan"],
            leaf_tree=leaves[:, 0].astype(np.int64),
            leaf_node=leaves[:, 1].astype(np.int64),
            leaf_target=leaves[:, 2].astype(np.int64),
            leaf_value=leaves[:, 3].astype(np.float32),
            base=np.asarray(base, dtype=np.float32),
            n_targets=int(n_targets),
            average=average,
            output=output,
        )
