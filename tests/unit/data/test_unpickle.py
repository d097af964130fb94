from __future__ import annotations

import datetime
import gzip
import os
import pickle
import zoneinfo
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spectragrid.data.unpickle import (
    RawDataError,
    UnsafePickleError,
    load_pickle_dataframe,
    loads_dataframe,
)


def _frame() -> pd.DataFrame:
    index = pd.Index([f"23-{i:06d}" for i in range(6)], name="sequence", dtype=object)
    return pd.DataFrame(
        {
            "277_295": np.linspace(-3.5, 4000.25, 6),
            "count": np.arange(6, dtype=np.int64),
            "small": np.arange(6, dtype=np.int32),
            "label": pd.Series(list("abcdef"), dtype=object).to_numpy(),
            "text": pd.array(list("uvwxyz"), dtype="str"),
            "when": pd.date_range("2023-02-20 08:00", periods=6, freq="37min"),
            "when_tz": pd.date_range("2023-02-20", periods=6, tz="UTC"),
            "when_zone": pd.date_range(
                "2023-02-20", periods=6, tz=zoneinfo.ZoneInfo("Europe/Paris")
            ),
            "kind": pd.Categorical(["OK", "VR", "OK", "NC", "OK", "VR"]),
            "flag": [True, False, True, True, False, False],
            "maybe": pd.array([1, None, 3, 4, None, 6], dtype="Int64"),
            "delay": pd.to_timedelta(np.arange(6), unit="s"),
        },
        index=index,
    )


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_dataframe_round_trip_all_protocols(protocol: int) -> None:
    df = _frame()
    out = loads_dataframe(pickle.dumps(df, protocol=protocol), "x.pkl")
    pd.testing.assert_frame_equal(out, df)
    assert out.index.name == "sequence"


def test_to_pickle_file_and_gzip(tmp_path: Path) -> None:
    df = _frame()
    plain = tmp_path / "a.pkl"
    df.to_pickle(plain)
    pd.testing.assert_frame_equal(load_pickle_dataframe(plain), df)
    packed = tmp_path / "a.pkl.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    pd.testing.assert_frame_equal(load_pickle_dataframe(packed), df)


def test_object_column_with_timestamps_and_numpy_scalars() -> None:
    values = [pd.Timestamp("2023-01-01"), pd.NaT, np.float64(1.5), datetime.date(2023, 1, 2), None]
    df = pd.DataFrame({"o": pd.Series(values, dtype=object)})
    out = loads_dataframe(pickle.dumps(df, protocol=2), "x.pkl")
    assert out["o"].iloc[0] == pd.Timestamp("2023-01-01")
    assert out["o"].iloc[1] is pd.NaT
    assert out["o"].iloc[2] == 1.5


def test_pickle_from_numpy_1_module_names_is_accepted() -> None:
    df = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]}).astype({"b": object})
    data = pickle.dumps(df, protocol=2)
    assert b"numpy._core.multiarray" in data
    old = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    pd.testing.assert_frame_equal(loads_dataframe(old, "old.pkl"), df)


class _Payload:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args

    def __call__(self, *args):
        # only so that pickle accepts an instance as the callable of another payload
        raise NotImplementedError


def _assert_refused(data: bytes, marker: Path, asked: str) -> None:
    with pytest.raises(UnsafePickleError) as info:
        loads_dataframe(data, "evil.pkl")
    message = str(info.value)
    assert message.startswith("evil.pkl: refused to load: the pickle asks for ")
    assert asked in message
    assert "not pandas/numpy data" in message
    assert not marker.exists()


def test_os_system_payload_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    data = pickle.dumps(_Payload(os.system, f"touch {marker}"))
    _assert_refused(data, marker, "asks for os.system, which")
    # sanity: the same bytes through plain pickle do run the command
    pickle.loads(data)
    assert marker.exists()


def test_open_payload_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "written"
    _assert_refused(pickle.dumps(_Payload(open, str(marker), "w")), marker, "io.open")


