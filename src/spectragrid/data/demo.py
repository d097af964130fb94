"""Deterministic demo data in the users' raw layout, with known truth.

Two campaigns, two instruments, one pickled DataFrame each, plus
`truth.csv` with the true label of every row. The data carry what real
files carry: replicate measurements per lot (`scelle`), label noise (mostly
defects recorded as `OK - SpectrAcer`), and the dirt the cleaning must catch
(saturated, too dim, NaN, exact duplicate rows, unknown label spellings).

Spectra are sums of broad Gaussian emission bands on a small baseline, with
a scatter line at the excitation wavelength. The true class moves some band
amplitudes and positions by about as much as samples differ from each other:
OK vs CROCHET is subtle, defects clearer and type-specific.

Same arguments -> byte-identical files: all randomness comes from one
`np.random.default_rng(seed)`, consumed in a fixed order.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from spectragrid.core.atomic import atomic_path

__all__ = [
    "CAMPAIGNS",
    "CHANNELS",
    "CLASS_SHARES",
    "DEMO_COLUMNS",
    "DEMO_LABEL_MAP",
    "DIRT_KINDS",
    "NOISE_SHAPES",
    "REFERENCE_MIN_INTEGRAL",
    "REFERENCE_SATURATION",
    "WAVELENGTHS",
    "generate_demo",
    "main",
]

CHANNELS: tuple[str, ...] = ("277", "380", "425")
WAVELENGTHS = np.arange(295.0, 741.0)  # 446 points, 1 nm
REFERENCE_SATURATION = {"277": 6500.0, "380": 7000.0, "425": 8000.0}
REFERENCE_MIN_INTEGRAL = {"277": 150_000.0, "380": 220_000.0, "425": 300_000.0}

# How the wrong given labels are drawn (generate_demo's docstring).
NOISE_SHAPES: tuple[str, ...] = ("to_ok", "symmetric")

DEMO_COLUMNS: dict[str, Any] = {
    "id": "sequence",
    "severity": "greffon_defaut_severite",
    "type": "greffon_defaut_type",
    "group": "scelle",
    "tabular": ["greffon_transmittance", "greffon_brix"],
    "provenance": ["outil_id", "mesure_date"],
    "drop_prefixes": ["sa_"],
}
DEMO_LABEL_MAP = {
    "OK - Inspecteur": "OK",
    "OK - SpectrAcer": "OK",
    "CROCHET": "CROCHET",
    "VR": "VR",
    "NC": "NC",
}
DIRT_KINDS: tuple[str, ...] = ("saturation", "low_integral", "nan", "duplicate", "unknown_label")

# True class shares (full truth). OK 66 %, CROCHET 16 %, defects 18 % with tiny classes.
CLASS_SHARES: dict[tuple[str, int], float] = {
    ("OK", 0): 0.66,
    ("CROCHET", 0): 0.16,
    ("VR", 5): 0.035,
    ("VR", 11): 0.030,
    ("VR", 1): 0.020,
    ("VR", 2): 0.012,
    ("VR", 14): 0.010,
    ("VR", 4): 0.008,
    ("VR", 6): 0.006,
    ("VR", 12): 0.005,
    ("VR", 13): 0.004,
    ("NC", 11): 0.015,
    ("NC", 5): 0.012,
    ("NC", 1): 0.008,
    ("NC", 2): 0.004,
    ("NC", 4): 0.003,
    ("NC", 6): 0.002,
    ("NC", 12): 0.002,
    ("NC", 13): 0.002,
    ("NC", 14): 0.002,
}

# (file stem, instrument, year, season start, season length in days, share of rows)
CAMPAIGNS: tuple[dict[str, Any], ...] = (
    {
        "file": "campaign_2023_SA3-01.pkl",
        "instrument": "SA3-01",
        "prefix": "23",
        "season": "2023-02-20",
        "days": 64,
        "share": 0.55,
        "gain": 1.0,
        "shift_nm": 0.0,
        "baseline": (3.0, 0.004),  # offset, slope per nm
    },
    {
        "file": "campaign_2024_SA3-02.pkl",
        "instrument": "SA3-02",
        "prefix": "24",
        "season": "2024-02-15",
        "days": 68,
        "share": 0.45,
        "gain": 1.12,
        "shift_nm": 2.0,
        "baseline": (14.0, -0.012),
    },
)

# Emission bands per channel: (centre nm, width sigma nm, amplitude counts).
_BANDS: dict[str, list[tuple[float, float, float]]] = {
    "277": [(305.0, 11.0, 700.0), (345.0, 24.0, 2900.0), (440.0, 45.0, 850.0)],
    "380": [(462.0, 38.0, 2900.0), (522.0, 48.0, 1000.0)],
    "425": [(505.0, 36.0, 3200.0), (562.0, 52.0, 1650.0), (680.0, 14.0, 380.0)],
}
_EXCITATION = {"277": 277.0, "380": 380.0, "425": 425.0}
_SCATTER = {"277": 2600.0, "380": 900.0, "425": 1000.0}  # Lorentzian amplitude at the line
_SCATTER_HWHM = 3.5
_SECOND_ORDER = (554.0, 4.0, 160.0)  # 2 x 277 nm in the 277 channel

# Class effects, as (channel, band index) -> factor on amplitude / shift in nm. CROCHET
# moves secondary bands by about the sample-to-sample spread: separable only in part.
_CROCHET_AMP = {("277", 1): 1.12, ("380", 1): 1.25, ("425", 1): 1.15}
_CROCHET_SHIFT = {("380", 0): 6.0}
# Defects: relative amplitude change, scaled by severity strength.
_DEFECT_AMP = {("277", 0): 0.45, ("380", 0): 0.15, ("425", 0): -0.15}
_SEVERITY_STRENGTH = {"VR": 1.0, "NC": 1.4}
# Type-specific extra bands: (channel, centre, sigma, amplitude relative to main band).
_TYPE_BANDS: dict[int, list[tuple[str, float, float, float]]] = {
    1: [("380", 415.0, 18.0, 0.40)],
    2: [("277", 390.0, 22.0, 0.36)],
    4: [("425", 620.0, 28.0, 0.36)],
    5: [("277", 328.0, 14.0, 0.40)],
    6: [("425", 470.0, 18.0, 0.36)],
    11: [("380", 498.0, 28.0, 0.36)],
    12: [("380", 498.0, 28.0, 0.28), ("425", 590.0, 24.0, 0.24)],
    13: [("380", 430.0, 24.0, 0.32), ("277", 400.0, 30.0, 0.20)],
    14: [("277", 420.0, 28.0, 0.36)],
}
_MAIN_BAND = {"277": 1, "380": 0, "425": 0}

_OK_SPELLINGS = ("OK - Inspecteur", "OK - SpectrAcer")
_UNKNOWN_SPELLINGS = ("??", "ok?", "?")
_REPLICATES = (np.array([1, 2, 3]), np.array([0.5, 0.3, 0.2]))


def _quota(n: int, shares: Sequence[float]) -> np.ndarray:
    """Counts per share summing to n (largest remainder)."""
    raw = np.asarray(shares, dtype=np.float64) / np.sum(shares) * n
    counts = np.floor(raw).astype(np.int64)
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    return counts


def _plan_lots(rng: np.random.Generator, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Replicate count per lot and the campaign of each lot."""
    reps = rng.choice(_REPLICATES[0], size=n_samples, p=_REPLICATES[1])
    total = np.cumsum(reps)
    n_lots = int(np.searchsorted(total, n_samples) + 1)
    reps = reps[:n_lots].copy()
    reps[-1] -= total[n_lots - 1] - n_samples
    before = np.concatenate([[0], np.cumsum(reps)[:-1]])
    cut = round(CAMPAIGNS[0]["share"] * n_samples)
    campaign = np.where(before < cut, 0, 1)
    return reps, campaign


