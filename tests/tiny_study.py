"""The workflow copied to a temporary folder and driven by the real snakemake, and the
tiny study the workflow tests share."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from spectragrid.core import layout

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
# A snakemake call that hangs must fail the test, not the whole CI run.
SNAKEMAKE_TIMEOUT = 900


def shared_temp(tmp_path_factory) -> Path:
    """A temporary folder every pytest-xdist worker of this run sees (the folder above
    the workers' own); this run's temporary folder without xdist."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def tiny_config() -> dict:
    """The default study shrunk to seconds: 300 demo samples, 3 folds, 2 epochs."""
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["dataset"]["demo"] = {"n_samples": 300, "seed": 0, "noise_rate": 0.1}
    config["splits"]["k"] = 3
    config["targets"] = {"OVA_OK": "OVA OK"}
    config["channel_sets"] = {"all": ["277", "380", "425"]}
    base = config["models"]["cnn"]
    base["params"]["widths"] = [8, 8, 8]
    base["train"].update(epochs=2, patience=2, batch_size=64)
    second = yaml.safe_load(yaml.safe_dump(base))
    second["params"]["widths"] = [4, 4, 4]
    config["models"] = {"cnn": base, "small": second}
    config["grid"] = {"models": ["cnn", "small"], "targets": ["OVA_OK"], "channel_sets": ["all"]}
    config["label_issues"]["models"] = ["cnn"]
    return config


class Workdir:
    """A copy of the workflow in a temporary folder, driven by the real snakemake."""

    def __init__(self, path: Path) -> None:
        self.path = path
        for item in ("workflow", "config", "profiles"):
            src = ROOT / item
            if src.is_dir():
                shutil.copytree(src, path / item)
            else:
                shutil.copy(src, path / item)

    @classmethod
    def existing(cls, path: Path) -> "Workdir":
        """A working folder another process set up (the workflow copied in already)."""
        work = cls.__new__(cls)
        work.path = path
        return work

    def cell(
        self,
        model: str = "cnn",
        fold: int = 0,
        labels: str = "raw",
        target: str = "OVA_OK",
        channels: str = "all",
        seed: int = 0,
        k: int = 3,
        dataset: str = "demo",
    ) -> Path:
        """A cell's folder, by default of the tiny study's grid."""
        return self.path / layout.cell_dir(dataset, labels, target, channels, model, seed, fold, k)

    def write_config(self, config: dict) -> Path:
        target = self.path / "config" / "config.yaml"
        target.write_text(yaml.safe_dump(config, sort_keys=False))
        return target

    def snakemake(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        env = dict(os.environ, PYTHONHASHSEED="0")
        proc = subprocess.run(
            [*SNAKEMAKE, "--cores", "2", *args],
            cwd=self.path,
            capture_output=True,
            text=True,
            timeout=SNAKEMAKE_TIMEOUT,
            env=env,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"snakemake {' '.join(args)} failed ({proc.returncode}):\n"
                f"{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"
            )
        return proc

    def planned_jobs(self, *args: str) -> dict[str, int]:
        """Rule -> job count of a dry run."""
        # --quiet takes a list of choices: targets after it would be read as choices.
        proc = self.snakemake("-n", *args, "--quiet", "rules")
        counts: dict[str, int] = {}
        for line in proc.stdout.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit() and parts[0] != "total":
                counts[parts[0]] = int(parts[1])
        return counts
