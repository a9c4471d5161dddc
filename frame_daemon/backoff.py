"""How long to wait before trying again: the one backoff every reconnecting thread uses.

The first failure waits `first_s`, each further one twice as long, up to `longest_s`; a success
starts over. It only counts: the caller waits (on its own stop or wake event, so a stop never
waits out a delay).
"""

from __future__ import annotations


class Backoff:
    """`failed()` gives the wait before the next try; `succeeded()` starts over."""

    def __init__(self, first_s: float, longest_s: float) -> None:
        if not 0 < first_s <= longest_s:
            raise ValueError(f"backoff needs 0 < first_s <= longest_s, got {first_s}, {longest_s}")
        self.first_s, self.longest_s = first_s, longest_s
        self._next_s = first_s

    def failed(self) -> float:
        """The wait before the next try, after one more failure in a row."""
        delay = self._next_s
        self._next_s = min(delay * 2, self.longest_s)
        return delay

    def succeeded(self) -> None:
        self._next_s = self.first_s
