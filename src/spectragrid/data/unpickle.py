"""Load pickled pandas DataFrames without letting the pickle run code.

A pickle is a small program: every global it names is imported and may be
called. The unpickler below only hands out what pandas, numpy and pyarrow
need to rebuild a DataFrame:

- an explicit list of reconstruction *functions* (numpy's `_reconstruct`,
  pandas' `_new_Index`, `_unpickle_block`, ...), matched by exact
  (module, name);
- *classes* found under the numpy / pandas / pyarrow / timezone packages,
  but only when they derive from a data type (frames, indexes, blocks,
  extension arrays and dtypes, scalars, numpy dtypes and scalar types,
  pyarrow types and arrays, tzinfo). A module prefix alone is not enough:
  `numpy.memmap` and `pandas.HDFStore` are classes too, and creating one
  writes files.

Anything else (`os.system`, `builtins.eval`, `pandas.eval`,
`pandas.read_pickle`, `subprocess.*`, an unrestricted `getattr`, ...) is
refused with `UnsafePickleError` before it is imported or called.
"""

from __future__ import annotations

import bz2
import datetime
import gzip
import importlib
import io
import lzma
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = [
    "RawDataError",
    "UnsafePickleError",
    "load_pickle_dataframe",
    "loads_dataframe",
]


class RawDataError(ValueError):
    """A raw data file that cannot be used; the message names the file and what is wrong."""


_DISPLAY_MODULES = {"posix": "os", "nt": "os"}


class UnsafePickleError(RawDataError):
    """A pickle that asks for something other than pandas/numpy data."""

    def __init__(self, path: Path | str, module: str, name: str) -> None:
        self.path = str(path)
        self.module = module
        self.name = name
        # os.system pickles as posix.system (nt.system on Windows); say what users wrote
        shown = _DISPLAY_MODULES.get(module, module)
        super().__init__(
            f"{path}: refused to load: the pickle asks for {shown}.{name}, which is not "
            "pandas/numpy data (pickles can run code; only DataFrame pickles are accepted)"
        )


# Pickles written by older Python / numpy / pandas name things that have moved since.
_RENAMED_MODULES = {
    "__builtin__": "builtins",
    "copy_reg": "copyreg",
}
_RENAMED_GLOBALS = {
    # pandas <= 1.3 blocks, and the pandas compat table (pandas.compat.pickle_compat)
    ("pandas.core.internals.blocks", "new_block"): ("pandas._libs.internals", "_unpickle_block"),
    ("pandas._libs.tslibs.nattype", "__nat_unpickle"): (
        "pandas._libs.tslibs.nattype",
        "_nat_unpickle",
    ),
    ("pandas.core.indexes.numeric", "Int64Index"): ("pandas.core.indexes.base", "Index"),
    ("pandas.core.indexes.numeric", "UInt64Index"): ("pandas.core.indexes.base", "Index"),
    ("pandas.core.indexes.numeric", "Float64Index"): ("pandas.core.indexes.base", "Index"),
    ("pandas.core.arrays.sparse.dtype", "SparseDtype"): (
        "pandas.core.dtypes.dtypes",
        "SparseDtype",
    ),
}