def test_payload_hidden_in_a_dataframe_cell_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "cell"
    df = pd.DataFrame({"a": pd.Series([1, _Payload(os.system, f"touch {marker}")], dtype=object)})
    _assert_refused(pickle.dumps(df), marker, ".system")


@pytest.mark.parametrize(
    ("func", "args", "asked"),
    [
        (pd.eval, ("1 + 1",), "eval"),
        (pd.read_pickle, ("/nonexistent.pkl",), "read_pickle"),
        (eval, ("1 + 1",), "builtins.eval"),
        (exec, ("x = 1",), "builtins.exec"),
        (__import__, ("subprocess",), "builtins.__import__"),
    ],
)
def test_functions_outside_the_allow_list_are_refused(func, args, asked, tmp_path: Path) -> None:
    _assert_refused(pickle.dumps(_Payload(func, *args)), tmp_path / "none", asked)


def test_subprocess_is_refused(tmp_path: Path) -> None:
    import subprocess

    marker = tmp_path / "sub"
    data = pickle.dumps(_Payload(subprocess.call, ["touch", str(marker)]))
    _assert_refused(data, marker, "subprocess.call")


def test_classes_with_side_effects_are_refused_even_under_numpy_and_pandas(tmp_path: Path) -> None:
    created = tmp_path / "mapped.bin"
    _assert_refused(
        pickle.dumps(_Payload(np.memmap, str(created), np.float64, "w+", 0, (10,))),
        created,
        "numpy.memmap",
    )
    store = tmp_path / "store.h5"
    _assert_refused(pickle.dumps(_Payload(pd.HDFStore, str(store), "w")), store, "HDFStore")


def test_getattr_is_limited_to_data_uses(tmp_path: Path) -> None:
    out = tmp_path / "dump.csv"
    frame = pd.DataFrame({"a": [1]})
    method = _Payload(getattr, pd.DataFrame, "to_csv")
    data = pickle.dumps(_Payload(method, frame, str(out)))
    with pytest.raises(UnsafePickleError, match=r"getattr\(DataFrame, 'to_csv'\)"):
        loads_dataframe(data, "evil.pkl")
    assert not out.exists()


def test_refusal_names_path_module_and_name(tmp_path: Path) -> None:
    path = tmp_path / "x.pkl"
    path.write_bytes(pickle.dumps(_Payload(os.system, "true")))
    with pytest.raises(UnsafePickleError) as info:
        load_pickle_dataframe(path)
    assert info.value.path == str(path)
    assert info.value.name == "system"
    assert isinstance(info.value, RawDataError)
    assert str(path) in str(info.value)


def test_truncated_file_is_a_raw_data_error(tmp_path: Path) -> None:
    path = tmp_path / "cut.pkl"
    data = pickle.dumps(_frame())
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(RawDataError, match=r"cut\.pkl: .*truncated or not a pickle"):
        load_pickle_dataframe(path)


@pytest.mark.parametrize("content", [b"", b"sequence,277_295\n1,2\n", b"\x1f\x8b\x08garbage"])
def test_not_a_pickle(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.pkl"
    path.write_bytes(content)
    with pytest.raises(RawDataError, match=r"bad\.pkl: .*(empty|truncated|corrupt)"):
        load_pickle_dataframe(path)


@pytest.mark.parametrize(
    ("obj", "type_name"),
    [({"a": 1}, "builtins.dict"), (pd.Series([1.0]), "pandas.Series"), (np.zeros(3), "ndarray")],
)
def test_pickle_that_is_not_a_dataframe(tmp_path: Path, obj, type_name: str) -> None:
    path = tmp_path / "other.pkl"
    path.write_bytes(pickle.dumps(obj))
    with pytest.raises(
        RawDataError, match=r"other\.pkl: the pickle holds a .*not a pandas DataFrame"
    ) as info:
        load_pickle_dataframe(path)
    assert type_name in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RawDataError, match="no such file"):
        load_pickle_dataframe(tmp_path / "nope.pkl")
