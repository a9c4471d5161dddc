import numpy as np
import pytest
from PIL import Image

from conftest import big_jpeg_bytes
from frame_daemon.errors import PhotoError
from frame_daemon.vision import photo as photo_mod
from frame_daemon.vision.photo import center_square, load_photo, thumbnail_jpeg


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


def test_thumbnail_is_small_jpeg(photo_dir):
    data = thumbnail_jpeg(load_photo(photo_dir / "good.jpg", target_short_side=640))
    import io

    with Image.open(io.BytesIO(data)) as th:
        assert th.format == "JPEG" and max(th.size) <= 640
