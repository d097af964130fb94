"""Two processes training one cell: the second waits, then keeps the first one's outputs."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from spectragrid.train.cell_lock import cell_lock
from spectragrid.train.output_checksums import verify_cell

pytestmark = pytest.mark.slow

TRAIN = """
import json, logging, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
from cell_cases import inputs, outputs, spec
from spectragrid.train.cell import run_cell
from spectragrid.train.resume import Resume
prepared, out_dir, lock, resume = (Path(p) for p in sys.argv[2:6])
started = time.time()
# long enough that the second copy, started at the same moment, reaches the lock while the
# first still holds it (once imports take a few seconds less, 8 epochs no longer were)
metrics = run_cell(
    spec(train={"epochs": 40, "batch_size": 16, "patience": 40}),
    *inputs(prepared),
    outputs(out_dir),
    resume_path=resume,
    lock_path=lock,
)
print(json.dumps({"started": started, "ended": time.time(), "test": metrics["test"]}))
"""


def test_a_lock_held_by_one_process_makes_another_wait(tmp_path):
    lock = tmp_path / "locks" / "cell.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(lock)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "locked"
    started = time.perf_counter()
    with cell_lock(lock):
        waited = time.perf_counter() - started
    holder.wait(timeout=30)
    assert waited >= 0.9
    assert lock.exists()  # the file stays; only the kernel's lock comes and goes


HOLD = """
import sys, time
from spectragrid.train.cell_lock import cell_lock
with cell_lock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(1.0)
"""


def test_two_copies_of_one_cell_at_once_leave_whole_outputs(prepared, tmp_path):
    out_dir = tmp_path / "cell"
    lock = tmp_path / "locks" / "cell.lock"
    resume = tmp_path / "resume" / "last.ckpt"
    env = dict(os.environ, SPECTRAGRID_MIN_UNSAVED_SECONDS="0", PYTHONHASHSEED="0")
    cases = str(Path(__file__).parent)
    command = [sys.executable, "-c", TRAIN, cases, str(prepared), str(out_dir), str(lock)]
    first, second = (
        subprocess.Popen(
            [*command, str(resume)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(2)
    )
    results = []
    for proc in (first, second):
        stdout, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stderr.decode()[-3000:]
        results.append((json.loads(stdout), stderr.decode()))
    # one trained (saving its resume state every epoch), the other waited and kept it
    waited = [err for _, err in results if "another process is training this cell" in err]
    assert len(waited) == 1
    assert results[0][0]["test"] == results[1][0]["test"]
    verify_cell(out_dir)  # every output whole and matching its checksum
    assert not resume.exists()  # the finished cell's resume state is gone
