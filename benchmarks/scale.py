"""From the demo to 300,000 spectra and 1,000 cells: each cost beside a baseline.

Every section measures spectragrid and, in the same run, a reference for the
same work done the plainest way, and prints both with their ratio:

- planning: `snakemake -n` on a grid of 10,000 cells, against `snakemake -n`
  of a Snakefile of as many trivial jobs (Snakemake's own floor);
- ingest: the ingest job on 300,000 x 3 x 446 float32 spectra in pickles,
  against a bare `pd.read_pickle` of the same files (MB/s and peak RSS,
  each a whole process);
- read: clean.parquet into a training tensor, against `np.load` of the same
  array from a .npy file;
- cell: one 1-epoch cell on those 300,000 samples (wall, peak RSS against
  the float32 data it trains on);
- cells: a grid of 100 one-epoch cells through the real workflow with
  `--cores 2`, sheets included: cells/s, the share of wall time spent
  training, and the fixed cost per cell (job wall minus training, per cell),
  against as many `script:` jobs that only create their output (what
  Snakemake and a Python start cost before any work);
- summary: the summary job over 1,000 cells: seconds and HTML size.

    python benchmarks/scale.py --only planning ingest read cell cells summary

Sections write under a temporary folder (or --work DIR, kept) and print one
table row each; nothing is timed inside the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
CHANNELS = ("277", "380", "425")
WAVELENGTHS = range(295, 741)  # 446 points


def run_measured(command: list[str], cwd: Path | None = None, env: dict | None = None) -> dict:
    """Wall seconds and peak RSS (MB, the largest process of its tree) of a whole command."""
    script = (
        "import json, resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "print(json.dumps({'rc': p.returncode, 'seconds': time.perf_counter() - t,\n"
        "  'peak_mb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,\n"
        "  'out': p.stdout[-4000:], 'err': p.stderr[-4000:]}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, *command],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(proc.stdout)
    if result["rc"] != 0:
        raise RuntimeError(f"{' '.join(command[:4])} failed:\n{result['err']}")
    return result


def row(name: str, ours: str, reference: str, ratio: float, target: str) -> None:
    print(f"| {name} | {ours} | {reference} | {ratio:.2f} | {target} |", flush=True)


# --- the 300k data set -------------------------------------------------------------


def big_raw(folder: Path, n: int, files: int = 4) -> list[Path]:
    """`n` samples in the users' pickled layout, float32 spectra, in `files` campaigns."""
    import numpy as np
    import pandas as pd

    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"campaign_{i}.pkl" for i in range(files)]
    if all(p.exists() for p in paths):
        return paths
    rng = np.random.default_rng(0)
    severities = np.array(["OK", "CROCHET", "VR", "NC"])
    per_file = n // files
    for i, path in enumerate(paths):
        base = rng.uniform(100, 800, size=(1, len(CHANNELS) * len(WAVELENGTHS)))
        spectra = (base + rng.normal(0, 30, size=(per_file, base.shape[1]))).astype(np.float32)
        columns = [f"{c}_{w}" for c in CHANNELS for w in WAVELENGTHS]
        frame = pd.DataFrame(spectra, columns=columns)
        sev = severities[rng.choice(4, size=per_file, p=[0.66, 0.16, 0.1, 0.08])]
        frame["greffon_defaut_severite"] = sev
        frame["greffon_defaut_type"] = np.where(
            np.isin(sev, ["OK", "CROCHET"]), 0, rng.choice([1, 2, 4, 5], size=per_file)
        )
        frame["scelle"] = [f"L{i}-{j // 3}" for j in range(per_file)]
        frame["greffon_transmittance"] = rng.uniform(40, 90, per_file).astype(np.float32)
        frame["greffon_brix"] = rng.uniform(65, 68, per_file).astype(np.float32)
        # the default config's provenance columns: which tool, when
        frame["outil_id"] = np.array(["T1", "T2", "T3"])[rng.choice(3, size=per_file)]
        frame["mesure_date"] = pd.Timestamp("2026-01-01") + pd.to_timedelta(
            np.arange(per_file) * 7, unit="s"
        )
        frame.index = pd.Index([f"{i}-{j:07d}" for j in range(per_file)], name="sequence")
        frame.to_pickle(path)
        del frame, spectra
    return paths