def _gauss(x: np.ndarray, centre: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * ((x - centre) / sigma) ** 2)


def _lorentz(x: np.ndarray, centre: float, hwhm: float) -> np.ndarray:
    return 1.0 / (1.0 + ((x - centre) / hwhm) ** 2)


def _lot_spectra(
    rng: np.random.Generator, severity: np.ndarray, types: np.ndarray, turbidity: np.ndarray
) -> dict[str, dict[str, np.ndarray]]:
    """Per lot, per channel: band centres, widths and amplitudes (the underlying sample)."""
    n = len(severity)
    is_crochet = severity == "CROCHET"
    strength = np.array([_SEVERITY_STRENGTH.get(s, 0.0) for s in severity])
    lots: dict[str, dict[str, np.ndarray]] = {}
    for ch in CHANNELS:
        bands = _BANDS[ch]
        centre = np.array([b[0] for b in bands])[None, :] + rng.normal(0, 2.5, (n, len(bands)))
        sigma = np.array([b[1] for b in bands])[None, :] * rng.normal(1, 0.06, (n, len(bands)))
        amp = np.array([b[2] for b in bands])[None, :] * rng.lognormal(0, 0.12, (n, len(bands)))
        for (c, k), f in _CROCHET_AMP.items():
            if c == ch:
                amp[is_crochet, k] *= f
        for (c, k), s in _CROCHET_SHIFT.items():
            if c == ch:
                centre[is_crochet, k] += s
        for (c, k), f in _DEFECT_AMP.items():
            if c == ch:
                amp[:, k] *= 1 + f * strength
        main_amp = np.array(bands[_MAIN_BAND[ch]][2])
        extra_c, extra_s, extra_a = [], [], []
        for t, specs in _TYPE_BANDS.items():
            for c, mu, sd, rel in specs:
                if c != ch:
                    continue
                mask = (types == t) & (strength > 0)
                a = np.where(mask, rel * main_amp * strength, 0.0)
                extra_c.append(np.full(n, mu))
                extra_s.append(np.full(n, sd))
                extra_a.append(a * rng.lognormal(0, 0.15, n))
        if extra_c:
            centre = np.concatenate([centre, np.stack(extra_c, 1)], axis=1)
            sigma = np.concatenate([sigma, np.stack(extra_s, 1)], axis=1)
            amp = np.concatenate([amp, np.stack(extra_a, 1)], axis=1)
        scatter = _SCATTER[ch] * turbidity * rng.lognormal(0, 0.2, n)
        lots[ch] = {"centre": centre, "sigma": sigma, "amp": amp, "scatter": scatter}
    return lots


