"""Serving an image model: new images decoded and checked as the ingest checks them, scored
by onnxruntime, fold models merged, and the image sent back for the page.

The model is a small ONNX graph written here (mean of each band -> linear -> softmax)
with an image cell's interface and metadata, so every expected value is computed
by numpy beside it.
"""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from PIL import Image, ImageFile

from spectragrid.data.unpickle import RawDataError
from spectragrid.serve.choice import batch_tracked_files
from spectragrid.serve.ensemble import merge_members
from spectragrid.serve.image_input import (
    ImageSpec,
    decode_image,
    read_image_batch,
    read_image_upload,
    shared_image_spec,
)
from spectragrid.serve.model import ServedModel, ServedModelError
from spectragrid.serve.payload import payload
from spectragrid.serve.scoring import predict_batch, score_batch

SIZE = (6, 5)
CLASSES = ["plain", "glasses"]


def _weights(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(3, 2)).astype(np.float32) / 50


def _image_proto(weights: np.ndarray, size: tuple[int, int] = SIZE) -> onnx.ModelProto:
    """`image` (B, H, W, 3) uint8 -> softmax(mean over pixels of each band @ weights)."""
    nodes = [
        helper.make_node("Cast", ["image"], ["x"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["x"], ["m"], axes=[1, 2], keepdims=0),
        helper.make_node("MatMul", ["m", "w"], ["z"]),
        helper.make_node("Softmax", ["z"], ["probabilities"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "image_cell",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, ["batch", *size, 3])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 2])],
        initializer=[helper.make_tensor("w", TensorProto.FLOAT, [3, 2], weights.ravel())],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    meta = {
        "classes": CLASSES,
        "channels": ["R", "G", "B"],
        "data_bands": ["R", "G", "B"],
        "image_size": list(size),
        "target": "OVA_glasses",
        "tabular": [],
        "display_name": "lenet y=OVA_glasses 1-3 s=0",
        "config_hash": "abc",
    }
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value if isinstance(value, str) else json.dumps(value)
    return proto


def _model(tmp_path: Path, seed: int = 0, size: tuple[int, int] = SIZE) -> ServedModel:
    path = tmp_path / f"model{seed}_{size[0]}.onnx"
    onnx.save(_image_proto(_weights(seed), size), str(path))
    return ServedModel.load(path)


def _expected(pixels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    z = pixels.astype(np.float64).mean(axis=(1, 2)) @ weights.astype(np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _png(pixels: np.ndarray, mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    image = Image.fromarray(pixels)
    (image.convert(mode) if mode else image).save(buffer, "PNG")
    return buffer.getvalue()


def _pixels(seed: int, size: tuple[int, int] = SIZE) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(*size, 3), dtype=np.uint8)


def _claimed_size(png: bytes, height: int, width: int) -> bytes:
    """`png` whose header claims height x width pixels: a decompression bomb's header."""
    start = 8 + 8  # signature, then the IHDR chunk's length and type
    body = struct.pack(">II", width, height) + png[start + 8 : start + 13]
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + body) & 0xFFFFFFFF)
    return png[:start] + body + crc + png[start + 17 :]


SPEC = ImageSpec("RGB", *SIZE)


