import concurrent.futures
import io
import os
import shutil
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image, features

from conftest import big_jpeg_bytes, gradient_photo
from frame_daemon.errors import PhotoError
from frame_daemon.vision import photo as photo_mod
from frame_daemon.vision import refused
from frame_daemon.vision.photo import (
    center_square,
    decode_photo,
    load_photo,
    photo_taken,
    thumbnail_jpeg,
)


@pytest.mark.parametrize("name", ["good.jpg", "cmyk.jpg", "grey16.png", "alpha.png",
                                  "palette.png", "grey.jpg", "animated.gif"])
def test_odd_but_valid_images_become_rgb(photo_dir, name):
    im = load_photo(photo_dir / name)
    assert im.mode == "RGB"
    pixels = center_square(im, 224)
    assert pixels.shape == (224, 224, 3) and pixels.dtype == np.uint8


def test_sixteen_bit_keeps_its_range(photo_dir):
    arr = np.asarray(load_photo(photo_dir / "grey16.png"))
    # A 0..60000 ramp must become a 0..~233 ramp, not a white sheet.
    assert arr.min() < 10 and 200 < arr.max() < 256 and arr.std() > 50


def test_alpha_is_composited_on_white(photo_dir):
    im = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    path = photo_dir / "transparent.png"
    im.save(path)
    assert np.asarray(load_photo(path)).min() == 255


@pytest.mark.parametrize(("name", "reason"), [
    ("truncated.jpg", "truncated"), ("zero.jpg", "empty file"),
    ("notanimage.jpg", "not a readable image"), ("bomb.png", "decompression-bomb"),
    ("missing.jpg", "not found"),
])
def test_bad_files_raise_photo_error_with_reason(photo_dir, name, reason):
    with pytest.raises(PhotoError) as info:
        load_photo(photo_dir / name)
    assert reason in str(info.value)
    assert info.value.path.name == name


def test_directory_is_refused(tmp_path):
    with pytest.raises(PhotoError, match="directory"):
        load_photo(tmp_path)


