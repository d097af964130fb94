from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch

from spectragrid.train.checkpoints import CheckpointError, load_checkpoint
from spectragrid.train.models import build_model


class _Payload:
    """Pickles as a call of `func(*args)`: what a malicious checkpoint carries."""

    def __init__(self, func, *args) -> None:
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _cell_checkpoint(path: Path) -> torch.nn.Module:
    """A checkpoint with the keys and value types a cell writes."""
    torch.manual_seed(0)
    model = build_model("cnn", {"widths": [4, 4], "kernel": 3}, 3, 64, 2, 2)
    torch.save(
        {
            "state_dict": model.state_dict(),
            "classes": ["OK", "rest"],
            "channels": ["277", "380", "425"],
            "arch": "cnn",
            "model_params": {"widths": [4, 4], "kernel": 3},
            "n_tabular": 2,
            "best_epoch": 3,
        },
        path,
    )
    return model


def test_a_cell_checkpoint_loads_and_restores_the_weights(tmp_path: Path) -> None:
    path = tmp_path / "model.ckpt"
    model = _cell_checkpoint(path)
    state = load_checkpoint(path)
    assert state["classes"] == ["OK", "rest"]
    assert state["model_params"] == {"widths": [4, 4], "kernel": 3}
    assert state["best_epoch"] == 3
    fresh = build_model("cnn", state["model_params"], 3, 64, state["n_tabular"], 2)
    fresh.load_state_dict(state["state_dict"])
    for name, value in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[name], value), name


@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "legacy"])
def test_a_checkpoint_carrying_a_payload_is_refused_and_the_payload_never_runs(
    tmp_path: Path, zipped: bool
) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "model.ckpt"
    payload = {"state_dict": {"w": torch.zeros(2)}, "x": _Payload(os.system, f"touch {marker}")}
    torch.save(payload, path, _use_new_zipfile_serialization=zipped)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert message.startswith(f"{path}: refused to load: the checkpoint asks for os.system")
    assert "weights_only=True" in message
    assert not marker.exists()
    # the same file through an unrestricted load does run the command: the refusal is real
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_a_payload_pickled_by_hand_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "written"
    path = tmp_path / "model.ckpt"
    path.write_bytes(pickle.dumps({"state_dict": _Payload(open, str(marker), "w")}, protocol=2))
    with pytest.raises(CheckpointError, match="refused to load"):
        load_checkpoint(path)
    assert not marker.exists()


def test_truncated_missing_and_foreign_checkpoints(tmp_path: Path) -> None:
    path = tmp_path / "model.ckpt"
    _cell_checkpoint(path)
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match=r"cut\.ckpt: cannot read: truncated"):
        load_checkpoint(cut)
    with pytest.raises(CheckpointError, match=r"nope\.ckpt: no such checkpoint file"):
        load_checkpoint(tmp_path / "nope.ckpt")
    other = tmp_path / "other.ckpt"
    torch.save([torch.zeros(1)], other)
    with pytest.raises(CheckpointError, match=r"other\.ckpt: not a spectragrid checkpoint"):
        load_checkpoint(other)
