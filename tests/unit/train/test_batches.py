"""Training rows in a seeded order per epoch, gathered into batches; evaluation in row order."""

import pytest
import torch

from spectragrid.train.batches import Arrays, batch_bounds, batches, epoch_order


@pytest.mark.parametrize("n", [129, 128, 130, 1, 64])
def test_batches_match_their_announced_count(n):
    """An epoch's training batches cover every row once, as many as announced, none of one."""
    data = Arrays(torch.zeros(n, 1, 4), torch.zeros(n, 0), torch.zeros(n, dtype=torch.int64))
    sizes = [len(b[2]) for b in batches(data, 64, epoch_order(n, seed=0, epoch=0))]
    assert len(sizes) == len(batch_bounds(n, 64, shuffle=True)) and sum(sizes) == n
    assert min(sizes) > 1 or n == 1


def test_an_epochs_order_depends_on_seed_and_epoch_only():
    first = epoch_order(50, seed=3, epoch=4)
    torch.manual_seed(123)  # the global generator plays no part
    assert torch.equal(first, epoch_order(50, seed=3, epoch=4))
    assert sorted(first.tolist()) == list(range(50))
    assert not torch.equal(first, epoch_order(50, seed=3, epoch=5))
    assert not torch.equal(first, epoch_order(50, seed=4, epoch=4))


def test_training_batches_gather_rows_in_order_and_evaluation_keeps_row_order():
    n = 7
    spectra = torch.arange(n, dtype=torch.float32).view(n, 1, 1).expand(n, 2, 3).contiguous()
    data = Arrays(
        spectra,
        torch.arange(n, dtype=torch.float32).view(n, 1),
        torch.arange(n),
        torch.arange(n, dtype=torch.float32) / 10,
    )
    order = torch.tensor([6, 0, 5, 1, 4, 2, 3])
    gathered = list(batches(data, 3, order))
    # 7 rows in batches of 3: the lone last row joins the second batch
    assert [b[2].tolist() for b in gathered] == [[6, 0, 5], [1, 4, 2, 3]]
    for spectra_b, tabular_b, labels_b, weights_b in gathered:
        assert torch.equal(spectra_b[:, 0, 0], labels_b.float())
        assert torch.equal(tabular_b[:, 0], labels_b.float())
        assert torch.equal(weights_b, labels_b.float() / 10)
    rows = [b[2].tolist() for b in batches(data, 3)]
    assert rows == [[0, 1, 2], [3, 4, 5], [6]]
    unweighted = Arrays(data.spectra, data.tabular, data.labels)
    assert all(b[3] is None for b in batches(unweighted, 3, order))


def test_rows_into_a_shared_tensor_give_the_batches_of_a_copied_part():
    """A part held as the whole tensor and its row indices batches exactly as a copy of
    those rows does, in training order and in row order, and reads back as those rows."""
    generator = torch.Generator().manual_seed(0)
    every = torch.rand(40, 2, 5, generator=generator)
    rows = torch.tensor([3, 7, 8, 15, 16, 22, 30, 31, 39])
    n = len(rows)
    tabular, labels = torch.rand(n, 2, generator=generator), torch.arange(n)
    shared = Arrays(every, tabular, labels, rows=rows)
    copied = Arrays(every[rows].contiguous(), tabular, labels)
    assert torch.equal(shared.spectra, copied.spectra)
    assert shared.spectra is shared.spectra  # gathered once
    order = epoch_order(n, seed=1, epoch=0)
    for order_or_none in (order, None):
        pairs = zip(
            batches(shared, 4, order_or_none), batches(copied, 4, order_or_none), strict=True
        )
        for a, b in pairs:
            assert all(torch.equal(x, y) for x, y in zip(a[:3], b[:3], strict=True))
    with pytest.raises(ValueError, match="9 row indices for 8 labels"):
        Arrays(every, tabular[:8], labels[:8], rows=rows)
