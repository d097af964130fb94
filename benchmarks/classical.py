"""Classical families against the default CNN on the demo, and what a classical cell costs.

Generates the demo data in a temporary folder (3,000 samples; `--samples`
changes that), ingests it and splits it into 5 grouped folds (seed 0), as the
default study does, then trains real cells (spectragrid.train.cell.run_cell,
the function the workflow's train job calls) for every (family, target,
channel set, fold) of the default study's targets (OVA_OK, AVA_IN) and
channel sets (all, ex277): the five classical families with their schema
defaults (small candidate lists, chosen on each cell's validation fold) and
the default study's CNN as config/config.yaml defines it. Cells run in
`--workers` processes of one thread each, as the workflow's jobs do.

Printed:

1. per (target, channel set), the test macro-F1 of each model (mean ± sd over
   the 5 folds) and its mean fit time per cell;
2. per target, the grid's best model and channel set against the best
   classical one, fold by fold, with the summary's paired test and verdict
   (spectragrid.report.baseline);
3. the fixed cost of a cell: a fresh process that runs one cell, from its
   start to its exit, minus the time spent fitting (the classical
   candidates' fits and their validation; the network's fit() call, epoch 0
   to the last), for a classical cell and a network cell, `--repeats` times
   each in alternation (median and range); and the import time of each
   path (python -X importtime, cumulative, of the modules each imports).

    python benchmarks/classical.py --workers 2 --out classical.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALLOCATOR = {"MALLOC_MMAP_THRESHOLD_": "33554432", "MALLOC_TRIM_THRESHOLD_": "17179869184"}
FAMILIES = ("pls_da", "logreg", "svm", "random_forest", "hist_gradient_boosting")
TARGETS = ("OVA_OK", "AVA_IN")
CHANNEL_SETS = ("all", "ex277")
K = 5


def prepare(folder: Path, n_samples: int) -> Path:
    import yaml

    from spectragrid.data.demo import generate_demo
    from spectragrid.data.ingest import ingest_with_config
    from spectragrid.data.splits import split_clean_file

    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    demo = generate_demo(folder / "demo", n_samples=n_samples, seed=0)
    ingest_with_config(demo["raw_files"], folder, config)
    split_clean_file(folder / "clean.parquet", folder / "folds.parquet", seed=0, k=K)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def model_entry(config: dict, model: str) -> dict:
    from spectragrid.core.config import complete_model

    entry = config["models"]["cnn"] if model == "cnn" else {"arch": model}
    return complete_model(entry)


def cell_spec(config: dict, model: str, target: str, channels: str, fold: int):
    from spectragrid.train.cell import CellSpec

    entry = model_entry(config, model)
    return CellSpec(
        dataset="demo",
        labels="raw",
        target=target,
        target_spec=config["targets"][target],
        channels_name=channels,
        channels=list(config["channel_sets"][channels]),
        model=model,
        arch=entry["arch"],
        model_params=entry["params"],
        train=entry["train"],
        tabular=list(config["tabular"]),
        seed=0,
        fold=fold,
        k=K,
        transforms=entry["transforms"],
        action=None,
        downweight=None,
        preprocessing=entry["preprocessing"],
    )


def run_one(folder: str, model: str, target: str, channels: str, fold: int) -> dict:
    """One cell in this worker process, one thread; its test scores and fit time."""
    import os

    os.environ.update(ALLOCATOR)
    from spectragrid.train.cell import CellOutputs, run_cell

    base = Path(folder)
    config = json.loads((base / "config.json").read_text())
    out = base / "cells" / model / target / channels / f"f{fold}"
    out.mkdir(parents=True, exist_ok=True)
    files = CellOutputs(
        checkpoint=out / "model.ckpt",
        onnx=out / "model.onnx",
        predictions=out / "predictions.parquet",
        metrics=out / "metrics.json",
        history=out / "history.csv",
        card=out / "card.json",
    )
    started = time.perf_counter()
    spec = cell_spec(config, model, target, channels, fold)
    metrics = run_cell(spec, base / "clean.parquet", base / "folds.parquet", None, files)
    card = json.loads(files.card.read_text())
    return {
        "model": model,
        "family": metrics.get("family", "network"),
        "target": target,
        "channels": channels,
        "fold": fold,
        "test_macro_f1": metrics["test"]["macro_f1"],
        "chosen": metrics.get("chosen"),
        "cell_seconds": time.perf_counter() - started,
        "fit_seconds": card.get("selection_seconds")
        or (card["seconds_per_epoch"] or 0) * metrics["epochs_run"],
    }


def grid_scores(folder: Path, models: list[str], workers: int) -> list[dict]:
    jobs = [
        (str(folder), model, target, channels, fold)
        for model in models
        for target in TARGETS
        for channels in CHANNEL_SETS
        for fold in range(K)
    ]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(run_one, *job) for job in jobs]
        results = []
        for future in futures:
            results.append(future.result())
            r = results[-1]
            print(
                f"  {r['model']:24s} {r['target']:7s} {r['channels']:6s} f{r['fold']} "
                f"macro-F1 {r['test_macro_f1']:.3f} cell {r['cell_seconds']:.1f} s",
                flush=True,
            )
    return results


# A fresh process that runs one cell and says how long its fit took: the time
# spent in spectragrid.train.loop.fit (a network) or in the classical
# candidates' selection, measured by wrapping them, so nothing else changes.
CELL_PROCESS = """
import json, sys, time
sys.path.insert(0, {bench!r})
from pathlib import Path
from classical import cell_spec
import spectragrid.train.cell as cell
spent = []
def timed(function):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - start)
    return wrapper