def _measure(
    rng: np.random.Generator,
    lot_params: dict[str, dict[str, np.ndarray]],
    lot_of_row: np.ndarray,
    campaign_of_row: np.ndarray,
    gain_of_lot: np.ndarray,
) -> dict[str, np.ndarray]:
    """One measurement per row: instrument, gain wobble, jitter and noise on the lot's spectrum."""
    n = len(lot_of_row)
    inst_gain = np.array([c["gain"] for c in CAMPAIGNS])[campaign_of_row]
    inst_shift = np.array([c["shift_nm"] for c in CAMPAIGNS])[campaign_of_row]
    base_off = np.array([c["baseline"][0] for c in CAMPAIGNS])[campaign_of_row]
    base_slope = np.array([c["baseline"][1] for c in CAMPAIGNS])[campaign_of_row]
    gain = gain_of_lot[lot_of_row] * rng.normal(1, 0.03, n) * inst_gain
    jitter = rng.normal(0, 0.6, n)
    mult_sd = rng.uniform(0.01, 0.03, n)
    x = WAVELENGTHS[None, :]
    out: dict[str, np.ndarray] = {}
    for ch in CHANNELS:
        p = lot_params[ch]
        shift = (inst_shift + jitter)[:, None]
        signal = np.zeros((n, len(WAVELENGTHS)))
        for k in range(p["centre"].shape[1]):
            centre = p["centre"][lot_of_row, k][:, None] + shift
            sigma = p["sigma"][lot_of_row, k][:, None]
            signal += p["amp"][lot_of_row, k][:, None] * _gauss(x, centre, sigma)
        signal += p["scatter"][lot_of_row][:, None] * _lorentz(x, _EXCITATION[ch], _SCATTER_HWHM)
        if ch == "277":
            mu, sd, a = _SECOND_ORDER
            signal += a * (p["scatter"][lot_of_row][:, None] / _SCATTER[ch]) * _gauss(x, mu, sd)
        values = signal * gain[:, None]
        values *= 1.0 + mult_sd[:, None] * rng.standard_normal(values.shape)
        baseline = base_off[:, None] + base_slope[:, None] * (x - WAVELENGTHS[0])
        values += baseline + rng.normal(0, 7.0, values.shape)
        out[ch] = values
    return out


