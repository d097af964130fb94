from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spectragrid.data.clean_file import META_KEY, read_clean, read_meta, write_clean

CHANNELS = ["277", "380", "lspr"]


def _data(n: int = 7):
    rng = np.random.default_rng(1)
    table = pd.DataFrame(
        {
            "sample_id": [f"23-{i:06d}" for i in range(n)],
            "severity": ["OK", "VR", "OK", "NC", "CROCHET", "OK", "VR"][:n],
            "type": np.array([0, 5, 0, 11, 0, 0, 2][:n], dtype=np.int64),
            "full_truth": ["OK0", "VR5", "OK0", "NC11", "CROCHET0", "OK0", "VR2"][:n],
            "label_raw": ["OK - Inspecteur", "VR", "OK - SpectrAcer", "NC", "CROCHET", "OK", "VR"][
                :n
            ],
            "group": [f"S{i // 2}" for i in range(n)],
            "greffon_brix": rng.uniform(65, 68, n),
            "outil_id": ["SA3-01"] * n,
            "mesure_date": pd.date_range("2023-02-20", periods=n, freq="h"),
            "source_file": ["a.pkl"] * n,
            "source_row": np.arange(n, dtype=np.int64),
        }
    )
    axis = np.arange(295.0, 741.0)
    spectra = {
        "277": rng.normal(1000, 300, (n, 446)).astype(np.float32),
        "380": rng.normal(2000, 300, (n, 446)).astype(np.float32),
        "lspr": rng.normal(0.5, 0.1, (n, 251)).astype(np.float32),
    }
    spectra["277"][0, :3] = [-0.0, np.float32(1e-30), np.float32(-12.5)]
    wavelengths = {"277": axis, "380": axis, "lspr": np.arange(450.0, 701.0)}
    return table, spectra, wavelengths


def _write(path: Path):
    table, spectra, wavelengths = _data()
    write_clean(path, table, spectra, wavelengths, ["greffon_brix"], ["outil_id", "mesure_date"])
    return table, spectra, wavelengths


def test_round_trip_is_bit_exact(tmp_path: Path) -> None:
    path = tmp_path / "clean.parquet"
    table, spectra, wavelengths = _write(path)
    data = read_clean(path)
    pd.testing.assert_frame_equal(
        data.table, table, check_dtype=False, check_column_type=False, check_index_type=False
    )
    assert data.table["type"].dtype == np.int64
    assert list(data.spectra) == CHANNELS
    for ch in CHANNELS:
        assert data.spectra[ch].dtype == np.float32
        assert data.spectra[ch].shape == spectra[ch].shape
        assert data.spectra[ch].tobytes() == spectra[ch].tobytes()
        np.testing.assert_array_equal(data.wavelengths[ch], wavelengths[ch])
    assert np.signbit(data.spectra["277"][0, 0])


def test_schema_layout_and_metadata(tmp_path: Path) -> None:
    path = tmp_path / "clean.parquet"
    _write(path)
    schema = pq.read_schema(path)
    # one column: each row holds its channels one after another
    assert schema.field("spectra").type == pa.binary((446 + 446 + 251) * 4)
    assert not any(name.startswith("spectrum_") for name in schema.names)
    meta = json.loads(schema.metadata[META_KEY])
    assert meta == read_meta(path)
    assert meta["format"] == 2
    assert meta["spectrum_columns"] == dict.fromkeys(CHANNELS, "spectra")
    assert meta["spectrum_offsets"] == {"277": 0, "380": 446, "lspr": 892}
    assert meta["shape"] == {"277": [446], "380": [446], "lspr": [251]}
    assert meta["channels"] == CHANNELS
    assert meta["wavelengths"]["lspr"][:2] == [450.0, 451.0]
    assert len(meta["wavelengths"]["277"]) == 446
    assert meta["group_column"] == "group"
    assert meta["tabular_columns"] == ["greffon_brix"]
    assert meta["provenance_columns"] == ["outil_id", "mesure_date"]
    assert meta["label_columns"] == ["severity", "type", "full_truth", "label_raw"]
    assert meta["dtype"] == "float32"
    group = pq.ParquetFile(path).metadata.row_group(0)
    assert group.column(0).compression == "ZSTD"
    # spectra are stored uncompressed: see SPECTRUM_COMPRESSION
    spectrum = schema.get_field_index("spectra")
    assert group.column(spectrum).compression == "UNCOMPRESSED"
    # what the module docstring tells a user reading the file without spectragrid
    rows = np.frombuffer(b"".join(pq.read_table(path)["spectra"].to_pylist()), "<f4")
    rows = rows.reshape(7, -1)
    np.testing.assert_array_equal(rows[:, 446:892], read_clean(path).spectra["380"])


