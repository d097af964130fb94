"""What a job imports: the seconds of a small cell or sheet are mostly its imports, so
nothing it does not use may come in with what it does (docs/benchmarks.md, 100 tiny
cells). Each check runs in a fresh interpreter, as a job does."""

import subprocess
import sys

import pytest

TRAIN = """
import spectragrid.train.train_job
import onnx
unused = {"torchmetrics", "lightning", "sklearn"}
import ml_dtypes as bounded
below = (0, 7)
"""

SHEET = """
import spectragrid.report.sheet_job
unused = {"sklearn", "torch", "scipy"}
import matplotlib as bounded
below = (3, 11)
"""

CHECK = """
import sys
found = sorted({m.split(".")[0] for m in sys.modules} & unused)
assert not found, found
major, minor = (int(part) for part in bounded.__version__.split(".")[:2])
assert (major, minor) < below, bounded.__version__
"""


@pytest.mark.parametrize(
    "job",
    [
        # Lightning Fabric imports torchmetrics at start-up whenever it is installed (the
        # `lightning` bundle installs it), and ml_dtypes 0.7.0, which onnx imports, took
        # 1.2 s to load: both were whole seconds of every training job.
        pytest.param(TRAIN, id="train"),
        # The ROC and precision-recall curves are computed in numpy
        # (spectragrid.core.curves), not with scikit-learn; matplotlib 3.11 draws text
        # glyph by glyph in Python, and a sheet took a third longer to draw with it.
        pytest.param(SHEET, id="sheet"),
    ],
)
def test_a_job_imports_only_what_it_uses_and_the_fast_releases(job: str) -> None:
    proc = subprocess.run([sys.executable, "-c", job + CHECK], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
