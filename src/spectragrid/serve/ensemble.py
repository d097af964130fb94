"""K fold models as one ONNX file: each member's graph inside, their probabilities averaged.

A spectral cell's file takes `data_spectra` (B, C, L) and `data_tabular`
(B, T) (spectragrid.train.export), an image cell's `image` (B, H, W, C) uint8
(train.image_export); both return `probabilities` (B, n_classes). The
ensemble keeps its members' interface, so it is scored like any one cell.
Member i's names get the prefix `m<i>/`, its inputs are fed from the shared
ones, and an ONNX `Mean` node averages the members' outputs.
"""

from __future__ import annotations

import onnx
from onnx import compose, helper

OUTPUT = "probabilities"


class EnsembleError(ValueError):
    """Members that cannot be averaged (other inputs, outputs or classes)."""


def _prefix(i: int) -> str:
    return f"m{i}/"


def merge_members(members: list[onnx.ModelProto]) -> onnx.ModelProto:
    """One model whose `probabilities` are the mean of the members' (metadata not copied)."""
    if not members:
        raise EnsembleError("an ensemble needs at least one member")
    first = members[0]
    inputs = [v.name for v in first.graph.input]
    for i, member in enumerate(members):
        names = [v.name for v in member.graph.input]
        outputs = [v.name for v in member.graph.output]
        if names != inputs or outputs != [OUTPUT]:
            raise EnsembleError(
                f"member {i}: inputs {names} and outputs {outputs}, expected "
                f"{inputs} (member 0's) and [{OUTPUT!r}]"
            )
    nodes, initializers, value_info, functions = [], [], [], {}
    for i, member in enumerate(members):
        renamed = compose.add_prefix(member, _prefix(i))
        graph = renamed.graph
        # the shared inputs feed each member's own (renamed) inputs
        nodes += [
            helper.make_node("Identity", [name], [_prefix(i) + name], name=f"{_prefix(i)}in_{name}")
            for name in inputs
        ]
        nodes += list(graph.node)
        initializers += list(graph.initializer)
        value_info += list(graph.value_info)
        for function in renamed.functions:
            functions[(function.domain, function.name)] = function
    nodes.append(
        helper.make_node(
            "Mean",
            [_prefix(i) + OUTPUT for i in range(len(members))],
            [OUTPUT],
            name="ensemble_mean",
        )
    )
    graph = helper.make_graph(
        nodes,
        "ensemble",
        inputs=list(first.graph.input),
        outputs=list(first.graph.output),
        initializer=initializers,
        value_info=value_info,
    )
    opsets: dict[str, int] = {}
    for member in members:
        for opset in member.opset_import:
            opsets[opset.domain] = max(opsets.get(opset.domain, 0), opset.version)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid(domain, version) for domain, version in opsets.items()],
        functions=list(functions.values()),
    )
    model.ir_version = max(m.ir_version for m in members)
    onnx.checker.check_model(model)
    return model