# Reconstruction functions and singletons, by exact (module, name).
_ALLOWED_FUNCTIONS: frozenset[tuple[str, str]] = frozenset(
    {
        # numpy arrays and scalars
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy._core.numeric", "_frombuffer"),
        # pandas frames, indexes, blocks
        ("pandas.core.indexes.base", "_new_Index"),
        ("pandas.core.indexes.datetimes", "_new_DatetimeIndex"),
        ("pandas.core.indexes.timedeltas", "_new_TimedeltaIndex"),
        ("pandas.core.indexes.period", "_new_PeriodIndex"),
        ("pandas.core.indexes.interval", "_new_IntervalIndex"),
        ("pandas.core.indexes.multi", "_new_Index"),
        ("pandas._libs.internals", "_unpickle_block"),
        ("pandas._libs.arrays", "__pyx_unpickle_NDArrayBacked"),
        ("pandas._libs.interval", "__pyx_unpickle_IntervalMixin"),
        # pandas scalars
        ("pandas._libs.tslibs.timestamps", "_unpickle_timestamp"),
        ("pandas._libs.tslibs.timedeltas", "_timedelta_unpickle"),
        ("pandas._libs.tslibs.nattype", "_nat_unpickle"),
        ("pandas", "NA"),
        ("pandas", "NaT"),
        ("pandas._libs.missing", "NA"),
        ("pandas._libs.tslibs.nattype", "NaT"),
        # pyarrow-backed string and Arrow columns
        ("pyarrow.lib", "_restore_array"),
        ("pyarrow.lib", "py_buffer"),
        ("pyarrow.lib", "type_for_alias"),
        ("pyarrow.lib", "chunked_array"),
        ("pyarrow.lib", "field"),
        ("pyarrow.lib", "schema"),
        ("pyarrow.lib", "list_"),
        ("pyarrow.lib", "large_list"),
        ("pyarrow.lib", "fixed_size_list"),
        ("pyarrow.lib", "struct"),
        ("pyarrow.lib", "map_"),
        ("pyarrow.lib", "dictionary"),
        ("pyarrow.lib", "timestamp"),
        ("pyarrow.lib", "duration"),
        ("pyarrow.lib", "time32"),
        ("pyarrow.lib", "time64"),
        ("pyarrow.lib", "date32"),
        ("pyarrow.lib", "date64"),
        ("pyarrow.lib", "decimal128"),
        ("pyarrow.lib", "decimal256"),
        ("pyarrow.lib", "binary"),
        ("pyarrow.lib", "large_binary"),
        ("pyarrow.lib", "string"),
        ("pyarrow.lib", "large_string"),
        # timezones
        ("dateutil.tz._tzfile", "_unpickle"),
        ("pytz", "_p"),
        ("pytz", "_UTC"),
        # plain Python containers and values
        ("builtins", "slice"),
        ("builtins", "bytearray"),
        ("builtins", "bytes"),
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "complex"),
        ("builtins", "range"),
        ("builtins", "object"),
        ("_codecs", "encode"),
        ("copyreg", "_reconstructor"),
        ("collections", "OrderedDict"),
        ("datetime", "datetime"),
        ("datetime", "date"),
        ("datetime", "time"),
        ("datetime", "timedelta"),
        ("datetime", "timezone"),
        ("decimal", "Decimal"),
        ("zoneinfo", "ZoneInfo"),
    }
)

# Packages under which *data classes* may be looked up by name.
_CLASS_PACKAGES = ("numpy", "pandas", "pyarrow", "dateutil", "pytz", "zoneinfo")


def _data_bases() -> tuple[type, ...]:
    """Base classes of everything a DataFrame pickle legitimately instantiates."""
    import numpy as np
    import pyarrow as pa
    from pandas._libs.arrays import NDArrayBacked
    from pandas._libs.interval import IntervalMixin
    from pandas._libs.missing import C_NAType
    from pandas._libs.sparse import SparseIndex
    from pandas._libs.tslibs import BaseOffset
    from pandas._libs.tslibs.period import PeriodMixin
    from pandas.api.extensions import ExtensionArray, ExtensionDtype
    from pandas.core.flags import Flags
    from pandas.core.internals.blocks import Block
    from pandas.core.internals.managers import BaseBlockManager

    return (
        pd.DataFrame,
        pd.Series,
        pd.Index,
        BaseBlockManager,
        Block,
        NDArrayBacked,
        ExtensionArray,
        ExtensionDtype,
        SparseIndex,
        Flags,
        pd.Timestamp,
        pd.Timedelta,
        PeriodMixin,
        IntervalMixin,
        BaseOffset,
        C_NAType,
        np.generic,
        np.dtype,
        pa.DataType,
        pa.Array,
        pa.ChunkedArray,
        pa.Buffer,
        pa.Field,
        pa.Schema,
        pa.Scalar,
        datetime.tzinfo,
        datetime.date,
        datetime.time,
        datetime.timedelta,
    )


