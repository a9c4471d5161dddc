"""Analyse the audio of tracks the index has not analysed yet, in low-priority worker processes.

Processes, not threads: the analysis is numpy-heavy Python that would hold the GIL against the
photo loop. Workers are started with "spawn" (the daemon has threads, and forking a threaded
process is unsafe), lowered with nice(10) and fed a few files at a time, so a stop request or
Ctrl-C returns quickly. Every result is stored as it arrives: an interrupted run loses nothing
and the next run resumes with what is left (`TrackIndex.needs_analysis`).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from frame_daemon.errors import TrackError
from frame_daemon.memory import give_memory_back

if TYPE_CHECKING:  # workers import this module: keep SQLite, mutagen and the lexicon out of them
    from frame_daemon.music.audio.tagger import MusicTagger
    from frame_daemon.music.index import TrackIndex
    from frame_daemon.music.track import MoodEstimate

log = logging.getLogger(__name__)

NICE = 10
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True, slots=True)
class AnalysisProgress:
    done: int  # analysed or failed so far
    total: int
    failed: int
    elapsed_s: float

    @property
    def rate(self) -> float:
        return self.done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> float:
        return (self.total - self.done) / self.rate if self.rate > 0 else float("inf")

    def line(self) -> str:
        eta = f"{self.eta_s:.0f} s" if self.eta_s != float("inf") else "?"
        return (f"analysed {self.done}/{self.total} tracks ({self.failed} unreadable), "
                f"{self.rate:.1f} tracks/s, ETA {eta}")


def _init_worker(parent_pid: int) -> None:
    """Worker start-up: lower priority, and never outlive the daemon.

    A daemon killed with SIGKILL cannot shut its pool down, and idle workers would wait on their
    queue forever: ask the kernel to SIGTERM us when the parent dies, and watch for it too
    (prctl is Linux-only).
    """
    with contextlib.suppress(OSError):
        os.nice(NICE)
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(0)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(2.0)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


_TAGGER: list[MusicTagger | None] = []  # the worker's tagger, loaded by its first track


def _tagger() -> MusicTagger | None:
    if not _TAGGER:
        from frame_daemon.errors import ModelError
        from frame_daemon.music.audio.tagger import MusicTagger
        try:
            _TAGGER.append(MusicTagger.load())
        except ModelError as exc:  # then the features-only model (audio-1), redone once it loads
            log.warning("music tagger unavailable, analysing without tags: %s", exc)
            _TAGGER.append(None)
    return _TAGGER[0]


def _analyse(path: str) -> tuple[MoodEstimate | None, str, str, str]:
    """Worker side: (estimate, version, top tags, "") or (None, "", "", reason). Imported lazily to
    keep start-up light."""
    from frame_daemon.music.audio.analyse import analyse_file
    from frame_daemon.music.audio.mood import TOP_TAGS_NAMED

    try:
        a = analyse_file(path, _tagger())
    except TrackError as exc:
        return None, "", "", exc.reason
    finally:
        # A track's decode and spectrograms pass some 25 MB through the heap, which glibc would
        # keep: the worker's steady size drops from about 82 to 71 MB PSS (scripts/bench_index.py)
        give_memory_back()
    return a.estimate, a.version, ", ".join(t.lower() for t, _ in a.tags[:TOP_TAGS_NAMED]), ""


def analyse_pending(index: TrackIndex, music_directory: Path, *, workers: int = 1,
                    progress: Callable[[AnalysisProgress], None] | None = None,
                    should_stop: Callable[[], bool] | None = None, limit: int | None = None
                    ) -> AnalysisProgress:
    """Analyse every track that needs it; returns the final progress (done < total if stopped)."""
    uris = index.needs_analysis(limit)
    started = time.monotonic()
    done = failed = 0
    if not uris:
        return AnalysisProgress(0, 0, 0, 0.0)
    ctx = multiprocessing.get_context("spawn")

    def new_pool() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=max(1, workers), mp_context=ctx,
                                   initializer=_init_worker, initargs=(os.getpid(),))

    pending: dict[Future, str] = {}
    queue = list(reversed(uris))
    # In flight when a worker died (the OOM killer, a decoder crash), which track killed it is not
    # known: each is tried again alone, and only one that kills its worker alone is marked.
    suspects: list[str] = []
    alone: str | None = None  # the suspect in flight, alone
    window = max(1, workers) * 2
    executor = new_pool()
    try:
        while queue or pending or suspects:
            if should_stop is not None and should_stop():
                queue.clear()  # finish what is in flight (a second at most), start nothing new
                suspects.clear()
            try:
                # Taken off their list only once submitted: a broken pool refuses the submit.
                if suspects or alone is not None:
                    if not pending and suspects:
                        future = executor.submit(_analyse, str(music_directory / suspects[-1]))
                        pending[future] = alone = suspects.pop()
                else:
                    while queue and len(pending) < window:
                        future = executor.submit(_analyse, str(music_directory / queue[-1]))
                        pending[future] = queue.pop()
            except BrokenProcessPool:  # broke since the last wait; what was in flight says so
                if not pending:
                    executor.shutdown(wait=False, cancel_futures=True)
                    executor = new_pool()
                    continue
            if not pending:
                break
            finished, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            broken = False
            for future in finished:
                uri = pending.pop(future)
                try:
                    estimate, version, tags, reason = future.result()
                except BrokenProcessPool:
                    broken = True
                    if uri != alone:
                        suspects.append(uri)
                        continue
                    estimate, version, tags, reason = None, "", "", (
                        "the analysis worker died on it (out of memory, or the decoder crashed)")
                except Exception as exc:
                    estimate, version, tags, reason = None, "", "", f"analysis worker failed ({exc})"
                if uri == alone:
                    alone = None
                try:
                    if estimate is not None:
                        index.set_estimate(uri, estimate, version, tags)
                    else:
                        log.debug("cannot analyse %s: %s", uri, reason)
                        # A file gone from here (a share unmounted mid-run) is tried again next
                        # run: remembered, its failure would keep it from analysis for good.
                        if os.path.lexists(music_directory / uri):
                            index.set_analysis_error(uri, reason)
                        failed += 1
                except TrackError:
                    pass  # removed from the index while it was being analysed
                done += 1
                if progress is not None:
                    progress(AnalysisProgress(done, len(uris), failed, time.monotonic() - started))
            if broken:
                log.warning("an analysis worker died (out of memory?); its tracks are tried again "
                            "one at a time")
                suspects += pending.values()
                pending.clear()
                executor.shutdown(wait=False, cancel_futures=True)
                executor = new_pool()
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
    return AnalysisProgress(done, len(uris), failed, time.monotonic() - started)
