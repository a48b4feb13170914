"""Reading and writing images as uint8 arrays, with errors that name the file.

Images are `numpy.uint8` arrays of shape (H, W) for one channel or (H, W, 3) for RGB.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from hfr.errors import ImageError
from hfr.fileio import atomic_write_bytes

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".ppm", ".pgm")


def read_image(path: str | os.PathLike, mode: str = "L") -> np.ndarray:
    """Read an image file as uint8: mode "L" gives (H, W), "RGB" gives (H, W, 3).

    Raises ImageError naming the file when it is missing or cannot be decoded.
    """
    if mode not in ("L", "RGB"):
        raise ValueError(f"mode must be 'L' or 'RGB', not {mode!r}")
    p = Path(path)
    try:
        with Image.open(p) as img:
            img.load()
            return np.asarray(img.convert(mode), dtype=np.uint8).copy()
    except FileNotFoundError:
        raise ImageError(f"{p}: image file not found; check the path or re-index the dataset") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ImageError(f"{p}: cannot decode image ({exc}); replace or remove the file") from None


def encode_png(array: np.ndarray) -> bytes:
    """Encode a uint8 (H, W) or (H, W, 3) array as PNG bytes (deterministic output)."""
    if array.dtype != np.uint8 or array.ndim not in (2, 3):
        raise ValueError(f"expected a uint8 (H, W) or (H, W, 3) array, got {array.dtype} {array.shape}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def write_png(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write a uint8 array to `path` as PNG, atomically."""
    atomic_write_bytes(path, encode_png(array))