def big_config() -> dict:
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["cleaning"] = {"saturation": {}, "min_integral": {}}
    return config


def section_ingest(work: Path, n: int) -> Path:
    raw = big_raw(work / "raw", n)
    size_mb = sum(p.stat().st_size for p in raw) / 2**20
    os.sync()  # pickles just generated are written back before anything is timed
    # The ingest job's own parameters, as the workflow's rule hands them to run_ingest.
    config = big_config()
    dataset, cleaning, splits = config["dataset"], config["cleaning"], config["splits"]
    params = {
        "columns": dataset["columns"],
        "channels": dataset["channels"],
        "label_map": dataset["label_map"],
        "saturation": cleaning["saturation"],
        "min_integral": cleaning["min_integral"],
        "k": splits["k"],
        "grouped": splits["grouped"],
    }
    params_path = work / "ingest_params.json"
    params_path.write_text(json.dumps(params))
    out = work / "ingested"
    out.mkdir(exist_ok=True)
    # Snakemake removes a job's outputs before running it: a previous clean.parquet is
    # not the job's to delete (its pages freed on the rename took ~0.8 s of the clock).
    for previous in out.iterdir():
        previous.unlink()
    # Both processes start alike: the pickles in the page cache (the second would
    # otherwise find what the first read there) and memory just touched.
    size = sum(p.stat().st_size for p in raw)
    _start_alike(size, raw)
    ours = run_measured(
        [
            sys.executable,
            "-c",
            "import json, sys; from pathlib import Path\n"
            "from spectragrid.data.ingest import run_ingest\n"
            "p = json.loads(Path(sys.argv[1]).read_text()); out = Path(sys.argv[2])\n"
            "run_ingest([Path(f) for f in sys.argv[3:]], out / 'clean.parquet',\n"
            "  out / 'cleaning_report.json', out / 'dropped.csv', p['columns'], p['channels'],\n"
            "  p['label_map'], p['saturation'], p['min_integral'], k=p['k'],\n"
            "  grouped=p['grouped'])\n",
            str(params_path),
            str(out),
            *map(str, raw),
        ]
    )
    _start_alike(size, raw)
    bare = run_measured(
        [
            sys.executable,
            "-c",
            "import sys, pandas as pd\nfor p in sys.argv[1:]: pd.read_pickle(p)\n",
            *map(str, raw),
        ]
    )
    row(
        f"ingest {n:,} x 3 x 446 ({size_mb:,.0f} MB)",
        f"{size_mb / ours['seconds']:,.0f} MB/s, peak {ours['peak_mb']:,.0f} MB "
        f"({ours['peak_mb'] / size_mb:.1f}x the files)",
        f"read_pickle {size_mb / bare['seconds']:,.0f} MB/s, peak {bare['peak_mb']:,.0f} MB",
        ours["seconds"] / bare["seconds"],
        ">= 200 MB/s, peak <= 2x the files",
    )
    return out / "clean.parquet"


def _to_tensor(clean: Path, channels: tuple[str, ...] = CHANNELS) -> float:
    """Seconds from a clean file to a torch tensor of its spectra, as a cell reads them."""
    import torch

    from spectragrid.data.clean_file import read_clean

    started = time.perf_counter()
    data = read_clean(clean, list(channels))
    torch.from_numpy(data.stack(list(channels)))
    return time.perf_counter() - started


def _npy_to_tensor(npy: Path) -> float:
    import numpy as np
    import torch

    started = time.perf_counter()
    torch.from_numpy(np.load(npy))
    return time.perf_counter() - started


