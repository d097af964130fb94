"""A local Snakemake run on a workstation with several GPUs: the global
`gpu_slots` is (cards x `resources.gpu_slots`), and the jobs spread over the
cards with never more than `resources.gpu_slots` on one.

This machine has no GPU: the workflow is told the number of cards, and each
job is a real process that claims its card the way a training cell does and
holds it for a while.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from spectragrid.train.gpu_slots import share_gpus

pytestmark = pytest.mark.slow

JOBS = 8

SNAKEFILE = """
import sys
from spectragrid.train.gpu_slots import share_gpus

share_gpus(workflow, config["cells_per_gpu"], gpus=config["gpus"])

rule all:
    input:
        expand("out/{{i}}.json", i=range({jobs})),

rule cell:
    output:
        "out/{{i}}.json",
    resources:
        gpu_slots=1,
    shell:
        "{{sys.executable}} job.py {{output}} {{config[gpus]}}"
"""

# A training job reduced to its card: claim one, keep it a while, say when.
JOB = """
import json, sys, time
from spectragrid.train.gpu_slots import claim_device
device = claim_device(int(sys.argv[2]))
started = time.time()
time.sleep(1.5)
with open(sys.argv[1], "w") as f:
    json.dump({"device": device, "started": started, "ended": time.time()}, f)
"""


def run_jobs(work: Path, gpus: int, cells_per_gpu: int, *args: str) -> list[dict]:
    work.mkdir()
    (work / "Snakefile").write_text(SNAKEFILE.format(jobs=JOBS))
    (work / "job.py").write_text(JOB)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--cores",
            "8",
            "--config",
            f"gpus={gpus}",
            f"cells_per_gpu={cells_per_gpu}",
            *args,
        ],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return [json.loads(p.read_text()) for p in sorted((work / "out").glob("*.json"))]


def most_at_once(jobs: list[dict]) -> int:
    """The most of `jobs` that held their card at the same time."""
    events = sorted([(j["started"], 1) for j in jobs] + [(j["ended"], -1) for j in jobs])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def test_jobs_spread_over_the_cards_up_to_the_slots_of_each(tmp_path):
    jobs = run_jobs(tmp_path / "work", gpus=2, cells_per_gpu=2)
    assert len(jobs) == JOBS
    # 8 cores, but 2 cards x 2 slots: four at a time, two on each card
    assert most_at_once(jobs) == 4
    for device in (0, 1):
        assert most_at_once([j for j in jobs if j["device"] == device]) == 2
    assert set(Counter(j["device"] for j in jobs)) == {0, 1}


def test_a_gpu_slots_the_user_gives_is_the_whole_limit(tmp_path):
    jobs = run_jobs(tmp_path / "work", 2, 2, "--resources", "gpu_slots=1")
    assert most_at_once(jobs) == 1


def test_a_cluster_run_or_a_machine_without_gpu_gets_no_limit():
    from types import SimpleNamespace

    from snakemake.resources import Resources

    # --jobs 100 with a cluster executor: each job gets its GPU from the cluster
    cluster = SimpleNamespace(global_resources=Resources.from_mapping({"_cores": 8, "_nodes": 100}))
    assert share_gpus(cluster, 4, gpus=2) is None
    assert "gpu_slots" not in cluster.global_resources
    local = SimpleNamespace(global_resources=Resources.from_mapping({"_cores": 8, "_nodes": None}))
    assert share_gpus(local, 4, gpus=0) is None
    assert "gpu_slots" not in local.global_resources
    assert share_gpus(local, 4, gpus=3) == 12
    assert local.global_resources["gpu_slots"].value == 12
