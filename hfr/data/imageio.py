"""Reading and writing images as uint8 arrays, with errors that name the file.

Images are `numpy.uint8` arrays of shape (H, W) for one channel or (H, W, 3) for RGB.

Bit depths are read with their real range: 16-bit gray PNG/TIFF (NIR cameras write them) is
scaled from 0..65535, 32-bit float TIFF from [0, 1], 16-bit RGB PNG by Pillow itself (the high
byte), each rounded to the nearest 8-bit level. A file whose range is not defined (32-bit
integer pixels, float pixels outside [0, 1] or not finite) is an ImageError naming it rather
than a silently clipped image: Pillow's own conversion clips 16-bit values above 255 to white.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from hfr.errors import ImageError
from hfr.fileio import atomic_write_bytes

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".ppm", ".pgm")


#: Pillow modes of 16-bit gray images (the byte order varies by format).
_GRAY16_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


def read_image(path: str | os.PathLike, mode: str = "L") -> np.ndarray:
    """Read an image file as uint8: mode "L" gives (H, W), "RGB" gives (H, W, 3).

    16-bit and 32-bit float images are scaled from their real range (module docstring).
    Raises ImageError naming the file when it is missing, cannot be decoded, or has pixels
    of no defined range.
    """
    if mode not in ("L", "RGB"):
        raise ValueError(f"mode must be 'L' or 'RGB', not {mode!r}")
    p = Path(path)
    try:
        with Image.open(p) as img:
            img.load()
            if img.mode in _GRAY16_MODES or img.mode in ("I", "F"):
                gray = _gray_from_wide(np.asarray(img), img.mode, p)
                return gray if mode == "L" else np.repeat(gray[:, :, None], 3, axis=2)
            return np.asarray(img.convert(mode), dtype=np.uint8).copy()
    except FileNotFoundError:
        raise ImageError(f"{p}: image file not found; check the path or re-index the dataset") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ImageError(f"{p}: cannot decode image ({exc}); replace or remove the file") from None


def read_photo(path: str | os.PathLike) -> np.ndarray:
    """Read a photo as it is meant to be seen: uint8 (H, W, 3) RGB, EXIF orientation applied.

    For face detection on raw photos (`hfr.data.detect`): the EXIF orientation tag is honoured
    (`PIL.ImageOps.exif_transpose`), gray images (NIR captures, 8- or 16-bit) are replicated to
    three channels, 16-bit and float images are scaled from their real range as in `read_image`,
    transparency (RGBA, LA, palette with alpha) is flattened onto white, and CMYK, YCbCr, palette
    and the other modes go through Pillow's conversion to RGB. Raises ImageError naming the file
    when it is missing, cannot be decoded or has pixels of no defined range.
    """
    p = Path(path)
    try:
        with Image.open(p) as opened:
            opened.load()
            img = ImageOps.exif_transpose(opened)
            if img.mode in _GRAY16_MODES or img.mode in ("I", "F"):
                gray = _gray_from_wide(np.asarray(img), img.mode, p)
                return np.repeat(gray[:, :, None], 3, axis=2)
            if img.mode == "P":
                img = img.convert("RGBA" if "transparency" in img.info else "RGB")
            if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
                rgba = img.convert("RGBA")
                white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                img = Image.alpha_composite(white, rgba)
            return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()
    except FileNotFoundError:
        raise ImageError(f"{p}: image file not found; check the path") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{p}: cannot decode image ({exc}); replace or remove the file") from None


def _gray_from_wide(pixels: np.ndarray, pil_mode: str, path: Path) -> np.ndarray:
    """A 16-bit or float gray image as uint8 (H, W), scaled from its real range."""
    if pil_mode in _GRAY16_MODES:
        unit = pixels.astype(np.float64) / 65535.0
    elif pil_mode == "F":
        values = pixels.astype(np.float64)
        if not np.isfinite(values).all() or values.min() < 0.0 or values.max() > 1.0:
            raise ImageError(
                f"{path}: 32-bit float pixels outside [0, 1] (min {np.nanmin(values):g}, max {np.nanmax(values):g}) "
                f"have no defined brightness; scale the image to [0, 1] or save it as 8- or 16-bit"
            )
        unit = values
    else:
        raise ImageError(
            f"{path}: 32-bit integer pixels have no defined range (0..255? 0..65535?); save the image as 8- or "
            f"16-bit PNG/TIFF"
        )
    return np.rint(unit * 255.0).astype(np.uint8)


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
