import math
import re

import pytest
import torch

from spectragrid.core.config import complete_model
from spectragrid.train.augment import Augment, laplace_from_uniform, shift_along_length

CHANNELS = ["277", "380", "425"]
B, C, L = 4000, 3, 64


def complete(**config) -> dict:
    """Transform settings as the workflow hands them over: the schema's defaults filled in."""
    return complete_model({"arch": "cnn", "transforms": config})["transforms"]


DA = complete(da=True)["da"]
NEW_FLUORIMETER = complete(new_fluorimeter=True)["new_fluorimeter"]


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def only(**params: float) -> Augment:
    """`da` with every effect off except the given ones."""
    off = {"gain_sd": 0.0, "shift_scale": 0.0, "noise_sd": 0.0, "tabular_sd": 0.0}
    return Augment({"da": {**off, **params}}, CHANNELS)


def no_tabular() -> torch.Tensor:
    return torch.zeros(B, 0)


def test_gain_is_one_normal_factor_per_sample_and_channel():
    out, _ = only(gain_sd=0.1)(torch.ones(B, C, L), no_tabular(), gen())
    # One factor per (sample, channel): constant along the spectrum.
    assert torch.equal(out, out[:, :, :1].expand(-1, -1, L))
    gain = out[:, :, 0].double()
    n = gain.numel()
    assert gain.mean().item() == pytest.approx(1.0, abs=4 * 0.1 / math.sqrt(n))
    assert gain.std().item() == pytest.approx(0.1, abs=4 * 0.1 / math.sqrt(2 * n))


def truncated_laplace_probability(k: int, scale: float = 1.5) -> float:
    if k == 0:
        return 1.0 - math.exp(-1.0 / scale)
    a = abs(k)
    return (math.exp(-a / scale) - math.exp(-(a + 1) / scale)) / 2.0


def test_shift_follows_truncated_laplace_and_zero_fills():
    # A ramp of distinct positive values: the middle point reveals the shift,
    # the whole row checks the gather and the zero fill.
    ramp = torch.arange(1, L + 1, dtype=torch.float32).expand(B, C, L).contiguous()
    out, _ = only(shift_scale=1.5)(ramp, no_tabular(), gen())
    middle = L // 2
    shift = (middle + 1 - out[:, :, middle]).round().long()
    assert shift.abs().max() < middle  # the middle point is never vacated here

    source = torch.arange(L) - shift.unsqueeze(-1)
    inside = (source >= 0) & (source < L)
    expected = torch.where(inside, (source + 1).float(), torch.zeros(()))
    assert torch.equal(out, expected)
    # Vacated points are exactly zero, and there are |shift| of them per row.
    assert torch.equal((out == 0).sum(dim=2), shift.abs())

    n = shift.numel()
    for k in (-3, -2, -1, 0, 1, 2, 3):
        p = truncated_laplace_probability(k)
        observed = (shift == k).double().mean().item()
        assert observed == pytest.approx(p, abs=4 * math.sqrt(p * (1 - p) / n)), k


def test_shift_is_trunc_not_round():
    u = torch.tensor([0.5, 0.3, 0.7, 0.1, 0.9])
    x = laplace_from_uniform(u, 1.5)
    assert x[0].item() == 0.0
    assert x[1].item() == pytest.approx(1.5 * math.log(0.6))
    assert x[2].item() == pytest.approx(-1.5 * math.log(0.6))
    # -0.766 and +0.766 both give 0 points, where rounding would give -1 and +1.
    spike = torch.zeros(1, 2, 8)
    spike[:, :, 4] = 1.0
    moved = shift_along_length(spike, x[1:3].trunc().long().unsqueeze(0))
    assert torch.equal(moved, spike)


def test_noise_is_multiplicative_per_point():
    out, _ = only(noise_sd=0.05)(torch.full((B, C, L), 2.0), no_tabular(), gen())
    factor = (out / 2.0).double()
    n = factor.numel()
    assert factor.mean().item() == pytest.approx(1.0, abs=4 * 0.05 / math.sqrt(n))
    assert factor.std().item() == pytest.approx(0.05, abs=4 * 0.05 / math.sqrt(2 * n))
    # Independent across points, not one factor per row.
    assert factor[:, :, 0].sub(factor[:, :, 1]).abs().max() > 0


def test_tabular_factor_and_spectra_untouched_by_it():
    spectra = torch.ones(B, C, L)
    tabular = torch.full((B, 5), 3.0)
    out_spectra, out_tabular = only(tabular_sd=0.05)(spectra, tabular, gen())
    assert torch.equal(out_spectra, spectra)
    factor = (out_tabular / 3.0).double()
    n = factor.numel()
    assert factor.mean().item() == pytest.approx(1.0, abs=4 * 0.05 / math.sqrt(n))
    assert factor.std().item() == pytest.approx(0.05, abs=4 * 0.05 / math.sqrt(2 * n))


