"""`spectragrid serve` under load on loopback: latency percentiles and throughput.

Starts the page's server in this process on 127.0.0.1 (a free port), sends
`--requests` POST /api/predict of one raw file from `--clients` concurrent
clients, and prints p50/p90/p99 latency and requests/s, beside two same-run
references on the same file in-process, one call at a time: the whole scoring
(read the file, check every row, onnxruntime) and onnxruntime alone on the
model's input arrays. The ratios say what HTTP, multipart and JSON add.

    python benchmarks/serve_load.py --study STUDY_DIR [--file RAW] [--requests 200 --clients 8]

STUDY_DIR is a finished study with its served models
(`snakemake results/served/<target>/model.onnx`); the file defaults to the
study's first raw file. Every request goes to the loopback address and the
run ends by itself after `--requests`.
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from spectragrid.core import layout
from spectragrid.serve.app import create_app
from spectragrid.serve.batch_input import model_inputs
from spectragrid.serve.client import post_file
from spectragrid.serve.scoring import score_batch
from spectragrid.serve.server import start_in_thread
from spectragrid.serve.study import load_study
from spectragrid.serve.uploads import read_upload


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1e3
    return {f"p{q}": float(np.percentile(ms, q)) for q in (50, 90, 99)}


def timed(call, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--study", type=Path, default=Path("."))
    parser.add_argument("--file", type=Path, default=None)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--reference-repeats", type=int, default=50)
    args = parser.parse_args()

    study = load_study(args.study)
    path = args.file or args.study / layout.demo_raw_files()[0]
    data = path.read_bytes()
    name = path.name

    # references first, one call at a time, in this process
    batch = read_upload(data, name, study.columns)
    inputs = {
        t: model_inputs(batch, m, study.saturation, study.min_integral)
        for t, m in study.models.items()
    }

    def scoring() -> None:
        found = read_upload(data, name, study.columns)
        score_batch(found, study.models, study.saturation, study.min_integral)

    def onnx_only() -> None:
        for target, model in study.models.items():
            model.probabilities(inputs[target].spectra, inputs[target].tabular)

    scoring()
    onnx_only()
    whole = timed(scoring, args.reference_repeats)
    bare = timed(onnx_only, args.reference_repeats)

    server = start_in_thread(create_app(study))
    try:
        post_file(server.url, name, data)  # warm-up

        def one(_: int) -> tuple[int, float]:
            start = time.perf_counter()
            status, _answer = post_file(server.url, name, data)
            return status, time.perf_counter() - start

        started = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            results = list(pool.map(one, range(args.requests)))
        wall = time.perf_counter() - started
    finally:
        server.stop()

    errors = sum(status != 200 for status, _ in results)
    served = percentiles([s for _, s in results])
    ref = percentiles(whole)
    print(
        f"file: {name}, {len(batch)} samples, {len(data) / 1e6:.2f} MB; "
        f"models: {', '.join(study.models)}"
    )
    print(
        f"load: {args.requests} requests from {args.clients} clients on loopback, {errors} errors"
    )
    print(f"{'':34}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'req/s':>9}")
    print(
        f"{'POST /api/predict (8 clients)':34}{served['p50']:9.1f}{served['p90']:9.1f}"
        f"{served['p99']:9.1f}{args.requests / wall:9.1f}"
    )
    print(
        f"{'in-process scoring (1 at a time)':34}{ref['p50']:9.1f}{ref['p90']:9.1f}"
        f"{ref['p99']:9.1f}{1 / statistics.mean(whole):9.1f}"
    )
    bare_p = percentiles(bare)
    print(
        f"{'onnxruntime alone (1 at a time)':34}{bare_p['p50']:9.1f}{bare_p['p90']:9.1f}"
        f"{bare_p['p99']:9.1f}{1 / statistics.mean(bare):9.1f}"
    )
    print(
        f"ratios: server p50 / in-process p50 = {served['p50'] / ref['p50']:.2f}; "
        f"server req/s / in-process calls/s = "
        f"{(args.requests / wall) * statistics.mean(whole):.2f}"
    )
    if errors:
        raise SystemExit(f"{errors} requests failed")


if __name__ == "__main__":
    main()