def test_channel_selection_and_stack(tmp_path: Path) -> None:
    path = tmp_path / "clean.parquet"
    _, spectra, _ = _write(path)
    data = read_clean(path, channels=["380", "277"])
    assert list(data.spectra) == ["380", "277"]
    stacked = data.stack(["380", "277"])
    assert stacked.shape == (7, 2, 446)
    assert stacked.dtype == np.float32
    np.testing.assert_array_equal(stacked[:, 0], spectra["380"])
    np.testing.assert_array_equal(stacked[:, 1], spectra["277"])
    # the loaded channels in their order: the array read_clean filled, shared and read-only
    assert data.stack(["380", "277"]) is stacked
    assert np.shares_memory(stacked, data.spectra["277"])
    with pytest.raises(ValueError, match="read-only"):
        stacked[0, 0, 0] = 1.0
    # another order or subset: a new, writable array
    other = data.stack(["277", "380"])
    np.testing.assert_array_equal(other[:, 0], spectra["277"])
    other[0, 0, 0] = 1.0
    assert data.spectra["277"][0, 0] == spectra["277"][0, 0]


def test_stack_places_a_shorter_channel_on_the_common_axis(tmp_path: Path) -> None:
    path = tmp_path / "clean.parquet"
    _table, spectra, _ = _data()
    _write(path)
    data = read_clean(path)
    stacked = data.stack(["277", "lspr"])
    # lspr (450-700 nm) sits at offset 155 of the 295-740 nm axis, zero-padded
    assert stacked.shape == (7, 2, 446)
    np.testing.assert_array_equal(stacked[:, 1, 155:406], spectra["lspr"])
    assert not stacked[:, 1, :155].any() and not stacked[:, 1, 406:].any()
    np.testing.assert_array_equal(stacked[:, 0], spectra["277"])
    # lspr alone stays on its own axis
    assert data.stack(["lspr"]).shape == (7, 1, 251)


def test_stack_refuses_axes_off_one_grid(tmp_path: Path) -> None:
    from spectragrid.data.clean_file import common_axis

    with pytest.raises(ValueError, match="same step on one grid"):
        common_axis({"a": np.arange(295.0, 741.0), "b": np.arange(450.5, 700.5)})
    with pytest.raises(ValueError, match="same step on one grid"):
        common_axis({"a": np.arange(295.0, 741.0), "b": np.arange(450.0, 700.0, 2.0)})
    path = tmp_path / "clean.parquet"
    _write(path)
    with pytest.raises(ValueError, match="not loaded"):
        read_clean(path, channels=["277"]).stack(["380"])


def test_unknown_channel_names_file_and_available(tmp_path: Path) -> None:
    path = tmp_path / "clean.parquet"
    _write(path)
    with pytest.raises(ValueError) as info:
        read_clean(path, channels=["425"])
    message = str(info.value)
    assert str(path) in message and "'425'" in message
    assert "available channels: ['277', '380', 'lspr']" in message


def test_several_row_groups_are_joined(tmp_path: Path) -> None:
    path = tmp_path / "clean.parquet"
    _, spectra, _ = _write(path)
    split = tmp_path / "split.parquet"
    pq.write_table(pq.read_table(path), split, row_group_size=3)
    assert pq.ParquetFile(split).num_row_groups == 3
    data = read_clean(split)
    for ch in CHANNELS:
        np.testing.assert_array_equal(data.spectra[ch], spectra[ch])