if {classical!r}:
    import spectragrid.train.classical.cell as classical
    classical.select = timed(classical.select)
else:
    import spectragrid.train.loop as loop
    loop.fit = timed(loop.fit)
base = Path({folder!r})
config = json.loads((base / "config.json").read_text())
out = Path({out!r})
out.mkdir(parents=True, exist_ok=True)
files = cell.CellOutputs(**{{k: out / n for k, n in (
    ("checkpoint", "model.ckpt"), ("onnx", "model.onnx"), ("predictions", "predictions.parquet"),
    ("metrics", "metrics.json"), ("history", "history.csv"), ("card", "card.json"))}})
spec = cell_spec(config, {model!r}, "OVA_OK", "all", 0)
cell.run_cell(spec, base / "clean.parquet", base / "folds.parquet", None, files)
print(json.dumps({{"fit_seconds": sum(spent)}}))
"""


def fixed_cost(folder: Path, model: str, repeat: int) -> dict:
    import os

    from spectragrid.train.classical import is_classical

    script = CELL_PROCESS.format(
        bench=str(Path(__file__).parent),
        classical=is_classical(model),
        folder=str(folder),
        out=str(folder / "fixed" / f"{model}-{repeat}"),
        model=model,
    )
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, **ALLOCATOR},
        check=False,
    )
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{model} cell process failed:\n{proc.stderr[-3000:]}")
    fit = json.loads(proc.stdout.strip().splitlines()[-1])["fit_seconds"]
    return {"model": model, "process_seconds": wall, "fit_seconds": fit, "fixed": wall - fit}


def import_seconds(modules: list[str]) -> float:
    """Cumulative import time of `modules` in a fresh process (python -X importtime)."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import " + ", ".join(modules)],
        capture_output=True,
        text=True,
        check=True,
    )
    total = 0
    for line in proc.stderr.splitlines():
        parts = [p.strip() for p in line.split("|")]
        # what spectragrid's top-level imports cost, everything they import included
        name = line.split("|")[-1]
        if len(parts) == 3 and parts[1].isdigit() and name.startswith(" spectragrid"):
            total += int(parts[1])
    return total / 1e6