def _median_pair(
    ours: Callable[[], float], reference: Callable[[], float], nbytes: int, files: list[Path]
) -> tuple[float, float]:
    """Median of five alternating runs of each, every run started alike (`_start_alike`),
    each going first in turn (on this VM the first of two like reads was often slower)."""
    mine, ref = [], []
    for turn in range(5):
        for measure, times in [(ours, mine), (reference, ref)][:: 1 if turn % 2 else -1]:
            _start_alike(nbytes, files)
            times.append(measure())
    return sorted(mine)[2], sorted(ref)[2]


def _start_alike(nbytes: int, files: list[Path]) -> None:
    """The files dropped from the page cache and read back into it (`_evict`: each run
    draws anew where their pages lie), and `nbytes` of memory touched and freed just
    before: this VM hands freed memory back to its host within seconds, and the next
    touch of it then costs 1-2 s per 1.5 GB (`_first_touch`), more than either read.
    Without this, which read got memory the other had just used decided the ratio."""
    _evict(files)
    for path in files:
        with open(path, "rb") as f:
            while f.read(1 << 24):
                pass
    _touch(nbytes)


def _touch(nbytes: int) -> None:
    """Write one byte per 4 KiB page of `nbytes` of new memory, then free it."""
    import numpy as np

    touched = np.empty(nbytes, np.uint8)
    touched[:: 1 << 12] = 1


def _evict(files: list[Path]) -> None:
    """Drop the files' pages from the page cache, to be read back alike. A file's cached
    pages read at 2.2-5.6 GB/s for the ingested clean file against 4.6-6.5 GB/s for a
    byte-for-byte copy of it written later; once both were dropped and read back the
    same way, 5.9-6.8 against 5.3-6.2 GB/s (where this VM keeps each page, it seems)."""
    for path in files:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def _first_touch(nbytes: int) -> tuple[float, float]:
    """Seconds to touch `nbytes` of fresh memory after 3 s idle, and right after."""
    times = []
    for idle in (3.0, 0.0):
        time.sleep(idle)
        started = time.perf_counter()
        _touch(nbytes)
        times.append(time.perf_counter() - started)
    return times[0], times[1]


def section_read(work: Path, clean: Path) -> None:
    import warnings

    import numpy as np

    from spectragrid.data.clean_file import read_clean

    # the shared, read-only array goes to torch as the cell hands it over
    warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
    npy = work / "spectra.npy"
    np.save(npy, read_clean(clean, list(CHANNELS)).stack(list(CHANNELS)))
    # The 1.5 GB just saved are written back to the disk in the background: not while
    # either read is timed.
    os.sync()
    nbytes = npy.stat().st_size
    idle, again = _first_touch(nbytes)
    print(
        f"| (this machine) first touch of {nbytes / 2**30:.1f} GiB | after 3 s idle "
        f"{idle:.2f} s | right after {again:.2f} s | {idle / again:.1f}x | |"
    )
    files = [clean, npy]
    mine, ref = _median_pair(lambda: _to_tensor(clean), lambda: _npy_to_tensor(npy), nbytes, files)
    row("clean.parquet -> tensor", f"{mine:.2f} s", f"np.load {ref:.2f} s", mine / ref, "<= 3x")
    mine, ref = _median_pair(
        lambda: _to_tensor(clean, CHANNELS[:1]), lambda: _npy_to_tensor(npy), nbytes, files
    )
    row(
        f"one channel ({CHANNELS[0]}) -> tensor",
        f"{mine:.2f} s",
        f"np.load, all three {ref:.2f} s",
        mine / ref,
        "",
    )
    _compression_choices(work, clean, npy)


