"""Training-time transforms applied to whole batches of spectra.

`Augment` is applied to the raw-unit batch just before the model's forward
pass, and only in training. The per-feature min-max scaling lives inside the
model (`models.MinMaxScale`) and therefore runs after the augmentation: an
augmented spectrum goes through exactly the scaling a served spectrum goes
through, and the scaling itself is fitted on the un-augmented training rows.

Every random draw is made with an explicit `torch.Generator`, on that
generator's device, then moved to the batch's device: a CPU generator seeded
the same way gives the same draws whether the model trains on CPU or GPU.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from numbers import Integral, Real
from typing import Any

import torch

TRANSFORMS: tuple[str, ...] = ("da", "new_fluorimeter")
"""Transform names, in the order they are applied."""


@dataclass(frozen=True)
class DaParams:
    """The users' `da` augmentation; a zero parameter switches that effect off."""

    gain_sd: float
    shift_scale: float
    noise_sd: float
    tabular_sd: float


@dataclass(frozen=True)
class NewFluorimeterParams:
    """Blind first points of some channels, as on the newer instrument."""

    p: float
    points: dict[str, int]


def _settings(name: str, value: Any, keys: tuple[str, ...]) -> Mapping[str, Any] | None:
    """A transform's complete settings; None when it is switched off."""
    if value is None or value is False:
        return None
    if not isinstance(value, Mapping):
        raise ValueError(
            f"augment.{name}: expected false or the mapping of its settings, got {value!r} "
            "(spectragrid.core.config.complete_model expands `true` into the schema's defaults)"
        )
    unknown = [key for key in value if key not in keys]
    if unknown:
        raise ValueError(
            f"augment.{name}: unknown parameter {unknown[0]!r}; allowed: {', '.join(keys)}"
        )
    missing = [key for key in keys if key not in value]
    if missing:
        raise ValueError(
            f"augment.{name}: missing {', '.join(missing)}; pass the complete settings "
            "(spectragrid.core.config.complete_model fills in the schema's defaults)"
        )
    return value


def _non_negative(name: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"augment.{name}.{key}: expected a number, got {value!r}")
    number = float(value)
    if not number >= 0.0:  # also rejects NaN
        raise ValueError(f"augment.{name}.{key}: must be >= 0, got {value!r}")
    return number


def _da_params(value: Any) -> DaParams | None:
    keys = tuple(field.name for field in fields(DaParams))
    settings = _settings("da", value, keys)
    if settings is None:
        return None
    return DaParams(**{key: _non_negative("da", key, settings[key]) for key in keys})


def _new_fluorimeter_params(value: Any) -> NewFluorimeterParams | None:
    settings = _settings("new_fluorimeter", value, ("p", "points"))
    if settings is None:
        return None
    p = settings["p"]
    if isinstance(p, bool) or not isinstance(p, Real) or not 0.0 <= p <= 1.0:
        raise ValueError(f"augment.new_fluorimeter.p: must be in [0, 1], got {p!r}")
    points = settings["points"]
    if not isinstance(points, Mapping):
        raise ValueError(
            f"augment.new_fluorimeter.points: expected a mapping channel -> points, got {points!r}"
        )
    blind: dict[str, int] = {}
    for channel, n in points.items():
        if isinstance(n, bool) or not isinstance(n, Integral) or n < 0:
            raise ValueError(
                f"augment.new_fluorimeter.points[{channel!r}]: must be an integer >= 0, got {n!r}"
            )
        # YAML reads an unquoted `277:` key as an int; channel names are strings.
        blind[str(channel)] = int(n)
    return NewFluorimeterParams(p=float(p), points=blind)


def _draw(
    kind: str,
    shape: tuple[int, ...],
    generator: torch.Generator,
    like: torch.Tensor,
) -> torch.Tensor:
    """Uniform [0, 1) or standard normal float32 draws, made on the generator's device.

    Always float32 so that a half-precision batch does not coarsen the
    uniform draws behind the shifts; multiplicative factors are cast to the
    batch dtype where they are applied.
    """
    sample = torch.rand if kind == "uniform" else torch.randn
    draws = sample(shape, generator=generator, device=generator.device, dtype=torch.float32)
    return draws.to(like.device)


def laplace_from_uniform(u: torch.Tensor, scale: float) -> torch.Tensor:
    """Laplace(0, scale) by inverse CDF of uniform [0, 1) draws.

    `torch.distributions` samples ignore an explicit generator, hence the
    inverse CDF. u = 0 maps to -inf; callers clamp.
    """
    centered = u - 0.5
    return -scale * torch.sign(centered) * torch.log1p(-2.0 * centered.abs())


