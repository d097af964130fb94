"""A model's budgets (`models.<name>.budget`): parameters and training time.

`max_parameters` is checked on the built model, before any training: a model
over it fails with its name and its count. `max_train_seconds` bounds the
training of a cell: after each epoch the loop stops if another epoch as long
as the one just done would end past the budget, so training ends within it
whenever epochs take about the same time; an epoch is never cut short (its
validation and best weights stay whole). The card records the stop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn

from spectragrid.train.architectures._common import ModelError


class BudgetError(ModelError):
    """A model over its parameter budget."""


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def check_max_parameters(name: str, model: nn.Module, max_parameters: int | None) -> int:
    """The model's parameter count, or BudgetError if it exceeds `max_parameters`."""
    count = parameter_count(model)
    if max_parameters is not None and count > max_parameters:
        raise BudgetError(
            f"models.{name}.budget.max_parameters: model {name!r} has {count:,} parameters, "
            f"over its budget of {max_parameters:,}"
        )
    return count


def check_model_budgets(
    models: Mapping[str, Mapping], build: Callable[[str, Mapping], nn.Module]
) -> None:
    """Every parameter budget of a study's `models`, each model built by `build(name,
    entry)` on the meta device (shapes only: no memory, no initialisation time);
    one BudgetError listing each model over its budget."""
    problems = []
    for name, entry in models.items():
        limit = (entry.get("budget") or {}).get("max_parameters")
        if limit is None:
            continue
        with torch.device("meta"):
            model = build(name, entry)
        try:
            check_max_parameters(name, model, limit)
        except BudgetError as error:
            problems.append(str(error))
    if problems:
        raise BudgetError("config is invalid:\n" + "\n".join(f"  - {p}" for p in problems))


def out_of_time(epoch_seconds: list[float], max_train_seconds: float | None) -> bool:
    """Whether another epoch as long as the last would end past the budget."""
    if max_train_seconds is None or not epoch_seconds:
        return False
    return sum(epoch_seconds) + epoch_seconds[-1] > max_train_seconds
