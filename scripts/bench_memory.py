#!/usr/bin/env python3
"""Where the daemon's memory goes: RSS after each start-up step, and a running daemon's mappings.

    .venv/bin/python scripts/bench_memory.py [--changes 20]

1. In a fresh Python process, one step after another: Python and numpy; the daemon's imports; the
   photo model loaded (its face reader apart); the first photo scored.
2. `frame-daemon run` on real servers (the tests' library) after `--changes` photo changes: its
   RSS by mapping (anonymous memory, heap, each library and model file), from /proc/PID/smaps.
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from bench_rig import STATE, start_frame, vitals  # noqa: E402

from bench_score import synthetic_photo  # noqa: E402
from harness import make_servers, show_photo  # noqa: E402

# Run in a child of its own: this process has imported the rig, the servers and more.
STEPS = """
import re
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])

def rss():
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmRSS:\\s+(\\d+)", status).group(1)) / 1024

import numpy
print(f"Python and numpy: {rss():.1f} MB")
import frame_daemon.cli, frame_daemon.daemon
print(f"the daemon's imports ({len(sys.modules)} modules): {rss():.1f} MB")
from frame_daemon.vision import model
reader = model.FaceReader.__init__
def timed(self, *args, **kwargs):
    before = rss()
    reader(self, *args, **kwargs)
    print(f"  the face reader: +{rss() - before:.1f} MB")
model.FaceReader.__init__ = timed
mood = model.MoodModel.load()
print(f"the photo model loaded: {rss():.1f} MB")
mood.score(sys.argv[2])
print(f"the first photo scored: {rss():.1f} MB")
"""


def by_mapping(pid: int) -> collections.Counter:
    """RSS in kB per mapping: its file, or [anon], [heap], [stack]."""
    sizes: collections.Counter = collections.Counter()
    name = "[anon]"
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        parts = line.split()
        if parts and re.fullmatch(r"[0-9a-f]+-[0-9a-f]+", parts[0]):
            name = parts[5] if len(parts) > 5 else "[anon]"
        elif parts and parts[0] == "Rss:":
            sizes[name] += int(parts[1])
    return sizes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--changes", type=int, default=20)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        work = Path(tmp)
        photos = []
        for seed in range(2):
            photo = work / f"photo{seed}.jpg"
            photo.write_bytes(synthetic_photo(1600, 1200, 20 + seed))
            photos.append(photo)
        print("start-up steps, one process:", flush=True)
        subprocess.run([sys.executable, "-c", STEPS, str(ROOT), str(photos[0])], check=True,
                       timeout=300, cwd=ROOT)
        mpd, broker = make_servers(work)
        frame = start_frame(work, mpd, broker, photos[0])
        try:
            frame.wait_state(lambda s: s.get("queued"), 60, what="first tracks queued")
            for i in range(1, args.changes + 1):
                before = frame.recorder.count(STATE)
                show_photo(frame.current, photos[i % 2])
                frame.wait(lambda b=before: frame.recorder.count(STATE) > b, 20,
                           what=f"change {i} handled")
            sizes = by_mapping(frame.pid)
            print(f"frame-daemon run after {args.changes} photo changes: "
                  f"RSS {vitals(frame.pid)['rss_mb']:.1f} MB", flush=True)
            for name, kb in sizes.most_common(12):
                print(f"  {kb / 1024:5.1f} MB  {Path(name).name if name.startswith('/') else name}")
        finally:
            frame.close()
            mpd.stop()
            broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