def shift_along_length(spectra: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Shift each (sample, channel) row of `spectra` (B, C, L) by `shift` (B, C) points.

    A positive shift moves the content towards higher indices (longer
    wavelengths): out[..., l] = in[..., l - s]; vacated points are zero.
    """
    length = spectra.shape[-1]
    positions = torch.arange(length, device=spectra.device)
    source = positions - shift.to(spectra.device).unsqueeze(-1)
    inside = (source >= 0) & (source < length)
    gathered = torch.gather(spectra, 2, source.clamp(0, length - 1))
    return gathered.masked_fill(~inside, 0.0)


class Augment:
    """Batch transforms configured from plain values.

    `config` maps a transform name (`da`, `new_fluorimeter`) to the mapping of
    its complete settings (as the config schema fills them in), or to
    `false` (off); an absent transform is off.
    `channels` names the channels of the batches, in order; `new_fluorimeter`
    needs them, channels it does not list are left untouched.

    Inputs are never modified in place: training batches can be views of the
    stored training tensors.
    """

    def __init__(self, config: Mapping[str, Any] | None, channels: Sequence[str]) -> None:
        config = {} if config is None else config
        if not isinstance(config, Mapping):
            raise ValueError(f"augment: expected a mapping of transforms, got {config!r}")
        unknown = [key for key in config if key not in TRANSFORMS]
        if unknown:
            raise ValueError(
                f"augment: unknown transform {unknown[0]!r}; allowed: {', '.join(TRANSFORMS)}"
            )
        self.channels: tuple[str, ...] = tuple(str(channel) for channel in channels)
        self.da = _da_params(config.get("da"))
        self.new_fluorimeter = _new_fluorimeter_params(config.get("new_fluorimeter"))
        blind = self.new_fluorimeter.points if self.new_fluorimeter else {}
        self._blind_points = torch.tensor(
            [blind.get(channel, 0) for channel in self.channels], dtype=torch.long
        )

    @property
    def names(self) -> tuple[str, ...]:
        """Enabled transforms in application order, as shown in `t=(...)` of model names."""
        enabled = {"da": self.da is not None, "new_fluorimeter": self.new_fluorimeter is not None}
        return tuple(name for name in TRANSFORMS if enabled[name])

    def __repr__(self) -> str:
        return f"Augment(da={self.da!r}, new_fluorimeter={self.new_fluorimeter!r})"

    def __call__(
        self,
        spectra: torch.Tensor,
        tabular: torch.Tensor,
        generator: torch.Generator,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if spectra.dim() != 3:
            raise ValueError(
                f"augment: spectra must be (B, C, L), got shape {tuple(spectra.shape)}"
            )
        if spectra.shape[1] != len(self.channels):
            raise ValueError(
                f"augment: batch has {spectra.shape[1]} channels, "
                f"configured for {len(self.channels)} {self.channels}"
            )
        if tabular.dim() != 2 or tabular.shape[0] != spectra.shape[0]:
            raise ValueError(
                f"augment: tabular must be (B, T) with B = {spectra.shape[0]}, "
                f"got shape {tuple(tabular.shape)}"
            )
        if self.da is not None:
            spectra, tabular = self._da(spectra, tabular, self.da, generator)
        if self.new_fluorimeter is not None:
            spectra = self._blind(spectra, self.new_fluorimeter, generator)
        return spectra, tabular

    @staticmethod
    def _da(
        spectra: torch.Tensor,
        tabular: torch.Tensor,
        params: DaParams,
        generator: torch.Generator,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        batch, channels, length = spectra.shape
        if params.gain_sd > 0:
            gain = 1.0 + params.gain_sd * _draw("normal", (batch, channels, 1), generator, spectra)
            spectra = spectra * gain.to(spectra.dtype)
        if params.shift_scale > 0:
            u = _draw("uniform", (batch, channels), generator, spectra)
            # Clamping first keeps the u = 0 draw (-inf) finite; a shift of L
            # already empties the row.
            raw = laplace_from_uniform(u, params.shift_scale).clamp(-length, length)
            spectra = shift_along_length(spectra, raw.trunc().long())
        if params.noise_sd > 0:
            noise = 1.0 + params.noise_sd * _draw(
                "normal", tuple(spectra.shape), generator, spectra
            )
            spectra = spectra * noise.to(spectra.dtype)
        if params.tabular_sd > 0 and tabular.shape[1] > 0:
            factor = 1.0 + params.tabular_sd * _draw(
                "normal", tuple(tabular.shape), generator, tabular
            )
            tabular = tabular * factor.to(tabular.dtype)
        return spectra, tabular

    def _blind(
        self,
        spectra: torch.Tensor,
        params: NewFluorimeterParams,
        generator: torch.Generator,
    ) -> torch.Tensor:
        batch, _, length = spectra.shape
        hit = _draw("uniform", (batch,), generator, spectra) < params.p
        positions = torch.arange(length, device=spectra.device)
        blind = positions < self._blind_points.to(spectra.device).unsqueeze(-1)  # (C, L)
        return spectra.masked_fill(hit[:, None, None] & blind, 0.0)
