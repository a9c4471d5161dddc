"""The `frame-daemon` command line: one sub-command per job."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from frame_daemon import __version__
from frame_daemon.errors import ModelError, PhotoError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _format_line(result: dict) -> str:
    scenes = ", ".join(s["label"] for s in result["scenes"])
    return (f"{result['photo']}: {result['mood']} (valence {result['valence']:+.2f}, "
            f"arousal {result['arousal']:+.2f}, confidence {result['confidence']:.2f})"
            + (f"; looks like {scenes}" if scenes else ""))


def cmd_score(args: argparse.Namespace) -> int:
    from frame_daemon.vision.model import MoodModel

    try:
        model = MoodModel.load(args.model, threads=args.threads, runtime=args.runtime)
    except ModelError as exc:
        print(f"frame-daemon score: {exc}", file=sys.stderr)
        return EXIT_FAILED
    failed = 0
    for photo in args.photos:
        try:
            result = model.score(photo).as_dict()
        except PhotoError as exc:
            failed += 1
            print(f"frame-daemon score: {exc}", file=sys.stderr)
            continue
        print(json.dumps(result) if args.json else _format_line(result), flush=True)
    return EXIT_FAILED if failed else EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="frame-daemon",
        description="Play music that fits the photo on your photo frame.")
    parser.add_argument("--version", action="version", version=f"frame-daemon {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    score = sub.add_parser("score", help="score the mood of photos",
                           description="Print each photo's mood (valence, arousal, mood word, "
                                       "confidence). Exit 1 if any photo could not be read.")
    score.add_argument("photos", nargs="+", metavar="PHOTO")
    score.add_argument("--json", action="store_true", help="one JSON object per line")
    score.add_argument("--model", type=Path, default=None,
                       help="model metadata JSON (default: the shipped models/mood-v1.json)")
    score.add_argument("--threads", type=int, default=1, help="inference threads (default 1)")
    score.add_argument("--runtime", choices=["auto", "ai-edge-litert", "tflite-runtime"],
                       default="auto", help="TFLite runtime (default: auto)")
    score.set_defaults(func=cmd_score)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s [%(threadName)s] %(name)s: %(message)s")
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
