"""Spectral preprocessing as a torch module with fitted buffers: one implementation for
every model family.

A model's `preprocessing` (models.<name>.preprocessing in the config) is an
ordered list of steps, applied to raw spectra (B, C, L) channel by channel:

    crop: [low, high]   keep the wavelengths from low to high nm (both included)
    snv                 per spectrum: (x - mean) / sd, sd with n - 1 (Barnes et al. 1989)
    msc                 per spectrum: regress x on the reference r (the mean training
                        spectrum at that point of the list), x ~ a + b r; return (x - a) / b
    savgol: {window, polyorder, deriv}
                        Savitzky-Golay smoothing or derivative (per point), the ends from
                        the polynomial of the end window, as scipy.signal.savgol_filter does
    standard            per point: (x - mean) / sd over the training rows (sd with n)
    minmax              per point: the training range onto [-1, 1] (the networks' default)

Steps are fitted one after the other on the training rows, each on the output of
the steps before it, and stored as buffers: a network carries them in its
checkpoint and its ONNX graph, and a classical model uses the same module to
turn spectra into features, then exports it into the same ONNX file. So a
served spectrum goes through exactly the computation that training saw.

A constant feature or spectrum (a zero-padded channel, say) maps to 0 under
`snv` and `standard` and to -1 under `minmax`, rather than dividing by zero.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from spectragrid.train.architectures._common import ModelError

__all__ = [
    "FIT_ROWS",
    "STEP_NAMES",
    "Crop",
    "MinMaxScale",
    "Msc",
    "Preprocessing",
    "SavitzkyGolay",
    "Snv",
    "StandardScale",
    "build_preprocessing",
    "step_name",
]

STEP_NAMES: tuple[str, ...] = ("crop", "snv", "msc", "savgol", "standard", "minmax")
# Training rows preprocessed per chunk of a fit: 22 MB of float32 at 3 x 446 points.
FIT_ROWS = 4096
# Below this a spread counts as zero: the feature or spectrum is constant.
_TINY = 1e-12


class _Step(nn.Module):
    """A preprocessing step: `fit` on training rows (B, ...), then a pure forward.

    A step that learns from the training rows (`learns`) takes them in
    consecutive chunks (`fit_chunks`), so that no fit needs them all at once.
    """

    learns = False

    def fit(self, x: torch.Tensor | np.ndarray) -> None:
        """Fit on every training row at once."""
        if self.learns:
            self.fit_chunks([np.asarray(x)])

    def fit_chunks(self, chunks: Iterable[np.ndarray]) -> None:
        """Fit on the training rows, given as consecutive chunks (B_i, ...).
        Most steps have nothing to fit."""

    def out_length(self, length: int) -> int:
        return length


class MinMaxScale(_Step):
    """Per-feature affine map of the training range onto [-1, 1]."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.register_buffer("low", torch.zeros(shape))
        self.register_buffer("inv_span", torch.ones(shape))

    learns = True

    def fit_chunks(self, chunks: Iterable[np.ndarray]) -> None:
        low = high = None
        for x in chunks:
            if not len(x):
                continue
            low = x.min(axis=0) if low is None else np.minimum(low, x.min(axis=0))
            high = x.max(axis=0) if high is None else np.maximum(high, x.max(axis=0))
        if low is None or high is None:
            raise ValueError("min-max scaling needs at least one training row")
        span = high - low
        # A constant feature (e.g. zero padding) maps to -1 instead of dividing by zero.
        inv = np.where(span > 0, 1.0 / np.where(span > 0, span, 1.0), 0.0)
        self.low.copy_(torch.from_numpy(low.astype(np.float32)))
        self.inv_span.copy_(torch.from_numpy(inv.astype(np.float32)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x * scale + offset, with scale = 2 / span and offset = -1 - low * scale:
        # one pass over the batch instead of four (the small per-feature terms
        # are recomputed each call, so the buffers stay the only state).
        scale = self.inv_span * 2.0
        return torch.addcmul(-1.0 - self.low * scale, x, scale)


class StandardScale(_Step):
    """Per-feature (x - mean) / sd, both over the training rows (sd with n, as
    scikit-learn's StandardScaler)."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(shape))
        self.register_buffer("inv_sd", torch.ones(shape))

    learns = True

    def fit_chunks(self, chunks: Iterable[np.ndarray]) -> None:
        # Each chunk's mean and sum of squared deviations, merged (Chan et al. 1979):
        # one chunk gives exactly numpy's mean and std, several agree with them to
        # rounding, without a second pass over the rows.
        count, mean, squares = 0, None, None
        for x in chunks:
            x = np.asarray(x, dtype=np.float64)
            if not len(x):
                continue
            part_mean = x.sum(axis=0) / len(x)
            part_squares = np.square(x - part_mean).sum(axis=0)
            if mean is None or squares is None:
                count, mean, squares = len(x), part_mean, part_squares
                continue
            total = count + len(x)
            delta = part_mean - mean
            mean = mean + delta * (len(x) / total)
            squares = squares + part_squares + np.square(delta) * (count * len(x) / total)
            count = total
        if mean is None or squares is None:
            mean = np.zeros(tuple(self.mean.shape))
            squares = np.zeros(tuple(self.mean.shape))
        sd = np.sqrt(squares / max(count, 1))
        inv = np.where(sd > _TINY, 1.0 / np.where(sd > _TINY, sd, 1.0), 0.0)
        self.mean.copy_(torch.from_numpy(mean.astype(np.float32)))
        self.inv_sd.copy_(torch.from_numpy(inv.astype(np.float32)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) * self.inv_sd


class Crop(_Step):
    """Keep the points from `start` to `stop` (exclusive) of every channel."""

    def __init__(self, start: int, stop: int) -> None:
        super().__init__()
        self.start, self.stop = int(start), int(stop)

    def out_length(self, length: int) -> int:
        return self.stop - self.start

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, self.start : self.stop]


class Snv(_Step):
    """Standard normal variate: each spectrum centred and divided by its sd (n - 1)."""

    def __init__(self, length: int) -> None:
        super().__init__()
        # fixed with the model's length, so the exported graph holds a constant
        self.dof = max(length - 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        centred = x - x.mean(dim=-1, keepdim=True)
        sd = torch.sqrt((centred * centred).sum(dim=-1, keepdim=True) / self.dof)
        return centred / torch.clamp(sd, min=_TINY)


class Msc(_Step):
    """Multiplicative scatter correction against the mean training spectrum.

    Per channel, x ~ a + b r by least squares over the points, and the output is
    (x - a) / b = (x - mean(x)) / b + mean(r). A spectrum with b = 0 (constant,
    or a constant reference) is only centred on the reference's mean.
    """

    def __init__(self, n_channels: int, length: int) -> None:
        super().__init__()
        self.register_buffer("ref_centred", torch.zeros(n_channels, length))
        self.register_buffer("ref_mean", torch.zeros(n_channels, 1))
        self.register_buffer("inv_ref_ss", torch.zeros(n_channels, 1))

    learns = True

    def fit_chunks(self, chunks: Iterable[np.ndarray]) -> None:
        count, total = 0, np.zeros(tuple(self.ref_centred.shape))
        for x in chunks:
            total += np.asarray(x, dtype=np.float64).sum(axis=0)
            count += len(x)
        # no training row: no reference (NaN), as the mean of nothing
        ref = total / count if count else np.full(total.shape, np.nan)
        mean = ref.mean(axis=-1, keepdims=True)
        centred = ref - mean
        ss = (centred * centred).sum(axis=-1, keepdims=True)
        inv = np.where(ss > _TINY, 1.0 / np.where(ss > _TINY, ss, 1.0), 0.0)
        self.ref_centred.copy_(torch.from_numpy(centred.astype(np.float32)))
        self.ref_mean.copy_(torch.from_numpy(mean.astype(np.float32)))
        self.inv_ref_ss.copy_(torch.from_numpy(inv.astype(np.float32)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        centred = x - x.mean(dim=-1, keepdim=True)
        slope = (centred * self.ref_centred).sum(dim=-1, keepdim=True) * self.inv_ref_ss
        slope = torch.where(slope.abs() > _TINY, slope, torch.ones_like(slope))
        return centred / slope + self.ref_mean


class SavitzkyGolay(_Step):
    """Savitzky-Golay filter per channel: smoothing (deriv 0) or a derivative per point.

    Inside, each point is the least-squares polynomial of degree `polyorder` over
    the `window` points around it, evaluated (or differentiated) at its centre:
    a convolution with scipy.signal.savgol_coeffs. The `window // 2` points at
    each end take the polynomial fitted to the first (last) `window` points,
    evaluated at their own position, as savgol_filter's default mode="interp";
    mirrored ends would make an odd derivative at the edge point exactly zero,
    a constant that later scaling would blow up from rounding noise.
    """

    def __init__(self, n_channels: int, window: int, polyorder: int, deriv: int) -> None:
        super().__init__()
        # scipy.signal costs about a second to import: only models that smooth pay it.
        from scipy.signal import savgol_coeffs

        def coefficients(position: int | None) -> np.ndarray:
            values = savgol_coeffs(window, polyorder, deriv=deriv, pos=position, use="dot")
            return np.asarray(values, dtype=np.float32)

        half = window // 2
        centre = torch.from_numpy(coefficients(None))
        self.register_buffer("kernel", centre.expand(n_channels, 1, window).clone())
        # (window, half): the first `window` points -> the first `half` outputs, and so on
        left = np.stack([coefficients(i) for i in range(half)], axis=1)
        right = np.stack([coefficients(half + 1 + j) for j in range(half)], axis=1)
        self.register_buffer("left", torch.from_numpy(left))
        self.register_buffer("right", torch.from_numpy(right))
        self.window = window
        self.n_channels = n_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inside = nn.functional.conv1d(x, self.kernel, groups=self.n_channels)
        first = torch.matmul(x[:, :, : self.window], self.left)
        last = torch.matmul(x[:, :, -self.window :], self.right)
        return torch.cat([first, inside, last], dim=-1)


class Preprocessing(nn.Module):
    """The steps in order; `fit` fits each on the output of the ones before it."""

    def __init__(self, steps: Sequence[_Step], n_channels: int, length: int) -> None:
        super().__init__()
        self.steps = nn.ModuleList(steps)
        self.n_channels = n_channels
        self.in_length = length
        out = length
        for step in self.steps:
            out = step.out_length(out)
        self.out_length = out

    @torch.no_grad()
    def fit(
        self,
        spectra: np.ndarray | torch.Tensor,
        rows: np.ndarray | None = None,
        chunk_rows: int = FIT_ROWS,
    ) -> None:
        """Fit the steps on the training rows: `spectra[rows]`, or every row of `spectra`.

        The rows are gathered and preprocessed `chunk_rows` at a time, once per
        step that learns (each on the output of the steps before it): a cell
        passes the whole data set and its training rows, and no copy of those
        rows is made (at 300,000 samples it was 0.6 times the data, and the
        output of each step as much again).
        """
        if isinstance(spectra, torch.Tensor):
            spectra = spectra.numpy()
        for index, step in enumerate(self.steps):
            if step.learns:
                step.fit_chunks(self._chunks(spectra, rows, chunk_rows, self.steps[:index]))

    @staticmethod
    def _chunks(
        spectra: np.ndarray, rows: np.ndarray | None, chunk_rows: int, before: Iterable[_Step]
    ) -> Iterator[np.ndarray]:
        """The training rows, `chunk_rows` at a time, through the steps `before`."""
        count = len(spectra) if rows is None else len(rows)
        for start in range(0, max(count, 1), chunk_rows):
            stop = start + chunk_rows
            part = spectra[start:stop] if rows is None else spectra[rows[start:stop]]
            x = as_tensor(part)
            for step in before:
                x = step(x)
            yield x.numpy()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        device = x.device.type
        if not torch.is_autocast_enabled(device):
            return self._run(x)
        # Under mixed precision the trunk runs in bf16 or fp16; the preprocessing
        # (sums over whole spectra, divisions) stays in float32 like the head.
        with torch.autocast(device, enabled=False):
            return self._run(x.float())

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        for step in self.steps:
            x = step(x)
        return x

    @torch.no_grad()
    def transform(self, spectra: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """float32 preprocessed spectra of a numpy array, in batches."""
        self.eval()
        parts = [
            self(as_tensor(spectra[i : i + batch_size])).numpy()
            for i in range(0, len(spectra), batch_size)
        ]
        if not parts:
            return np.zeros((0, self.n_channels, self.out_length), dtype=np.float32)
        return np.concatenate(parts)


def as_tensor(values: np.ndarray) -> torch.Tensor:
    """float32 `values` as a tensor, sharing their memory when they are contiguous float32."""
    with warnings.catch_warnings():
        # a slice of a cell's shared read-only array: the steps only read it
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))


def step_name(step: str | dict) -> str:
    """`snv` for "snv", `savgol` for {"savgol": {...}}."""
    return step if isinstance(step, str) else next(iter(step))


def build_preprocessing(
    steps: Sequence[str | dict],
    n_channels: int,
    length: int,
    wavelengths: np.ndarray | None = None,
) -> Preprocessing:
    """The unfitted module of `steps` (as the config's schema checks them) for spectra
    (B, n_channels, length); `wavelengths` (nm, one per point) is needed by `crop`.

    ModelError names a step the schema cannot judge: a crop outside the
    wavelengths, a Savitzky-Golay window too long for the spectra.
    """
    modules: list[_Step] = []
    current = length
    axis = None if wavelengths is None else np.asarray(wavelengths, dtype=np.float64)
    for index, step in enumerate(steps):
        name = step_name(step)
        where = f"preprocessing.{index} ({name})"
        args = None if isinstance(step, str) else step[name]
        if name == "crop":
            module: _Step = _crop(args, axis, current, where)
            axis = axis[module.start : module.stop]  # type: ignore[index, attr-defined]
        elif name == "snv":
            module = Snv(current)
        elif name == "msc":
            module = Msc(n_channels, current)
        elif name == "savgol":
            module = _savgol(args, n_channels, current, where)
        elif name == "standard":
            module = StandardScale((n_channels, current))
        elif name == "minmax":
            module = MinMaxScale((n_channels, current))
        else:
            raise ModelError(f"{where}: unknown step; allowed: {', '.join(STEP_NAMES)}")
        modules.append(module)
        current = module.out_length(current)
    return Preprocessing(modules, n_channels, length)


def _crop(args: object, axis: np.ndarray | None, length: int, where: str) -> Crop:
    if axis is None or len(axis) != length:
        raise ModelError(f"{where}: cropping needs the wavelength of every point")
    low, high = (float(v) for v in args)  # type: ignore[union-attr]
    if not low < high:
        raise ModelError(f"{where}: [{low:g}, {high:g}] needs the lower wavelength first")
    kept = np.flatnonzero((axis >= low) & (axis <= high))
    if len(kept) == 0:
        raise ModelError(
            f"{where}: no wavelength in [{low:g}, {high:g}] nm; the spectra cover "
            f"{axis[0]:g}-{axis[-1]:g} nm"
        )
    return Crop(int(kept[0]), int(kept[-1]) + 1)


def _savgol(args: object, n_channels: int, length: int, where: str) -> SavitzkyGolay:
    window, polyorder, deriv = (int(args[k]) for k in ("window", "polyorder", "deriv"))  # type: ignore[index]
    if polyorder >= window:
        raise ModelError(f"{where}: polyorder ({polyorder}) must be below window ({window})")
    if deriv > polyorder:
        raise ModelError(f"{where}: deriv ({deriv}) cannot exceed polyorder ({polyorder})")
    if window > length:
        raise ModelError(f"{where}: window {window} is longer than the spectra ({length} points)")
    return SavitzkyGolay(n_channels, window, polyorder, deriv)
