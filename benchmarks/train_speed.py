"""Training speed of a spectragrid cell against a bare PyTorch loop, in one run.

Both train the default study's CNN on the demo data for a fixed number of
epochs (evaluating the validation part before the first epoch and after each,
as a cell does), with the same threads, batch size and allocator settings.
The cell saves its resumable state as in the workflow; a third variant
without it shows what that costs. Each measurement runs in a
fresh process. Printed: wall-time ratios cell / bare loop and cell / cell
without the saved state, and achieved GFLOP/s against a float32 matmul
measured in the same process: over the optimizer steps alone (the training
step, as the model card times it) and over the whole fit (validation, set-up
and saved state included). Targets: cell / bare <= 1.05, and the training
step at >= 50 % of the matmul figure.

    python benchmarks/train_speed.py --epochs 10 --threads 1 2 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The workflow sets these for every job (workflow/rules/common.smk); so do we.
ALLOCATOR = {"MALLOC_MMAP_THRESHOLD_": "33554432", "MALLOC_TRIM_THRESHOLD_": "17179869184"}


def prepare(folder: Path, n_samples: int) -> Path:
    import yaml

    from spectragrid.demo import generate_demo
    from spectragrid.ingest import ingest_with_config
    from spectragrid.splits import split_clean_file

    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    demo = generate_demo(folder / "demo", n_samples=n_samples, seed=0)
    ingest_with_config(demo["raw_files"], folder, config)
    split_clean_file(folder / "clean.parquet", folder / "folds.parquet", seed=0, k=5)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def matmul_gflops(seconds: float = 1.0) -> float:
    import torch

    a = torch.randn(1024, 1024)
    b = torch.randn(1024, 1024)
    a @ b
    n = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        n += 1
    return 2 * 1024**3 * n / (time.perf_counter() - start) / 1e9


def worker(folder: Path, variant: str, threads: int, epochs: int, batch: int | None) -> dict:
    import numpy as np
    import torch

    from spectragrid.dataset import read_clean
    from spectragrid.models import build_model, flops_per_sample
    from spectragrid.splits import fold_parts, read_folds
    from spectragrid.targets import resolve
    from spectragrid.training import (
        Arrays,
        Resume,
        TrainSettings,
        discard_resume_state,
        effective_precision,
        fit,
    )

    torch.set_num_threads(threads)
    config = json.loads((folder / "config.json").read_text())
    model_cfg = config["models"]["cnn"]
    channels = config["channel_sets"]["all"]
    data = read_clean(folder / "clean.parquet", channels)
    table = data.table
    target = resolve("OVA_OK", config["targets"]["OVA_OK"], table)
    y = target.encode(table["full_truth"])
    parts = fold_parts(read_folds(folder / "folds.parquet", table["sample_id"]), 0, 5)
    spectra = data.stack(channels)
    tabular = table[config["tabular"]].to_numpy(dtype=np.float32)

    def arrays(mask):
        return Arrays(
            torch.from_numpy(np.ascontiguousarray(spectra[mask])),
            torch.from_numpy(np.ascontiguousarray(tabular[mask])),
            torch.from_numpy(y[mask]),
        )

    train, val = arrays(parts.train), arrays(parts.val)
    overrides = {"epochs": epochs, "patience": epochs + 1}
    if batch:
        overrides["batch_size"] = batch
    if "SPECTRAGRID_BENCH_PRECISION" in os.environ:
        overrides["precision"] = os.environ["SPECTRAGRID_BENCH_PRECISION"]
    settings = TrainSettings(**{**model_cfg["train"], **overrides})
    torch.manual_seed(0)
    model = build_model(
        model_cfg["arch"],
        model_cfg["params"],
        len(channels),
        spectra.shape[2],
        tabular.shape[1],
        target.n_classes,
    )
    model.fit_scaling(spectra[parts.train], tabular[parts.train])
    reference = matmul_gflops()

    resume = Resume(folder / f"state-{os.getpid()}" / "last.ckpt", key="benchmark")
    start = time.perf_counter()
    if variant == "spectragrid":
        module = fit(model, train, val, settings, target.n_classes, seed=0, resume=resume)
        step_seconds = sum(module.step_seconds)
    elif variant == "no-state":
        module = fit(model, train, val, settings, target.n_classes, seed=0)
        step_seconds = sum(module.step_seconds)
    else:
        step_seconds = bare_loop(model, train, val, settings, epochs)
    seconds = time.perf_counter() - start
    discard_resume_state(resume)

    flops = flops_per_sample(model, len(channels), spectra.shape[2])
    precision = effective_precision(settings.precision)
    # forward + backward ~ 3 forward passes per training sample; validation is forward only
    train_work = 3 * flops * len(train.labels) * epochs
    work = train_work + flops * len(val.labels) * (epochs + 1)
    return {
        "variant": variant,
        "threads": threads,
        "seconds": seconds,
        "gflops": work / seconds / 1e9,
        "step_gflops": train_work / step_seconds / 1e9,
        "matmul_gflops": reference,
        "precision": precision,
    }


def bare_loop(model, train, val, settings, epochs: int) -> float:
    """The loop a user would write: Adam, shuffled slices, an evaluation per epoch,
    with the cell's optimiser kernel and precision (bf16 autocast or float32).
    Returns the seconds spent in its optimizer steps."""
    import torch
    from torch import nn

    from spectragrid.training import effective_precision

    bf16 = effective_precision(settings.precision) == "bf16-mixed"

    # the fused Adam kernel, as the cell uses
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr, fused=True)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(0)

    def evaluate() -> None:
        model.eval()
        with torch.no_grad():
            for s in range(0, len(val.labels), 1024):
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    model(val.spectra[s : s + 1024], val.tabular[s : s + 1024])
        model.train()

    evaluate()
    n = len(train.labels)
    step_seconds = 0.0
    for _ in range(epochs):
        started = time.perf_counter()
        order = torch.randperm(n, generator=generator)
        for s in range(0, n, settings.batch_size):
            idx = order[s : s + settings.batch_size]
            optimizer.zero_grad()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logits = model(train.spectra[idx], train.tabular[idx])
            loss = loss_fn(logits.float(), train.labels[idx])
            loss.backward()
            optimizer.step()
        step_seconds += time.perf_counter() - started
        evaluate()
    return step_seconds


def measure(folder: Path, variant: str, threads: int, epochs: int) -> dict:
    env = dict(os.environ, **ALLOCATOR, OMP_NUM_THREADS=str(threads))
    out = subprocess.run(
        [sys.executable, __file__, "--worker", str(folder), variant, str(threads), str(epochs)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--samples", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, help="default: the study's batch size")
    parser.add_argument(
        "--precision",
        choices=["auto", "32-true", "bf16-mixed"],
        help="default: the study's precision for the CNN",
    )
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        folder, variant, threads, epochs = args.worker
        batch = (
            int(os.environ["SPECTRAGRID_BENCH_BATCH"])
            if "SPECTRAGRID_BENCH_BATCH" in os.environ
            else None
        )
        print(json.dumps(worker(Path(folder), variant, int(threads), int(epochs), batch)))
        return
    if args.batch_size:
        os.environ["SPECTRAGRID_BENCH_BATCH"] = str(args.batch_size)
    if args.precision:
        os.environ["SPECTRAGRID_BENCH_PRECISION"] = args.precision
    with tempfile.TemporaryDirectory() as tmp:
        folder = prepare(Path(tmp), args.samples)
        print(
            f"demo {args.samples} samples, default CNN, {args.epochs} epochs, "
            f"median of {args.repeats} runs (alternating)"
        )
        header = (
            f"{'threads':>7} {'bare s':>8} {'cell s':>8} {'cell/bare':>9} "
            f"{'no-state s':>10} {'cell/no-state':>13} {'matmul GFLOP/s':>14} "
            f"{'step GFLOP/s':>12} {'of matmul':>9} {'fit GFLOP/s':>11} {'of matmul':>9} "
            f"{'bare step':>9} precision"
        )
        print(header)
        for threads in args.threads:
            runs: dict[str, list[dict]] = {"bare": [], "spectragrid": [], "no-state": []}
            for _ in range(args.repeats):
                for variant in runs:
                    runs[variant].append(measure(folder, variant, threads, args.epochs))
            bare = statistics.median(r["seconds"] for r in runs["bare"])
            cell = statistics.median(r["seconds"] for r in runs["spectragrid"])
            stateless = statistics.median(r["seconds"] for r in runs["no-state"])
            gflops = statistics.median(r["gflops"] for r in runs["spectragrid"])
            step = statistics.median(r["step_gflops"] for r in runs["spectragrid"])
            bare_step = statistics.median(r["step_gflops"] for r in runs["bare"])
            matmul = statistics.median(r["matmul_gflops"] for r in runs["spectragrid"])
            print(
                f"{threads:>7} {bare:>8.2f} {cell:>8.2f} {cell / bare:>9.3f} "
                f"{stateless:>10.2f} {cell / stateless:>13.3f} {matmul:>14.1f} "
                f"{step:>12.1f} {step / matmul:>9.1%} {gflops:>11.1f} {gflops / matmul:>9.1%} "
                f"{bare_step / matmul:>9.1%} {runs['spectragrid'][0]['precision']}"
            )


if __name__ == "__main__":
    main()