def _compression_choices(work: Path, clean: Path, npy: Path) -> None:
    """The same clean file written with each codec for its spectra: size, write and read
    time. All are written first, and the data released, so each read runs as a cell's."""
    from spectragrid.data import clean_file

    data = clean_file.read_clean(clean)
    chosen = clean_file.SPECTRUM_COMPRESSION
    written = {}
    for codec in ("none", "lz4", "zstd"):
        path = work / f"compression_{codec}.parquet"
        clean_file.SPECTRUM_COMPRESSION = codec
        try:
            started = time.perf_counter()
            clean_file.write_clean(
                path,
                data.table,
                data.spectra,
                data.wavelengths,
                data.meta["tabular_columns"],
                data.meta["provenance_columns"],
            )
            written[codec] = (path, time.perf_counter() - started)
        finally:
            clean_file.SPECTRUM_COMPRESSION = chosen
    del data
    for codec, (path, write_s) in written.items():
        mine, ref = _median_pair(
            lambda p=path: _to_tensor(p),
            lambda: _npy_to_tensor(npy),
            npy.stat().st_size,
            [path, npy],
        )
        row(
            f"spectra stored {codec}" + (" (kept)" if codec == chosen else ""),
            f"{path.stat().st_size / npy.stat().st_size:.2f} of the .npy, "
            f"write {write_s:.1f} s, read {mine:.2f} s",
            f"np.load {ref:.2f} s",
            mine / ref,
            "<= 3x",
        )
        path.unlink()


def section_cell(work: Path, clean: Path) -> None:
    from spectragrid.data.splits import split_clean_file

    folds = work / "folds.parquet"
    if not folds.exists():
        split_clean_file(clean, folds, seed=0, k=5)
    script = (
        "import sys; from pathlib import Path\n"
        "from spectragrid.core.config import complete_model\n"
        "from spectragrid.train.cell import CellOutputs, CellSpec, run_cell\n"
        "from spectragrid.core.layout import CELL_FILES\n"
        "m = complete_model({'arch': 'cnn', 'train': {'epochs': 1, 'batch_size': 256}})\n"
        "out = Path(sys.argv[3]); out.mkdir(parents=True, exist_ok=True)\n"
        "spec = CellSpec(dataset='big', labels='raw', target='OVA_OK', target_spec='OVA OK',\n"
        "  channels_name='all', channels=['277', '380', '425'], model='cnn', arch='cnn',\n"
        "  model_params=m['params'], train=m['train'], tabular=[], transforms={},\n"
        "  action=None, downweight=None, seed=0, fold=0, k=5)\n"
        "run_cell(spec, Path(sys.argv[1]), Path(sys.argv[2]), None,\n"
        "  CellOutputs(**{k: out / v for k, v in CELL_FILES.items()}), threads=2)\n"
    )
    result = run_measured(
        [sys.executable, "-c", script, str(clean), str(folds), str(work / "cell")]
    )
    card = json.loads((work / "cell" / "card.json").read_text())
    metrics = json.loads((work / "cell" / "metrics.json").read_text())
    n = metrics["n_train"] + metrics["n_val"] + metrics["n_test"]
    data_mb = n * len(CHANNELS) * len(WAVELENGTHS) * 4 / 2**20
    row(
        f"one 1-epoch cell on {n:,} samples",
        f"{result['seconds']:.0f} s, peak {result['peak_mb']:,.0f} MB",
        f"float32 spectra {data_mb:,.0f} MB; epoch {card['seconds_per_epoch']:.1f} s",
        result["peak_mb"] / data_mb,
        "peak <= 2x the float32 data",
    )


def _grid_config(models: int, seeds: int, k: int, targets: int, channel_sets: int) -> dict:
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    base = config["models"][config["grid"]["models"][0]]
    config["models"] = {
        f"m{i}": {**base, "train": {**base["train"], "lr": 0.001 * (1 + i)}} for i in range(models)
    }
    codes = ["OVA OK", "AVA IN", "AVA INs", "OVA NC", "AVA TY", "OVA VR"][:targets]
    config["targets"] = {f"t{i}": code for i, code in enumerate(codes)}
    sets = [["277", "380", "425"], ["277"], ["380"], ["425"], ["277", "380"]][:channel_sets]
    config["channel_sets"] = {f"c{i}": s for i, s in enumerate(sets)}
    config["grid"] = {
        "models": list(config["models"]),
        "targets": list(config["targets"]),
        "channel_sets": list(config["channel_sets"]),
    }
    config["splits"]["seeds"] = list(range(seeds))
    config["splits"]["k"] = k
    config["label_issues"]["models"] = ["m0"]
    # the shipped study judges every channel set's labels by its full one; c0 is that here
    config["label_issues"]["channel_sets"] = ["c0"]
    return config


