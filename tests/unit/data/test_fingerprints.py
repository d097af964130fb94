"""Raw files' content digests: cached under identity and times, never stale."""

import hashlib
import os
from pathlib import Path

from spectragrid.data.fingerprints import content_digests


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_digests_are_the_content_hash_and_a_missing_file_says_so(tmp_path: Path):
    raw = tmp_path / "a.pkl"
    raw.write_bytes(b"spectra")
    cache = tmp_path / "cache" / "raw.json"
    found = content_digests([str(raw), str(tmp_path / "gone.pkl")], cache)
    assert found == {str(raw): _sha(b"spectra"), str(tmp_path / "gone.pkl"): "missing"}
    assert cache.is_file()


def test_a_touch_keeps_the_digest_and_an_edit_with_the_old_mtime_changes_it(tmp_path: Path):
    raw = tmp_path / "a.pkl"
    raw.write_bytes(b"label OK")
    cache = tmp_path / "raw.json"
    first = content_digests([str(raw)], cache)[str(raw)]
    os.utime(raw, ns=(raw.stat().st_atime_ns + 10**9, raw.stat().st_mtime_ns + 10**9))
    assert content_digests([str(raw)], cache)[str(raw)] == first
    old = raw.stat()
    raw.write_bytes(b"label NC")  # same size
    os.utime(raw, ns=(old.st_atime_ns, old.st_mtime_ns))
    assert raw.stat().st_mtime_ns == old.st_mtime_ns
    assert content_digests([str(raw)], cache)[str(raw)] == _sha(b"label NC")


def test_an_unchanged_file_is_not_read_again(tmp_path: Path, monkeypatch):
    raw = tmp_path / "a.pkl"
    raw.write_bytes(b"x")
    cache = tmp_path / "raw.json"
    content_digests([str(raw)], cache)
    import spectragrid.data.fingerprints as fingerprints

    def unexpected(path):
        raise AssertionError(f"{path} hashed again")

    monkeypatch.setattr(fingerprints, "sha256_of", unexpected)
    assert content_digests([str(raw)], cache)[str(raw)] == _sha(b"x")


def test_an_unreadable_cache_is_rebuilt(tmp_path: Path):
    raw = tmp_path / "a.pkl"
    raw.write_bytes(b"x")
    cache = tmp_path / "raw.json"
    cache.write_text("{not json")
    assert content_digests([str(raw)], cache)[str(raw)] == _sha(b"x")
