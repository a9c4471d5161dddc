"""The one backoff: waits double after each failure up to a ceiling, and a success starts over."""

from __future__ import annotations

import pytest

from frame_daemon.backoff import Backoff


def test_waits_double_up_to_the_longest_and_a_success_starts_over():
    backoff = Backoff(0.5, 3.0)
    assert [backoff.failed() for _ in range(6)] == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]
    backoff.succeeded()
    assert [backoff.failed() for _ in range(2)] == [0.5, 1.0]


def test_one_wait_when_first_and_longest_agree():
    backoff = Backoff(2.0, 2.0)
    assert [backoff.failed() for _ in range(3)] == [2.0, 2.0, 2.0]


@pytest.mark.parametrize(("first_s", "longest_s"), [(0.0, 1.0), (-1.0, 1.0), (2.0, 1.0)])
def test_a_backoff_that_never_waits_or_shrinks_is_refused(first_s, longest_s):
    with pytest.raises(ValueError, match="backoff needs"):
        Backoff(first_s, longest_s)