def _keep_in_limits(spectra: dict[str, np.ndarray]) -> int:
    """Rescale the rare normal channel that would trip a cleaning threshold by chance."""
    touched = 0
    for ch in CHANNELS:
        v = spectra[ch]
        peak = v.max(axis=1)
        too_bright = peak > 0.97 * REFERENCE_SATURATION[ch]
        v[too_bright] *= (0.95 * REFERENCE_SATURATION[ch] / peak[too_bright])[:, None]
        total = v.sum(axis=1)
        too_dim = total < 1.05 * REFERENCE_MIN_INTEGRAL[ch]
        v[too_dim] *= (1.1 * REFERENCE_MIN_INTEGRAL[ch] / total[too_dim])[:, None]
        touched += int(too_bright.sum() + too_dim.sum())
    return touched


def _pick_per_campaign(
    rng: np.random.Generator, pool: np.ndarray, campaign: np.ndarray, k: int
) -> np.ndarray:
    """k rows from `pool`, split over the campaigns by their share (at least one each)."""
    first = min(max(1, round(k * CAMPAIGNS[0]["share"])), k - 1) if k > 1 else k
    chosen = []
    for c, want in ((0, first), (1, k - first)):
        candidates = pool[campaign[pool] == c]
        chosen.append(rng.choice(candidates, size=want, replace=False))
    return np.sort(np.concatenate(chosen))


def _text(values: Any, index: pd.Index) -> pd.Series:
    # object dtype, as in the users' files (and readable without pyarrow)
    return pd.Series(np.asarray(values, dtype=object), index=index, dtype=object)


def _atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    with atomic_path(path) as tmp:
        write(tmp)


