"""Serve the study's models on a local page: drop a raw file, see each sample's classes.

`spectragrid serve [--port N] [--host H] [--study DIR]`, run from the study's
folder (where `snakemake` runs). It serves the files of results/served/
(`snakemake results/served/<target>/model.onnx` makes them).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from spectragrid.serve.server import DEFAULT_HOST, DEFAULT_PORT


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="spectragrid serve", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to listen on (default {DEFAULT_HOST}: this machine only)",
    )
    parser.add_argument("--study", type=Path, default=Path("."), help="the study's folder")
    parser.add_argument(
        "--max-upload-mb", type=float, default=None, help="default predict.max_upload_mb"
    )
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime threads per request")
    args = parser.parse_args(argv)

    # imported here: `spectragrid serve --help` needs none of it
    from spectragrid.core.config import ConfigError
    from spectragrid.serve.app import create_app
    from spectragrid.serve.server import serve_forever
    from spectragrid.serve.study import StudyError, load_study

    try:
        study = load_study(args.study, args.threads)
    except (StudyError, ConfigError) as err:
        print(f"spectragrid serve: {err}", file=sys.stderr)
        return 2
    if args.max_upload_mb is not None:
        study.max_upload_mb = args.max_upload_mb
    print(f"spectragrid serve: http://{args.host}:{args.port}/ ({', '.join(study.models)})")
    serve_forever(create_app(study), args.host, args.port)
    return 0
