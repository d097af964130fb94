"""The per-cell tables of a large study, kept out of summary.html and loaded when opened.

At 1,000 cells the two one-row-per-cell tables (every cell's metrics and
links, every cell's cost) were two thirds of the page. Past `INLINE_CELLS`
cells each goes to a script beside the page (`summary_files/parts/`), which
the page loads when the reader opens its section. A page opened from disk
cannot `fetch()` a file beside it in Chromium, but a classic `<script src>`
loads: each part hands its rendered HTML (escaped like the rest of the page)
to the page. The part's name carries a hash of its content, so a page never
shows another run's rows.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import jinja2

from spectragrid.report.htmlkit import write_atomic

# Up to this many cells, every table stays inside the page (one file to mail around).
INLINE_CELLS = 250
PARTS_FOLDER = "parts"
LAZY_CSS = """
details.lazy { margin: .4rem 0 .8rem; }
details.lazy > summary { cursor: pointer; color: var(--accent); font-weight: 600; }
"""

_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("spectragrid.report", "templates"),
    autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default=False),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)


@dataclass(frozen=True)
class Part:
    """One lazily loaded table: its id (the slot's), title, row count and HTML."""

    part_id: str
    title: str
    n_rows: int
    html: str


def parts_dir(out_html: Path) -> Path:
    """`summary_files/parts` beside `summary.html` (the folder of the page's other files)."""
    out_html = Path(out_html)
    return out_html.with_name(f"{out_html.stem}_files") / PARTS_FOLDER


def loader_script() -> str:
    """The page script that loads a part when its section opens."""
    return _TEMPLATES.get_template("summary_lazy.js.j2").render()


def write_part(part: Part, out_html: Path) -> tuple[str, Path]:
    """Write `part` as a script beside the page; returns the section that loads it and the
    script's path."""
    script = _TEMPLATES.get_template("summary_part.js.j2").render(
        part_id=part.part_id, title=part.title, n_rows=part.n_rows, html=part.html
    )
    digest = hashlib.sha256(script.encode("utf-8")).hexdigest()[:12]
    folder = parts_dir(out_html)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{part.part_id}-{digest}.js"
    write_atomic(path, script)
    src = Path(os.path.relpath(path, Path(out_html).parent)).as_posix()
    section = _TEMPLATES.get_template("summary_lazy_section.html.j2").render(
        part_id=part.part_id, title=part.title, n_rows=part.n_rows, src=src
    )
    return section, path


def remove_stale_parts(out_html: Path, keep: set[str]) -> None:
    """Delete the part scripts of earlier runs (all of them when `keep` is empty)."""
    folder = parts_dir(out_html)
    if not folder.is_dir():
        return
    for path in folder.glob("*.js"):
        # Hidden names are other writers' temporary files.
        if path.name not in keep and not path.name.startswith("."):
            path.unlink(missing_ok=True)