def test_exif_orientation_is_applied(tmp_path):
    arr = np.zeros((100, 200, 3), np.uint8)
    arr[:, :100] = (255, 0, 0)  # left half red
    arr[:, 100:] = (0, 0, 255)
    im = Image.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display": the stored left edge becomes the top
    path = tmp_path / "rotated.jpg"
    im.save(path, exif=exif, quality=95)
    out = np.asarray(load_photo(path, target_short_side=50))
    assert out.shape[0] > out.shape[1]  # now portrait
    assert out[5, out.shape[1] // 2, 0] > 200 and out[-5, out.shape[1] // 2, 2] > 200


def test_big_jpeg_is_draft_decoded(tmp_path):
    path = tmp_path / "big.jpg"
    path.write_bytes(big_jpeg_bytes())
    im = load_photo(path, target_short_side=224)
    # 6000x4000 decodes at 1/8 scale: 750x500, not 24 megapixels.
    assert im.size == (750, 500)


def test_custom_pixel_limit(photo_dir):
    with pytest.raises(PhotoError, match="decompression-bomb"):
        load_photo(photo_dir / "good.jpg", max_pixels=1000)


def test_heic_without_plugin_names_the_extra(tmp_path, monkeypatch):
    path = tmp_path / "phone.heic"
    path.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic")
    monkeypatch.setattr(photo_mod, "_heif_registered", False)
    with pytest.raises(PhotoError, match="pillow-heif"):
        load_photo(path)


def test_without_pillow_heif_a_photo_is_judged_by_its_content_not_its_name(tmp_path,
                                                                           monkeypatch):
    # Both were refused as "HEIC/HEIF photo needs the optional 'pillow-heif' package": by name.
    monkeypatch.setattr(photo_mod, "_heif_registered", False)
    gradient_photo(320, 240, 3).save(tmp_path / "saved-as.heic", format="JPEG")
    assert decode_photo(tmp_path / "saved-as.heic").format == "JPEG"
    if not features.check("avif"):
        pytest.skip("this Pillow has no AVIF codec")
    gradient_photo(320, 240, 3).save(tmp_path / "phone.avif")  # Pillow reads AVIF itself
    assert decode_photo(tmp_path / "phone.avif").format == "AVIF"


def test_thumbnail_is_small_jpeg(photo_dir):
    data = thumbnail_jpeg(load_photo(photo_dir / "good.jpg", target_short_side=640))
    with Image.open(io.BytesIO(data)) as th:
        assert th.format == "JPEG" and max(th.size) <= 640


# ---------------------------------------------------------------- crafted and odd files
def _tiff_ifd(entries: list[tuple[int, int, int, bytes]]) -> bytes:
    """A little-endian TIFF header and one IFD; entries: (tag, type, count, 4-byte value)."""
    out = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", len(entries))
    for tag, typ, count, value in entries:
        out += struct.pack("<HHI", tag, typ, count) + value.ljust(4, b"\x00")
    return out + struct.pack("<I", 0)


def test_crafted_exif_is_no_crash_and_the_photo_is_still_upright(tmp_path):
    # Orientation 6 beside an ImageWidth tag stored as text: Pillow's exif_transpose re-packs the
    # block and dies with struct.error ("required argument is not an integer").
    exif = _tiff_ifd([(0x0100, 2, 4, b"abc\x00"), (0x0112, 3, 1, struct.pack("<H", 6))])
    path = tmp_path / "crafted-exif.jpg"
    Image.fromarray(np.full((24, 32, 3), 128, np.uint8)).save(path, exif=b"Exif\x00\x00" + exif)
    assert load_photo(path, target_short_side=24).size == (24, 32)  # rotated to portrait


def test_crafted_tiff_gives_photo_error(tmp_path):
    # StripOffsets typed UNDEFINED (raw bytes) instead of LONG: TypeError deep inside Pillow.
    pixels_at = 8 + 2 + 8 * 12 + 4
    tiff = _tiff_ifd([
        (256, 3, 1, struct.pack("<H", 4)), (257, 3, 1, struct.pack("<H", 4)),
        (258, 3, 1, struct.pack("<H", 8)), (259, 3, 1, struct.pack("<H", 1)),
        (262, 3, 1, struct.pack("<H", 1)), (273, 7, 4, struct.pack("<I", pixels_at)),
        (278, 3, 1, struct.pack("<H", 4)), (279, 4, 1, struct.pack("<I", 16)),
    ]) + bytes(range(0, 160, 10))
    path = tmp_path / "crafted.tif"
    path.write_bytes(tiff)
    with pytest.raises(PhotoError, match="corrupt image"):
        load_photo(path)


def test_fifo_is_refused_at_once(tmp_path):
    fifo = tmp_path / "current.jpg"
    os.mkfifo(fifo)
    # Opened naively this blocks until someone writes to the FIFO: the loop would hang.
    result = concurrent.futures.ThreadPoolExecutor(1).submit(load_photo, fifo)
    with pytest.raises(PhotoError, match="FIFO"):
        result.result(timeout=10)


def test_dangling_and_looping_symlinks_are_named(tmp_path):
    dangling = tmp_path / "dangling.jpg"
    dangling.symlink_to(tmp_path / "gone.jpg")
    with pytest.raises(PhotoError, match="dangling symlink"):
        load_photo(dangling)
    loop = tmp_path / "loop.jpg"
    loop.symlink_to(loop)
    with pytest.raises(PhotoError, match="symlink loop"):
        load_photo(loop)


def test_permission_denied_is_not_called_corrupt(photo_dir, tmp_path):
    path = tmp_path / "secret.jpg"
    shutil.copy(photo_dir / "good.jpg", path)
    path.chmod(0)
    if os.geteuid() != 0:
        with pytest.raises(PhotoError) as info:
            load_photo(path)
        assert info.value.reason.startswith("permission denied")
        return
    # root reads anything: try in a child that has become an unprivileged user.
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.setgid(65534)
            os.setuid(65534)
            load_photo(path)
            os.write(write_end, b"no error")
        except PhotoError as exc:
            os.write(write_end, exc.reason.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        reason = pipe.read().decode()
    os.waitpid(pid, 0)
    assert reason.startswith("permission denied"), reason


def test_one_decode_gives_image_and_date_from_one_open(tmp_path, monkeypatch):
    path = tmp_path / "dated.jpg"
    im = gradient_photo(800, 600, 3)
    exif = im.getexif()
    exif.get_ifd(0x8769)[0x9003] = "2019:07:14 18:30:05"
    exif[0x0112] = 8
    im.save(path, exif=exif)
    opened = []
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda p, *a, **k: opened.append(str(p)) or real_open(p, *a, **k))
    photo = decode_photo(path, min_short_side=300)
    assert opened == [str(path)]
    assert photo.taken == "2019-07-14T18:30:05" and photo.format == "JPEG"
    assert photo.size == (800, 600) and photo.image.size == (300, 400)  # draft 1/2, turned
    assert photo.image.mode == "RGB"


def test_big_png_is_refused_by_its_decoded_size_before_decoding(tmp_path):
    path = tmp_path / "wide.png"
    Image.new("RGBA", (4000, 3000)).save(path)  # 48 MB of RGBA once decoded
    with pytest.raises(PhotoError, match="needs 46 MB, the limit is 40 MB"):
        load_photo(path, max_decode_bytes=40 * 2**20)
    assert load_photo(path, max_decode_bytes=50 * 2**20).size == (667, 500)  # shrunk by 6


def test_big_sixteen_bit_grey_is_shrunk_with_its_range(tmp_path):
    ramp = np.tile(np.linspace(0, 60000, 3000, dtype=np.uint16), (2000, 1))
    path = tmp_path / "ramp16.png"
    Image.fromarray(ramp).save(path)
    arr = np.asarray(load_photo(path, target_short_side=224))
    assert arr.shape == (500, 750, 3)  # reduced by 4 in strips, not converted in full
    assert arr[:, :5].max() < 5 and 225 < arr[:, -5:].min() <= 234


@pytest.mark.parametrize("mode", ["RGBA", "LA", "RGB", "L"])
def test_reducing_in_strips_equals_reducing_at_once(mode):
    rng = np.random.default_rng(5)
    im = Image.fromarray(rng.integers(0, 255, (1037, 611, 4), dtype=np.uint8), "RGBA").convert(mode)
    strips = photo_mod._reduce_in_strips(im, 7, rows=100)
    assert strips.size == im.reduce(7).size
    assert np.array_equal(np.asarray(strips), np.asarray(im.reduce(7)))


def _long_gif(width: int, height: int) -> bytes:
    """A 43-byte GIF: one 1x1 frame on a `width` x `height` canvas (decoded whole)."""
    im = Image.new("P", (1, 1))
    im.putpalette([0, 0, 0] * 256)
    out = io.BytesIO()
    im.save(out, "GIF")
    data = bytearray(out.getvalue())
    data[6:10] = struct.pack("<HH", width, height)  # the logical screen size
    return bytes(data)


@pytest.mark.parametrize("name, size", [("line-1x2000.png", (1, 2000)),
                                        ("line-1x4000.png", (1, 4000)),
                                        ("line-1x65000.png", (1, 65000)),
                                        ("canvas-65535x255.gif", (65535, 255))])
def test_lines_and_long_canvases_are_refused_before_decoding(tmp_path, monkeypatch, name, size):
    # Tiny files that cost 327 MB to 13 GB on their way to the model: the short side was kept at
    # the size asked for, and the whole length resized with it.
    path = tmp_path / name
    if name.endswith(".gif"):
        path.write_bytes(_long_gif(*size))
    else:
        Image.new("L", size, 128).save(path, optimize=True)
    assert path.stat().st_size < 250
    monkeypatch.setattr(Image.Image, "load", lambda self: pytest.fail("decoded"))
    with pytest.raises(PhotoError, match=r"too long and thin for a photo \(\d+:1; the limit is 20:1"):
        decode_photo(path, min_short_side=480)


def test_a_panorama_at_the_aspect_limit_is_read(tmp_path):
    path = tmp_path / "panorama.jpg"
    gradient_photo(4000, 200, 1).save(path)
    assert decode_photo(path, min_short_side=224).image.size == (4000, 200)
    assert center_square(load_photo(path), 224).shape == (224, 224, 3)


CENTER_SQUARE_PEAK = """
import re, sys
from PIL import Image, features
from frame_daemon.vision.photo import center_square
assert center_square(Image.new("RGB", (int(sys.argv[1]), int(sys.argv[2]))), 224).shape == (224, 224, 3)
# VmHWM: this program's peak (ru_maxrss would keep the forked test process's)
with open("/proc/self/status") as status:
    print(int(re.search(r"VmHWM:\\s+(\\d+) kB", status.read())[1]) // 1024)
"""


def test_center_square_resamples_only_the_square():
    # A 1x4000 line took 224x896000 pixels (800 MB) before the crop; asked in a process of its
    # own, so its peak memory is its own.
    done = subprocess.run([sys.executable, "-c", CENTER_SQUARE_PEAK, "1", "4000"],
                          capture_output=True, text=True, check=True)
    assert int(done.stdout) < 150  # MB, with Python, numpy and Pillow


DAEMON_PHOTO_PEAK = """
import re, sys
from frame_daemon.vision.model import MoodModel
from frame_daemon.vision.photo import decode_photo, thumbnail_jpeg
model = MoodModel.load(sys.argv[1], threads=1)
photo = decode_photo(sys.argv[2], 480)  # as Daemon.on_photo: decode, score, thumbnail
model.score_image(photo.image, sys.argv[2])
thumbnail_jpeg(photo.image)
with open("/proc/self/status") as status:
    print(int(re.search(r"VmHWM:\\s+(\\d+) kB", status.read())[1]) // 1024)
"""


def test_the_longest_photo_let_through_stays_under_300_mb(tmp_path, model_json):
    # 20:1 and just too short to be shrunk at the daemon's 480 px: composited and resized whole,
    # this took 441 MB.
    path = tmp_path / "long.png"
    im = Image.linear_gradient("L").resize((959, 19180)).convert("RGBA")
    im.putalpha(200)
    im.save(path, compress_level=1)
    done = subprocess.run([sys.executable, "-c", DAEMON_PHOTO_PEAK, str(model_json), str(path)],
                          capture_output=True, text=True, check=True)
    assert int(done.stdout) <= 300  # MB


def test_center_square_is_the_centre_of_the_resized_photo():
    im = gradient_photo(1000, 333, 7)
    scaled = im.resize((673, 224), Image.Resampling.BILINEAR, reducing_gap=2.0)
    expected = np.asarray(scaled.crop((224, 0, 448, 224)), dtype=np.int16)
    assert np.abs(center_square(im, 224).astype(np.int16) - expected).max() <= 1


def _scan_bomb(width: int, height: int, repeats: int) -> bytes:
    """A progressive JPEG whose last scan is repeated: each repeat is a pass over every
    coefficient, a dozen bytes each on a flat picture."""
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (90, 120, 150)).save(buf, "JPEG", progressive=True)
    data = buf.getvalue()
    last = data.rindex(b"\xff\xda")
    return data[:-2] + data[last:-2] * repeats + data[-2:]


