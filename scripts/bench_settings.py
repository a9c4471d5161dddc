#!/usr/bin/env python3
"""Benchmark a flood of setting commands: how often settings.json is written.

    .venv/bin/python scripts/bench_settings.py [--commands 20000] [--seconds 10]

Runs the daemon's own loop (no MQTT, no MPD: the commands are put on its queue as the MQTT
thread would) and sends `diversity` commands evenly over the time given, then stops the loop as
SIGTERM would. Prints the files written (each one fsynced) and whether the value in use at the
stop is the one on disk; then the same with the writes not spaced out (as before).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from frame_daemon import settings_store
from frame_daemon.config import parse_config
from frame_daemon.daemon import Daemon
from frame_daemon.events import Command, CommandName


def flood(commands: int, seconds: float) -> tuple[int, float, int, bool]:
    """(files written, seconds taken, commands the queue dropped, the value in use on disk)."""
    with tempfile.TemporaryDirectory() as state:
        path = Path(state) / settings_store.FILE_NAME
        daemon = Daemon(parse_config({"state": {"directory": state}}))
        written = 0
        replace = os.replace

        def counting(src: str, dst: str) -> None:
            nonlocal written
            replace(src, dst)
            written += Path(dst) == path

        settings_store.os.replace = counting  # type: ignore[attr-defined]
        try:
            loop = threading.Thread(target=daemon._loop, name="loop")
            loop.start()
            started = time.monotonic()
            for i in range(1, commands + 1):
                daemon.post(Command(CommandName.DIVERSITY, i / commands))
                delay = started + seconds * i / commands - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            daemon.request_stop("the flood is over")
            loop.join(60)
            if loop.is_alive():
                raise SystemExit("the daemon's loop did not stop within 60 s of the stop request")
            daemon.settings.store.save_now()  # what the daemon's stop does (run()'s finally)
        finally:
            settings_store.os.replace = replace  # type: ignore[attr-defined]
        # The event queue drops commands beyond what the loop keeps up with; the one in use at
        # the stop is the one that must be on disk.
        last = json.loads(path.read_text())["follow"]["diversity"] == daemon.state.diversity
        return written, time.monotonic() - started, daemon.events.dropped, last


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--commands", type=int, default=20_000)
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    for label, interval in (("spaced out (1 s)", settings_store.MIN_WRITE_INTERVAL_S),
                            ("every change (before)", 0.0)):
        settings_store.MIN_WRITE_INTERVAL_S = interval
        written, took, dropped, last = flood(args.commands, args.seconds)
        print(f"{label:22s} {args.commands} commands in {took:.1f} s ({dropped} dropped by the "
              f"queue): settings.json written {written} times; the value in use on disk: "
              f"{'yes' if last else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
