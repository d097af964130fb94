"""Spectral preprocessing: each step against a case worked out by hand, the pipeline's
fitting order, its shapes and errors, and its ONNX export."""

import io

import numpy as np
import onnxruntime as ort
import pytest
import torch
from scipy.signal import savgol_filter

from spectragrid.core.config import ConfigError, complete_model
from spectragrid.train.architectures._common import ModelError
from spectragrid.train.preprocessing import build_preprocessing, step_name

SAVGOL_SMOOTH = {"savgol": {"window": 5, "polyorder": 2, "deriv": 0}}


def spectra_like(rng: np.random.Generator, n: int, channels: int, length: int) -> np.ndarray:
    """Two peaks per channel under a per-sample offset and gain, plus noise: what
    scatter correction is for (random values would have no common shape)."""
    t = np.linspace(0, 1, length)
    shape = 800 * np.exp(-(((t - 0.3) / 0.08) ** 2)) + 400 * np.exp(-(((t - 0.7) / 0.1) ** 2))
    offset = rng.uniform(-50, 50, (n, channels, 1))
    gain = rng.uniform(0.7, 1.3, (n, channels, 1))
    noise = rng.normal(0, 5, (n, channels, length))
    return (offset + gain * shape + noise).astype(np.float32)


def fitted(steps, train: np.ndarray, wavelengths=None):
    module = build_preprocessing(steps, train.shape[1], train.shape[2], wavelengths)
    module.fit(train.astype(np.float32))
    return module


def run(module, x) -> np.ndarray:
    return module.transform(np.asarray(x, dtype=np.float32)[None] if np.ndim(x) == 2 else x)


def test_crop_keeps_the_wavelengths_in_the_range_both_ends_included():
    x = np.arange(20, dtype=np.float32).reshape(1, 2, 10)
    module = fitted([{"crop": [302, 305]}], x, wavelengths=300 + np.arange(10.0))
    assert module.out_length == 4
    assert run(module, x).tolist() == [[[2, 3, 4, 5], [12, 13, 14, 15]]]


@pytest.mark.parametrize(
    ("crop", "match"),
    [
        ([400, 500], r"no wavelength in \[400, 500\] nm; the spectra cover 300-309 nm"),
        ([305, 302], "needs the lower wavelength first"),
    ],
)
def test_a_crop_outside_the_spectra_is_a_model_error(crop, match):
    with pytest.raises(ModelError, match=match):
        build_preprocessing([{"crop": crop}], 1, 10, 300 + np.arange(10.0))


def test_crop_needs_the_wavelengths():
    with pytest.raises(ModelError, match="cropping needs the wavelength of every point"):
        build_preprocessing([{"crop": [300, 301]}], 1, 10)


def test_snv_centres_each_spectrum_and_divides_by_its_sample_sd():
    # mean 2.5, sd = sqrt((2.25 + 0.25 + 0.25 + 2.25) / 3) = sqrt(5 / 3)
    x = np.array([[[1, 2, 3, 4], [5, 5, 5, 5]]], dtype=np.float32)
    out = run(fitted(["snv"], x), x)
    sd = np.sqrt(5 / 3)
    np.testing.assert_allclose(out[0, 0], [-1.5 / sd, -0.5 / sd, 0.5 / sd, 1.5 / sd], rtol=1e-6)
    # a constant channel maps to zeros, not to a division by zero
    assert out[0, 1].tolist() == [0, 0, 0, 0]


def test_msc_regresses_each_spectrum_on_the_mean_training_spectrum():
    train = np.array([[[1, 2, 3]], [[3, 4, 5]]], dtype=np.float32)  # reference (2, 3, 4)
    module = fitted(["msc"], train)
    # x = 5 + 2 r: a = 5, b = 2, (x - a) / b is the reference itself
    np.testing.assert_allclose(run(module, [[9, 11, 13]])[0, 0], [2, 3, 4], rtol=1e-6)
    # x = (3, 3, 6): b = cov(x, r) / var(r) = 3 / 2, a = mean(x) - b mean(r) = -0.5
    np.testing.assert_allclose(
        run(module, [[3, 3, 6]])[0, 0], [3.5 / 1.5, 3.5 / 1.5, 6.5 / 1.5], rtol=1e-6
    )
    # a constant spectrum (b = 0) is only moved onto the reference's mean
    np.testing.assert_allclose(run(module, [[7, 7, 7]])[0, 0], [3, 3, 3], rtol=1e-6)