def test_a_progressive_jpeg_of_endless_scans_is_refused_unread(tmp_path, monkeypatch):
    # 8000x6000 with 20,000 scans (1.5 MB) took 77 s of CPU on the daemon's loop.
    path = tmp_path / "scans.jpg"
    path.write_bytes(_scan_bomb(800, 600, 2000))
    monkeypatch.setattr(Image.Image, "load", lambda self: pytest.fail("decoded"))
    with pytest.raises(PhotoError, match="JPEG with more than 100 scans"):
        decode_photo(path)


def test_a_large_progressive_jpeg_is_allowed_fewer_scans(tmp_path, monkeypatch):
    # Each scan costs in proportion to the photo: 100 scans of 48 MP took 3 s of CPU.
    big = tmp_path / "big.jpg"
    big.write_bytes(_scan_bomb(8000, 6000, 30))  # 40 scans
    monkeypatch.setattr(Image.Image, "load", lambda self: pytest.fail("decoded"))
    with pytest.raises(PhotoError, match="JPEG with more than 31 scans at 8000x6000"):
        decode_photo(big)
    monkeypatch.undo()
    big.write_bytes(_scan_bomb(8000, 6000, 5))  # 15: more than a camera writes, and allowed
    assert decode_photo(big).image.size == (1000, 750)