def generate_demo(
    out_dir: Path,
    n_samples: int = 3000,
    seed: int = 0,
    noise_rate: float = 0.08,
    noise_shape: str = "to_ok",
) -> dict[str, Any]:
    """Write `raw/<campaign>.pkl` (two campaigns) and `truth.csv` under `out_dir`.

    `noise_shape` (NOISE_SHAPES): `to_ok`, the field's noise, 80 % of the wrong
    labels are defects recorded as `OK - SpectrAcer` and the rest flips between
    severities; `symmetric`, every wrong label is a flip to one of the other
    severities, each equally likely (a defect's type drawn by its share).

    `n_samples` measurements are generated; exact duplicate rows are added on
    top, so the pickles hold `n_samples + dirt['duplicate']` rows in all.
    Returns the paths written, rows per file, the number of noisy labels and
    the number (and ids) of each kind of dirt.
    """
    if n_samples < 200:
        raise ValueError(f"n_samples must be at least 200 to hold every kind of dirt: {n_samples}")
    if not 0.0 <= noise_rate < 0.5:
        raise ValueError(f"noise_rate must be in [0, 0.5): {noise_rate}")
    if noise_shape not in NOISE_SHAPES:
        raise ValueError(f"noise_shape must be one of {', '.join(NOISE_SHAPES)}: {noise_shape!r}")
    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)

    # --- lots and their true classes -------------------------------------------------------
    reps, lot_campaign = _plan_lots(rng, n_samples)
    n_lots = len(reps)
    classes = list(CLASS_SHARES)
    lot_class_idx = rng.permutation(
        np.repeat(np.arange(len(classes)), _quota(n_lots, list(CLASS_SHARES.values())))
    )
    lot_sev = np.array([classes[i][0] for i in lot_class_idx], dtype=object)
    lot_type = np.array([classes[i][1] for i in lot_class_idx], dtype=np.int64)
    strength = np.array([_SEVERITY_STRENGTH.get(s, 0.0) for s in lot_sev])
    crochet = (lot_sev == "CROCHET").astype(float)
    transmittance = np.clip(rng.normal(72 - 1.5 * crochet - 4 * strength, 9), 40, 90)
    brix = np.clip(rng.normal(66.6 + 0.1 * crochet - 0.12 * strength, 0.45), 65, 68)
    turbidity = np.clip(1.0 + (75.0 - transmittance) / 35.0, 0.3, 2.2)
    lot_gain = np.clip(rng.normal(1.0, 0.15, n_lots), 0.65, 1.35)
    lot_params = _lot_spectra(rng, lot_sev, lot_type, turbidity)
    lot_day = np.array(
        [rng.integers(0, CAMPAIGNS[c]["days"]) for c in lot_campaign], dtype=np.int64
    )
    lot_second = rng.integers(7 * 3600, 18 * 3600, n_lots)

    # --- measurements (rows) ---------------------------------------------------------------
    lot_of_row = np.repeat(np.arange(n_lots), reps)
    rep_of_row = np.concatenate([np.arange(r) for r in reps])
    campaign = lot_campaign[lot_of_row]
    spectra = _measure(rng, lot_params, lot_of_row, campaign, lot_gain)
    n_rescaled = _keep_in_limits(spectra)
    n = n_samples
    true_sev = lot_sev[lot_of_row]
    true_type = lot_type[lot_of_row]
    season = np.array([np.datetime64(CAMPAIGNS[c]["season"], "s") for c in campaign])
    offsets = lot_day[lot_of_row] * 86400 + lot_second[lot_of_row]
    offsets = offsets + rep_of_row * rng.integers(120, 600, n)
    when = season + offsets.astype("timedelta64[s]")

    # --- dirt: disjoint sets of rows, each tripping exactly one cleaning rule ---------------
    k_dirt = max(5, round(0.01 * n))
    k_unknown = max(3, round(0.001 * n))
    free = np.arange(n)
    dirt: dict[str, np.ndarray] = {}
    for kind, k in (
        ("saturation", k_dirt),
        ("low_integral", k_dirt),
        ("nan", k_dirt),
        ("unknown_label", k_unknown),
        ("duplicate", k_dirt),
    ):
        dirt[kind] = _pick_per_campaign(rng, free, campaign, k)
        free = np.setdiff1d(free, dirt[kind])

    for i in dirt["saturation"]:
        ch = CHANNELS[rng.integers(len(CHANNELS))]
        ceiling = rng.uniform(61_000, 63_000)
        v = spectra[ch][i]
        if rng.random() < 0.5:
            # the excitation/scatter line runs into the detector ceiling
            edge = max(_EXCITATION[ch], WAVELENGTHS[0])
            line = _lorentz(WAVELENGTHS, edge, _SCATTER_HWHM + 2.0)
            v += line * rng.uniform(80_000, 160_000)
        else:
            # an over-concentrated sample: the whole channel is far too bright
            v *= rng.uniform(80_000, 120_000) / v.max()
        spectra[ch][i] = np.minimum(v, ceiling)
    for i in dirt["low_integral"]:
        ch = CHANNELS[rng.integers(len(CHANNELS))]
        factor = rng.uniform(0.1, 0.3)
        total = spectra[ch][i].sum()
        factor = min(factor, 0.8 * REFERENCE_MIN_INTEGRAL[ch] / total)
        spectra[ch][i] *= factor
    for i in dirt["nan"]:
        ch = CHANNELS[rng.integers(len(CHANNELS))]
        start = rng.integers(0, len(WAVELENGTHS) - 20)
        spectra[ch][i, start : start + rng.integers(1, 20)] = np.nan

    # --- given labels: spelling, then label noise on rows without dirt ----------------------
    given_sev = true_sev.copy()
    given_type = true_type.copy()
    given_label = given_sev.copy()
    ok = true_sev == "OK"
    given_label[ok] = np.where(rng.random(int(ok.sum())) < 0.55, *_OK_SPELLINGS)
    clean_rows = np.setdiff1d(
        np.arange(n), np.concatenate([dirt[k] for k in DIRT_KINDS if k != "duplicate"])
    )
    n_noisy = round(noise_rate * len(clean_rows))
    n_to_ok = round(0.8 * n_noisy) if noise_shape == "to_ok" else 0
    not_ok = clean_rows[true_sev[clean_rows] != "OK"]
    n_to_ok = min(n_to_ok, len(not_ok))
    to_ok = np.sort(rng.choice(not_ok, size=n_to_ok, replace=False))
    given_sev[to_ok] = "OK"
    given_type[to_ok] = 0
    given_label[to_ok] = _OK_SPELLINGS[1]
    rest = np.setdiff1d(clean_rows, to_ok)
    flips = np.sort(rng.choice(rest, size=n_noisy - n_to_ok, replace=False))
    severities = ("OK", "CROCHET", "VR", "NC")
    for i in flips:
        options = [s for s in severities if s != true_sev[i]]
        sev = options[rng.integers(len(options))]
        if sev in ("OK", "CROCHET"):
            t = 0
        else:
            types = [c[1] for c in CLASS_SHARES if c[0] == sev]
            weights = np.array([CLASS_SHARES[(sev, t)] for t in types])
            t = int(rng.choice(types, p=weights / weights.sum()))
        given_sev[i], given_type[i] = sev, t
        given_label[i] = _OK_SPELLINGS[rng.integers(2)] if sev == "OK" else sev
    noisy = (given_sev != true_sev) | (given_type != true_type)
    for j, i in enumerate(dirt["unknown_label"]):
        given_label[i] = _UNKNOWN_SPELLINGS[j % len(_UNKNOWN_SPELLINGS)]

    # legacy instrument outputs: they leak the recorded label
    tasted = given_label != _OK_SPELLINGS[1]
    says_ok = np.where(given_sev == "OK", rng.random(n) < 0.92, rng.random(n) < 0.12)
    says_ok[given_label == _OK_SPELLINGS[1]] = True
    prob_ok = np.clip(np.where(says_ok, rng.beta(8, 2, n), rng.beta(2, 6, n)), 0, 1).round(3)

    # --- rows per campaign, exact duplicates, ids ----------------------------------------------
    files: list[Path] = []
    rows_per_file: dict[str, int] = {}
    truth_parts: list[pd.DataFrame] = []
    dirt_ids: dict[str, list[str]] = {k: [] for k in DIRT_KINDS}
    raw_dir = out_dir / "raw"
    raw_dir.mkdir(parents=True, exist_ok=True)
    dup_set = set(dirt["duplicate"].tolist())
    for c, spec in enumerate(CAMPAIGNS):
        rows = np.flatnonzero(campaign == c)
        rows = rows[np.lexsort((rows, when[rows]))]
        ids = np.array([f"{spec['prefix']}-{k + 1:06d}" for k in range(len(rows))], dtype=object)
        id_of = dict(zip(rows.tolist(), ids.tolist(), strict=True))
        # a verbatim copy lands somewhere after its original
        key = np.arange(len(rows), dtype=np.float64)
        order_rows = rows.tolist()
        order_keys = key.tolist()
        for pos, r in enumerate(rows):
            if int(r) in dup_set:
                order_rows.append(int(r))
                order_keys.append(pos + 0.5 + rng.uniform(0, len(rows) - pos - 1))
        order = np.argsort(np.array(order_keys), kind="stable")
        final_rows = np.array(order_rows)[order]
        final_ids = np.array([id_of[int(r)] for r in final_rows], dtype=object)

        index = pd.Index(final_ids, name="sequence", dtype=object)
        spec_cols = [f"{ch}_{int(w)}" for ch in CHANNELS for w in WAVELENGTHS]
        block = np.concatenate([spectra[ch][final_rows] for ch in CHANNELS], axis=1)
        df = pd.DataFrame(block, index=index, columns=pd.Index(spec_cols, dtype=object))
        lot = lot_of_row[final_rows]
        extra = pd.DataFrame(
            {
                "greffon_defaut_severite": _text(given_label[final_rows], index),
                "greffon_defaut_type": given_type[final_rows].astype(np.int64),
                "greffon_transmittance": transmittance[lot].round(2),
                "greffon_brix": brix[lot].round(2),
                "scelle": _text([f"S{spec['prefix']}-{int(x):05d}" for x in lot], index),
                "outil_id": _text([spec["instrument"]] * len(final_rows), index),
                "mesure_date": when[final_rows].astype("datetime64[ns]"),
                "sa_verdict": _text(np.where(says_ok[final_rows], "OK", "NOK"), index),
                "sa_prob_ok": prob_ok[final_rows],
                "sa_controle": _text(np.where(tasted[final_rows], "oui", "non"), index),
                "firmware": _text(["v1.2"] * len(final_rows), index),
            },
            index=index,
        )
        df = pd.concat([df, extra], axis=1)
        path = raw_dir / spec["file"]
        _atomic_write(path, lambda tmp, df=df: df.to_pickle(tmp, compression=None, protocol=5))
        files.append(path)
        rows_per_file[spec["file"]] = len(df)

        truth_parts.append(
            pd.DataFrame(
                {
                    "sequence": final_ids,
                    "greffon_defaut_severite": true_sev[final_rows],
                    "greffon_defaut_type": true_type[final_rows],
                    "noisy": noisy[final_rows],
                }
            )
        )
        for kind in DIRT_KINDS:
            dirt_ids[kind].extend(id_of[int(r)] for r in dirt[kind] if campaign[r] == c)

    truth = pd.concat(truth_parts, ignore_index=True)
    truth_path = out_dir / "truth.csv"
    _atomic_write(truth_path, lambda tmp: truth.to_csv(tmp, index=False, lineterminator="\n"))

    return {
        "raw_files": [str(p) for p in files],
        "truth": str(truth_path),
        "rows": rows_per_file,
        "n_samples": n,
        "n_rows": int(sum(rows_per_file.values())),
        "n_noisy": int(noisy.sum()),
        "n_noisy_to_ok": int(n_to_ok),
        "n_clean_rows": len(clean_rows),
        "n_rescaled_channels": n_rescaled,
        "dirt": {k: len(v) for k, v in dirt.items()},
        "dirt_ids": {k: sorted(v) for k, v in dirt_ids.items()},
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="spectragrid-demo",
        description="Write the deterministic demo raw data (two campaign pickles) and truth.csv.",
    )
    parser.add_argument("--out", type=Path, default=Path("resources/demo"), help="output folder")
    parser.add_argument("--n-samples", type=int, default=3000, help="measurements to generate")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument(
        "--noise-rate", type=float, default=0.08, help="share of rows with a wrong given label"
    )
    parser.add_argument(
        "--noise-shape",
        choices=NOISE_SHAPES,
        default="to_ok",
        help="to_ok: mostly defects recorded as OK (the field's noise); symmetric: flips "
        "between all severities, each equally likely",
    )
    args = parser.parse_args(argv)
    try:
        info = generate_demo(args.out, args.n_samples, args.seed, args.noise_rate, args.noise_shape)
    except ValueError as err:
        parser.error(str(err))
    for path in info["raw_files"]:
        print(f"wrote {path} ({info['rows'][Path(path).name]} rows)")
    print(f"wrote {info['truth']} ({info['n_rows']} rows, {info['n_noisy']} noisy labels)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