def _ndarray_types() -> tuple[type, ...]:
    import numpy as np

    # Exact types only: np.memmap and np.ma arrays are ndarray subclasses with side effects
    # or behaviour that a data file does not need.
    return (np.ndarray,)


def _restricted_getattr(path: Path | str) -> Callable[[Any, str], Any]:
    """`getattr` for the one use data pickles make of it (zoneinfo's `_unpickle`)."""
    import zoneinfo

    allowed = {(zoneinfo.ZoneInfo, "_unpickle")}

    def safe_getattr(obj: Any, name: str) -> Any:
        if (obj, name) not in allowed:
            owner = getattr(obj, "__name__", type(obj).__name__)
            raise UnsafePickleError(path, "builtins", f"getattr({owner}, {name!r})")
        return getattr(obj, name)

    return safe_getattr


def _normalise(module: str, name: str) -> tuple[str, str]:
    module = _RENAMED_MODULES.get(module, module)
    if module == "numpy.core" or module.startswith("numpy.core."):
        module = "numpy._core" + module[len("numpy.core") :]
    return _RENAMED_GLOBALS.get((module, name), (module, name))


def _resolve(module: str, name: str) -> Any:
    obj: Any = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


class _DataFrameUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BufferedIOBase, path: Path | str) -> None:
        super().__init__(file)
        self._path = path
        self._bases: tuple[type, ...] | None = None

    def find_class(self, module: str, name: str) -> Any:
        requested = (module, name)
        module, name = _normalise(module, name)
        if (module, name) == ("builtins", "getattr"):
            return _restricted_getattr(self._path)
        if (module, name) in _ALLOWED_FUNCTIONS:
            try:
                return _resolve(module, name)
            except (ImportError, AttributeError):
                raise RawDataError(
                    f"{self._path}: the pickle needs {module}.{name}, which this "
                    "installation does not provide (written by another pandas/numpy version?)"
                ) from None
        if module.split(".")[0] in _CLASS_PACKAGES and not name.startswith("_"):
            try:
                obj = _resolve(module, name)
            except (ImportError, AttributeError):
                obj = None
            if isinstance(obj, type) and self._is_data_class(obj):
                return obj
        raise UnsafePickleError(self._path, *requested)

    def _is_data_class(self, cls: type) -> bool:
        if cls in _ndarray_types():
            return True
        if self._bases is None:
            self._bases = _data_bases()
        return issubclass(cls, self._bases)


_COMPRESSED = (
    (b"\x1f\x8b", gzip.decompress),
    (b"BZh", bz2.decompress),
    (b"\xfd7zXZ\x00", lzma.decompress),
)


def loads_dataframe(data: bytes, path: Path | str) -> pd.DataFrame:
    """Unpickle `data` (the bytes of `path`) as a DataFrame, refusing anything else."""
    for magic, decompress in _COMPRESSED:
        if data.startswith(magic):
            try:
                data = decompress(data)
            except (OSError, EOFError, ValueError, lzma.LZMAError) as err:
                raise RawDataError(
                    f"{path}: the compressed file is truncated or corrupt ({err})"
                ) from None
            break
    if not data:
        raise RawDataError(f"{path}: the file is empty, not a pickle")
    try:
        obj = _DataFrameUnpickler(io.BytesIO(data), path).load()
    except RawDataError:
        raise
    except Exception as err:
        raise RawDataError(
            f"{path}: cannot read: the file is truncated or not a pickle "
            f"({type(err).__name__}: {err})"
        ) from None
    if not isinstance(obj, pd.DataFrame):
        kind = type(obj)
        raise RawDataError(
            f"{path}: the pickle holds a {kind.__module__}.{kind.__qualname__}, "
            "not a pandas DataFrame"
        )
    return obj


def load_pickle_dataframe(path: Path) -> pd.DataFrame:
    """Read a pickled pandas DataFrame (optionally gzip/bz2/xz-compressed) without running code."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise RawDataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise RawDataError(f"{path}: is a directory, not a pickle file") from None
    return loads_dataframe(data, path)