def test_a_cameras_progressive_jpeg_has_few_scans_and_is_read(tmp_path):
    path = tmp_path / "progressive.jpg"
    gradient_photo(1200, 900, 2).save(path, quality=90, progressive=True)
    with open(path, "rb") as f:
        assert 5 <= photo_mod.count_jpeg_scans(f) <= 12
    assert decode_photo(path).image.size == (300, 225)


def test_a_motion_photo_is_read_and_what_follows_its_image_is_never_scanned(tmp_path):
    # A phone's motion photo is a JPEG with its video behind it: 8 MB of compressed data hold
    # about 120 "FF DA" pairs by chance, and the photo was refused as a JPEG of endless scans;
    # a 20 GB file was read to its end (97 s) before a 640x480 photo in its first 100 kB.
    jpeg = io.BytesIO()
    gradient_photo(4000, 3000, 1).save(jpeg, "JPEG")
    video = np.random.default_rng(1).integers(0, 256, 8 << 20, dtype=np.uint8).tobytes()
    assert video.count(b"\xff\xda") > 100
    path = tmp_path / "motion.jpg"
    path.write_bytes(jpeg.getvalue() + video)
    assert decode_photo(path).size == (4000, 3000)

    class Reads(io.BytesIO):
        furthest = 0

        def read(self, size=-1):
            data = super().read(size)
            self.furthest = max(self.furthest, self.tell())
            return data

    f = Reads(path.read_bytes())
    assert photo_mod.count_jpeg_scans(f) == 1
    assert f.furthest <= len(jpeg.getvalue()) + (1 << 16)  # one chunk past the image at most


