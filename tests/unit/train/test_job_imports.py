"""What a training job imports: the seconds of a small cell are mostly its imports, so
nothing it does not use may come in with what it does (docs/benchmarks.md, 100 tiny cells)."""

import subprocess
import sys

SCRIPT = """
import sys
import spectragrid.train.cell
import spectragrid.train.loop
import spectragrid.train.export
import onnx
unused = sorted({m.split(".")[0] for m in sys.modules} & {"torchmetrics", "lightning", "sklearn"})
assert not unused, unused
import ml_dtypes
major, minor = (int(part) for part in ml_dtypes.__version__.split(".")[:2])
assert (major, minor) < (0, 7), ml_dtypes.__version__
"""


def test_a_training_job_imports_fabric_without_torchmetrics_and_a_fast_ml_dtypes():
    """Lightning Fabric imports torchmetrics at start-up whenever it is installed (the
    `lightning` bundle installs it), and ml_dtypes 0.7.0, which onnx imports, took 1.2 s
    to load; both were whole seconds of every training job."""
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
