"""Image batch augmentation: seeded flips and padded crops on whole batches."""

from __future__ import annotations

import pytest
import torch

from spectragrid.train.image_augment import ImageAugment


def batch(n: int = 8) -> torch.Tensor:
    return torch.arange(n * 2 * 5 * 6, dtype=torch.int64).reshape(n, 2, 5, 6).to(torch.uint8)


def test_names_and_unknown_keys():
    assert ImageAugment({"hflip": True, "crop_padding": 4}).names == ("hflip", "crop4")
    assert not ImageAugment({})
    with pytest.raises(ValueError, match="'da' is no image transform"):
        ImageAugment({"da": True})
    with pytest.raises(ValueError, match="crop_padding: expected an integer >= 0"):
        ImageAugment({"crop_padding": -1})


def test_flips_are_whole_mirrors_drawn_from_the_seed():
    x = batch(64)
    out, tab = ImageAugment({"hflip": True})(
        x, torch.zeros(64, 0), torch.Generator().manual_seed(1)
    )
    mirrored = (out == x.flip(-1)).flatten(1).all(1)
    kept = (out == x).flatten(1).all(1)
    assert bool((mirrored | kept).all()) and 16 < int(mirrored.sum()) < 48
    again, _ = ImageAugment({"hflip": True})(x, tab, torch.Generator().manual_seed(1))
    assert torch.equal(out, again)
    assert out.dtype == torch.uint8 and tab.shape == (64, 0)


def test_crop_shifts_each_image_by_at_most_the_padding_with_zero_fill():
    x = batch(32)
    out, _ = ImageAugment({"crop_padding": 2})(
        x, torch.zeros(32, 0), torch.Generator().manual_seed(0)
    )
    assert out.shape == x.shape
    shifts = set()
    for i in range(32):
        found = None
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                padded = torch.nn.functional.pad(x[i], (2, 2, 2, 2))
                window = padded[:, 2 + dy : 2 + dy + 5, 2 + dx : 2 + dx + 6]
                if torch.equal(window, out[i]):
                    found = (dy, dx)
        assert found is not None, f"image {i} is no shifted window of its original"
        shifts.add(found)
    assert len(shifts) > 5  # each image draws its own shift