def test_an_image_is_decoded_or_refused_with_the_ingest_reason() -> None:
    pixels = _pixels(1)
    decoded, reason, _ = decode_image(_png(pixels), SPEC)
    assert reason == "" and np.array_equal(decoded, pixels)
    assert decode_image(_png(pixels, "L"), SPEC)[1:] == ("wrong_mode", "mode L, expected RGB")
    assert decode_image(_png(_pixels(1, (4, 5))), SPEC)[1:] == ("wrong_size", "4x5, expected 6x5")
    assert decode_image(b"not an image\n", SPEC)[1] == "unreadable"
    truncated = _png(_pixels(2, (60, 50)))
    assert decode_image(truncated[: len(truncated) // 2], ImageSpec("RGB", 60, 50))[1] == (
        "unreadable"
    )


def test_a_decompression_bomb_is_refused_from_its_header(monkeypatch) -> None:
    # 10,000 x 8,000 RGB, 240 MB decoded, under Pillow's own bomb limit: refused by its
    # header's size, before any pixel is decoded
    bomb = _claimed_size(_png(_pixels(3)), 10_000, 8_000)
    assert Image.open(io.BytesIO(bomb)).size == (8_000, 10_000)

    def no_decoding(self):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    assert decode_image(bomb, SPEC) == (None, "wrong_size", "10000x8000, expected 6x5")
    # past Pillow's limit the header alone is refused as a bomb
    decoded, reason, detail = decode_image(_claimed_size(_png(_pixels(3)), 60_000, 60_000), SPEC)
    assert (decoded, reason) == (None, "unreadable") and "DecompressionBombError" in detail


def test_a_batch_folder_lists_every_file_as_the_ingest_does(tmp_path: Path) -> None:
    folder = tmp_path / "new"
    (folder / "sub").mkdir(parents=True)
    (folder / "b.png").write_bytes(_png(_pixels(1)))
    (folder / "sub" / "a.png").write_bytes(_png(_pixels(2)))
    (folder / "notes.txt").write_text("not an image\n")
    (folder / ".hidden.png").write_bytes(_png(_pixels(3)))
    (folder / "link.png").symlink_to(folder / "b.png")
    single = tmp_path / "one.png"
    single.write_bytes(_png(_pixels(4, (3, 3))))
    batch = read_image_batch([folder, single], SPEC)
    assert list(batch.table["sample_id"]) == ["b.png", "notes.txt", "sub/a.png", "one.png"]
    assert list(batch.table["source_file"])[-1] == str(single)
    assert [r.split(":")[0] for r in batch.reason] == ["", "unreadable", "", "wrong_size"]
    assert np.array_equal(batch.pixels[2], _pixels(2)) and not batch.pixels[1].any()
    config = {
        "dataset": {"images": {"mode": "RGB"}},
        "predict": {"batches": {"new": [str(folder)]}},
    }
    assert batch_tracked_files(config, "new") == [
        str(folder / "b.png"),
        str(folder / "notes.txt"),
        str(folder / "sub" / "a.png"),
    ]


def test_images_are_scored_by_onnxruntime_and_unscorable_ones_listed(tmp_path: Path) -> None:
    model = _model(tmp_path)
    assert model.takes_images and model.image_size == SIZE and model.wavelengths == []
    for i in range(3):
        (tmp_path / f"img{i}.png").write_bytes(_png(_pixels(10 + i)))
    (tmp_path / "img3.png").write_bytes(b"garbage")
    files = [tmp_path / f"img{i}.png" for i in range(4)]
    scores = predict_batch(
        files,
        {"OVA_glasses": model.path},
        {},
        None,
        None,
        tmp_path / "s.parquet",
        tmp_path / "s.csv",
    )
    want = _expected(np.stack([_pixels(10 + i) for i in range(3)]), _weights(0))
    got = scores[["OVA_glasses.prob_plain", "OVA_glasses.prob_glasses"]].to_numpy(np.float64)
    assert np.abs(got[:3] - want).max() <= 1e-6
    assert list(scores["OVA_glasses.predicted"][:3]) == [CLASSES[k] for k in want.argmax(1)]
    assert np.isnan(got[3]).all() and scores["OVA_glasses.reason"][3].startswith("unreadable")
    assert list(scores["sample_id"]) == [f"img{i}.png" for i in range(4)]
    assert (scores["OVA_glasses.model_sha256"] == model.sha256).all()


def test_fold_models_merge_into_one_file_scoring_their_mean(tmp_path: Path) -> None:
    members = [_image_proto(_weights(seed)) for seed in range(3)]
    path = tmp_path / "ensemble.onnx"
    merged = merge_members(members)
    # build_served_model writes the metadata of the served file; the members' will do here
    merged.metadata_props.extend(members[0].metadata_props)
    onnx.save(merged, str(path))
    served = ServedModel.load(path)
    pixels = np.stack([_pixels(20 + i) for i in range(4)])
    want = np.mean([_expected(pixels, _weights(seed)) for seed in range(3)], axis=0)
    assert np.abs(served.image_probabilities(pixels) - want).max() <= 1e-6


def test_an_upload_is_one_image_or_a_message_naming_what_is_wrong(tmp_path: Path) -> None:
    model = _model(tmp_path)
    pixels = _pixels(5)
    batch = read_image_upload(_png(pixels), "<b>face</b>.png", SPEC)
    scores = score_batch(batch, {"OVA_glasses": model})
    answer = payload("<b>face</b>.png", batch, scores, {"OVA_glasses": model}, images=True)
    sample = answer["samples"][0]
    assert sample["sample_id"] == "<b>face</b>.png"
    assert sample["probabilities"]["OVA_glasses"]["glasses"] == pytest.approx(
        _expected(pixels[None], _weights(0))[0, 1], abs=1e-6
    )
    assert "spectra" not in answer and answer["images"]["drawn"] == 1
    url = answer["images"]["png"][0]
    assert url.startswith("data:image/png;base64,")
    drawn = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert np.array_equal(np.asarray(drawn), pixels)

    with pytest.raises(RawDataError, match=r"^x\.png: the file cannot be read as an image"):
        read_image_upload(b"%PDF-1.4", "x.png", SPEC)
    with pytest.raises(RawDataError, match=r"y\.png: .*size of the study's images.*4x5, expected"):
        read_image_upload(_png(_pixels(1, (4, 5))), "y.png", SPEC)
    with pytest.raises(RawDataError, match=r"z\.png: .*mode of the study's images.*mode L"):
        read_image_upload(_png(pixels, "L"), "z.png", SPEC)


def test_the_served_models_of_a_study_take_one_kind_of_image(tmp_path: Path) -> None:
    one, other = _model(tmp_path, 0), _model(tmp_path, 1, (7, 5))
    assert shared_image_spec({"a": one}) == SPEC
    with pytest.raises(ServedModelError, match="do not take the same input"):
        shared_image_spec({"a": one, "b": other})
