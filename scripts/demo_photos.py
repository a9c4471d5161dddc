#!/usr/bin/env python3
"""Fetch a few public-domain demo photos from scikit-image's PyPI wheel (its bundled sample data).

    python scripts/demo_photos.py OUTDIR

Downloads the wheel once with pip (no install, no dependencies) into OUTDIR/.cache and extracts
the photos as JPEGs. Licences, from scikit-image's data README: astronaut, rocket and
hubble_deep_field are NASA (public domain); coffee, chelsea, grass, gravel and brick are CC0.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from io import BytesIO
from pathlib import Path

from PIL import Image

WHEEL_SPEC = "scikit-image==0.25.2"
PHOTOS = ["astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "hubble_deep_field.jpg",
          "grass.png", "gravel.png", "brick.png"]


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(sys.argv[1])
    cache = out / ".cache"
    cache.mkdir(parents=True, exist_ok=True)
    wheels = sorted(cache.glob("scikit_image-*.whl"))
    if not wheels:
        print(f"demo photos: downloading {WHEEL_SPEC} wheel (about 15 MB) for its sample photos",
              flush=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                        "--only-binary=:all:", "-d", str(cache), WHEEL_SPEC], check=True)
        wheels = sorted(cache.glob("scikit_image-*.whl"))
    with zipfile.ZipFile(wheels[-1]) as wheel:
        for name in PHOTOS:
            target = out / (Path(name).stem + ".jpg")
            if target.exists():
                continue
            with Image.open(BytesIO(wheel.read(f"skimage/data/{name}"))) as im:
                im.convert("RGB").save(target, quality=92)
    print(f"demo photos: {len(PHOTOS)} in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
