"""Training speed of a spectragrid cell against a bare PyTorch loop, in one run.

Both train the default study's CNN on the demo data for a fixed number of
epochs (evaluating the validation part before the first epoch and after each,
as a cell does), with the same threads, batch size and allocator settings.
The cell keeps its resumable state as in the workflow; a third variant
without it shows what that costs (with the workflow's 10 s minimum before a
first save, a fit this short saves nothing, so what remains is the save
policy and the look for an earlier state). A fourth variant runs the bare
loop with the C kernels off (SPECTRAGRID_NATIVE=0), to show what they give.

This machine's speed drifts by 10-30 % over seconds (a shared VM), more than
the differences measured, so the variants are compared in pairs close in
time: each fresh process trains all four one after the other, in rounds
whose order rotates, after a warm-up they share (the first optimiser's
imports, oneDNN's kernels for these shapes, the C kernels' build or load,
the allocator's pages); the
cell's own first-use costs (Fabric's set-up) stay in its first round's time,
as in a workflow job. Printed per thread count: the
median over rounds of the per-round ratios cell / bare loop and cell / cell
without state, with their range, and achieved GFLOP/s against a float32
matmul measured in the same process right before and after each fit: over
the optimizer steps alone (the training step, as the model card times it)
and over the whole fit (validation and set-up included). Targets: cell /
bare <= 1.05, and the training step at >= 50 % of the matmul figure.

    python benchmarks/train_speed.py --epochs 10 --threads 1 2 --repeats 7 --rounds 2
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

    from spectragrid.data.demo import generate_demo
    from spectragrid.data.ingest import ingest_with_config
    from spectragrid.data.splits import split_clean_file

    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    demo = generate_demo(folder / "demo", n_samples=n_samples, seed=0)
    ingest_with_config(demo["raw_files"], folder, config)
    split_clean_file(folder / "clean.parquet", folder / "folds.parquet", seed=0, k=5)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def matmul_gflops(seconds: float = 0.5) -> float:
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


VARIANTS = ("bare", "spectragrid", "no-state", "bare-no-kernel")


def worker(
    folder: Path, variants: list[str], threads: int, epochs: int, batch: int | None
) -> list[dict]:
    """Train the variants in the order given (names may repeat) from the same
    initial weights, in this process."""
    import copy

    import numpy as np
    import torch

    from spectragrid.core.config import complete_model
    from spectragrid.data.clean_file import read_clean
    from spectragrid.data.splits import fold_parts, read_folds
    from spectragrid.data.targets import resolve
    from spectragrid.train.batches import Arrays
    from spectragrid.train.devices import effective_precision
    from spectragrid.train.loop import fit
    from spectragrid.train.models import build_model, flops_per_sample
    from spectragrid.train.resume import Resume, discard_resume_state
    from spectragrid.train.settings import TrainSettings

    torch.set_num_threads(threads)
    config = json.loads((folder / "config.json").read_text())
    model_cfg = complete_model(config["models"]["cnn"])
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
    settings = TrainSettings.from_config({**model_cfg["train"], **overrides})
    torch.manual_seed(0)
    initial = build_model(
        model_cfg["arch"],
        model_cfg["params"],
        len(channels),
        spectra.shape[2],
        tabular.shape[1],
        target.n_classes,
    )
    initial.fit_scaling(spectra[parts.train], tabular[parts.train])
    precision = effective_precision(settings.precision)
    warm_up(copy.deepcopy(initial), train, val, settings.batch_size, precision)
    flops = flops_per_sample(initial, len(channels), spectra.shape[2])
    # forward + backward ~ 3 forward passes per training sample; validation is forward only
    train_work = 3 * flops * len(train.labels) * epochs
    work = train_work + flops * len(val.labels) * (epochs + 1)

    references = [matmul_gflops()]
    resume = Resume(folder / f"state-{os.getpid()}" / "last.ckpt", key="benchmark")
    results = []
    for variant in variants:
        model = copy.deepcopy(initial)
        start = time.perf_counter()
        if variant == "spectragrid":
            result = fit(model, train, val, settings, target.n_classes, seed=0, resume=resume)
            step_seconds = sum(result.step_seconds)
        elif variant == "no-state":
            result = fit(model, train, val, settings, target.n_classes, seed=0)
            step_seconds = sum(result.step_seconds)
        elif variant == "bare-no-kernel":
            os.environ["SPECTRAGRID_NATIVE"] = "0"
            try:
                step_seconds = bare_loop(model, train, val, settings, epochs)
            finally:
                del os.environ["SPECTRAGRID_NATIVE"]
        else:
            step_seconds = bare_loop(model, train, val, settings, epochs)
        seconds = time.perf_counter() - start
        # as a completed cell does, untimed: the next round must not resume it
        discard_resume_state(resume)
        references.append(matmul_gflops())
        results.append(
            {
                "variant": variant,
                "seconds": seconds,
                "gflops": work / seconds / 1e9,
                "step_gflops": train_work / step_seconds / 1e9,
            }
        )
    for i, result in enumerate(results):
        # the matmul measured right before and right after this fit
        reference = (references[i] + references[i + 1]) / 2
        result.update(threads=threads, matmul_gflops=reference, precision=precision)
    return results


def warm_up(model, train, val, batch_size: int, precision: str) -> None:
    """What every variant would pay first and alike: the first optimiser (which
    imports torch._dynamo), oneDNN's kernels for the training and
    evaluation shapes, and the allocator's first pages."""
    import torch

    bf16 = precision == "bf16-mixed"
    optimizer = torch.optim.Adam(model.parameters(), fused=True)
    for _ in range(2):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(train.spectra[:batch_size], train.tabular[:batch_size])
        logits.float().logsumexp(dim=1).mean().backward()
        optimizer.step()
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            model(val.spectra[:1024], val.tabular[:1024])


