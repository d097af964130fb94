"""A user's own class-per-folder image tree, through the real snakemake, twice.

One tiny grayscale tree in train/val/test folders whose class and file names
are markup (`<img src=x onerror=alert(1)>`, `"quotes"&amp;`):

- with `splits.given: true`, the study trains on the given train folder,
  validates on the given val folder and tests on exactly the given test
  folder's images (one fold, f0of1);
- with the seeded K folds and label issues, the summary, the result sheets
  and the review sheet of flagged thumbnails show those names as text only,
  read by an HTML parser and, where Chromium is installed, in the browser.
"""

from __future__ import annotations

import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
import test_study_summary_page as pages
import yaml
from test_images import tiny_images
from tiny_study import Workdir

from spectragrid.core import layout
from spectragrid.data.demo_images import write_demo_images

pytestmark = pytest.mark.slow

# The page fixtures of the summary page's browser test: one Chromium per module.
browser = pages.browser
chrome_available = pages.chrome_available

EVIL_CLASS = "<img src=x onerror=alert(1)>"
QUOTED_CLASS = '"quotes"&amp;'
# Two of the demo's four shapes take the hostile names; every file name carries both.
CLASS_NAMES = {"disk": EVIL_CLASS, "ring": QUOTED_CLASS, "square": "square", "cross": "cross"}
FILE_PREFIX = '<img src=x onerror=alert(2)>"q"&amp;_'
TREE = "resources/tree"
DATASET = "tree"


def _renamed(rel: str) -> str:
    """A demo path `part/class/file` under the tree's hostile names."""
    part, shape, name = rel.split("/")
    return f"{part}/{CLASS_NAMES[shape]}/{FILE_PREFIX}{name}"


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """The demo's class-folder tree (90 images, 4 dirty files) under hostile names, and
    its truth file; the folder that holds `images/` and `truth.csv`."""
    root = tmp_path_factory.mktemp("tree")
    demo = root / "demo"
    truth = write_demo_images(
        "multiclass",
        demo / "images",
        demo / "truth.csv",
        n_samples=90,
        seed=0,
        noise_rate=0.1,
        size=(32, 32),
    )
    for path in sorted((demo / "images").rglob("*.png")):
        target = root / "images" / _renamed(path.relative_to(demo / "images").as_posix())
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    truth["file"] = truth["file"].map(_renamed)
    truth["label"] = truth["label"].map(CLASS_NAMES)
    truth.to_csv(root / "truth.csv", index=False)
    return root