def test_savgol_smoothing_uses_the_classic_coefficients_and_fits_the_ends():
    # window 5, order 2: (-3, 12, 17, 12, -3) / 35 inside; the first point takes the
    # quadratic through the first 5 points at its own position: (31, 9, -3, -5, 3) / 35
    x = np.array([[[1, 2, 4, 8, 16, 32, 64]]], dtype=np.float32)
    out = run(fitted([SAVGOL_SMOOTH], x), x)[0, 0]
    assert out[2] == pytest.approx((-3 * 1 + 12 * 2 + 17 * 4 + 12 * 8 - 3 * 16) / 35)
    assert out[3] == pytest.approx((-3 * 2 + 12 * 4 + 17 * 8 + 12 * 16 - 3 * 32) / 35)
    assert out[0] == pytest.approx((31 * 1 + 9 * 2 - 3 * 4 - 5 * 8 + 3 * 16) / 35)
    assert out[6] == pytest.approx((3 * 4 - 5 * 8 - 3 * 16 + 9 * 32 + 31 * 64) / 35)
    np.testing.assert_allclose(out, savgol_filter(x[0, 0], 5, 2), rtol=1e-5)


def test_savgol_derivatives_per_point():
    # a quadratic is its own least-squares quadratic: exact everywhere, ends included
    t = np.arange(9.0)
    square = (t**2).astype(np.float32).reshape(1, 1, 9)
    first = {"savgol": {"window": 5, "polyorder": 2, "deriv": 1}}
    second = {"savgol": {"window": 5, "polyorder": 2, "deriv": 2}}
    np.testing.assert_allclose(run(fitted([SAVGOL_SMOOTH], square), square)[0, 0], t**2, atol=1e-4)
    np.testing.assert_allclose(run(fitted([first], square), square)[0, 0], 2 * t, atol=1e-4)
    np.testing.assert_allclose(run(fitted([second], square), square)[0, 0], 2.0, atol=1e-4)
    # inside, the first derivative is (-2, -1, 0, 1, 2) / 10 applied to the window
    x = np.array([[[1, 2, 4, 8, 16, 32, 64]]], dtype=np.float32)
    slope = run(fitted([first], x), x)[0, 0]
    assert slope[3] == pytest.approx((-2 * 2 - 1 * 4 + 1 * 16 + 2 * 32) / 10)
    rng = np.random.default_rng(0)
    noisy = rng.normal(size=(2, 3, 40)).astype(np.float32)
    for step, deriv in ((first, 1), (second, 2)):
        ours = run(fitted([step], noisy), noisy)
        np.testing.assert_allclose(
            ours, savgol_filter(noisy, 5, 2, deriv=deriv), rtol=1e-4, atol=1e-5
        )


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ({"window": 5, "polyorder": 5, "deriv": 0}, r"polyorder \(5\) must be below window \(5\)"),
        ({"window": 5, "polyorder": 1, "deriv": 2}, r"deriv \(2\) cannot exceed polyorder \(1\)"),
        ({"window": 11, "polyorder": 2, "deriv": 0}, r"window 11 is longer than the spectra \(10"),
    ],
)
def test_savgol_settings_the_schema_cannot_judge_are_model_errors(args, match):
    with pytest.raises(ModelError, match=rf"preprocessing\.0 \(savgol\): {match}"):
        build_preprocessing([{"savgol": args}], 1, 10)


def test_an_even_savgol_window_is_refused_by_the_schema():
    steps = [{"savgol": {"window": 10, "polyorder": 2, "deriv": 0}}]
    with pytest.raises(ConfigError, match=r"preprocessing\.0\.savgol\.window: 10"):
        complete_model({"arch": "logreg", "preprocessing": steps})


def test_standard_scaling_per_point_over_the_training_rows():
    train = np.array([[[1, 4]], [[3, 4]]], dtype=np.float32)  # point 0: mean 2, sd 1
    module = fitted(["standard"], train)
    assert run(module, [[5, 4]])[0, 0].tolist() == [3, 0]  # a constant point maps to 0


def test_minmax_maps_the_training_range_onto_minus_one_one():
    train = np.array([[[0, 7]], [[10, 7]]], dtype=np.float32)
    module = fitted(["minmax"], train)
    out = run(module, [[5, 7]])[0, 0]
    assert out[0] == pytest.approx(0, abs=1e-7) and out[1] == -1  # a constant point maps to -1
    assert run(module, [[0, 7]])[0, 0, 0] == -1 and run(module, [[10, 7]])[0, 0, 0] == 1


def test_each_step_is_fitted_on_the_output_of_the_steps_before_it():
    rng = np.random.default_rng(1)
    train = rng.uniform(0, 1000, (30, 2, 25)).astype(np.float32)
    module = fitted(
        [{"crop": [303, 320]}, "snv", SAVGOL_SMOOTH, "standard"], train, 300 + np.arange(25.0)
    )
    out = run(module, train)
    assert out.shape == (30, 2, 18)
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=0), 1.0, rtol=1e-4)


def test_an_empty_list_passes_the_spectra_through():
    x = np.arange(6, dtype=np.float32).reshape(1, 2, 3)
    module = fitted([], x)
    assert module.out_length == 3 and np.array_equal(run(module, x), x)