def summarise(results: list[dict], models: list[str]) -> list[str]:
    import pandas as pd

    from spectragrid.report.baseline import networks_vs_classical

    frame = pd.DataFrame(results)
    lines = ["", "Test macro-F1, mean ± sd over 5 folds (mean fit s per cell):"]
    for target in TARGETS:
        for channels in CHANNEL_SETS:
            lines.append(f"  {target} / {channels}")
            mine = frame[(frame["target"] == target) & (frame["channels"] == channels)]
            for model in models:
                rows = mine[mine["model"] == model]
                scores = rows["test_macro_f1"]
                lines.append(
                    f"    {model:24s} {scores.mean():.3f} ± {scores.std(ddof=1):.3f}"
                    f"   ({rows['fit_seconds'].mean():.1f} s)"
                )
    cells = frame.assign(dataset="demo", labels="raw", seed=0, k=K)
    comparison = networks_vs_classical(cells, "test_macro_f1")
    lines += ["", "Per target: the grid's best against the best classical model (paired):"]
    for target in TARGETS:
        mine = cells[cells["target"] == target]
        means = mine.groupby(["model", "channels"])["test_macro_f1"].mean()
        best_model, best_channels = means.idxmax()
        line = f"  {target}: grid best {best_model} on {best_channels} ({means.max():.3f})"
        rows = comparison[comparison["target"] == target]
        if not rows.empty:
            base = rows.iloc[0]
            line += (
                f"; best classical {base['baseline_model']} on {base['baseline_channels']} "
                f"({base['baseline_mean']:.3f})"
            )
            for r in rows.to_dict("records"):
                line += (
                    f"\n    {r['model']} on {r['channels']} - baseline: "
                    f"{r['diff_mean']:+.3f} ± {r['diff_sd']:.3f}, p {r['p']:.3g} ({r['test']}), "
                    f"better on {r['n_network_better']} of {r['n_folds']}: {r['verdict']}"
                )
        lines.append(line)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="fixed-cost processes per kind")
    parser.add_argument("--models", nargs="+", default=[*FAMILIES, "cnn"])
    parser.add_argument("--classical-cell", default="pls_da", help="family of the fixed cost")
    parser.add_argument("--out", type=Path, help="also write every result as JSON here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="spectragrid-classical-") as tmp:
        folder = prepare(Path(tmp), args.samples)
        print(f"demo: {args.samples} samples, 5 folds; {args.workers} worker(s)", flush=True)
        results = grid_scores(folder, args.models, args.workers)
        lines = summarise(results, args.models)
        costs = []
        for repeat in range(args.repeats):
            for model in (args.classical_cell, "cnn"):
                costs.append(fixed_cost(folder, model, repeat))
    lines += ["", "Fixed cost of a cell (process start to exit, minus the fit), median (range):"]
    for model in (args.classical_cell, "cnn"):
        mine = [c for c in costs if c["model"] == model]
        fixed = [c["fixed"] for c in mine]
        lines.append(
            f"  {model:8s} {statistics.median(fixed):.2f} s ({min(fixed):.2f}-{max(fixed):.2f});"
            f" process {statistics.median(c['process_seconds'] for c in mine):.2f} s,"
            f" fit {statistics.median(c['fit_seconds'] for c in mine):.2f} s"
        )
    classical_imports = ["spectragrid.train.cell", "spectragrid.train.classical.cell"]
    network_imports = [
        "spectragrid.train.cell",
        "spectragrid.train.loop",
        "spectragrid.train.devices",
        "spectragrid.train.export",
        "spectragrid.train.resume",
    ]
    lines += [
        "Imports (python -X importtime, cumulative):",
        f"  classical cell {import_seconds(classical_imports):.2f} s; "
        f"network cell {import_seconds(network_imports):.2f} s",
    ]
    print("\n".join(lines))
    if args.out:
        args.out.write_text(json.dumps({"cells": results, "fixed_cost": costs}, indent=2))


if __name__ == "__main__":
    main()