def _copy_workflow(work: Path) -> None:
    for item in ("workflow", "config", "profiles"):
        shutil.copytree(ROOT / item, work / item, dirs_exist_ok=True)


def section_planning(work: Path) -> None:
    # 25 models x 4 targets x 5 channel sets x 2 seeds x 5 folds x raw/clean = 10,000 cells
    config = _grid_config(models=25, seeds=2, k=5, targets=4, channel_sets=5)
    plan = work / "plan"
    _copy_workflow(plan)
    (plan / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    ours = run_measured([*SNAKEMAKE, "-n", "--quiet", "rules", "--cores", "2"], cwd=plan)
    # The job-count table can be printed more than once; its first "total" row counts.
    jobs = next(
        int(parts[1])
        for line in ours["out"].splitlines()
        if len(parts := line.split()) == 2 and parts[0] == "total" and parts[1].isdigit()
    )
    trivial = work / "trivial"
    trivial.mkdir(exist_ok=True)
    (trivial / "Snakefile").write_text(
        f"rule all:\n    input: expand('out/{{i}}.txt', i=range({jobs}))\n\n"
        "rule one:\n    output: 'out/{i}.txt'\n    shell: 'touch {output}'\n"
    )
    reference = run_measured([*SNAKEMAKE, "-n", "--quiet", "rules", "--cores", "2"], cwd=trivial)
    row(
        "snakemake -n, 10,000 cells",
        f"{ours['seconds']:.1f} s ({jobs:,} jobs), {ours['peak_mb']:,.0f} MB",
        f"{jobs:,} trivial jobs {reference['seconds']:.1f} s",
        ours["seconds"] / reference["seconds"],
        "<= 15 s",
    )


def section_cells(work: Path) -> None:
    # 10 models x 1 target x 1 channel set x 5 folds x raw/clean = 100 cells
    config = _grid_config(models=10, seeds=1, k=5, targets=1, channel_sets=1)
    for model in config["models"].values():
        model["train"].update(epochs=1, patience=1)
    config["dataset"]["demo"]["n_samples"] = 600
    grid = work / "cells"
    # As README.md runs a study (`--profile cpu`: the greedy scheduler, the progress
    # logger), and with Snakemake's own defaults (the ILP scheduler); the floor, trivial
    # jobs, with the same options.
    for name, options in (
        ("--cores 2", []),
        ("--profile cpu --cores 2", ["--profile", str(grid / "profiles" / "cpu")]),
    ):
        _cells_row(grid, config, name, options, work)


def _cells_row(grid: Path, config: dict, name: str, options: list[str], work: Path) -> None:
    # a finished grid from an earlier run would plan nothing: start from no results
    for old in (grid / "results", grid / ".snakemake"):
        shutil.rmtree(old, ignore_errors=True)
    _copy_workflow(grid)
    (grid / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    # the data first, so that the clock counts cells and sheets
    run_measured([*SNAKEMAKE, "--cores", "2", "results/demo/splits/s0_k5.parquet"], cwd=grid)
    data_jobs = set((grid / "results" / "benchmarks").rglob("*.tsv"))
    result = run_measured([*SNAKEMAKE, "--cores", "2", *options], cwd=grid)
    cards = list((grid / "results" / "demo" / "cells").rglob("card.json"))
    training = sum(
        json.loads(c.read_text())["seconds_per_epoch"]
        * json.loads((c.parent / "metrics.json").read_text())["epochs_run"]
        for c in cards
    )
    bench = list((grid / "results" / "benchmarks" / "demo" / "cells").rglob("train.tsv"))
    job_seconds = 0.0
    for path in bench:
        lines = path.read_text().splitlines()
        job_seconds += float(lines[1].split("\t")[0])
    cells = len(cards)
    jobs = len(set((grid / "results" / "benchmarks").rglob("*.tsv")) - data_jobs)
    floor = _touch_jobs(work / "empty_jobs", jobs, options)
    row(
        f"{cells} one-epoch cells, {name}, sheets included",
        f"{cells / result['seconds']:.2f} cells/s ({result['seconds']:.0f} s), "
        f"training {training / result['seconds']:.1%} of the wall time, "
        f"fixed cost per cell {(job_seconds - training) / cells:.2f} s",
        f"{jobs} script jobs that only create their output {floor:.0f} s",
        result["seconds"] / floor,
        ">= 1.5 cells/s; fixed cost <= 1.5 s",
    )


def _touch_jobs(folder: Path, jobs: int, options: list[str]) -> float:
    """Wall seconds of `jobs` independent `script:` jobs whose script only creates its
    output, with --cores 2: what Snakemake and a Python start cost the grid's jobs before
    any work."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / "touch.py").write_text("open(snakemake.output[0], 'w').close()\n")
    (folder / "Snakefile").write_text(
        f"rule all:\n    input: expand('out/{{i}}.txt', i=range({jobs}))\n\n"
        "rule one:\n    output: 'out/{i}.txt'\n    script: 'touch.py'\n"
    )
    return run_measured([*SNAKEMAKE, "--cores", "2", "--quiet", "rules", *options], cwd=folder)[
        "seconds"
    ]


def section_summary(work: Path, cells: int = 1000) -> None:
    """The summary job over `cells` cells: the 100-cell grid's cells copied under more
    model names, then the summary job's own function run as a whole process."""
    source = work / "cells"
    if not (source / "results" / "summary.html").exists():
        section_cells(work)
    results = work / "summary" / "results"
    if results.exists():
        shutil.rmtree(results)
    shutil.copytree(source / "results", results)
    config = yaml.safe_load((source / "config" / "config.yaml").read_text())
    copies = cells // (2 * config["splits"]["k"])
    metrics_paths, benchmark_paths = [], []
    for labels in ("raw", "clean"):
        models = results / "demo" / "cells" / labels / "t0" / "c0"
        for i in range(copies):
            folder = models / f"m{i}"
            if not folder.exists():
                shutil.copytree(models / f"m{i % 10}", folder)
            for metrics_path in sorted(folder.rglob("metrics.json")):
                metrics = json.loads(metrics_path.read_text())
                metrics["cell"]["model"] = f"m{i}"
                metrics_path.write_text(json.dumps(metrics))
                metrics_paths.append(str(metrics_path))
    issues = sorted(str(p) for p in (results / "demo" / "label_issues").rglob("issues.csv"))
    benchmark_paths = sorted(str(p) for p in (results / "benchmarks").rglob("*.tsv"))
    args = {
        "metrics_paths": metrics_paths,
        "issues_paths": issues,
        "cleaning_report_path": str(results / "demo" / "cleaning_report.json"),
        "truth_path": str(source / "resources" / "demo" / "truth.csv"),
        "columns": config["dataset"]["columns"],
        "label_map": config["dataset"]["label_map"],
        "config_hash": "benchmark",
        "best_metric": "test_macro_f1",
        "out_html": str(results / "summary.html"),
        "out_csv": str(results / "summary.csv"),
        "out_parquet": str(results / "summary.parquet"),
        "benchmark_paths": benchmark_paths,
        "benchmarks_root": str(results / "benchmarks"),
        "review_dir": str(results / "summary_files"),
        "clean_path": str(results / "demo" / "clean.parquet"),
        "channel_sets": {"c0": ["277", "380", "425"]},
        "report_settings": None,
    }
    (work / "summary_args.json").write_text(json.dumps(args))
    script = (
        "import json, sys; from pathlib import Path\n"
        "from spectragrid.core.config import validate\n"
        "from spectragrid.report.summary import build_report\n"
        "a = json.loads(Path(sys.argv[1]).read_text())\n"
        "report = validate(json.loads(sys.argv[2]))['report']\n"
        "a['report_settings'] = {k: report[k] for k in ('best_metric', 'cutoff', 'costs')}\n"
        "paths = {'metrics_paths', 'issues_paths', 'benchmark_paths'}\n"
        "a = {k: ([Path(p) for p in v] if k in paths else Path(v) if isinstance(v, str)\n"
        "     and k.endswith(('_path', 'html', 'csv', 'parquet', '_root', '_dir')) else v)\n"
        "     for k, v in a.items()}\n"
        "build_report(**a)\n"
    )
    result = run_measured(
        [sys.executable, "-c", script, str(work / "summary_args.json"), json.dumps(config)]
    )
    # The plainest summary of the same cells: read every metrics.json, one pandas table,
    # `to_html`; a whole process too, so that both pay their imports.
    reference_script = (
        "import json, sys; from pathlib import Path\n"
        "import pandas as pd\n"
        "a = json.loads(Path(sys.argv[1]).read_text())\n"
        "rows = []\n"
        "for p in a['metrics_paths']:\n"
        "    m = json.loads(Path(p).read_text())\n"
        "    rows.append({**m['cell'], **{f'test_{k}': v for k, v in m['test'].items()}})\n"
        "Path(sys.argv[2]).write_text(pd.DataFrame(rows).to_html())\n"
    )
    reference_html = work / "summary_reference.html"
    reference = run_measured(
        [
            sys.executable,
            "-c",
            reference_script,
            str(work / "summary_args.json"),
            str(reference_html),
        ]
    )
    html = results / "summary.html"
    parts = list((results / "summary_files" / "parts").glob("*.js"))
    parts_mb = sum(p.stat().st_size for p in parts) / 2**20
    row(
        f"summary of {len(metrics_paths):,} cells",
        f"{result['seconds']:.1f} s, {result['peak_mb']:,.0f} MB; summary.html "
        f"{html.stat().st_size / 2**20:.2f} MB (+ {len(parts)} parts loaded on demand, "
        f"{parts_mb:.1f} MB)",
        f"read {len(metrics_paths):,} metrics.json + pandas to_html: "
        f"{reference['seconds']:.1f} s, {reference_html.stat().st_size / 2**20:.2f} MB",
        result["seconds"] / reference["seconds"],
        "<= 60 s, <= 3 MB",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only",
        nargs="+",
        default=["planning", "ingest", "read", "cell", "cells", "summary"],
        choices=["planning", "ingest", "read", "cell", "cells", "summary"],
    )
    parser.add_argument("--samples", type=int, default=300_000)
    parser.add_argument("--work", type=Path, help="keep the data here (reused when present)")
    args = parser.parse_args()
    os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", "33554432")
    os.environ.setdefault("MALLOC_TRIM_THRESHOLD_", "17179869184")
    work = args.work or Path(tempfile.mkdtemp(prefix="spectragrid-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    print("| what | spectragrid | reference, same run | ratio | target |")
    print("| --- | --- | --- | --- | --- |")
    clean = work / "ingested" / "clean.parquet"
    for name in args.only:
        if name == "ingest":
            clean = section_ingest(work, args.samples)
        elif name == "read":
            section_read(work, clean if clean.exists() else section_ingest(work, args.samples))
        elif name == "cell":
            section_cell(work, clean if clean.exists() else section_ingest(work, args.samples))
        elif name == "planning":
            section_planning(work)
        elif name == "cells":
            section_cells(work)
        elif name == "summary":
            section_summary(work)
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