def test_under_bf16_autocast_the_preprocessing_runs_in_float32():
    train = spectra_like(np.random.default_rng(2), 10, 3, 50)
    module = fitted(["snv", SAVGOL_SMOOTH, "msc", "standard"], train)
    x = torch.from_numpy(train)
    with torch.no_grad():
        expected = module(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = module(x)
    assert got.dtype == torch.float32 and torch.equal(got, expected)


def test_every_step_exports_to_onnx_and_matches_onnxruntime():
    rng = np.random.default_rng(3)
    train = spectra_like(rng, 40, 2, 60)
    steps = [
        {"crop": [305, 350]},
        "msc",
        "snv",
        {"savgol": {"window": 7, "polyorder": 3, "deriv": 1}},
        "standard",
        "minmax",
    ]
    module = fitted(steps, train, 300 + np.arange(60.0)).eval()
    buffer = io.BytesIO()
    torch.onnx.export(
        module,
        (torch.zeros(2, 2, 60),),
        buffer,
        input_names=["x"],
        output_names=["y"],
        dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    for batch in (5, 1):
        x = spectra_like(rng, batch, 2, 60)
        got = session.run(["y"], {"x": x})[0]
        np.testing.assert_allclose(got, run(module, x), atol=1e-4)


def test_step_names():
    assert [step_name(s) for s in ["snv", {"crop": [1, 2]}, SAVGOL_SMOOTH]] == [
        "snv",
        "crop",
        "savgol",
    ]


CHAINS = [
    ["minmax"],
    ["standard"],
    ["msc"],
    ["snv", "standard"],
    [{"crop": [3, 20]}, "msc", SAVGOL_SMOOTH, "standard", "minmax"],
]


@pytest.mark.parametrize("steps", CHAINS, ids=lambda steps: "-".join(map(step_name, steps)))
def test_a_fit_in_chunks_of_the_training_rows_is_the_one_shot_fit(steps):
    """Fitted on rows picked out of the whole array, 7 at a time, each step's buffers are
    those of the fit on a copy of the rows (min-max exactly, the others to 1e-6)."""
    rng = np.random.default_rng(4)
    data = spectra_like(rng, 200, 2, 25)
    data.flags.writeable = False  # a cell's shared array
    rows = np.sort(rng.choice(200, 123, replace=False))
    wavelengths = np.arange(25.0)
    whole = fitted(steps, data[rows], wavelengths)
    chunked = build_preprocessing(steps, 2, 25, wavelengths)
    chunked.fit(data, rows=rows, chunk_rows=7)
    one_shot = whole.state_dict()
    for name, value in chunked.state_dict().items():
        if name.endswith(("low", "inv_span")):
            torch.testing.assert_close(value, one_shot[name], rtol=0, atol=0)
        else:
            torch.testing.assert_close(value, one_shot[name], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(run(chunked, data), run(whole, data), rtol=1e-5, atol=1e-5)


def test_one_chunk_fits_exactly_what_numpy_computes():
    """The running mean and sd of `standard` start from numpy's own mean and std."""
    rng = np.random.default_rng(5)
    data = spectra_like(rng, 50, 1, 9)
    module = fitted(["standard"], data)
    wide = data.astype(np.float64)
    expected_sd = wide.std(axis=0)
    np.testing.assert_array_equal(
        module.steps[0].mean.numpy(), wide.mean(axis=0).astype(np.float32)
    )
    np.testing.assert_array_equal(
        module.steps[0].inv_sd.numpy(), (1.0 / expected_sd).astype(np.float32)
    )


def test_a_cell_fits_its_scaling_on_its_training_rows_without_copying_them(monkeypatch):
    """SpectraClassifier.fit_scaling with `rows`: the same buffers as a fit on the rows'
    copy, and the spectra reach the preprocessing as the whole array and the rows."""
    from spectragrid.train.models import build_model
    from spectragrid.train.preprocessing import Preprocessing

    rng = np.random.default_rng(6)
    spectra = spectra_like(rng, 300, 3, 64)
    tabular = rng.normal(size=(300, 2)).astype(np.float32)
    rows = np.flatnonzero(rng.random(300) < 0.6)
    seen = []
    fit = Preprocessing.fit

    def spy(self, values, rows=None, chunk_rows=4096):
        seen.append((values, rows))
        return fit(self, values, rows, chunk_rows=16)

    monkeypatch.setattr(Preprocessing, "fit", spy)
    model = build_model("cnn", {}, 3, 64, 2, 2)
    model.fit_scaling(spectra, tabular, rows=rows)
    copy = build_model("cnn", {}, 3, 64, 2, 2)
    copy.fit_scaling(spectra[rows], tabular[rows])
    assert seen[0][0] is spectra and seen[0][1] is rows
    for name, value in copy.state_dict().items():
        if "scale" in name:
            torch.testing.assert_close(model.state_dict()[name], value, rtol=0, atol=0)
