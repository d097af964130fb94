"""Load pickled pandas DataFrames without letting the pickle run code or exhaust memory.

A pickle is a small program: every global it names is imported and may be
called with arguments of the pickle's choosing. The unpickler below decides
on the exact (module, name) pair *before* importing anything, from a fixed
list of what pandas, numpy and pyarrow pickles of a DataFrame use (read off
pickles written by pandas 2.2 to 3.1, numpy 1.26 to 2.4 and pyarrow 25 to 26
in protocols 0 to 5, for every column kind: numbers, object, strings,
categorical, datetimes with and without time zones, timedelta, period,
interval, nullable, sparse and Arrow columns, and every kind of index; plus
the module names older releases used). A name outside the list is refused
with `UnsafePickleError`; its module is never imported, so not even the
import code of a module like `numpy.f2py.__main__` runs.

Everything on the list may be called with any arguments, so nothing on it
reads or writes files, imports by name, evaluates text or walks attributes.
A few names that data pickles need but that could do more are handed out as
narrow stand-ins instead:

- `builtins.getattr` only for `zoneinfo.ZoneInfo._unpickle`;
- `_codecs.encode` only to Latin-1 (how protocol 2 stores bytes);
- `bytes` and `bytearray` only from data, never from a size;
- dateutil's `tzfile` class opens the path it is given: it is handed out
  only as a stand-in that builds a zone without a file. dateutil >= 4 zones
  load through `dateutil.tz._tzfile._unpickle`, dateutil <= 2.9 zones as
  `tzfile(None, filename)`; both rebuild the zone from the transitions
  stored in the pickle and read no file;
- pyarrow arrays are validated as they are rebuilt, and Arrow time zone
  names must be zone names, not paths;
- a Timestamp pickled by pandas <= 1.2 as (value, freq, tz) keeps its zone.

Deliberately left out: dateutil's `gettz`, `tzstr`, `tzrange`, `tzical` and
`tzwin` (they parse, read or look up by name; pandas never pickles them),
`builtins.range` (a lazy sequence of any length is a memory-bomb ingredient
and DataFrames never hold one), numpy's `memmap` and every other class with
side effects. dateutil's `tzlocal` stays: it takes no argument and opens no
file, and its pickled state carries the writer's offsets.

pandas resolves a time zone given as text ("dateutil//etc/passwd") through
dateutil's `gettz`, which opens any path it is handed; while a pickle is
read, `refuse_zone_paths` makes that lookup refuse names that are paths.

Compressed files (gzip, bz2, xz) are decompressed as a stream, never more
than `MAX_EXPANSION` times their size (at least `MIN_DECOMPRESSED_CAP`), and
only regular files are opened: a FIFO, a device or a directory is named as
such instead of being read (or waited on) for ever. A frame with far more
cells than its pickle has bytes (a RangeIndex with no data, sparse columns)
is refused before anything expands it (`MAX_CELLS_PER_BYTE`). Memory can
still run out (pandas' constructors accept sizes too), and then the error
names the file like any other.
"""

from __future__ import annotations

import _compat_pickle
import bz2
import contextlib
import datetime
import functools
import gzip
import hashlib
import importlib
import io
import lzma
import os
import pickle
import reprlib
import stat
import threading
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import pandas as pd

__all__ = [
    "MAX_CELLS_PER_BYTE",
    "MAX_EXPANSION",
    "MIN_DECOMPRESSED_CAP",
    "PickleFile",
    "RawDataError",
    "UnsafePickleError",
    "check_dense",
    "check_regular_file",
    "describe_size",
    "is_zone_path",
    "load_dataframe",
    "load_pickle_dataframe",
    "loads_dataframe",
    "open_regular_file",
    "read_pickle_dataframe",
    "read_regular_stream",
    "refuse_zone_paths",
    "shown",
]


class RawDataError(ValueError):
    """A raw data file that cannot be used; the message names the file and what is wrong."""


_DISPLAY_MODULES = {"posix": "os", "nt": "os"}


class UnsafePickleError(RawDataError):
    """A pickle that asks for something other than pandas/numpy data."""

    def __init__(
        self,
        path: Path | str,
        module: str,
        name: str,
        why: str = "which is not pandas/numpy data",
    ) -> None:
        self.path = str(path)
        self.module = module
        self.name = name
        # os.system pickles as posix.system (nt.system on Windows); say what users wrote
        shown_module = _DISPLAY_MODULES.get(module, module)
        super().__init__(
            f"{path}: refused to load: the pickle asks for {shown_module}.{name}, {why} "
            "(pickles can run code; only DataFrame pickles are accepted)"
        )