def test_row_blocks_write_the_same_file_as_one_array(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from spectragrid.data import clean_file

    table, spectra, wavelengths = _data()
    rng = np.random.default_rng(3)
    blocks = {}
    for ch, values in spectra.items():
        # two "files": rows 0-3 of a float64 array, then rows 4-6 picked out of a larger one
        first = values[:4].astype(np.float64)
        second = rng.normal(size=(8, values.shape[1])).astype(np.float32)
        rows = np.array([5, 1, 6])
        second[rows] = values[4:]
        blocks[ch] = [clean_file.RowBlock(first), clean_file.RowBlock(second, rows)]
    # three rows per row group: groups straddle the two blocks
    monkeypatch.setattr(clean_file, "ROW_GROUP_BYTES", 3 * (446 + 446 + 251) * 4)
    write_clean(tmp_path / "blocks.parquet", table, blocks, wavelengths, [], [])
    assert pq.ParquetFile(tmp_path / "blocks.parquet").num_row_groups == 3
    data = read_clean(tmp_path / "blocks.parquet")
    pd.testing.assert_frame_equal(data.table, table, check_dtype=False)
    for ch in CHANNELS:
        assert data.spectra[ch].tobytes() == spectra[ch].tobytes()


def test_empty_table_round_trips(tmp_path: Path) -> None:
    table, spectra, wavelengths = _data()
    path = tmp_path / "empty.parquet"
    write_clean(path, table.iloc[:0], {c: v[:0] for c, v in spectra.items()}, wavelengths, [], [])
    data = read_clean(path)
    assert len(data) == 0 and data.stack(["277", "380"]).shape == (0, 2, 446)
    # whole rows read straight into the array: none here
    two = tmp_path / "two.parquet"
    write_clean(
        two, table.iloc[:0], {c: spectra[c][:0] for c in ("277", "380")}, wavelengths, [], []
    )
    assert read_clean(two).stacked.shape == (0, 2, 446)


def test_write_is_atomic_and_validates(tmp_path: Path) -> None:
    path = tmp_path / "out" / "clean.parquet"
    table, spectra, wavelengths = _data()
    bad = dict(spectra, **{"380": spectra["380"][:5]})
    with pytest.raises(ValueError, match=r"spectra\['380'\] has shape \(5, 446\)"):
        write_clean(path, table, bad, wavelengths, [], [])
    with pytest.raises(ValueError, match=r"wavelengths\['lspr'\] has 446 values for 251"):
        write_clean(path, table, spectra, dict(wavelengths, lspr=np.arange(446.0)), [], [])
    assert not path.exists()
    write_clean(path, table, spectra, wavelengths, [], [])
    assert sorted(p.name for p in path.parent.iterdir()) == ["clean.parquet"]


def test_not_a_clean_file(tmp_path: Path) -> None:
    path = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"a": [1, 2]}), path)
    with pytest.raises(ValueError, match="not a spectragrid clean file"):
        read_clean(path)


def test_read_labels_gives_every_label_column_of_either_layout(tmp_path: Path) -> None:
    from spectragrid.data.clean_file import read_labels

    path = tmp_path / "clean.parquet"
    _write(path)
    assert list(read_labels(path).columns) == ["sample_id", "severity", "type", "full_truth"]
    one = tmp_path / "one.parquet"
    table = pd.DataFrame(
        {"sample_id": ["a", "b"], "label": ["rye", "oat"], "full_truth": ["rye", "oat"]}
    )
    write_clean(one, table, {"nir": np.ones((2, 3), np.float32)}, {"nir": np.arange(3.0)}, [], [])
    assert read_meta(one)["label_columns"] == ["label", "full_truth"]
    assert read_labels(one).to_dict("list") == table.to_dict("list")