def test_a_file_larger_than_any_photo_is_refused_unread(tmp_path):
    # Pillow reads a PNG chunk it does not know whole, into memory: a 64x64 PNG behind a 1.5 GB
    # chunk (a sparse file: no disk needed) took 1.5 GB, more than a Pi has.
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    pixels = zlib.compress(b"".join(b"\0" + b"\x80" * 192 for _ in range(64)))
    path, filler = tmp_path / "chunky.png", 40 << 20
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 64, 64, 8, 2, 0, 0, 0)))
        f.write(struct.pack(">I", filler) + b"abCd")
        f.seek(filler, os.SEEK_CUR)  # its data: zeros, never written
        f.write(struct.pack(">I", zlib.crc32(bytes(filler), zlib.crc32(b"abCd"))))
        f.write(chunk(b"IDAT", pixels) + chunk(b"IEND", b""))
    budget = 16 << 20  # model.max_decode_mb = 16: files up to 32 MB are read
    with pytest.raises(PhotoError, match="file of 40 MB: larger than any photo read here "
                                         r"\(32 MB, twice model.max_decode_mb\)"):
        decode_photo(path, max_decode_bytes=budget)
    assert decode_photo(path).size == (64, 64)  # under the default budget's 320 MB: read


def test_a_refused_photo_is_not_decoded_again_until_it_changes(tmp_path, monkeypatch):
    path = tmp_path / "scans.jpg"
    path.write_bytes(_scan_bomb(64, 48, 200))
    with pytest.raises(PhotoError, match="scans") as first:
        decode_photo(path)
    counted = []
    monkeypatch.setattr(photo_mod, "count_jpeg_scans", lambda f, *a: counted.append(f) or 1)
    with pytest.raises(PhotoError) as again:
        decode_photo(path)
    assert again.value.reason == first.value.reason and counted == []  # from memory
    assert decode_photo(path, min_short_side=16).image.size == (32, 24)  # other limits: afresh
    assert len(counted) == 1
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # the file changed
    assert decode_photo(path).image.size == (64, 48) and len(counted) == 2