def test_full_da_is_reproducible_and_never_in_place():
    augment = Augment(complete(da=True), CHANNELS)
    spectra = torch.rand(64, C, L, generator=gen(9)) + 0.5
    tabular = torch.rand(64, 2, generator=gen(10))
    before = (spectra.clone(), tabular.clone())
    first = augment(spectra, tabular, gen(1))
    second = augment(spectra, tabular, gen(1))
    other = augment(spectra, tabular, gen(2))
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    assert not torch.equal(first[0], other[0])
    assert not torch.equal(first[1], other[1])
    assert torch.equal(spectra, before[0]) and torch.equal(tabular, before[1])
    assert first[0].dtype == torch.float32


def test_empty_tabular_passes_through():
    spectra, tabular = Augment(complete(da=True), CHANNELS)(
        torch.ones(8, C, L), torch.zeros(8, 0), gen()
    )
    assert tabular.shape == (8, 0)
    assert spectra.shape == (8, C, L)


def test_new_fluorimeter_zeroes_the_first_points_of_listed_channels():
    channels = ["277", "lspr", "380", "425"]
    length = 200
    n = 2000
    augment = Augment(complete(new_fluorimeter=True), channels)
    out, _ = augment(torch.ones(n, 4, length), torch.zeros(n, 0), gen(3))
    hit = out[:, 0, 0] == 0
    assert hit.float().mean().item() == pytest.approx(0.5, abs=4 * math.sqrt(0.25 / n))

    blind = torch.zeros(4, length, dtype=torch.bool)
    for row, points in ((0, 45), (2, 113), (3, 158)):
        blind[row, :points] = True
    assert torch.equal(out[hit] == 0, blind.expand(int(hit.sum()), -1, -1))
    assert torch.equal(out[~hit], torch.ones(int((~hit).sum()), 4, length))


def test_new_fluorimeter_probability_and_yaml_int_channel_keys():
    always = Augment({"new_fluorimeter": {"p": 1.0, "points": {277: 10}}}, ["277", "380"])
    out, _ = always(torch.ones(50, 2, 20), torch.zeros(50, 0), gen())
    assert torch.equal(out[:, 0, :10], torch.zeros(50, 10))
    assert torch.equal(out[:, 0, 10:], torch.ones(50, 10))
    assert torch.equal(out[:, 1], torch.ones(50, 20))
    never = Augment({"new_fluorimeter": {**NEW_FLUORIMETER, "p": 0.0}}, CHANNELS)
    out, _ = never(torch.ones(50, 3, 200), torch.zeros(50, 0), gen())
    assert torch.equal(out, torch.ones(50, 3, 200))


def test_names_follow_application_order():
    assert Augment({}, CHANNELS).names == ()
    assert Augment(None, CHANNELS).names == ()
    assert Augment(complete(da=True, new_fluorimeter=False), CHANNELS).names == ("da",)
    both = Augment(
        {"new_fluorimeter": {**NEW_FLUORIMETER, "p": 0.2}, "da": {**DA, "gain_sd": 0.2}}, CHANNELS
    )
    assert both.names == ("da", "new_fluorimeter")
    assert both.da is not None and both.da.gain_sd == 0.2 and both.da.shift_scale == 1.5


def test_no_transform_returns_the_batch_itself():
    spectra, tabular = torch.ones(4, C, L), torch.ones(4, 1)
    out = Augment(complete(da=False), CHANNELS)(spectra, tabular, gen())
    assert out[0] is spectra and out[1] is tabular


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"flip": True}, "'flip'; allowed: da, new_fluorimeter"),
        ({"da": {"gain": 0.1}}, "'gain'; allowed: gain_sd, shift_scale, noise_sd, tabular_sd"),
        ({"da": {**DA, "gain_sd": -1}}, "gain_sd: must be >= 0"),
        ({"new_fluorimeter": {**NEW_FLUORIMETER, "p": 1.5}}, "p: must be in [0, 1]"),
        ({"new_fluorimeter": {"p": 0.5, "points": {"277": -1}}}, "integer >= 0"),
        ({"da": "yes"}, "expected false or the mapping of its settings"),
        # the defaults live in the schema alone: settings come complete
        ({"da": True}, "complete_model expands `true`"),
        ({"da": {"gain_sd": 0.2}}, "augment.da: missing shift_scale, noise_sd, tabular_sd"),
    ],
)
def test_bad_config_is_rejected_with_the_key(config, fragment):
    with pytest.raises(ValueError, match=re.escape(fragment)):
        Augment(config, CHANNELS)


def test_channel_count_mismatch_is_rejected():
    with pytest.raises(ValueError, match="3 channels"):
        Augment(complete(da=True), ["277", "380"])(torch.ones(2, 3, 8), torch.zeros(2, 0), gen())
