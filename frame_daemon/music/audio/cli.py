"""`frame-daemon analyse AUDIO...`: print each file's measured features and valence/arousal."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from frame_daemon.errors import TrackError

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED = 0, 1


def format_line(result: dict[str, Any]) -> str:
    """One human-readable line for an Analysis.as_dict()."""
    tags = ", ".join(f"{tag} {p:.2f}" for tag, p in result.get("tags", []))
    return (f"{result['file']}: {result['mood']} (valence {result['valence']:+.2f}, "
            f"arousal {result['arousal']:+.2f}, confidence {result['confidence']:.2f}); "
            f"{result['tempo']:.0f} BPM, {result['key']} {result['mode']} "
            f"(clarity {result['key_clarity']:.2f}), {result['loudness_db']:.1f} dBFS "
            f"± {result['loudness_spread']:.1f} dB, brightness {result['brightness']:.3f}, "
            f"{result['onset_rate']:.1f} onsets/s" + (f"; tags: {tags}" if tags else ""))


def run_analyse(paths: list[str], as_json: bool) -> int:
    """Analyse each file in turn and print one line (or JSON object) per file on stdout.

    A file that cannot be analysed gets one line on stderr naming it and why, and the rest are
    still analysed. Returns 1 if any file failed, else 0.
    """
    # Imported here so `frame-daemon --help` and the other verbs do not pay for numpy and soundfile.
    from frame_daemon.errors import ModelError
    from frame_daemon.music.audio.analyse import analyse_file
    from frame_daemon.music.audio.tagger import MusicTagger

    try:
        tagger: MusicTagger | None = MusicTagger.load()
    except ModelError as exc:  # the features and mood do not need it: say so once, go on
        tagger = None
        print(f"frame-daemon analyse: no music tags ({exc})", file=sys.stderr, flush=True)
    failed = 0
    for path in paths:
        try:
            result = analyse_file(path, tagger).as_dict()
        except TrackError as exc:
            failed += 1
            print(f"frame-daemon analyse: {exc}", file=sys.stderr, flush=True)
            continue
        except Exception as exc:  # a bug in the analysis must not stop the other files
            failed += 1
            log.debug("analysis of %s failed", path, exc_info=True)
            print(f"frame-daemon analyse: {path}: analysis failed ({type(exc).__name__}: {exc})",
                  file=sys.stderr, flush=True)
            continue
        print(json.dumps(result) if as_json else format_line(result), flush=True)
    return EXIT_FAILED if failed else EXIT_OK
