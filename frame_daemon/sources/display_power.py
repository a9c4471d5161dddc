"""The display's power: the commands that switch a frame's screen off and on, where it has them.

When the screen switch or the display schedule turns the screen off, the slideshow paints it black
(which works everywhere) and, if `source.screen_off_command` is set, runs that command as well to
power the display or its backlight down; `source.screen_on_command` brings it back. The commands
are argv lists run without a shell, one at a time, on this adapter's own thread with a timeout,
so a hanging command never holds up the render loop. A command that fails is logged once (until it
works again) and reported to the daemon, which shows it as its last error; the screen stays black.
"""

from __future__ import annotations

import logging
import queue
import subprocess
import threading
from collections.abc import Callable, Sequence

log = logging.getLogger(__name__)


class DisplayPower:
    """`start()`, `stop()`, `switch(on)`; the commands run on the `display-power` thread."""

    def __init__(self, on_command: Sequence[str], off_command: Sequence[str], timeout_s: float,
                 report: Callable[[str], None]) -> None:
        self.on_command = tuple(on_command)
        self.off_command = tuple(off_command)
        self.timeout_s = timeout_s
        self._report = report  # the daemon shows it as last_error (from the adapter's thread)
        self._wanted: queue.SimpleQueue[bool | None] = queue.SimpleQueue()
        # Each command's last failure, logged once until that command works again.
        self._problems: dict[bool, str] = {}
        self._thread = threading.Thread(target=self._run, name="display-power", daemon=True)

    @property
    def configured(self) -> bool:
        return bool(self.on_command or self.off_command)

    def start(self) -> None:
        if self.configured:
            self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        if self._thread.is_alive():
            self._wanted.put(None)
            self._thread.join(timeout)

    def switch(self, on: bool) -> None:
        """Power the display on or off (thread-safe; returns at once)."""
        if self.configured:
            self._wanted.put(on)

    def _run(self) -> None:
        while True:
            on = self._wanted.get()
            while not self._wanted.empty():  # switched back and forth meanwhile: the latest wins
                on = self._wanted.get()
            if on is None:
                return
            self._apply(on)

    def _apply(self, on: bool) -> None:
        argv = self.on_command if on else self.off_command
        if not argv:
            return
        what = f"screen_{'on' if on else 'off'}_command {' '.join(argv)[-160:]!r}"
        try:
            done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  errors="replace", timeout=self.timeout_s, check=False)
        except subprocess.TimeoutExpired:
            problem = f"{what} did not finish within {self.timeout_s:g} s"
        except OSError as exc:  # not found, not executable
            problem = f"{what} could not run: {exc.strerror or exc}"
        else:
            if done.returncode == 0:
                if self._problems.pop(on, None) is not None:
                    log.info("display power: %s works again", what)
                log.info("display power %s (%s)", "on" if on else "off", what)
                return
            said = (done.stderr.strip() or done.stdout.strip()).splitlines()
            problem = f"{what} failed with exit status {done.returncode}" + (
                f": {said[-1][:120]}" if said else "")
        if self._problems.get(on) != problem:
            self._problems[on] = problem
            log.warning("display power: %s; the screen shows black instead", problem)
            self._report(problem)
