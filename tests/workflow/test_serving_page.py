"""`spectragrid serve`: the page in real headless Chromium, the API under a bounded load on
loopback, bad and hostile files, the upload cap, and the command itself.

The server runs in a thread of the test process on 127.0.0.1 (port 0: a free one),
serving a copy of the finished tiny study with its served model made by the rule.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
from serving_study import (
    artifacts,
    chromium,
    copy_finished,
    csv_bytes,
    demo_frame,
    serving_config,
)
from tiny_study import Workdir

from spectragrid.core import layout
from spectragrid.serve.app import create_app
from spectragrid.serve.client import post_file
from spectragrid.serve.scoring import score_batch
from spectragrid.serve.server import RunningServer, start_in_thread
from spectragrid.serve.study import load_study
from spectragrid.serve.uploads import read_upload

pytestmark = pytest.mark.slow
EVIL_ID = '<img src="x" onerror="window.__pwned=1">'
EVIL_FILE = "<script>window.__pwned=2</script>.csv"
LOAD_REQUESTS = 200
LOAD_CLIENTS = 8


@pytest.fixture(scope="module")
def study(finished_tiny_study: Workdir, tmp_path_factory) -> Workdir:
    work = copy_finished(finished_tiny_study, tmp_path_factory.mktemp("served"))
    work.write_config(serving_config())
    work.snakemake(layout.served_file("OVA_OK", "onnx"))
    return work


@pytest.fixture(scope="module")
def server(study: Workdir):
    running = start_in_thread(create_app(load_study(study.path)))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def sample_csv(study: Workdir) -> bytes:
    """Twelve demo rows, the first with a hostile id."""
    rows = demo_frame(study).iloc[:12].copy()
    rows.index = pd.Index([EVIL_ID, *map(str, rows.index[1:])], name=rows.index.name)
    return csv_bytes(rows)


def _files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


def test_the_api_scores_a_file_as_the_batch_rule_does(
    study: Workdir, server: RunningServer
) -> None:
    rows = demo_frame(study).iloc[:30]
    status, answer = post_file(server.url, "rows.csv", csv_bytes(rows))
    assert status == 200
    assert answer["n_samples"] == 30
    assert list(answer["models"]) == ["OVA_OK"]
    served = load_study(study.path)
    expected = score_batch(
        read_upload(csv_bytes(rows), "rows.csv", served.columns),
        served.models,
        served.saturation,
        served.min_integral,
    )
    for sample, (_, want) in zip(answer["samples"], expected.iterrows(), strict=True):
        assert sample["sample_id"] == want["sample_id"]
        assert sample["reason"]["OVA_OK"] == want["OVA_OK.reason"]
        if sample["probabilities"]["OVA_OK"] is not None:
            assert sample["probabilities"]["OVA_OK"]["OK"] == pytest.approx(
                want["OVA_OK.prob_OK"], abs=1e-6
            )
            assert sample["decision"]["OVA_OK"] == want["OVA_OK.decision"]


def test_bad_files_get_a_message_and_the_server_keeps_serving(
    study: Workdir, server: RunningServer, sample_csv: bytes
) -> None:
    before = _files_under(study.path)
    leftovers = set(Path(tempfile.gettempdir()).glob("spectragrid-upload-*"))
    status, answer = post_file(server.url, "broken.parquet", b"not parquet at all")
    assert status == 400 and "broken.parquet: not a Parquet file" in answer["error"]
    evil_pickle = b"cos\nsystem\n(S'touch /tmp/spectragrid-pwned'\ntR."
    status, answer = post_file(server.url, "evil.pkl", evil_pickle)
    assert status == 400 and "refused" in answer["error"] and "os.system" in answer["error"]
    assert not Path("/tmp/spectragrid-pwned").exists()
    status, answer = post_file(server.url, "noid.csv", b"a,b\n1,2\n")
    assert status == 400 and "the id column 'sequence'" in answer["error"]
    status, answer = post_file(server.url, "rows.csv", sample_csv)
    assert status == 200 and answer["n_samples"] == 12
    # nothing written into the study, nothing left in the temporary folder
    assert _files_under(study.path) == before
    assert set(Path(tempfile.gettempdir()).glob("spectragrid-upload-*")) == leftovers


def test_an_upload_over_the_cap_is_refused(study: Workdir, sample_csv: bytes) -> None:
    small = load_study(study.path)
    small.max_upload_mb = len(sample_csv) / 2e6
    running = start_in_thread(create_app(small))
    try:
        status, answer = post_file(running.url, "rows.csv", sample_csv)
        assert status == 413 and "upload limit" in answer["error"]
        status, _ = post_file(running.url, "rows.csv", sample_csv[: len(sample_csv) // 3])
        assert status in (200, 400)
    finally:
        running.stop()


def test_200_requests_from_8_clients_all_succeed(server: RunningServer, sample_csv: bytes) -> None:
    def one(_: int) -> tuple[int, float]:
        status, answer = post_file(server.url, "rows.csv", sample_csv)
        return status, answer["samples"][1]["probabilities"]["OVA_OK"]["OK"]

    with ThreadPoolExecutor(LOAD_CLIENTS) as pool:
        results = list(pool.map(one, range(LOAD_REQUESTS)))
    assert [status for status, _ in results] == [200] * LOAD_REQUESTS
    assert len({p for _, p in results}) == 1


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with chromium(tmp_path_factory.mktemp("chrome-profile")) as driver:
        yield driver


def test_the_page_scores_an_uploaded_file_and_keeps_its_text_inert(
    browser, server: RunningServer, sample_csv: bytes, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    upload = tmp_path / EVIL_FILE.replace("/", "_")
    upload.write_bytes(sample_csv)
    browser.get(server.url + "/")
    assert browser.find_element(By.CSS_SELECTOR, ".card h3").text == "OVA_OK"
    browser.find_element(By.ID, "file").send_keys(str(upload))
    WebDriverWait(browser, 30).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results .sample")) == 12
    )
    samples = browser.find_elements(By.CSS_SELECTOR, "#results .sample")
    # the hostile id and file name are text, nothing of them ran or became an element
    assert samples[0].find_element(By.CSS_SELECTOR, ".sample-id").text == EVIL_ID
    assert upload.name in browser.find_element(By.CSS_SELECTOR, "#summary .file").text
    assert browser.find_elements(By.CSS_SELECTOR, "#results img, #summary script") == []
    assert browser.execute_script("return window.__pwned === undefined")
    scored = [s for s in samples if s.find_elements(By.CSS_SELECTOR, ".decision")]
    assert scored, "no sample was scored"
    bars = scored[0].find_elements(By.CSS_SELECTOR, ".bar")
    assert [b.get_attribute("data-class") for b in bars] == ["OK", "rest"]
    probs = [float(b.find_element(By.CSS_SELECTOR, ".prob").text) for b in bars]
    assert sum(probs) == pytest.approx(1.0, abs=2e-4)
    decision = scored[0].find_element(By.CSS_SELECTOR, ".decision").text
    assert decision in ("OK", "rest", "uncertain")
    lines = scored[0].find_elements(By.CSS_SELECTOR, "svg.spectrum polyline")
    assert [line.get_attribute("data-channel") for line in lines] == ["277", "380", "425"]
    assert len(lines[0].get_attribute("points").split()) == 446
    browser.save_screenshot(str(artifacts(tmp_path) / "serve_page.png"))

    # a bad file: its message, by name, and the page still works
    bad = tmp_path / "broken.parquet"
    bad.write_bytes(b"garbage")
    browser.find_element(By.ID, "file").send_keys(str(bad))
    WebDriverWait(browser, 30).until(
        lambda d: "not a Parquet file" in d.find_element(By.ID, "status").text
    )
    assert "broken.parquet" in browser.find_element(By.ID, "status").text


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_spectragrid_serve_starts_on_loopback_from_the_study_folder(study: Workdir) -> None:
    port = _free_port()
    command = [str(Path(sys.executable).parent / "spectragrid"), "serve", "--port", str(port)]
    proc = subprocess.Popen(
        command, cwd=study.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    page = response.read().decode()
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read().decode()
                assert time.monotonic() < deadline, "spectragrid serve did not answer"
                time.sleep(0.2)
        assert "Served models" in page and "OVA_OK" in page
        assert response.headers["content-security-policy"].startswith("default-src 'none'")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_without_a_served_model_the_command_says_how_to_make_it(tmp_path: Path) -> None:
    work = Workdir(tmp_path)
    work.write_config(serving_config())
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "spectragrid"), "serve"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert f"snakemake {layout.served_file('OVA_OK', 'onnx')}" in proc.stderr
