"""Images of every bit depth are read with their real range (issue 12: 16-bit PNGs were read as white)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hfr.cli import main
from hfr.data.imageio import read_image, write_png
from hfr.errors import ImageError


def write_png16(path: Path, pixels: np.ndarray) -> None:
    """A 16-bit gray (H, W) or RGB (H, W, 3) PNG written byte by byte (Pillow cannot write 16-bit RGB)."""
    h, w = pixels.shape[:2]
    colour = 2 if pixels.ndim == 3 else 0
    raw = b"".join(b"\x00" + pixels[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 16, colour, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )


def _ramp(h: int = 32, w: int = 32) -> np.ndarray:
    return np.linspace(0, 1, h * w).reshape(h, w)


def test_16_bit_gray_is_scaled_not_clipped_to_white(tmp_path):
    unit = _ramp()
    write_png16(tmp_path / "nir16.png", np.rint(unit * 65535).astype(np.uint16))
    got = read_image(tmp_path / "nir16.png")
    assert got.dtype == np.uint8 and got.shape == (32, 32)
    np.testing.assert_array_equal(got, np.rint(unit * 255).astype(np.uint8))  # was all 255 above level 255
    rgb = read_image(tmp_path / "nir16.png", "RGB")
    assert rgb.shape == (32, 32, 3) and (rgb == got[:, :, None]).all()


def test_16_bit_tiff_and_16_bit_rgb_png(tmp_path):
    unit = _ramp(16, 16)
    Image.fromarray(np.rint(unit * 65535).astype(np.uint16)).save(tmp_path / "g16.tif")
    np.testing.assert_array_equal(read_image(tmp_path / "g16.tif"), np.rint(unit * 255).astype(np.uint8))
    rgb16 = np.zeros((8, 8, 3), np.uint16)
    rgb16[..., 0], rgb16[..., 1], rgb16[..., 2] = 40000, 1000, 65535
    write_png16(tmp_path / "rgb16.png", rgb16)
    pixel = read_image(tmp_path / "rgb16.png", "RGB")[0, 0]
    assert np.abs(pixel.astype(int) - np.array([40000, 1000, 65535]) / 257).max() <= 1


def test_float_tiff_in_unit_range_reads_and_outside_it_is_an_error(tmp_path):
    unit = _ramp(16, 16).astype(np.float32)
    Image.fromarray(unit).save(tmp_path / "f.tif")
    np.testing.assert_array_equal(read_image(tmp_path / "f.tif"), np.rint(unit * 255).astype(np.uint8))
    Image.fromarray(unit * 300).save(tmp_path / "hdr.tif")
    with pytest.raises(ImageError, match=r"hdr\.tif: 32-bit float pixels outside \[0, 1\]"):
        read_image(tmp_path / "hdr.tif")
    Image.fromarray((unit * 1e6).astype(np.int32)).save(tmp_path / "i32.tif")
    with pytest.raises(ImageError, match=r"i32\.tif: 32-bit integer pixels have no defined range"):
        read_image(tmp_path / "i32.tif")


def test_embed_of_a_16_bit_image_equals_its_8_bit_copy(tmp_path):
    from hfr.models.lightcnn import build_lightcnn
    from hfr.recognizer.export import export_recognizer

    rng = np.random.default_rng(0)
    unit = rng.uniform(0, 1, (32, 32))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    write_png16(tmp_path / "a" / "face.png", np.rint(unit * 65535).astype(np.uint16))
    write_png(tmp_path / "b" / "face.png", np.rint(unit * 255).astype(np.uint8))
    torch.manual_seed(0)
    export_recognizer(build_lightcnn("lightcnn9", num_classes=0, input_size=32, in_channels=1), tmp_path / "r.pt")
    for name in ("a", "b"):
        assert (
            main(
                [
                    "embed",
                    "--recognizer",
                    str(tmp_path / "r.pt"),
                    "--data",
                    str(tmp_path / name),
                    "--out",
                    str(tmp_path / f"{name}.npy"),
                ]
            )
            == 0
        )
    np.testing.assert_allclose(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"), atol=1e-6)
