"""The photos refused for what they hold, remembered so that none is decoded twice unchanged.

`decode_photo` consults it, so the daemon's photo handling, the slideshow and its scorer share
it: a slideshow that comes round to a refused photo again, or a file source that names it again,
gets the reason at once instead of paying for the refusal (or the failed decode) each time.
A photo is known by its path, size, modification time and inode, and by the limits it was
decoded under (a JPEG too large at one size may fit at a smaller one): a changed file, or one
put in its place, is tried afresh.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path

# A slideshow folder holds thousands of photos; a few broken ones among them are the usual case.
CAPACITY = 1024

Key = tuple[str, int, int, int, int, int, int]

_lock = threading.Lock()  # the loop, the slideshow's render and scoring threads all decode
_refused: OrderedDict[Key, str] = OrderedDict()


def key(path: Path, st: os.stat_result, *limits: int) -> Key:
    """What identifies one version of a photo decoded under `limits` (short side, pixels, bytes)."""
    short_side, max_pixels, max_bytes = limits
    return (str(path), st.st_size, st.st_mtime_ns, st.st_ino, short_side, max_pixels, max_bytes)


def recall(photo: Key) -> str | None:
    """The reason this version of the photo was refused, or None if it was not."""
    with _lock:
        return _refused.get(photo)


def remember(photo: Key, reason: str) -> None:
    """Keep the reason a photo was refused (the oldest is forgotten past `CAPACITY`)."""
    with _lock:
        _refused[photo] = reason
        _refused.move_to_end(photo)
        while len(_refused) > CAPACITY:
            _refused.popitem(last=False)


def forget_all() -> None:
    """Start afresh (tests; a daemon forgets on restart anyway)."""
    with _lock:
        _refused.clear()