_SHORT = reprlib.Repr()
_SHORT.maxstring = 80
_SHORT.maxother = 80
_SHORT.maxlevel = 2


def shown(value: Any, limit: int = 100) -> str:
    """A repr of `value` for a message: bounded in length and depth, whatever the value."""
    try:
        text = _SHORT.repr(value)
    except Exception:  # a value whose repr fails still deserves a message
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_size(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


# --- which globals a pickle may name --------------------------------------------------------

# Pickles written by older Python / numpy / pandas name things that have moved since.
_RENAMED_MODULES = {
    **_compat_pickle.IMPORT_MAPPING,  # Python 2 names, as protocols 0-2 write them
    "__builtin__": "builtins",
    "copy_reg": "copyreg",
}
_RENAMED_GLOBALS = {
    **_compat_pickle.NAME_MAPPING,
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
    # pandas 2.x with future.infer_string; pandas 3 keeps the NaN semantics in the dtype
    ("pandas.core.arrays.string_arrow", "ArrowStringArrayNumpySemantics"): (
        "pandas.core.arrays.string_arrow",
        "ArrowStringArray",
    ),
    ("pandas.core.arrays.string_", "StringArrayNumpySemantics"): (
        "pandas.core.arrays.string_",
        "StringArray",
    ),
}

_OFFSETS = (
    "DateOffset", "Day", "Hour", "Minute", "Second", "Milli", "Micro", "Nano",
    "BusinessDay", "BusinessHour", "CustomBusinessDay", "CustomBusinessHour",
    "MonthBegin", "MonthEnd", "BusinessMonthBegin", "BusinessMonthEnd",
    "CustomBusinessMonthBegin", "CustomBusinessMonthEnd", "SemiMonthBegin", "SemiMonthEnd",
    "Week", "WeekOfMonth", "LastWeekOfMonth", "QuarterBegin", "QuarterEnd",
    "BQuarterBegin", "BQuarterEnd", "HalfYearBegin", "HalfYearEnd", "BHalfYearBegin",
    "BHalfYearEnd", "YearBegin", "YearEnd", "BYearBegin", "BYearEnd", "FY5253",
    "FY5253Quarter", "Easter",
)  # fmt: skip
_PANDAS_DTYPES = (
    "CategoricalDtype", "DatetimeTZDtype", "PeriodDtype", "IntervalDtype", "SparseDtype",
    "ArrowDtype", "StringDtype", "BooleanDtype", "Int8Dtype", "Int16Dtype", "Int32Dtype",
    "Int64Dtype", "UInt8Dtype", "UInt16Dtype", "UInt32Dtype", "UInt64Dtype", "Float32Dtype",
    "Float64Dtype",
)  # fmt: skip
_PANDAS_ARRAYS = (
    "ArrowExtensionArray", "ArrowStringArray", "BooleanArray", "Categorical", "DatetimeArray",
    "FloatingArray", "IntegerArray", "IntervalArray", "NumpyExtensionArray", "PeriodArray",
    "SparseArray", "StringArray", "TimedeltaArray",
)  # fmt: skip

# module -> the names a DataFrame pickle may use from it, classes and functions alike.
# Everything here is safe to call with any arguments; what data pickles need but is not
# (getattr, _codecs.encode, bytes, pyarrow's _restore_array, ...) is in `_stand_ins`.
_ALLOWED: dict[str, frozenset[str]] = {
    module: frozenset(names)
    for module, names in {
        # numpy arrays, dtypes and scalars (numpy.core.* pickles are read as numpy._core.*)
        "numpy": ("ndarray", "dtype"),
        "numpy._core.multiarray": ("_reconstruct", "scalar"),
        "numpy._core.numeric": ("_frombuffer",),
        # pandas >= 3 pickles its classes under their public names
        "pandas": (
            "DataFrame", "Series", "Index", "RangeIndex", "MultiIndex", "DatetimeIndex",
            "TimedeltaIndex", "PeriodIndex", "IntervalIndex", "CategoricalIndex",
            "Categorical", "Timedelta", "Period", "Interval", "NA", "NaT", "Flags",
            *_PANDAS_DTYPES,
        ),
        "pandas.arrays": _PANDAS_ARRAYS,
        # pandas <= 2.x pickles them under the modules that define them
        "pandas.core.frame": ("DataFrame",),
        "pandas.core.series": ("Series",),
        "pandas.core.flags": ("Flags",),
        "pandas.core.internals.managers": ("BlockManager", "SingleBlockManager"),
        "pandas._libs.internals": ("_unpickle_block",),
        "pandas.core.indexes.base": ("Index", "_new_Index"),
        "pandas.core.indexes.range": ("RangeIndex",),
        "pandas.core.indexes.multi": ("MultiIndex",),
        "pandas.core.indexes.category": ("CategoricalIndex",),
        "pandas.core.indexes.datetimes": ("DatetimeIndex", "_new_DatetimeIndex"),
        "pandas.core.indexes.timedeltas": ("TimedeltaIndex", "_new_TimedeltaIndex"),
        "pandas.core.indexes.period": ("PeriodIndex", "_new_PeriodIndex"),
        "pandas.core.indexes.interval": ("IntervalIndex", "_new_IntervalIndex"),
        "pandas.core.arrays.categorical": ("Categorical",),
        "pandas.core.arrays.datetimes": ("DatetimeArray",),
        "pandas.core.arrays.timedeltas": ("TimedeltaArray",),
        "pandas.core.arrays.period": ("PeriodArray",),
        "pandas.core.arrays.interval": ("IntervalArray",),
        "pandas.core.arrays.integer": (
            "IntegerArray", "Int8Dtype", "Int16Dtype", "Int32Dtype", "Int64Dtype",
            "UInt8Dtype", "UInt16Dtype", "UInt32Dtype", "UInt64Dtype",
        ),
        "pandas.core.arrays.floating": ("FloatingArray", "Float32Dtype", "Float64Dtype"),
        "pandas.core.arrays.boolean": ("BooleanArray", "BooleanDtype"),
        "pandas.core.arrays.string_": ("StringArray", "StringDtype"),
        "pandas.core.arrays.string_arrow": ("ArrowStringArray",),
        "pandas.core.arrays.arrow.array": ("ArrowExtensionArray",),
        "pandas.core.arrays.sparse.array": ("SparseArray",),
        "pandas.core.arrays.numpy_": ("NumpyExtensionArray",),
        "pandas.core.dtypes.dtypes": (
            "CategoricalDtype", "DatetimeTZDtype", "PeriodDtype", "IntervalDtype",
            "SparseDtype", "ArrowDtype", "NumpyEADtype",
        ),
        "pandas._libs.arrays": ("__pyx_unpickle_NDArrayBacked",),
        "pandas._libs.interval": ("Interval", "__pyx_unpickle_IntervalMixin"),
        "pandas._libs.sparse": ("IntIndex", "BlockIndex"),
        "pandas._libs.missing": ("NA",),
        "pandas._libs.tslibs.nattype": ("NaT", "_nat_unpickle"),
        "pandas._libs.tslibs.timestamps": ("_unpickle_timestamp",),
        "pandas._libs.tslibs.timedeltas": ("Timedelta", "_timedelta_unpickle"),
        "pandas._libs.tslibs.period": ("Period",),
        "pandas._libs.tslibs.offsets": _OFFSETS,
        # pyarrow-backed strings and Arrow columns: arrays, buffers and type factories
        "pyarrow.lib": (
            "py_buffer", "chunked_array", "type_for_alias", "field", "schema", "list_",
            "large_list", "list_view", "large_list_view", "struct", "map_", "dictionary",
            "duration", "time32", "time64", "date32",
            "date64", "decimal32", "decimal64", "decimal128", "decimal256", "binary",
            "large_binary", "string", "large_string", "binary_view", "string_view",
            "month_day_nano_interval", "run_end_encoded",
        ),
        # time zones
        "datetime": ("datetime", "date", "time", "timedelta", "timezone", "tzinfo"),
        "zoneinfo": ("ZoneInfo",),
        "dateutil.tz.tz": ("tzutc", "tzoffset", "tzlocal", "_ttinfo"),
        "dateutil.tz._tzfile": ("_unpickle",),
        "pytz": ("_p", "_UTC", "FixedOffset"),
        # plain Python values and the protocol's own helpers
        "builtins": ("slice", "set", "frozenset", "complex", "object"),
        "copyreg": ("_reconstructor",),
        "collections": ("OrderedDict",),
        "decimal": ("Decimal",),
    }.items()
}  # fmt: skip

# Names refused with a reason more precise than "not pandas/numpy data".
_REFUSED_BECAUSE = {
    ("dateutil.tz._tzfile", "tzfile"): "which opens the file named in its arguments",
    ("dateutil.tz.tz", "tzfile"): "which opens the file named in its arguments",
    ("dateutil.tz", "tzfile"): "which opens the file named in its arguments",
    ("dateutil.tz.tz", "gettz"): "which opens the file named in its arguments",
    ("dateutil.tz", "gettz"): "which opens the file named in its arguments",
    ("numpy", "memmap"): "which maps a file into memory",
    ("numpy._core.memmap", "memmap"): "which maps a file into memory",
    ("builtins", "range"): "a sequence of any length (DataFrame pickles do not hold one)",
}


def _normalise(module: str, name: str) -> tuple[str, str]:
    module, name = _RENAMED_GLOBALS.get((module, name), (module, name))
    module = _RENAMED_MODULES.get(module, module)
    if module == "numpy.core" or module.startswith("numpy.core."):
        module = "numpy._core" + module[len("numpy.core") :]
    return _RENAMED_GLOBALS.get((module, name), (module, name))


@functools.cache
def _lookup(module: str, name: str) -> Any:
    # only ever called for names on the list: importing their modules runs no foreign code
    return getattr(importlib.import_module(module), name)


# --- stand-ins for what data pickles need but could do more ----------------------------------


class _Tzfile:
    """Stands for dateutil's `tzfile` class, which opens the path it is given.

    dateutil >= 4 pickles a zone as `_unpickle(tzfile, key, filename, data)`,
    passing the class as a value; dateutil <= 2.9 as `tzfile(None, filename)`
    followed by the zone's transitions: with no file object, the class reads
    nothing. Any other call (a path, an open file) is refused.
    """

    __slots__ = ("_module", "_path")

    def __init__(self, path: Path | str, module: str) -> None:
        self._path, self._module = path, module

    def __call__(self, fileobj: Any = None, filename: Any = None, *args: Any, **kw: Any) -> Any:
        if fileobj is not None or args or kw or not isinstance(filename, str | None):
            raise UnsafePickleError(
                self._path, self._module, "tzfile", _REFUSED_BECAUSE[(self._module, "tzfile")]
            )
        from dateutil.tz import tzfile

        return tzfile(None, filename)


def _stand_ins(path: Path | str) -> dict[tuple[str, str], Any]:
    """(module, name) -> what the unpickler hands out instead of the real object."""
    import zoneinfo

    import pyarrow as pa

    tzfile_class = _Tzfile(path, "dateutil.tz._tzfile")

    def safe_getattr(obj: Any, name: str) -> Any:
        if obj is zoneinfo.ZoneInfo and name == "_unpickle":
            return zoneinfo.ZoneInfo._unpickle
        owner = str(getattr(obj, "__name__", type(obj).__name__))[:60]
        raise UnsafePickleError(path, "builtins", f"getattr({owner}, {shown(name)})")

    def latin1_encode(text: Any, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
            raise UnsafePickleError(path, "_codecs", f"encode(…, {shown(encoding)})")
        return text.encode("latin-1", errors="strict")

    def from_data(kind: type) -> Callable[..., Any]:
        def build(*args: Any) -> Any:
            # bytes(10**10) / bytearray(10**10) would allocate from a few bytes of pickle
            if args and isinstance(args[0], int):
                raise UnsafePickleError(
                    path, "builtins", f"{kind.__name__}({shown(args[0])})", "a size, not data"
                )
            return kind(*args)

        return build

    def tzfile_unpickle(cls: Any, key: Any, filename: Any, data: Any) -> Any:
        if not isinstance(cls, _Tzfile):
            raise UnsafePickleError(path, "dateutil.tz._tzfile", f"_unpickle({shown(cls)}, …)")
        from dateutil.tz._tzfile import _unpickle, tzfile

        return _unpickle(tzfile, key, filename, data)

    def restore_array(data: Any) -> Any:
        array = pa.lib._restore_array(data)
        try:
            # Arrow trusts the offsets and lengths it is given; check them before any read
            array.validate(full=True)
        except (pa.ArrowException, ValueError) as err:
            raise RawDataError(
                f"{path}: a pyarrow array in the pickle is malformed ({err})"
            ) from None
        return array

    def timestamp(unit: Any, tz: Any = None) -> Any:
        if tz is not None:
            _check_zone_name(path, "pyarrow.lib", "timestamp", str(tz))
        return pa.timestamp(unit, tz)

    def pandas_timestamp(*args: Any, **kwargs: Any) -> Any:
        # pandas <= 1.2 pickled Timestamp as (value, freq, tz): read as positional
        # (year, month) arguments, the zone would be dropped (pandas' own compat rule)
        if (
            len(args) == 3
            and not kwargs
            and (args[1] is None or isinstance(args[1], str) or _is_offset(args[1]))
            and (args[2] is None or isinstance(args[2], datetime.tzinfo))
        ):
            value, _freq, tz = args
            return pd.Timestamp(value) if tz is None else pd.Timestamp(value, tz=tz)
        return pd.Timestamp(*args, **kwargs)

    return {
        ("builtins", "getattr"): safe_getattr,
        ("_codecs", "encode"): latin1_encode,
        ("builtins", "bytes"): from_data(bytes),
        ("builtins", "bytearray"): from_data(bytearray),
        ("dateutil.tz._tzfile", "_unpickle"): tzfile_unpickle,
        ("dateutil.tz._tzfile", "tzfile"): tzfile_class,
        ("dateutil.tz.tz", "tzfile"): _Tzfile(path, "dateutil.tz.tz"),
        ("pyarrow.lib", "_restore_array"): restore_array,
        ("pyarrow.lib", "timestamp"): timestamp,
        ("pandas", "Timestamp"): pandas_timestamp,
        ("pandas._libs.tslibs.timestamps", "Timestamp"): pandas_timestamp,
    }


def _is_offset(value: Any) -> bool:
    from pandas._libs.tslibs import BaseOffset

    return isinstance(value, BaseOffset)


# --- time zones given as text -----------------------------------------------------------------


def is_zone_path(name: str) -> bool:
    """A zone name that is a path rather than a key of the time zone database."""
    name = name[1:] if name.startswith(":") else name
    parts = name.replace("\\", "/").split("/")
    return name.startswith(("/", "~")) or ".." in parts or "\x00" in name


def _check_zone_name(path: Path | str, module: str, name: str, zone: str) -> None:
    key = zone[len("dateutil/") :] if zone.startswith("dateutil/") else zone
    if is_zone_path(key):
        raise UnsafePickleError(
            path, module, f"{name}(…, {shown(zone)})", "a time zone read from a file path"
        )


_zone_guard_lock = threading.RLock()
_zone_guard_paths: list[Path | str] = []
_unguarded_gettz: Any = None


def _guarded_gettz(name: Any = None) -> Any:
    if isinstance(name, str) and is_zone_path(name):
        raise UnsafePickleError(
            _zone_guard_paths[-1] if _zone_guard_paths else "(a pickle)",
            "dateutil.tz",
            f"gettz({shown(name)})",
            "a time zone read from a file path",
        )
    return _unguarded_gettz(name)


@contextlib.contextmanager
def refuse_zone_paths(path: Path | str) -> Iterator[None]:
    """While reading `path`, pandas refuses time zones like 'dateutil//etc/passwd'.

    pandas turns a zone given as text into a zone object through dateutil's
    `gettz`, which opens any absolute or `..` path it is given (whether the
    file exists shows in the error, and its content is read). A pickle can
    hand such text to any pandas constructor, and pandas may resolve it only
    when the column is used, so the guard spans the whole reading of a file.
    Zone keys ("dateutil/Europe/Paris") are looked up as before. The guard
    replaces pandas' reference to `gettz` for the duration, for every thread.
    """
    global _unguarded_gettz
    from pandas._libs.tslibs import timezones

    with _zone_guard_lock:
        if not _zone_guard_paths:
            _unguarded_gettz = timezones.dateutil_gettz
            timezones.dateutil_gettz = _guarded_gettz
        _zone_guard_paths.append(path)
    try:
        yield
    finally:
        with _zone_guard_lock:
            _zone_guard_paths.pop()
            if not _zone_guard_paths:
                timezones.dateutil_gettz = _unguarded_gettz


# --- the unpickler ----------------------------------------------------------------------------


class _DataFrameUnpickler(pickle.Unpickler):
    def __init__(self, file: BinaryIO, path: Path | str) -> None:
        super().__init__(file)
        self._path = path
        self._stand_ins = _stand_ins(path)

    def find_class(self, module: str, name: str) -> Any:
        requested = (module, name)
        module, name = _normalise(module, name)
        if (module, name) in self._stand_ins:
            return self._stand_ins[(module, name)]
        if name not in _ALLOWED.get(module, ()):
            why = _REFUSED_BECAUSE.get((module, name))
            raise UnsafePickleError(self._path, *requested, *([why] if why else []))
        try:
            return _lookup(module, name)
        except (ImportError, AttributeError):
            raise RawDataError(
                f"{self._path}: the pickle needs {module}.{name}, which this "
                "installation does not provide (written by another pandas/numpy/pyarrow "
                "version, or by a time zone package that is not installed?)"
            ) from None


def load_dataframe(stream: BinaryIO, path: Path | str) -> pd.DataFrame:
    """Unpickle a DataFrame from an open binary `stream` (the content of `path`).

    Whatever goes wrong while unpickling becomes a `RawDataError` naming
    `path`, running out of memory and too deep a nesting included. A
    KeyboardInterrupt is left alone: nothing in the pickle can raise one,
    since nothing it names runs code, so it is the user's.
    """
    try:
        with refuse_zone_paths(path):
            obj = _DataFrameUnpickler(stream, path).load()
    except RawDataError:
        raise
    except MemoryError:
        raise RawDataError(
            f"{path}: ran out of memory while unpickling it (the data it holds, or a size "
            "it declares, do not fit in this job's memory)"
        ) from None
    except RecursionError:
        raise RawDataError(
            f"{path}: cannot read: the pickle nests objects too deeply to rebuild"
        ) from None
    except SystemExit as exit_:
        # unreachable through the list above; a pickle must never end the job unexplained
        raise RawDataError(
            f"{path}: cannot read: unpickling tried to exit the process ({exit_.code!r})"
        ) from None
    except Exception as err:
        raise RawDataError(
            f"{path}: cannot read: the file is truncated or not a pickle "
            f"({type(err).__name__}: {shown(str(err), 200)})"
        ) from None
    if not isinstance(obj, pd.DataFrame):
        kind = type(obj)
        raise RawDataError(
            f"{path}: the pickle holds a {kind.__module__}.{kind.__qualname__}, "
            "not a pandas DataFrame"
        )
    return obj


# --- compressed input -------------------------------------------------------------------------

# Decompressed bytes allowed per compressed byte. Pickled spectra compress 1.1 times
# (noisy floats) to 5 times (integer counts) with gzip, bz2 or xz; 32 leaves room for
# text and constant columns, while a decompression bomb (a run of one byte value
# expands about 1,000 times with gzip and 5,000 to 50,000 times with xz and bz2) is
# stopped once it has produced 32 times its own size.
MAX_EXPANSION = 32
# Small files may always expand this far: their headers and short frames compress
# better than large files, and 64 MiB is harmless to any job.
MIN_DECOMPRESSED_CAP = 64 << 20

_COMPRESSED = ((b"\x1f\x8b", "gzip"), (b"BZh", "bz2"), (b"\xfd7zXZ\x00", "xz"))


def _decompressor(kind: str, stream: BinaryIO) -> BinaryIO:
    """A file object decompressing `stream` piece by piece (concatenated members included)."""
    if kind == "gzip":
        return gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[return-value]
    if kind == "bz2":
        return bz2.BZ2File(stream, mode="rb")  # type: ignore[return-value]
    return lzma.LZMAFile(stream, mode="rb")  # type: ignore[return-value]


_DECOMPRESSION_ERRORS = (OSError, EOFError, ValueError, lzma.LZMAError, zlib.error)
_BUFFER = 1 << 20


def _decompressed_cap(compressed_size: int) -> int:
    return max(MAX_EXPANSION * compressed_size, MIN_DECOMPRESSED_CAP)


class _CappedDecompression(io.RawIOBase):
    """The decompressed bytes of a compressed stream, never more than `cap` of them."""

    def __init__(self, source: BinaryIO, path: Path | str, kind: str, compressed_size: int) -> None:
        self._source, self._path, self._kind = source, path, kind
        self._compressed_size = compressed_size
        self.cap = _decompressed_cap(compressed_size)
        self.produced = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        # one byte past the cap tells a stream that is exactly at the cap from a bomb
        want = min(len(view), self.cap - self.produced + 1)
        try:
            data = self._source.read(want)
        except _DECOMPRESSION_ERRORS as err:
            raise RawDataError(
                f"{self._path}: the {self._kind} file is truncated or corrupt "
                f"({type(err).__name__}: {shown(str(err), 120)})"
            ) from None
        self.produced += len(data)
        if self.produced > self.cap:
            raise RawDataError(
                f"{self._path}: refused: it decompresses to more than {describe_size(self.cap)}, "
                f"the cap for a {describe_size(self._compressed_size)} {self._kind} file "
                f"({MAX_EXPANSION} times its size, at least "
                f"{describe_size(MIN_DECOMPRESSED_CAP)}); a likely decompression bomb. "
                "Real data that compress this well can be stored uncompressed"
            )
        view[: len(data)] = data
        return len(data)


def _decompressing(
    stream: io.BufferedReader, path: Path | str, compressed_size: int, what: str = "pickle"
) -> tuple[BinaryIO, _CappedDecompression | None]:
    """`stream` itself, or its decompressed content if it starts as gzip, bz2 or xz does."""
    head = stream.peek(8)[:8]
    if not head:
        raise RawDataError(f"{path}: the file is empty, not a {what}")
    for magic, kind in _COMPRESSED:
        if head.startswith(magic):
            capped = _CappedDecompression(_decompressor(kind, stream), path, kind, compressed_size)
            decompressed = io.BufferedReader(capped, _BUFFER)
            if not decompressed.peek(1):
                raise RawDataError(f"{path}: the {kind} file is empty once decompressed")
            return decompressed, capped
    return stream, None


# A raw DataFrame stores its cells: a float32 spectrum costs 4 bytes of pickle per cell,
# a category or a boolean 1. A frame with far more cells than its pickle has bytes is
# stored lazily or sparsely (a RangeIndex with no columns, sparse columns): cheap to
# unpickle, but every dense copy the reader makes of it would take 8 bytes per cell.
MAX_CELLS_PER_BYTE = 2
_CELLS_ALWAYS_ALLOWED = 1 << 20


def _check_dense(frame: pd.DataFrame, pickle_bytes: int, path: Path | str) -> None:
    rows, columns = frame.shape
    cells = rows * max(columns, 1)
    if cells > MAX_CELLS_PER_BYTE * pickle_bytes + _CELLS_ALWAYS_ALLOWED:
        raise RawDataError(
            f"{path}: refused: the DataFrame has {rows:,} rows and {columns:,} "
            f"column{'' if columns == 1 else 's'} "
            f"({cells:,} cells) in {describe_size(pickle_bytes)} of pickle; stored lazily "
            f"or sparsely, it would take {describe_size(8 * cells)} as dense numbers. "
            "Raw files hold dense columns"
        )


def loads_dataframe(data: bytes, path: Path | str) -> pd.DataFrame:
    """Unpickle `data` (the bytes of `path`, maybe gzip/bz2/xz-compressed) as a DataFrame."""
    stream = io.BufferedReader(io.BytesIO(data), _BUFFER)  # type: ignore[arg-type]
    try:
        source, capped = _decompressing(stream, path, len(data))
        frame = load_dataframe(source, path)
    except MemoryError:
        raise RawDataError(f"{path}: ran out of memory while reading it") from None
    _check_dense(frame, capped.produced if capped else len(data), path)
    return frame


# --- regular files only -----------------------------------------------------------------------


def _file_kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


def check_regular_file(path: Path, what: str = "pickle file") -> os.stat_result:
    """stat() `path` (following links); a `RawDataError` unless it is a readable regular file.

    Reading a FIFO blocks until a writer comes, a device like /dev/zero never
    ends: neither is opened.
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        dangling = (
            f" (a link to {os.readlink(path)}, which does not exist)" if path.is_symlink() else ""
        )
        raise RawDataError(f"{path}: no such file{dangling}") from None
    except PermissionError:
        raise RawDataError(f"{path}: cannot be read: permission denied") from None
    except OSError as err:
        raise RawDataError(f"{path}: cannot be read: {err.strerror or err}") from None
    if not stat.S_ISREG(info.st_mode):
        link = f" (a link to {os.path.realpath(path)})" if path.is_symlink() else ""
        raise RawDataError(f"{path}: is {_file_kind(info.st_mode)}{link}, not a regular {what}")
    return info


def open_regular_file(path: Path, what: str = "pickle file") -> tuple[BinaryIO, os.stat_result]:
    """Open `path` for reading if it is a regular file; its stat as opened.

    O_NONBLOCK keeps a FIFO put in the file's place after the check from
    blocking the open; the open file is then checked again, so what is read
    is what was checked.
    """
    info = check_regular_file(path, what)
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except PermissionError:
        raise RawDataError(f"{path}: cannot be read: permission denied") from None
    except OSError as err:
        raise RawDataError(f"{path}: cannot be read: {err.strerror or err}") from None
    opened = os.fstat(fd)
    if not stat.S_ISREG(opened.st_mode) or (opened.st_dev, opened.st_ino) != (
        info.st_dev,
        info.st_ino,
    ):
        os.close(fd)
        raise RawDataError(
            f"{path}: changed while being opened (now {_file_kind(opened.st_mode)}); "
            f"expected a regular {what}"
        )
    return open(fd, "rb", buffering=0), opened


class _HashingReader(io.RawIOBase):
    """A file's bytes, hashed with sha256 as they are read, and no more than `size` of them."""

    def __init__(self, raw: BinaryIO, size: int) -> None:
        self._raw, self._left = raw, size
        self.sha256 = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")[: self._left]
        n = self._raw.readinto(view) or 0  # type: ignore[attr-defined]
        self.sha256.update(view[:n])
        self._left -= n
        return n

    def hash_rest(self) -> str:
        """The sha256 of the whole file: what the unpickler left unread is hashed too."""
        chunk = bytearray(_BUFFER)
        while self.readinto(chunk):
            pass
        return self.sha256.hexdigest()


class PickleFile(NamedTuple):
    frame: pd.DataFrame
    sha256: str  # of the file as stored, compressed or not
    pickle_bytes: int  # of pickle read, once decompressed


def read_regular_stream(
    path: Path, read: Callable[[BinaryIO, Path], Any], what: str = "pickle"
) -> tuple[Any, str, int]:
    """`read(stream, path)` over the content of the regular file `path`.

    The file is read once, as a stream: hashed as it is read and, when it
    starts as gzip, bz2 or xz does, decompressed under the cap. Only a
    regular file is opened, and running out of memory is an error naming the
    file. Returns what `read` returned, the sha256 of the file as stored and
    the bytes of content it held (once decompressed). `what` names the kind
    of file in messages ("pickle", "CSV table").
    """
    path = Path(path)
    raw, info = open_regular_file(path, f"{what} file")
    with raw:
        hashing = _HashingReader(raw, info.st_size)
        try:
            source, capped = _decompressing(
                io.BufferedReader(hashing, _BUFFER), path, info.st_size, what
            )
            result = read(source, path)
            sha256 = hashing.hash_rest()
        except MemoryError:
            raise RawDataError(
                f"{path}: ran out of memory while reading it ({describe_size(info.st_size)} "
                "on disk)"
            ) from None
    return result, sha256, capped.produced if capped else info.st_size


def check_dense(frame: pd.DataFrame, content_bytes: int, path: Path | str) -> None:
    """Refuse a frame with far more cells than its file had bytes (`MAX_CELLS_PER_BYTE`)."""
    _check_dense(frame, content_bytes, path)


def read_pickle_dataframe(path: Path) -> PickleFile:
    """A pickled DataFrame (optionally gzip/bz2/xz-compressed) and the sha256 of its file.

    Read once by `read_regular_stream` and unpickled with the allow-list; a
    frame with far more cells than the pickle has bytes (`MAX_CELLS_PER_BYTE`)
    is refused.
    """
    frame, sha256, pickle_bytes = read_regular_stream(Path(path), load_dataframe)
    _check_dense(frame, pickle_bytes, path)
    return PickleFile(frame, sha256, pickle_bytes)


def load_pickle_dataframe(path: Path) -> pd.DataFrame:
    """Read a pickled pandas DataFrame (optionally gzip/bz2/xz-compressed) without running code."""
    return read_pickle_dataframe(path)[0]