def tree_study(work: Workdir, tree: Path, *, given: bool) -> dict:
    """The tiny multiclass study on a copy of `tree` in `work`, written as study.yaml."""
    shutil.copytree(tree, work.path / TREE)
    config = tiny_images("multiclass")
    config["dataset"].update(
        name=DATASET,
        images={
            "layout": "class_folders",
            "folder": f"{TREE}/images",
            "split_folders": True,
            "size": [32, 32],
            "mode": "L",
        },
        truth=f"{TREE}/truth.csv",
        label_map={name: name for name in CLASS_NAMES.values()},
    )
    config["splits"]["given"] = given
    config["label_issues"]["enabled"] = not given
    (work.path / "study.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return config


def kept_files(work: Workdir, part: str) -> list[str]:
    """Ids of the images under the given folder `part` that the ingest kept."""
    folder = work.path / TREE / "images"
    dropped = set(pd.read_csv(work.path / f"results/{DATASET}/dropped.csv")["sample_id"])
    found = (p.relative_to(folder).as_posix() for p in (folder / part).rglob("*") if p.is_file())
    return sorted(set(found) - dropped)


def test_a_given_split_trains_validates_and_tests_on_the_given_folders(tmp_path, tree):
    work = Workdir(tmp_path)
    tree_study(work, tree, given=True)
    work.snakemake("--configfile", "study.yaml")
    test, train, val = (kept_files(work, part) for part in ("test", "train", "val"))
    assert len(test) >= 5 and len(val) >= 5 and len(train) >= 40

    cell = work.cell("lenet", 0, "raw", "shape", "gray", k=1, dataset=DATASET)
    predictions = pd.read_parquet(cell / "predictions.parquet")
    assert sorted(predictions["sample_id"]) == test
    metrics = json.loads((cell / "metrics.json").read_text())
    assert (metrics["n_train"], metrics["n_val"], metrics["n_test"]) == (
        len(train),
        len(val),
        len(test),
    )
    folds = pd.read_parquet(tmp_path / layout.folds_file(DATASET, 0, 1))
    assert sorted(folds.loc[folds["part"] == "test", "sample_id"]) == test
    assert sorted(folds.loc[folds["part"] == "val", "sample_id"]) == val
    # one fold, no clean cells: label issues are off under a given split
    rows = pd.read_csv(tmp_path / layout.SUMMARY_CSV)
    assert len(rows) == 1 and rows["k"].tolist() == [1] and rows["labels"].tolist() == ["raw"]
    assert not (tmp_path / f"results/{DATASET}/label_issues").exists()
    for page in (tmp_path / layout.SUMMARY_HTML, cell / layout.SHEET_FILES["html"]):
        assert_inert(page)


def test_a_given_split_refuses_label_issues_naming_the_keys(tmp_path, tree):
    work = Workdir(tmp_path)
    config = tree_study(work, tree, given=True)
    config["label_issues"]["enabled"] = True
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    proc = work.snakemake("-n", "--configfile", "study.yaml", check=False)
    assert proc.returncode != 0
    assert (
        "label_issues.enabled: finding label issues needs out-of-fold probabilities of every "
        "image, which only splits.k seeded folds give; with splits.given: true set "
        "label_issues.enabled: false"
    ) in proc.stdout + proc.stderr


class _Page(HTMLParser):
    """A page's elements and its text, as a browser's parser reads them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def assert_inert(page: Path) -> _Page:
    """The hostile names are on `page` as text, and none of them became an element or an
    attribute: no `img` but the page's own pictures, no `onerror` handler anywhere."""
    source = page.read_text(encoding="utf-8")
    parsed = _Page()
    parsed.feed(source)
    text = "".join(parsed.text)
    for name in (EVIL_CLASS, QUOTED_CLASS):
        # convert_charrefs: `&quot;quotes&quot;&amp;amp;` reads back as the class's name,
        # so its `&amp;` was escaped once more, not shown as `&`
        assert name in text, f"{page}: {name!r} is not shown"
    assert "<img src=x" not in source, f"{page}: a name is in the page unescaped"
    for tag, attrs in parsed.elements:
        assert "onerror" not in attrs, f"{page}: <{tag}> has an onerror handler"
        if tag == "img":  # a thumbnail inside the page, or a sheet beside it
            src = str(attrs.get("src"))
            assert src.startswith("data:image/") or (page.parent / src).is_file(), (page, attrs)
    return parsed


@pytest.fixture(scope="module")
def markup_study(tmp_path_factory, tree) -> Workdir:
    """The tree's study on 3 seeded folds with label issues, run to the summary."""
    work = Workdir(tmp_path_factory.mktemp("markup"))
    tree_study(work, tree, given=False)
    work.snakemake("--configfile", "study.yaml")
    return work


def review_sheets(work: Workdir) -> list[Path]:
    sheets = sorted((work.path / layout.SUMMARY_FILES).rglob("issues_*.html"))
    assert sheets, "no review sheet was written"
    return sheets


def test_markup_in_class_and_file_names_stays_text_on_every_page(markup_study):
    work = markup_study
    assert_inert(work.path / layout.SUMMARY_HTML)
    cell = work.cell("lenet", 0, "raw", "shape", "gray", k=3, dataset=DATASET)
    assert_inert(cell / layout.SHEET_FILES["html"])
    review = assert_inert(review_sheets(work)[0])
    # the flagged images as thumbnails, each named by its id: a file name with both markups
    thumbnails = [attrs for tag, attrs in review.elements if tag == "img"]
    assert thumbnails and all(a["src"].startswith("data:image/png;base64,") for a in thumbnails)
    # quotes in an attribute value were escaped: the id reads back whole
    assert any(FILE_PREFIX in str(a.get("alt")) for a in thumbnails)
    assert FILE_PREFIX in "".join(review.text)


def test_markup_in_names_runs_nothing_in_chromium(markup_study, browser):
    for page in (markup_study.path / layout.SUMMARY_HTML, review_sheets(markup_study)[0]):
        pages.open_page(browser, page)
        # an alert would be open now, and the next call would raise
        live = browser.execute_script("return document.querySelectorAll('img[src=\"x\"]').length")
        assert live == 0, page
        body = browser.execute_script("return document.body.innerText")
        assert EVIL_CLASS in body and QUOTED_CLASS in body and FILE_PREFIX in body, page
        assert pages.console_errors(browser) == [], page
