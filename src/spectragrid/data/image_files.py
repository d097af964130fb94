"""The raw side of an image data set: which files there are and what each is labelled.

Two layouts (`dataset.images.layout`):

- `label_file`: every file under `folder`, labelled by `labels`, a text file of
  `name label` lines (the name may hold spaces: the last word is the label) or
  a CSV file (`.csv`) whose columns `dataset.columns.id` and
  `dataset.columns.label` give the name and the label;
- `class_folders`: `folder/<class>/<file>`, or with `split_folders`,
  `folder/<train|val|test>/<class>/<file>` (the part a file was given in is
  kept in the `given_split` column).

A sample's id is its path relative to `folder`, with `/` separators. Every
regular file found is listed, whatever its name: a file that is no image is
then dropped as unreadable rather than passed over in silence.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

__all__ = ["GIVEN_SPLITS", "ImageFileError", "ImageListing", "list_images"]

GIVEN_SPLITS: tuple[str, ...] = ("train", "val", "test")


class ImageFileError(ValueError):
    """An image folder or label file that cannot be read as configured."""


@dataclass(frozen=True)
class ImageListing:
    """`files`: one row per regular file found (sample_id, path, label_raw, given_split),
    label_raw None where no label names it; `orphans`: labels naming no file
    (sample_id, label_raw, source: the label file and line)."""

    files: pd.DataFrame
    orphans: pd.DataFrame


def _regular_files(root: Path) -> list[Path]:
    """Every regular file under `root`, sorted by relative path; hidden ones (a leading
    dot: editors' and file managers' leftovers) and symbolic links excluded."""
    found = []
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or path.is_symlink():
            continue
        if path.is_file():
            found.append(path)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def _read_label_lines(path: Path) -> list[tuple[str, str, str]]:
    """(name, label, where) of each `name label` line; blank lines and `#` comments skipped."""
    entries = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ImageFileError(f"{path}: no such label file (dataset.images.labels)") from None
    except UnicodeDecodeError as error:
        raise ImageFileError(f"{path}: the label file is not UTF-8 text ({error})") from None
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        parts = stripped.rsplit(None, 1)
        if len(parts) != 2:
            raise ImageFileError(f"{path}, line {number}: expected `name label`, got {stripped!r}")
        entries.append((parts[0], parts[1], f"{path.name}:{number}"))
    return entries


def _read_label_csv(path: Path, id_column: str, label_column: str) -> list[tuple[str, str, str]]:
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise ImageFileError(f"{path}: no such label file (dataset.images.labels)") from None
    missing = [c for c in (id_column, label_column) if c not in table.columns]
    if missing:
        raise ImageFileError(
            f"{path}: the label file lacks column(s) {missing} (dataset.columns.id and "
            f"dataset.columns.label); it has {list(table.columns)}"
        )
    # Line numbers as a person counts them in the file: the header is line 1.
    return [
        (str(name), str(label), f"{path.name}:{i + 2}")
        for i, (name, label) in enumerate(zip(table[id_column], table[label_column], strict=True))
    ]


def read_label_file(path: Path, id_column: str, label_column: str) -> dict[str, tuple[str, str]]:
    """name -> (label, where) of a label file; a name given twice is an error naming both
    lines, since either label could be the right one."""
    path = Path(path)
    entries = (
        _read_label_csv(path, id_column, label_column)
        if path.suffix.lower() == ".csv"
        else _read_label_lines(path)
    )
    labels: dict[str, tuple[str, str]] = {}
    for name, label, where in entries:
        if name in labels:
            raise ImageFileError(
                f"{path}: {name!r} is labelled twice ({labels[name][1]} and {where}); keep one"
            )
        labels[name] = (label, where)
    return labels


def _check_folder(folder: Path) -> None:
    if not folder.is_dir():
        raise ImageFileError(f"{folder}: no such image folder (dataset.images.folder)")


def list_images(
    folder: Path,
    layout: str,
    labels: Path | None = None,
    id_column: str = "file",
    label_column: str = "label",
    split_folders: bool = False,
) -> ImageListing:
    """The files of an image data set and their labels, as configured."""
    folder = Path(folder)
    _check_folder(folder)
    if layout == "label_file":
        return _label_file_listing(folder, labels, id_column, label_column)
    if layout == "class_folders":
        return _class_folder_listing(folder, split_folders)
    raise ImageFileError(
        f"dataset.images.layout: {layout!r} is not a layout; use label_file or class_folders"
    )


def _label_file_listing(
    folder: Path, labels: Path | None, id_column: str, label_column: str
) -> ImageListing:
    if labels is None:
        raise ImageFileError("dataset.images.labels: the label_file layout needs a label file")
    named = read_label_file(Path(labels), id_column, label_column)
    label_path = Path(labels).resolve()
    rows = []
    for path in _regular_files(folder):
        if path.resolve() == label_path:
            continue  # the label file may sit among the images
        sample = path.relative_to(folder).as_posix()
        label = named.pop(sample, (None, ""))[0]
        rows.append((sample, str(path), label, None))
    orphans = pd.DataFrame(
        [(name, label, where) for name, (label, where) in named.items()],
        columns=["sample_id", "label_raw", "source"],
    )
    return ImageListing(_files_frame(rows), orphans)


def _class_folder_listing(folder: Path, split_folders: bool) -> ImageListing:
    rows = []
    for path in _regular_files(folder):
        parts = path.relative_to(folder).parts
        depth = 3 if split_folders else 2
        given = parts[0] if split_folders else None
        if len(parts) != depth or (split_folders and given not in GIVEN_SPLITS):
            layout = "<train|val|test>/<class>/<file>" if split_folders else "<class>/<file>"
            raise ImageFileError(
                f"{path}: not in the class_folders layout {layout} under {folder} "
                f"(dataset.images.split_folders is {str(split_folders).lower()})"
            )
        rows.append((path.relative_to(folder).as_posix(), str(path), parts[-2], given))
    orphans = pd.DataFrame(columns=["sample_id", "label_raw", "source"])
    return ImageListing(_files_frame(rows), orphans)


def _files_frame(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["sample_id", "path", "label_raw", "given_split"]).astype(
        object
    )
