"""A cell's rows as tensors in memory, each epoch's order of them, and their batches.

Batches are slices of a seeded permutation of in-memory tensors: no
per-sample Python, no DataLoader workers, no collation. A cell's spectra are
the data set's whole (N, C, L) tensor and the cell's row indices into it:
each batch gathers its rows, so the train, validation and test parts of a
300k-sample cell cost no copy of the data (which would double its memory).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]


class Arrays:
    """A cell's part (train, validation or test): spectra, tabular, labels, weights.

    `spectra` may be the whole data set's tensor with `rows` the part's row
    indices into it; batches gather their rows from it. Reading the attribute
    `spectra` gives the part's own rows either way (gathered once, on first
    use: prediction and the ONNX check read the test rows as one tensor).
    """

    def __init__(
        self,
        spectra: torch.Tensor,  # (N, C, L) float32: the part's rows, or every row with `rows`
        tabular: torch.Tensor,  # (n, T) float32
        labels: torch.Tensor,  # (n,) int64
        # (n,) float32 per-sample loss weights; None: every sample weighs 1, which
        # spares each step a gather and a multiply
        weights: torch.Tensor | None = None,
        rows: torch.Tensor | None = None,  # (n,) int64 indices into `spectra`
    ) -> None:
        if rows is not None and len(rows) != len(labels):
            raise ValueError(f"{len(rows)} row indices for {len(labels)} labels")
        self.source = spectra
        self.rows = rows
        self.tabular = tabular
        self.labels = labels
        self.weights = weights
        self._gathered: torch.Tensor | None = None

    @property
    def spectra(self) -> torch.Tensor:
        if self.rows is None:
            return self.source
        if self._gathered is None:
            self._gathered = self.source.index_select(0, self.rows)
        return self._gathered

    def spectra_of(self, index: torch.Tensor | slice) -> torch.Tensor:
        """The spectra of the part's rows `index` (positions within the part)."""
        if self.rows is None:
            return (
                self.source[index]
                if isinstance(index, slice)
                else self.source.index_select(0, index)
            )
        return self.source.index_select(0, self.rows[index])


def batch_bounds(n: int, batch_size: int, shuffle: bool) -> list[tuple[int, int]]:
    """(start, stop) of each batch of `n` rows.

    In training (`shuffle`) a last batch of one sample, which breaks batch
    norm, joins the previous one.
    """
    bounds = []
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        if shuffle and n - stop == 1:
            stop = n
        bounds.append((start, stop))
        if stop == n:
            break
    return bounds


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The training rows' order in `epoch` (0-based): a permutation that depends on
    (seed, epoch) only, so a resumed run draws the order an uninterrupted one draws."""
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(n, generator=generator)


def batches(data: Arrays, batch_size: int, order: torch.Tensor | None = None) -> Iterator[Batch]:
    """(spectra, tabular, labels, weights or None) batches of `data`: rows in `order`
    (training, where a lone last sample joins the previous batch) or in row order
    (evaluation)."""
    shuffle = order is not None
    others = (data.tabular, data.labels, data.weights)
    for start, stop in batch_bounds(len(data.labels), batch_size, shuffle):
        if order is not None:
            # index_select copies whole rows: 3x faster than t[idx] on spectra
            idx = order[start:stop]
            rest = tuple(None if t is None else t.index_select(0, idx) for t in others)
            yield (data.spectra_of(idx), *rest)  # type: ignore[misc]
        else:
            rest = tuple(None if t is None else t[start:stop] for t in others)
            yield (data.spectra_of(slice(start, stop)), *rest)  # type: ignore[misc]