def test_column_major_blocks_and_release_write_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blocks viewing a raw frame (column-major, some rows dropped), given up as they are
    written, make the very file that row-major arrays written through the page cache make."""
    import gc
    import weakref

    from spectragrid.data import clean_file

    table, spectra, wavelengths = _data()
    monkeypatch.setattr(clean_file, "ROW_GROUP_BYTES", 3 * 446 * 4)
    write_clean(tmp_path / "arrays.parquet", table, spectra, wavelengths, [], [])

    # each channel a column-major view of a wider block, as a pickled frame's channel is;
    # the first "file" keeps rows 0-3, the second keeps rows 1, 4, 6 of its five
    rng = np.random.default_rng(9)
    frames, blocks = [], {}
    for ch, values in spectra.items():
        first = np.asfortranarray(values[:4])
        wide = rng.normal(size=(values.shape[1] + 5, 7)).astype(np.float32)
        wide[: values.shape[1], [1, 4, 6]] = values[4:].T
        frames.append(weakref.ref(wide))
        second = wide[: values.shape[1]].T
        assert not second.flags.c_contiguous
        blocks[ch] = [clean_file.RowBlock(first), clean_file.RowBlock(second, np.array([1, 4, 6]))]
        del wide, second, first
    written = []

    def through_the_cache(path: Path):
        written.append(path)
        return path.open("wb")

    monkeypatch.setattr(clean_file, "open_direct", through_the_cache)
    write_clean(tmp_path / "cached.parquet", table, blocks, wavelengths, [], [])
    monkeypatch.undo()
    monkeypatch.setattr(clean_file, "ROW_GROUP_BYTES", 3 * 446 * 4)
    write_clean(tmp_path / "blocks.parquet", table, blocks, wavelengths, [], [], release=True)

    assert len(written) == 1
    assert all(parts == [] for parts in blocks.values())
    gc.collect()
    assert all(frame() is None for frame in frames)  # nothing holds the raw arrays now
    expected = (tmp_path / "arrays.parquet").read_bytes()
    assert (tmp_path / "cached.parquet").read_bytes() == expected
    assert (tmp_path / "blocks.parquet").read_bytes() == expected


def test_a_row_block_takes_rows_as_row_major_float32() -> None:
    from spectragrid.data.clean_file import RowBlock

    values = np.asfortranarray(np.arange(60, dtype=np.float64).reshape(10, 6) / 7)
    block = RowBlock(values, np.array([0, 3, 4, 8, 9]))
    part = block.take(1, 4)
    assert part.dtype == np.dtype("<f4") and part.flags.c_contiguous
    np.testing.assert_array_equal(part, values[[3, 4, 8]].astype(np.float32))
    np.testing.assert_array_equal(RowBlock(values).take(8, 12), values[8:].astype(np.float32))


@pytest.mark.parametrize(
    ("stored", "channels"),
    [
        (["277", "380"], ["277", "380"]),
        (CHANNELS, ["380"]),
        (CHANNELS, ["380", "277"]),
        (CHANNELS, ["277", "lspr"]),
        (CHANNELS, ["lspr", "380", "277"]),
    ],
    ids=["whole rows", "one channel", "reordered", "padded", "padded and reordered"],
)
def test_spectra_read_page_by_page_equal_arrow_s_reading(
    tmp_path: Path, monkeypatch, stored: list[str], channels: list[str]
) -> None:
    """Several row groups, each read by data.parquet_pages (straight into the array when
    a stored row is a row of it, through a buffer otherwise), bit for bit what the Arrow
    route (taken for pages that reader refuses) reads."""
    import spectragrid.data.clean_file as clean_file

    table, spectra, wavelengths = _data()
    row_bytes = sum(spectra[c].shape[1] for c in stored) * 4
    monkeypatch.setattr(clean_file, "ROW_GROUP_BYTES", 3 * row_bytes)  # 3 rows a group
    monkeypatch.setattr(clean_file, "_SCRATCH_BYTES", 2 * row_bytes)  # 2 rows a buffer
    path = tmp_path / "clean.parquet"
    write_clean(path, table, {c: spectra[c] for c in stored}, wavelengths, [], [])
    assert pq.ParquetFile(path).num_row_groups == 3
    found, through_buffer = [], []
    plain_pages, read_parts = clean_file.plain_pages, clean_file._read_parts

    def spy_pages(*args, **kwargs):
        found.append(plain_pages(*args, **kwargs))
        return found[-1]

    def spy_parts(*args, **kwargs):
        through_buffer.append(read_parts(*args, **kwargs))
        return through_buffer[-1]

    monkeypatch.setattr(clean_file, "plain_pages", spy_pages)
    monkeypatch.setattr(clean_file, "_read_parts", spy_parts)
    paged = read_clean(path, channels)
    assert len(found) == 3 and all(found)
    # whole rows of the file are rows of the array: no buffer between them
    assert through_buffer == ([] if channels == stored else [True] * 3)
    monkeypatch.setattr(clean_file, "plain_pages", lambda *a, **k: None)
    through_arrow = read_clean(path, channels)
    for ch in channels:
        assert paged.spectra[ch].tobytes() == spectra[ch].tobytes()
        assert through_arrow.spectra[ch].tobytes() == spectra[ch].tobytes()
    if paged.stacked is not None:
        assert paged.stacked.tobytes() == through_arrow.stacked.tobytes()


def test_whole_rows_fill_the_stacked_array_directly(tmp_path: Path) -> None:
    table, spectra, wavelengths = _data()
    both = {c: spectra[c] for c in ("277", "380")}
    path = tmp_path / "clean.parquet"
    write_clean(path, table, both, {c: wavelengths[c] for c in both}, [], [])
    data = read_clean(path)
    assert data.stacked.shape == (7, 2, 446) and not data.stacked.flags.writeable
    np.testing.assert_array_equal(data.stacked, np.stack([spectra["277"], spectra["380"]], 1))
    assert data.stack(["277", "380"]) is data.stacked


def test_a_format_1_file_reads_the_same(tmp_path: Path, monkeypatch) -> None:
    """Files of the previous format (one `spectrum_<channel>` column per channel) still
    read, page by page and through Arrow alike."""
    import spectragrid.data.clean_file as clean_file

    path = tmp_path / "clean.parquet"
    table, spectra, _ = _write(path)
    meta = read_meta(path)
    meta.update(format=1, spectrum_columns={c: f"spectrum_{c}" for c in CHANNELS})
    del meta["spectrum_offsets"]
    plain = pq.read_table(path).drop(["spectra"])
    for c in CHANNELS:
        column = pa.array(
            [r.tobytes() for r in spectra[c]], type=pa.binary(spectra[c].shape[1] * 4)
        )
        plain = plain.append_column(f"spectrum_{c}", column)
    old = tmp_path / "old.parquet"
    pq.write_table(
        plain.replace_schema_metadata({META_KEY: json.dumps(meta).encode()}),
        old,
        compression="none",
        use_dictionary=False,
    )
    found = []
    plain_pages = clean_file.plain_pages
    monkeypatch.setattr(
        clean_file, "plain_pages", lambda *a, **k: found.append(plain_pages(*a, **k)) or found[-1]
    )
    for channels in (None, ["380", "277"], ["lspr"]):
        new, previous = read_clean(path, channels), read_clean(old, channels)
        assert list(previous.spectra) == list(new.spectra)
        for ch in new.spectra:
            assert previous.spectra[ch].tobytes() == new.spectra[ch].tobytes()
    # page by page: the new file's one column per read, the old file's one per channel
    assert len(found) == 3 + (3 + 2 + 1) and all(found)
    monkeypatch.setattr(clean_file, "plain_pages", lambda *a, **k: None)
    through_arrow = read_clean(old, ["277", "380"])
    assert through_arrow.stacked.tobytes() == read_clean(path, ["277", "380"]).stacked.tobytes()
    pd.testing.assert_frame_equal(read_clean(old).table, table, check_dtype=False)


def test_an_unknown_format_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "clean.parquet"
    _write(path)
    meta = read_meta(path)
    meta["format"] = 3
    table = pq.read_table(path)
    future = tmp_path / "future.parquet"
    pq.write_table(table.replace_schema_metadata({META_KEY: json.dumps(meta).encode()}), future)
    with pytest.raises(ValueError, match=r"future.parquet: clean-file format 3 is not supported"):
        read_clean(future)


def test_a_channel_placed_past_its_row_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "clean.parquet"
    _write(path)
    meta = read_meta(path)
    meta["spectrum_offsets"]["lspr"] = 1000  # 1000 + 251 values past a row of 1143
    damaged = tmp_path / "damaged.parquet"
    table = pq.read_table(path)
    pq.write_table(table.replace_schema_metadata({META_KEY: json.dumps(meta).encode()}), damaged)
    with pytest.raises(
        ValueError, match=r"damaged.parquet: the metadata places channel 'lspr' at values 1000-1251"
    ):
        read_clean(damaged)
    assert read_clean(damaged, ["277", "380"]).stacked.shape == (7, 2, 446)
