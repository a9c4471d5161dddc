"""Turn a photo file into the RGB pixels the mood model sees, safely and cheaply."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from frame_daemon.errors import PhotoError

# A 24-megapixel camera JPEG is 24e6 pixels; 108 MP phones and panoramas go higher. Past this we
# refuse to decode. Pillow's own bomb guard only warns below 2x its limit, and a warning is easy to
# miss, so its limit is set to ours and its warning raised as an error.
DEFAULT_MAX_PIXELS = 150_000_000

_heif_registered: bool | None = None


def _register_heif() -> bool:
    """Teach Pillow HEIC/HEIF if the optional `pillow-heif` package is installed."""
    global _heif_registered
    if _heif_registered is None:
        try:
            from pillow_heif import register_heif_opener

            register_heif_opener()
            _heif_registered = True
        except ImportError:
            _heif_registered = False
    return _heif_registered


def _looks_like_heif(path: Path) -> bool:
    if path.suffix.lower() in {".heic", ".heif", ".avif"}:
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError:
        return False
    return head[4:8] == b"ftyp" and head[8:12] in {b"heic", b"heix", b"mif1", b"msf1", b"hevc"}


def load_photo(path: str | os.PathLike[str], target_short_side: int = 224,
               max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open a photo as an upright 8-bit RGB image whose short side is at least `target_short_side`.

    JPEGs are decoded with `draft()` at a reduced scale (a 6000x4000 photo decodes as 750x500), so
    large photos cost little. Raises `PhotoError` with a one-line reason for anything unreadable.
    """
    path = Path(path)
    if not path.exists():
        raise PhotoError(path, "file not found")
    if path.is_dir():
        raise PhotoError(path, "is a directory, not a photo")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise PhotoError(path, f"cannot read: {exc.strerror}") from exc
    if size == 0:
        raise PhotoError(path, "empty file (0 bytes)")
    if _looks_like_heif(path) and not _register_heif():
        raise PhotoError(path, "HEIC/HEIF photo needs the optional 'pillow-heif' package "
                               "(pip install 'frame-daemon[heif]')")
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                return _normalise(im, target_short_side)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PhotoError(path, f"image too large, refused by the decompression-bomb guard "
                               f"({exc})") from None
    except UnidentifiedImageError:
        raise PhotoError(path, "not a readable image (unknown format or corrupt header)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # Pillow reports truncated and corrupt data as OSError/SyntaxError with terse messages.
        raise PhotoError(path, f"corrupt or truncated image ({exc})") from None
    except MemoryError:
        raise PhotoError(path, "image too large to decode in memory") from None


def _normalise(im: Image.Image, target_short_side: int) -> Image.Image:
    """Draft-decode, take the first frame, apply EXIF orientation and convert to 8-bit RGB."""
    if getattr(im, "is_animated", False):
        im.seek(0)
    if im.format == "JPEG":
        # draft() picks the largest 1/2^k scale that still covers the request; orientation may swap
        # the axes, so ask for the short side on both.
        im.draft("RGB", (target_short_side, target_short_side))
    im.load()
    im = ImageOps.exif_transpose(im)
    return _to_rgb8(im)


def _to_rgb8(im: Image.Image) -> Image.Image:
    mode = im.mode
    if mode == "RGB":
        return im
    if mode in {"I;16", "I;16B", "I;16L", "I;16N", "I"}:
        # 16/32-bit greyscale: scale the used range to 8 bits instead of clipping it white.
        arr = np.asarray(im, dtype=np.float64)
        hi = arr.max() if arr.size else 0.0
        scale = 255.0 / (65535.0 if hi > 255 else max(hi, 1.0))
        arr8 = np.clip(arr * scale, 0, 255).astype(np.uint8)
        return Image.fromarray(arr8).convert("RGB")
    if mode == "F":
        arr = np.asarray(im, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        arr8 = ((arr - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(arr)).astype(np.uint8)
        return Image.fromarray(arr8).convert("RGB")
    if mode == "P":
        im = im.convert("RGBA")
        mode = "RGBA"
    if mode in {"RGBA", "LA", "PA", "RGBa", "La"}:
        # Composite transparency on white, as a frame or a browser would show it.
        im = im.convert("RGBA")
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, im).convert("RGB")
    return im.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV


def center_square(im: Image.Image, size: int) -> np.ndarray:
    """Resize so the short side is `size`, crop the centre square; uint8 array (size, size, 3)."""
    width, height = im.size
    scale = size / min(width, height)
    new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
    im = im.resize((new_w, new_h), Image.Resampling.BILINEAR, reducing_gap=2.0)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    return np.asarray(im.crop((left, top, left + size, top + size)), dtype=np.uint8)


def photo_taken(path: str | os.PathLike[str]) -> str | None:
    """The EXIF DateTimeOriginal (or DateTime) of a photo as ISO text, if it has one."""
    try:
        with Image.open(path) as im:
            exif = im.getexif()
            raw = exif.get_ifd(0x8769).get(0x9003) or exif.get(0x0132)
    except (OSError, ValueError, SyntaxError):
        return None
    if not isinstance(raw, str) or len(raw) < 19:
        return None
    # EXIF writes "YYYY:MM:DD HH:MM:SS".
    return raw[:10].replace(":", "-") + "T" + raw[11:19]


def thumbnail_jpeg(im: Image.Image, long_side: int = 640, quality: int = 85) -> bytes:
    """A small JPEG of the photo, for publishing (long side at most `long_side`)."""
    import io

    thumb = im.copy()
    thumb.thumbnail((long_side, long_side), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    thumb.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