def test_the_date_taken_is_read_without_decoding_a_single_pixel(tmp_path, monkeypatch):
    # The slideshow reads every photo's date in the background: a PNG with no EXIF before its
    # pixels was decoded in full to look for one behind them (576 MB for a 600 kB PNG of 144 MP).
    exif = Image.Exif()
    exif[0x0132] = "2018:05:06 07:08:09"
    gradient_photo(64, 48, 1).save(tmp_path / "dated.jpg", exif=exif)
    gradient_photo(64, 48, 1).save(tmp_path / "dated.png", exif=exif)  # eXIf before the pixels
    Image.new("L", (12000, 12000)).save(tmp_path / "huge.png")  # 144 MP, 140 kB
    decoded = []
    real_load = Image.Image.load
    monkeypatch.setattr(Image.Image, "load", lambda im: decoded.append(im.size) or real_load(im))
    assert photo_taken(tmp_path / "dated.jpg") == "2018-05-06T07:08:09"
    assert photo_taken(tmp_path / "dated.png") == "2018-05-06T07:08:09"
    assert photo_taken(tmp_path / "huge.png") is None
    os.mkfifo(tmp_path / "fifo.jpg")
    assert photo_taken(tmp_path / "fifo.jpg") is None  # at once, not when someone writes to it
    assert decoded == []


EPS_AS_JPG = """
import sys
from frame_daemon.errors import PhotoError
from frame_daemon.vision.photo import decode_photo, photo_taken
assert photo_taken(sys.argv[1]) is None
try:
    decode_photo(sys.argv[1])
except PhotoError as exc:
    print(exc.reason)
"""


def test_an_eps_named_jpg_is_refused_without_starting_ghostscript(tmp_path):
    # Pillow's EPS plugin runs `gs --version`: no photo may start a program.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    ran = tmp_path / "gs-ran"
    gs = bin_dir / "gs"
    gs.write_text(f"#!/bin/sh\necho \"$@\" >> {ran}\n")
    gs.chmod(0o755)
    eps = tmp_path / "drawing.jpg"
    eps.write_text("%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n0 0 moveto 10 10 lineto "
                   "stroke\nshowpage\n%%EOF\n")
    env = os.environ | {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run([sys.executable, "-c", EPS_AS_JPG, str(eps)], env=env,
                          capture_output=True, text=True, check=True)
    assert not ran.exists()
    assert "not a readable image (unknown format" in done.stdout


def test_the_refused_photo_memory_keeps_the_latest_few(tmp_path):
    stat = tmp_path.stat()
    keys = [refused.key(tmp_path / f"{i}.jpg", stat, 224, 1, 1) for i in range(refused.CAPACITY + 1)]
    for k in keys:
        refused.remember(k, "why")
    assert refused.recall(keys[0]) is None and refused.recall(keys[1]) == "why"
    assert refused.recall(keys[-1]) == "why"
    refused.forget_all()
