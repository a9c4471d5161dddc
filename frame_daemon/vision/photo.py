"""Turn a photo file into the RGB pixels the mood model sees, safely and cheaply.

A photo is decoded once per change (`decode_photo`), from one open file: the mood model's input,
the thumbnail and the EXIF date all come from that one decode, so a file swapped in the meantime
cannot mix two photos or slip past the size guard.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import io
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, UnidentifiedImageError

from frame_daemon.errors import PhotoError
from frame_daemon.file_kind import NotRegularFile, open_regular
from frame_daemon.memory import give_memory_back
from frame_daemon.vision import refused

# A 24-megapixel camera JPEG is 24e6 pixels; 108 MP phones and panoramas go higher. Past this we
# refuse to decode. Pillow's own bomb guard only warns below 2x its limit, and a warning is easy to
# miss, so its limit is set to ours and its warning raised as an error.
DEFAULT_MAX_PIXELS = 150_000_000
# JPEGs decode at a reduced scale, other formats (PNG, TIFF, WebP, GIF) only in full: their pixels
# must fit this many bytes, or a 1 MB PNG of 144 MP (288 MB as 16-bit grey, 576 MB as RGBA) takes
# a Pi's memory. With the rest of the process this keeps `score` under 300 MB.
DEFAULT_MAX_DECODE_BYTES = 160 * 1024 * 1024

# A photo is at most this many times as long as it is wide. Past it the picture is a line, not a
# photo, and it would cost without bound: the short side is kept at the size asked for, so a
# 94-byte 1x2000 PNG became a 224x448000 image (400 MB) on the way to the model.
MAX_ASPECT_RATIO = 20
# A progressive JPEG from a camera or an editor has about ten scans (libjpeg's progression for
# colour writes 10). Each scan is a pass over every coefficient of the photo, whatever the draft
# scale: a 1.5 MB 8000x6000 file repeating one scan 20,000 times took 77 s of CPU, 100 scans of
# it 3 s, where a 144 MP baseline JPEG decodes in 0.2 s. So the scans are limited twice: at most
# 100, and at most 1,500 scans x megapixels (31 scans at 48 MP, the most the decode budget lets
# through as progressive), never fewer than 16.
MAX_JPEG_SCANS = 100
MAX_JPEG_SCAN_WORK = 1500  # scans x megapixels
MIN_JPEG_SCANS = 16
# The formats a frame shows. Pillow's other plugins are never tried: EPS would start Ghostscript
# (`gs`), and PSD, FITS, ... are code a photo frame need not expose to its files. HEIF comes from
# the optional pillow-heif package and is left out when it is not installed.
PHOTO_FORMATS = ("JPEG", "MPO", "PNG", "GIF", "WEBP", "BMP", "TIFF", "HEIF", "AVIF")
FORMATS_TEXT = "JPEG, PNG, GIF, WebP, BMP, TIFF, HEIC/HEIF, AVIF"
_PHOTO_PLUGINS = ("JpegImagePlugin", "MpoImagePlugin", "PngImagePlugin", "GifImagePlugin",
                  "WebPImagePlugin", "BmpImagePlugin", "TiffImagePlugin", "AvifImagePlugin")
_plugins_loaded = False

# EXIF orientation -> the transpose that makes the photo upright (as ImageOps.exif_transpose,
# which also re-serialises the EXIF block and so fails on crafted tags; we only need the pixels).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90,
}
_EXIF_IFD, _DATETIME_ORIGINAL, _DATETIME, _ORIENTATION = 0x8769, 0x9003, 0x0132, 0x0112
_SIXTEEN_BIT = {"I;16", "I;16B", "I;16L", "I;16N"}

_heif_registered: bool | None = None


@dataclass(frozen=True, slots=True)
class DecodedPhoto:
    """Everything the daemon needs from one photo, read from one open file in one decode."""

    path: Path
    image: Image.Image  # upright 8-bit RGB; short side >= the size asked for (if the photo has it)
    taken: str | None  # EXIF DateTimeOriginal (or DateTime) as ISO text
    format: str  # the file's format as Pillow names it: JPEG, PNG, ...
    size: tuple[int, int]  # width, height as stored in the file (before orientation)


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


def _is_iso_media(head: bytes) -> bool:
    """An ISO base media file (HEIC, HEIF, AVIF) by its content: a name can lie both ways (a JPEG
    saved as .heic, a HEIC saved as .jpg)."""
    return head[4:8] == b"ftyp"


def open_image(fp: str | os.PathLike[str] | IO[bytes]) -> Image.Image:
    """`Image.open` restricted to `PHOTO_FORMATS`: every photo the daemon opens goes through here,
    so no file, whatever its name, reaches a plugin that starts a program."""
    global _plugins_loaded
    if not _plugins_loaded:
        # Only these plugins (importing one registers it): Image.init() would import them all.
        for plugin in _PHOTO_PLUGINS:
            with contextlib.suppress(ImportError):
                importlib.import_module(f"PIL.{plugin}")
        _plugins_loaded = True
    return Image.open(fp, formats=[f for f in PHOTO_FORMATS if f in Image.OPEN])


def count_jpeg_scans(f: IO[bytes], limit: int = MAX_JPEG_SCANS) -> int:
    """How many scans (SOS segments) the file's first image holds, counting stops past `limit`.

    Walks the segments as the decoder does: a segment with a length is skipped by its length (an
    EXIF thumbnail's markers are not counted), a scan's entropy-coded data up to the next marker
    (0xFF followed by 0x00 or a restart marker is data). It stops at the end of the image (EOI):
    what follows it (a phone's motion-photo video, gigabytes of anything) is never read. Leaves
    the file where it was.
    """
    where = f.tell()
    f.seek(0)
    count = 0
    try:
        if f.read(2) != b"\xff\xd8":
            return 0
        while count <= limit:
            marker = _next_marker(f)
            if marker is None or marker == 0xD9:  # the end of the file, or of the image
                break
            if 0xD0 <= marker <= 0xD8 or marker == 0x01:  # markers without a length
                continue
            length = f.read(2)
            if len(length) < 2 or int.from_bytes(length, "big") < 2:
                break  # damaged: the decoder says so
            f.seek(int.from_bytes(length, "big") - 2, os.SEEK_CUR)
            if marker == 0xDA:
                count += 1
                if not _skip_entropy_data(f):
                    break
    finally:
        f.seek(where)
    return count


_MARKER = re.compile(rb"\xff+([^\x00\xff])")  # fill bytes, then the code (0xFF 0x00 is data)
_MARKER_IN_DATA = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")  # restart markers are part of it


def _find(f: IO[bytes], pattern: re.Pattern[bytes]) -> tuple[int, re.Match[bytes]] | None:
    """The next match of `pattern` (which begins with 0xFF) from the file's position, with the
    offset its chunk was read from; None at the end of the file. A chunk that ends in 0xFF is read
    again from it, so a match split between two reads is found."""
    while True:
        start = f.tell()
        chunk = f.read(1 << 16)
        if len(chunk) < 2:
            return None
        found = pattern.search(chunk)
        if found:
            return start, found
        if chunk[-1] == 0xFF:
            f.seek(-1, os.SEEK_CUR)


def _next_marker(f: IO[bytes]) -> int | None:
    """The next marker's code, past any bytes before it (libjpeg skips them too); None at the end
    of the file."""
    if (hit := _find(f, _MARKER)) is None:
        return None
    start, found = hit
    f.seek(start + found.end())
    return found.group(1)[0]


def _skip_entropy_data(f: IO[bytes]) -> bool:
    """Move to the 0xFF of the marker that ends a scan's data; False at the end of the file."""
    if (hit := _find(f, _MARKER_IN_DATA)) is None:
        return False
    start, found = hit
    f.seek(start + found.start())
    return True


def _open_regular_file(path: Path) -> IO[bytes]:
    """Open a photo for reading, refusing what is not a regular file with the reason why (a FIFO
    must not hang the loop until someone writes to it)."""
    try:
        fd = open_regular(path)
    except NotRegularFile as exc:
        if exc.kind == "a directory":
            raise PhotoError(path, "is a directory, not a photo") from None
        raise PhotoError(path, f"is {exc.kind}, not a photo file") from None
    except FileNotFoundError:
        if path.is_symlink():
            raise PhotoError(path, f"dangling symlink (points to {os.readlink(path)}, which does "
                                   "not exist)") from None
        raise PhotoError(path, "file not found") from None
    except PermissionError:
        raise PhotoError(path, "permission denied (the daemon's user cannot read it)") from None
    except IsADirectoryError:
        raise PhotoError(path, "is a directory, not a photo") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise PhotoError(path, "symlink loop (the link points back to itself)") from None
        raise PhotoError(path, f"cannot open: {exc.strerror}") from None
    return os.fdopen(fd, "rb")


def decode_photo(path: str | os.PathLike[str], min_short_side: int = 224,
                 max_pixels: int = DEFAULT_MAX_PIXELS,
                 max_decode_bytes: int = DEFAULT_MAX_DECODE_BYTES) -> DecodedPhoto:
    """Decode a photo once: upright 8-bit RGB with a short side of at least `min_short_side`.

    JPEGs are decoded with `draft()` at a reduced scale (a 6000x4000 photo decodes as 750x500 for
    224), and large decodes are shrunk before any conversion, so large photos cost little memory.
    Raises `PhotoError` with a one-line reason for anything unreadable: whatever goes wrong inside
    the decoders (crafted files reach code paths that raise TypeError, struct.error, IndexError,
    ...) the caller gets a PhotoError, never another exception.
    """
    path = Path(path)
    limits = (min_short_side, max_pixels, max_decode_bytes)
    with contextlib.suppress(OSError):  # refused before, unchanged since: not even opened
        reason = refused.recall(refused.key(path, os.stat(path), *limits))
        if reason is not None:
            raise PhotoError(path, reason)
    with _open_regular_file(path) as f:
        key = refused.key(path, os.fstat(f.fileno()), *limits)
        try:
            return _decode_open_file(path, f, min_short_side, max_pixels, max_decode_bytes)
        except PhotoError as exc:
            refused.remember(key, exc.reason)  # not tried again until the file changes
            raise


def _decode_open_file(path: Path, f: IO[bytes], min_short_side: int, max_pixels: int,
                      max_decode_bytes: int) -> DecodedPhoto:
    """`decode_photo` once the file is open: any failure becomes a PhotoError with its reason."""
    try:
        head = f.read(12)
        if not head:
            raise PhotoError(path, "empty file (0 bytes)")
        size = os.fstat(f.fileno()).st_size
        if size > max_file_bytes(max_decode_bytes):
            # Pillow holds what is not pixels whole: a PNG chunk or TIFF tag of any size, a
            # JPEG's APP segments, a WebP's whole file (a 1.5 GB PNG chunk took 1.5 GB).
            raise PhotoError(path, f"file of {size / 2**20:.0f} MB: larger than any photo read "
                                   f"here ({max_file_bytes(max_decode_bytes) / 2**20:.0f} MB, "
                                   "twice model.max_decode_mb)")
        heif_ready = _is_iso_media(head) and _register_heif()
        f.seek(0)
        try:
            return _decode(path, f, min_short_side, max_pixels, max_decode_bytes)
        except UnidentifiedImageError:
            # Pillow reads AVIF itself; what it cannot read in such a file is HEIC/HEIF.
            if _is_iso_media(head) and not heif_ready:
                raise PhotoError(path, "HEIC/HEIF photo needs the optional 'pillow-heif' "
                                       "package (pip install 'frame-daemon[heif]')") from None
            raise
    except PhotoError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PhotoError(path, f"image too large, refused by the decompression-bomb guard "
                               f"({exc})") from None
    except UnidentifiedImageError:
        raise PhotoError(path, f"not a readable image (unknown format or corrupt header; "
                               f"a frame reads {FORMATS_TEXT})") from None
    except (OSError, SyntaxError, EOFError) as exc:
        # Pillow reports truncated and corrupt data as OSError/SyntaxError with terse messages.
        raise PhotoError(path, f"corrupt or truncated image ({exc})") from None
    except MemoryError:
        raise PhotoError(path, "image too large to decode in memory") from None
    except Exception as exc:
        # Decoder bugs reached by damaged or crafted files: the photo is unreadable, the
        # daemon is fine.
        raise PhotoError(path, f"corrupt image ({type(exc).__name__}: {exc})") from exc
    finally:
        give_memory_back()


def max_file_bytes(max_decode_bytes: int) -> int:
    """The largest photo file read: a file larger than twice the decode budget holds either
    pixels over it (a PNG's compressed data is rarely much smaller) or data that is no photo."""
    return 2 * max_decode_bytes


def load_photo(path: str | os.PathLike[str], target_short_side: int = 224,
               max_pixels: int = DEFAULT_MAX_PIXELS,
               max_decode_bytes: int = DEFAULT_MAX_DECODE_BYTES) -> Image.Image:
    """Open a photo as an upright 8-bit RGB image whose short side is at least `target_short_side`.

    The image of `decode_photo`; raises `PhotoError` with a one-line reason for anything unreadable.
    """
    return decode_photo(path, target_short_side, max_pixels, max_decode_bytes).image


def _decode(path: Path, f: IO[bytes], min_short_side: int, max_pixels: int,
            max_decode_bytes: int) -> DecodedPhoto:
    Image.MAX_IMAGE_PIXELS = max_pixels
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        # Pillow warns about odd but readable files (a truncated EXIF tag...): not our concern.
        warnings.simplefilter("ignore", UserWarning)
        with open_image(f) as im:
            stored_size = im.size
            _check_shape(path, im, f)
            if getattr(im, "is_animated", False):
                im.seek(0)
            if im.format == "JPEG":
                # draft() picks the largest 1/2^k scale that still covers the request;
                # orientation may swap the axes, so ask for the short side on both.
                im.draft("RGB", (min_short_side, min_short_side))
            _check_decode_budget(path, im, stored_size, max_decode_bytes)
            im.load()
            # After load(): a PNG looks for EXIF behind its pixels, and would decode them all
            # before the budget check.
            taken, orientation = _exif_facts(im)
            small = _shrink(im, min_short_side)
        if orientation in _UPRIGHT:
            small = small.transpose(_UPRIGHT[orientation])
        return DecodedPhoto(path, _to_rgb8(small), taken, im.format or "", stored_size)


def _exif_facts(im: Image.Image) -> tuple[str | None, int]:
    """(date taken as ISO text or None, EXIF orientation or 1); a broken EXIF block is no error."""
    try:
        exif = im.getexif()
        orientation = exif.get(_ORIENTATION, 1)
        raw = exif.get_ifd(_EXIF_IFD).get(_DATETIME_ORIGINAL) or exif.get(_DATETIME)
    except Exception:  # the EXIF block is a second, crafted file format of its own
        return None, 1
    orientation = orientation if isinstance(orientation, int) else 1
    if not isinstance(raw, str) or len(raw) < 19:
        return None, orientation
    # EXIF writes "YYYY:MM:DD HH:MM:SS".
    return raw[:10].replace(":", "-") + "T" + raw[11:19], orientation


def _bytes_per_pixel(mode: str) -> int:
    """What Pillow keeps in memory per pixel: 1 byte for 8-bit single-band modes ("1" too),
    2 for 16-bit grey, 4 for 32-bit modes and every multi-band mode (RGB is stored as 4)."""
    if mode in {"1", "L", "P"}:
        return 1
    if mode in _SIXTEEN_BIT:
        return 2
    return 4


def decode_cost(im: Image.Image, stored_size: tuple[int, int]) -> int:
    """Bytes the decode of an opened (and drafted) image will hold, known before decoding."""
    width, height = im.size
    cost = width * height * _bytes_per_pixel(im.mode)
    if im.format == "WEBP":
        # Pillow's WebP decoder holds the frame as RGBA about four times over (libwebp's buffer,
        # a bytes copy, a stream over it, the image): 15 bytes a pixel measured.
        cost = width * height * 16
    if im.format == "JPEG" and (im.info.get("progressive") or im.info.get("progression")):
        # libjpeg keeps every DCT coefficient of a progressive JPEG, at the stored size whatever
        # the draft scale: 2 bytes a sample, ~1.5 samples a pixel with 4:2:0 chroma.
        cost += stored_size[0] * stored_size[1] * 3
    return cost


def _check_shape(path: Path, im: Image.Image, f: IO[bytes]) -> None:
    """Refuse, before decoding, what no photo is: a line of pixels, or a JPEG of endless scans."""
    width, height = im.size
    if min(width, height) < 1 or max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        ratio = max(width, height) / max(min(width, height), 1)
        raise PhotoError(path, f"{width}x{height} is too long and thin for a photo ({ratio:.0f}:1;"
                               f" the limit is {MAX_ASPECT_RATIO}:1)")
    if im.format in {"JPEG", "MPO"}:
        megapixels = width * height / 1e6
        allowed = min(MAX_JPEG_SCANS, max(MIN_JPEG_SCANS, int(MAX_JPEG_SCAN_WORK / megapixels)))
        if count_jpeg_scans(f, allowed) > allowed:
            raise PhotoError(path, f"JPEG with more than {allowed} scans at {width}x{height} (a "
                                   "camera writes about 10); decoding it would take too long")


def _check_decode_budget(path: Path, im: Image.Image, stored_size: tuple[int, int],
                         max_decode_bytes: int) -> None:
    cost = decode_cost(im, stored_size)
    if cost > max_decode_bytes:
        width, height = stored_size
        raise PhotoError(path, f"image too large to decode here: {width}x{height} {im.mode} "
                               f"needs {cost / 2**20:.0f} MB, the limit is "
                               f"{max_decode_bytes / 2**20:.0f} MB (model.max_decode_mb)")


def _shrink(im: Image.Image, min_short_side: int) -> Image.Image:
    """Shrink a large decode by a whole factor first, so that mode conversions (alpha
    compositing, 16-bit scaling) work on a small image. Keeps twice the short side asked for, so
    the final resize still has detail to work with (as Pillow's own reducing_gap=2)."""
    width, height = im.size
    factor = min(width, height) // (2 * max(min_short_side, 1))
    if factor < 2:
        return im
    if im.mode in {"1", "P"}:  # no box filter for these; nearest neighbour keeps the palette
        return im.resize((width // factor, height // factor), Image.Resampling.NEAREST)
    if im.mode in _SIXTEEN_BIT:
        return _reduce_sixteen_bit(im, factor)
    return _reduce_in_strips(im, factor)


def _reduce_in_strips(im: Image.Image, factor: int, rows: int = 256) -> Image.Image:
    """`im.reduce(factor)` a strip at a time: Pillow premultiplies RGBA and LA into a full-size
    copy before reducing, which would double the memory of the decode."""
    width, height = im.size
    step = max(1, rows // factor) * factor
    out = Image.new(im.mode, (-(-width // factor), -(-height // factor)))
    for top in range(0, height, step):
        strip = im.crop((0, top, width, min(top + step, height))).reduce(factor)
        out.paste(strip, (0, top // factor))
    return out


def _reduce_sixteen_bit(im: Image.Image, factor: int, rows: int = 256) -> Image.Image:
    """Box-average 16-bit grey (Pillow cannot reduce it) strip by strip into a 32-bit image."""
    width, height = im.size
    out_w, out_h = width // factor, height // factor
    step = max(1, rows // factor) * factor
    out = np.empty((out_h, out_w), dtype=np.float32)
    done = 0
    for top in range(0, out_h * factor, step):
        bottom = min(top + step, out_h * factor)
        strip = np.asarray(im.crop((0, top, out_w * factor, bottom)), dtype=np.float32)
        blocks = strip.reshape((bottom - top) // factor, factor, out_w, factor).mean(axis=(1, 3))
        out[done:done + len(blocks)] = blocks
        done += len(blocks)
    return Image.fromarray(np.round(out).astype(np.int32), mode="I")


def _to_rgb8(im: Image.Image) -> Image.Image:
    mode = im.mode
    if mode == "RGB":
        return im
    if mode in _SIXTEEN_BIT | {"I"}:
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
    if mode in {"RGBA", "LA", "PA", "RGBa", "La"} or (mode == "P" and "transparency" in im.info):
        return _on_white(im)
    return im.convert("RGB")  # P, L, 1, CMYK, YCbCr, LAB, HSV


def _on_white(im: Image.Image, rows: int = 256) -> Image.Image:
    """Composite transparency on white, as a frame or a browser would show it, a strip at a time:
    the RGBA copy, the white background and the composite exist only for one strip."""
    width, height = im.size
    out = Image.new("RGB", im.size)
    for top in range(0, height, rows):
        strip = im.crop((0, top, width, min(top + rows, height))).convert("RGBA")
        background = Image.new("RGBA", strip.size, (255, 255, 255, 255))
        out.paste(Image.alpha_composite(background, strip).convert("RGB"), (0, top))
    return out


def center_square(im: Image.Image, size: int) -> np.ndarray:
    """Resize so the short side is `size`, crop the centre square; uint8 array (size, size, 3).

    Only the square is resampled (`box`, in the photo's own coordinates, is where the crop of
    the resized photo lies): resizing the whole photo first would cost its long side times
    `size`, 13 GB for a 1x65000 line.
    """
    width, height = im.size
    scale = size / min(width, height)
    new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
    left, top = (new_w - size) // 2, (new_h - size) // 2
    sx, sy = new_w / width, new_h / height
    box = (left / sx, top / sy, (left + size) / sx, (top + size) / sy)
    square = im.resize((size, size), Image.Resampling.BILINEAR, box=box, reducing_gap=2.0)
    return np.asarray(square, dtype=np.uint8)


def photo_taken(path: str | os.PathLike[str]) -> str | None:
    """The EXIF DateTimeOriginal (or DateTime) of a photo as ISO text, if it has one.

    For a photo being shown, use `decode_photo(...).taken` instead: it reads the same open file.
    The pixels are never decoded (a PNG's EXIF behind them is not looked for: Pillow would decode
    them all first, 576 MB for a 600 kB PNG of 144 MP), and what `decode_photo` refuses unread
    (not a regular file, larger than any photo) is not opened here either.
    """
    try:
        with _open_regular_file(Path(path)) as f, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the bomb warning: this reads no pixels
            if os.fstat(f.fileno()).st_size > max_file_bytes(DEFAULT_MAX_DECODE_BYTES):
                return None
            with open_image(f) as im:
                if im.format == "PNG" and "exif" not in im.info:
                    return None
                return _exif_facts(im)[0]
    except Exception:
        return None


def thumbnail_jpeg(im: Image.Image, long_side: int = 640, quality: int = 85) -> bytes:
    """A small JPEG of the photo, for publishing (long side at most `long_side`)."""
    thumb = im.copy()
    thumb.thumbnail((long_side, long_side), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    thumb.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