def bare_loop(model, train, val, settings, epochs: int) -> float:
    """The loop a user would write: Adam, shuffled slices, an evaluation per epoch,
    with the cell's optimiser kernel and precision (bf16 autocast or float32).
    Returns the seconds spent in its optimizer steps."""
    import torch
    from torch import nn

    from spectragrid.train.devices import effective_precision

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


def measure(folder: Path, variants: list[str], threads: int, epochs: int) -> list[dict]:
    env = dict(os.environ, **ALLOCATOR, OMP_NUM_THREADS=str(threads))
    command = [sys.executable, __file__, "--worker", str(folder), ",".join(variants)]
    out = subprocess.run(
        [*command, str(threads), str(epochs)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def spread(values: list[float], fmt: str) -> str:
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


def report(threads: int, runs: list[dict[str, dict]]) -> str:
    def of(variant: str, key: str) -> list[float]:
        return [run[variant][key] for run in runs]

    def ratio(a: str, b: str) -> list[float]:
        return [run[a]["seconds"] / run[b]["seconds"] for run in runs]

    def share(variant: str, key: str) -> list[float]:
        return [run[variant][key] / run[variant]["matmul_gflops"] for run in runs]

    return (
        f"{threads} thread(s), {runs[0]['spectragrid']['precision']}\n"
        f"  seconds: bare {spread(of('bare', 'seconds'), '.3f')}, "
        f"cell {spread(of('spectragrid', 'seconds'), '.3f')}, "
        f"no-state {spread(of('no-state', 'seconds'), '.3f')}, "
        f"bare without the kernels {spread(of('bare-no-kernel', 'seconds'), '.3f')}\n"
        f"  cell / bare {spread(ratio('spectragrid', 'bare'), '.3f')}, "
        f"cell / no-state {spread(ratio('spectragrid', 'no-state'), '.3f')}, "
        f"bare / bare without the kernels {spread(ratio('bare', 'bare-no-kernel'), '.3f')}\n"
        f"  matmul GFLOP/s {spread(of('spectragrid', 'matmul_gflops'), '.1f')}\n"
        f"  training step of matmul: cell {spread(share('spectragrid', 'step_gflops'), '.1%')}, "
        f"bare {spread(share('bare', 'step_gflops'), '.1%')}, "
        f"bare without the C kernels "
        f"{spread(share('bare-no-kernel', 'step_gflops'), '.1%')}; "
        f"cell step GFLOP/s {spread(of('spectragrid', 'step_gflops'), '.1f')}\n"
        f"  whole fit of matmul: cell {spread(share('spectragrid', 'gflops'), '.1%')}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=7, help="processes per thread count")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the variants per process")
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
        folder, variants, threads, epochs = args.worker
        batch = (
            int(os.environ["SPECTRAGRID_BENCH_BATCH"])
            if "SPECTRAGRID_BENCH_BATCH" in os.environ
            else None
        )
        results = worker(Path(folder), variants.split(","), int(threads), int(epochs), batch)
        print(json.dumps(results))
        return
    if args.batch_size:
        os.environ["SPECTRAGRID_BENCH_BATCH"] = str(args.batch_size)
    if args.precision:
        os.environ["SPECTRAGRID_BENCH_PRECISION"] = args.precision
    with tempfile.TemporaryDirectory() as tmp:
        folder = prepare(Path(tmp), args.samples)
        print(
            f"demo {args.samples} samples, default CNN, {args.epochs} epochs; "
            f"{args.repeats} processes per thread count, each training the four variants "
            f"in {args.rounds} rounds of rotating order; median (min-max) over rounds"
        )
        for threads in args.threads:
            runs: list[dict[str, dict]] = []
            rotations = [VARIANTS[i:] + VARIANTS[:i] for i in range(len(VARIANTS))]
            for repeat in range(args.repeats):
                rounds = [
                    rotations[(repeat * args.rounds + i) % len(rotations)]
                    for i in range(args.rounds)
                ]
                results = measure(folder, [v for r in rounds for v in r], threads, args.epochs)
                for i in range(args.rounds):
                    chunk = results[i * len(VARIANTS) : (i + 1) * len(VARIANTS)]
                    runs.append({r["variant"]: r for r in chunk})
            print(report(threads, runs))


if __name__ == "__main__":
    main()
