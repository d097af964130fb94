"""ONNX export with preprocessing and softmax inside, checked against onnxruntime.

Networks are exported here; classical models build their file in
spectragrid.train.classical.onnx_heads and write it with `write_model`, so
both carry the same metadata and pass the same parity check.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from spectragrid.core.atomic import atomic_path

PARITY_TOLERANCE = 1e-4
# Test rows per onnxruntime call of the parity check (a demo test fold is one call).
PARITY_BATCH = 4096
OPSET = 17


class ExportError(RuntimeError):
    """The exported model disagrees with the trained one."""


class ProbabilityModel(nn.Module):
    def __init__(self, model: nn.Module, n_tabular: int) -> None:
        super().__init__()
        self.model = model
        # Decided here, not from the traced input's shape, which the tracer
        # would warn about and freeze.
        self.without_tabular = n_tabular == 0

    def forward(self, spectra: torch.Tensor, tabular: torch.Tensor) -> torch.Tensor:
        logits = self.model(spectra, tabular)
        if self.without_tabular:
            # The tracer drops inputs the graph does not read; a sum over the
            # empty axis is exactly 0 and keeps data_tabular an input.
            logits = logits + tabular.sum(dim=1, keepdim=True)
        return torch.softmax(logits, dim=1)


def export_onnx(
    model: nn.Module,
    path: Path,
    n_channels: int,
    length: int,
    n_tabular: int,
    metadata: dict[str, object],
    sample_shape: tuple[int, ...] | None = None,
) -> None:
    """Write `path` atomically: inputs data_spectra (B, C, L) and data_tabular (B, T).

    data_tabular is there even when T is 0, so every exported model is called
    the same way; a model without tabular features takes a (B, 0) array.
    `sample_shape` replaces (C, L) for other inputs: (C, H, W) for an image model.
    """
    model = model.to("cpu").eval()
    wrapper = ProbabilityModel(model, n_tabular).eval()
    shape = sample_shape if sample_shape is not None else (n_channels, length)
    inputs = (torch.zeros(2, *shape), torch.zeros(2, n_tabular))
    names = ["data_spectra", "data_tabular"]
    with atomic_path(path) as tmp:
        torch.onnx.export(
            wrapper,
            inputs,
            str(tmp),
            input_names=names,
            output_names=["probabilities"],
            dynamic_axes={name: {0: "batch"} for name in [*names, "probabilities"]},
            opset_version=OPSET,
            dynamo=False,
        )
        proto = onnx.load(str(tmp))
        add_metadata(proto, metadata)
        onnx.save(proto, str(tmp))


def add_metadata(proto: onnx.ModelProto, metadata: dict[str, object]) -> None:
    """Each value as text: strings as they are, anything else as JSON."""
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key = key
        entry.value = value if isinstance(value, str) else json.dumps(value)


def write_model(proto: onnx.ModelProto, path: Path, metadata: dict[str, object]) -> None:
    """Check `proto`, add `metadata` and write it to `path` atomically."""
    onnx.checker.check_model(proto)
    add_metadata(proto, metadata)
    with atomic_path(path) as tmp:
        onnx.save(proto, str(tmp))


class _Rows:
    """`values[rows]`, gathered one slice at a time as `check_feeds` reads it."""

    def __init__(self, values: np.ndarray, rows: np.ndarray) -> None:
        self.values, self.rows = values, rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, part: slice) -> np.ndarray:
        return np.ascontiguousarray(self.values[self.rows[part]], dtype=np.float32)


def check_parity(
    path: Path,
    spectra: np.ndarray,
    tabular: np.ndarray,
    expected: np.ndarray,
    rows: np.ndarray | None = None,
) -> dict[str, float]:
    """Run the ONNX file on the test fold; fail unless it matches torch's probabilities.

    With `rows`, the test spectra are `spectra[rows]`, gathered `PARITY_BATCH`
    rows at a time: a cell passes its whole data set, and a 60k-sample test
    fold is not copied out at once (0.2 times a 300k cell's data).
    """
    return check_feeds(
        path,
        {
            "data_spectra": (
                spectra.astype(np.float32, copy=False) if rows is None else _Rows(spectra, rows)
            ),
            "data_tabular": tabular.astype(np.float32, copy=False),
        },
        expected,
    )


def check_feeds(path: Path, feeds: dict[str, np.ndarray], expected: np.ndarray) -> dict:
    """The parity gate for any input layout: the file's inputs must be exactly the
    names of `feeds` (in order; image models take one `image`), each array a batch
    along its first axis."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    if names != list(feeds):
        raise ExportError(f"{path}: inputs are {names}, expected {', '.join(feeds)}")
    n = len(next(iter(feeds.values())))
    # In slices: one run over a 60k-sample test fold held gigabytes of activations.
    got = np.concatenate(
        [
            session.run(
                ["probabilities"],
                {name: values[start : start + PARITY_BATCH] for name, values in feeds.items()},
            )[0]
            for start in range(0, max(n, 1), PARITY_BATCH)
        ]
    )
    if len(expected) == 0:
        return {"max_abs_diff": 0.0, "argmax_agree": 1.0, "n": 0}
    max_diff = float(np.max(np.abs(got - expected)))
    agree = float(np.mean(got.argmax(axis=1) == expected.argmax(axis=1)))
    if max_diff > PARITY_TOLERANCE or agree < 1.0:
        raise ExportError(
            f"{path}: onnxruntime disagrees with torch on the test fold "
            f"(max |p_onnx - p_torch| = {max_diff:.2e} > {PARITY_TOLERANCE:g} "
            f"or argmax agreement {agree:.4f} < 1)"
        )
    return {"max_abs_diff": max_diff, "argmax_agree": agree, "n": len(expected)}
