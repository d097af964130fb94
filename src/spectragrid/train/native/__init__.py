"""C kernels for the planar CNN trunks' training on CPU.

Entry point: `run_planar(layers, x)` runs a planar trunk's layers on spectra
(B, C, L) and returns the planar (B, C', 1, L') output. In training, on CPU,
a first conv -> max-pool -> ReLU stage runs as one C kernel (first_stage.py,
first_stage.c) and each later max-pool -> ReLU pair as another (pool_relu.py,
pool_relu.c); anywhere a kernel does not apply, the PyTorch layers compute
the same numbers: the pool-ReLU kernel's exactly, the first stage's up to
float32 rounding (a stage of the kernel's form always computes in float32,
its output rounded to the autocast dtype). The kernels are built on first
use with the machine's C compiler (build.py); without one, or with
SPECTRAGRID_NATIVE=0, training takes the layers.

`KernelPaths` records which path each kernel's training calls took, for the
model card. Layers are recognised by their torch base classes (nn.Conv1d,
nn.MaxPool1d, nn.ReLU) and attributes, so this package depends on no model
module.
"""

from spectragrid.train.native.paths import KernelPaths
from spectragrid.train.native.planar_layers import run_planar

__all__ = ["KernelPaths", "run_planar"]
