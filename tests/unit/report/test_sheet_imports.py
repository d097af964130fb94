"""What a sheet job imports: each sheet job is a process of its own, and its seconds are
its imports and matplotlib's drawing (docs/benchmarks.md, 100 tiny cells)."""

import subprocess
import sys

SCRIPT = """
import sys
import spectragrid.report.sheet
unused = sorted({m.split(".")[0] for m in sys.modules} & {"sklearn", "torch", "scipy"})
assert not unused, unused
import matplotlib
major, minor = (int(part) for part in matplotlib.__version__.split(".")[:2])
assert (major, minor) < (3, 11), matplotlib.__version__
"""


def test_a_sheet_job_imports_no_model_library_and_a_matplotlib_that_draws_text_fast():
    """The ROC and precision-recall curves are computed in numpy (spectragrid.core.curves),
    not with scikit-learn; matplotlib 3.11 draws text glyph by glyph in Python, and a sheet
    took a third longer to draw with it."""
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
