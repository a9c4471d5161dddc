#!/usr/bin/env python3
"""Fetch the demo photos: freely licensed photos bundled in a few PyPI wheels.

    python scripts/demo_photos.py OUTDIR

Downloads each wheel once with pip (no install, no dependencies) into OUTDIR/.cache and extracts
the photos as JPEGs. Licences:
- scikit-image's sample data (its data README): astronaut, rocket and hubble_deep_field are NASA
  (public domain); coffee and chelsea are CC0 (chelsea, the cat, whole and cropped to its eyes).
- scikit-learn's sample images (sklearn/datasets/images/README.txt): china.jpg and flower.jpg
  (cropped to the dahlia's heart), CC BY 2.0, by danielbuechele and vultilion on Flickr
  (retrieved by Robert Layton).
- matplotlib's sample data: grace_hopper.jpg, Rear Admiral Grace Hopper, US Navy photo (public
  domain).
- Nikola's sample site (nikola/data/samplesite/galleries/demo/index.txt: "public domain pictures
  of Nikola Tesla"): tesla2_lg.jpg, a portrait from the 1890s, cropped to its upper left 70%.

Why the crops (chosen for mood-v3 with `frame-daemon score --json`): the shipped mood model reads
none of these photos whole (nor any other freely licensed photo found in PyPI wheels) as lively,
and the whole dahlia only mildly calm (arousal -0.27). It reads the dahlia's heart as calm
(valence +0.59, arousal -0.46), the cat's eyes as pleasant and livelier than four photos in five
(valence +0.42, arousal +0.10), which the demo library places among its lively tracks, and the
Tesla crop at arousal +0.27, which it places among its tense ones. mood-v4 (a new valence head)
reads them alike: +0.57 / -0.46, +0.41 / +0.10, and the Tesla crop at +0.27 (valence -0.75). They
give the demo its contrast: a calm photo and calm music, then a lively one and lively music. The
list below is in the demo's order.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from io import BytesIO
from pathlib import Path

from PIL import Image

# (wheel spec, its file-name prefix, member path in the wheel, demo photo name, the part kept as
# fractions (left, top, right, bottom))
WHOLE = (0.0, 0.0, 1.0, 1.0)
PHOTOS = [
    ("scikit-learn==1.9.1", "scikit_learn-", "sklearn/datasets/images/flower.jpg", "flower",
     (0.2, 0.3, 0.7, 0.8)),
    ("scikit-image==0.25.2", "scikit_image-", "skimage/data/chelsea.png", "cat-closeup",
     (0.35, 0.1, 0.85, 0.6)),
    ("scikit-learn==1.9.1", "scikit_learn-", "sklearn/datasets/images/china.jpg", "temple", WHOLE),
    ("nikola==8.3.3", "nikola-", "nikola/data/samplesite/galleries/demo/tesla2_lg.jpg", "tesla",
     (0.0, 0.0, 0.7, 0.7)),
    ("scikit-image==0.25.2", "scikit_image-", "skimage/data/coffee.png", "coffee", WHOLE),
    ("matplotlib==3.11.2", "matplotlib-", "matplotlib/mpl-data/sample_data/grace_hopper.jpg",
     "admiral", WHOLE),
    ("scikit-image==0.25.2", "scikit_image-", "skimage/data/astronaut.png", "astronaut", WHOLE),
    ("scikit-image==0.25.2", "scikit_image-", "skimage/data/rocket.jpg", "rocket", WHOLE),
    ("scikit-image==0.25.2", "scikit_image-", "skimage/data/hubble_deep_field.jpg", "deep-space",
     WHOLE),
    ("scikit-image==0.25.2", "scikit_image-", "skimage/data/chelsea.png", "cat", WHOLE),
]


def wheel(cache: Path, spec: str, prefix: str) -> Path:
    version = spec.split("==")[1]
    found = sorted(cache.glob(f"{prefix}{version}-*.whl"))
    if not found:
        print(f"demo photos: downloading the {spec} wheel for its sample photos", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                        "--only-binary=:all:", "-d", str(cache), spec], check=True)
        found = sorted(cache.glob(f"{prefix}{version}-*.whl"))
    return found[-1]


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(sys.argv[1])
    cache = out / ".cache"
    cache.mkdir(parents=True, exist_ok=True)
    for spec, prefix, member, name, (left, top, right, bottom) in PHOTOS:
        target = out / f"{name}.jpg"
        if target.exists():
            continue
        with zipfile.ZipFile(wheel(cache, spec, prefix)) as whl, \
                Image.open(BytesIO(whl.read(member))) as im:
            w, h = im.size
            part = im.convert("RGB").crop((round(left * w), round(top * h), round(right * w),
                                           round(bottom * h)))
            part.save(target, quality=92)
    print(f"demo photos: {len(PHOTOS)} in {out}")
    return 0


def demo_order(out: Path) -> list[Path]:
    """The photos in the order the demo shows them."""
    return [out / f"{name}.jpg" for _, _, _, name, _ in PHOTOS]


if __name__ == "__main__":
    sys.exit(main())
