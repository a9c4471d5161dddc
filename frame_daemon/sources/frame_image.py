"""Lay a photo out on the screen: fit it whole, or fill the screen with a blurred copy behind it.

Pure Pillow, no display: the slideshow turns the result into a pygame surface, and the tests can
look at the pixels. A portrait photo on a landscape screen (or the reverse) leaves bars in "fit";
"fill" puts a blurred, darkened, enlarged copy of the photo there instead, as phone galleries do,
and still shows the whole photo on top.
"""

from __future__ import annotations

from PIL import Image, ImageEnhance, ImageFilter

FITS = ("fit", "fill")
BACKGROUND = (0, 0, 0)
_BLUR_WORK_SIDE = 96  # the background is blurred small and enlarged: cheap at any screen size


def fitted_size(size: tuple[int, int], screen: tuple[int, int]) -> tuple[int, int]:
    """The largest size with the photo's aspect ratio that fits in `screen`."""
    w, h = size
    sw, sh = screen
    scale = min(sw / w, sh / h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def _blurred_background(photo: Image.Image, screen: tuple[int, int]) -> Image.Image:
    sw, sh = screen
    w, h = photo.size
    scale = max(sw / w, sh / h)  # cover the screen, cropping the overflow
    cw, ch = min(w, round(sw / scale)), min(h, round(sh / scale))
    left, top = (w - cw) // 2, (h - ch) // 2
    small = photo.crop((left, top, left + cw, top + ch))
    small.thumbnail((_BLUR_WORK_SIDE, _BLUR_WORK_SIDE), Image.Resampling.BILINEAR)
    small = small.filter(ImageFilter.GaussianBlur(4))
    small = ImageEnhance.Brightness(small).enhance(0.6)  # the photo itself stays the brightest
    return small.resize(screen, Image.Resampling.BILINEAR)


def compose(photo: Image.Image, screen: tuple[int, int], fit: str = "fill") -> Image.Image:
    """An RGB image of exactly `screen` size with the whole photo centred on it."""
    if fit not in FITS:
        raise ValueError(f"fit must be one of {', '.join(FITS)}")
    photo = photo.convert("RGB") if photo.mode != "RGB" else photo
    size = fitted_size(photo.size, screen)
    shown = photo if size == photo.size else photo.resize(size, Image.Resampling.LANCZOS,
                                                          reducing_gap=2.0)
    bars = size != screen
    frame = _blurred_background(photo, screen) if fit == "fill" and bars else \
        Image.new("RGB", screen, BACKGROUND)
    frame.paste(shown, ((screen[0] - size[0]) // 2, (screen[1] - size[1]) // 2))
    return frame
