"""The `frame-daemon` command line: one sub-command per job."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import math
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from frame_daemon import __version__
from frame_daemon.config import EX_CONFIG, Config, ConfigError, load_config
from frame_daemon.errors import FrameDaemonError, ModelError, PhotoError
from frame_daemon.mood import Mood
from frame_daemon.vision.model_files import DEFAULT_MOOD_MODEL

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
log = logging.getLogger("frame_daemon")


def _load_config_or_exit(path: Path, verb: str) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"frame-daemon {verb}: {exc.source}: {problem}", file=sys.stderr)
        raise SystemExit(EX_CONFIG) from None


def cmd_check_config(args: argparse.Namespace) -> int:
    cfg = _load_config_or_exit(args.config, "check-config")
    print(f"{cfg.file}: OK")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    cfg = _load_config_or_exit(args.config, "run")
    from frame_daemon.daemon import Daemon

    if not args.verbose:
        logging.getLogger().setLevel(cfg.log.level.upper())
    daemon = Daemon(cfg)
    daemon.install_signal_handlers()
    try:
        daemon.run()
    except FrameDaemonError as exc:
        # Start-up failures exit non-zero so systemd marks the unit failed.
        log.error("cannot start: %s", exc)
        return EXIT_FAILED
    return EXIT_OK


def cmd_ha_remove(args: argparse.Namespace) -> int:
    from frame_daemon.homeassistant import Topics
    from frame_daemon.mqtt_link import MqttLink

    cfg = _load_config_or_exit(args.config, "ha-remove")
    topics = Topics(cfg.mqtt.device_id, cfg.mqtt.discovery_prefix)
    try:
        link = MqttLink(cfg.mqtt, topics.availability)
    except FrameDaemonError as exc:
        print(f"frame-daemon ha-remove: {exc}", file=sys.stderr)
        return EXIT_FAILED
    link.start()
    try:
        problem = link.wait_answer(10)
        if problem is not None:
            print(f"frame-daemon ha-remove: cannot use the MQTT broker at {cfg.mqtt.host}:"
                  f"{cfg.mqtt.port}: {problem}", file=sys.stderr)
            return EXIT_FAILED
        for topic in (topics.discovery, topics.state, topics.image, topics.availability):
            link.clear_retained(topic)
        print(f"removed frame '{cfg.mqtt.device_id}' from Home Assistant "
              f"(cleared {topics.discovery} and its retained state)")
    finally:
        link.stop(goodbye=False)
    return EXIT_OK


def cmd_feedback(args: argparse.Namespace) -> int:
    from frame_daemon.homeassistant import Topics
    from frame_daemon.mqtt_link import publish_once

    cfg = _load_config_or_exit(args.config, "feedback")
    topic = Topics(cfg.mqtt.device_id, cfg.mqtt.discovery_prefix).command("feedback")
    payload = "fits" if args.verdict == "fits" else "doesnt_fit"
    problem = publish_once(cfg.mqtt, topic, payload)
    if problem:
        print(f"frame-daemon feedback: {problem}", file=sys.stderr)
        return EXIT_FAILED
    # The daemon may still refuse it (nothing of its own playing): it says why in last_error.
    print(f"sent '{payload}' to {topic}; the frame applies it to the photo on show and the track "
          "playing (a refusal shows as its last error)")
    return EXIT_OK


def _learned_taste(cfg: Config):
    """The household's taste as the daemon would apply it now (None when taste is off), and the
    store's path; opens the same file as the daemon, in the same state folder."""
    import time

    from frame_daemon.music.taste import TasteParams, learn
    from frame_daemon.music.taste_store import TasteStore

    if not cfg.taste.enabled:
        return None
    cfg.state_directory.mkdir(parents=True, exist_ok=True)
    with TasteStore.in_directory(cfg.state_directory, cfg.taste.max_verdicts,
                                 loop=False) as store:
        return learn(store.verdicts(), time.time(),
                     TasteParams(cfg.taste.max_shift, cfg.taste.half_life_days))


def cmd_taste(args: argparse.Namespace) -> int:
    import time

    from frame_daemon.music.taste import (
        LEAN_CAP,
        LIMIT_MARGIN,
        TasteParams,
        lean_strength,
        learn,
        toward,
    )
    from frame_daemon.music.taste_store import TasteStore

    cfg = _load_config_or_exit(args.config, "taste")
    try:
        cfg.state_directory.mkdir(parents=True, exist_ok=True)
        with TasteStore.in_directory(cfg.state_directory, cfg.taste.max_verdicts,
                                     loop=False) as store:
            if args.reset:
                n = store.forget()
                print(f"forgot {n} verdicts ({store.path})")
                return EXIT_OK
            taste = learn(store.verdicts(), time.time(),
                          TasteParams(cfg.taste.max_shift, cfg.taste.half_life_days))
            path = store.path
    except Exception as exc:  # FrameDaemonError, SchemaTooNew
        print(f"frame-daemon taste: {exc}", file=sys.stderr)
        return EXIT_FAILED
    summary = {"file": str(path), "enabled": cfg.taste.enabled, **taste.summary(top=10)}
    if args.json:
        summary["shifts"] = {s.region: {"valence": round(s.valence, 3),
                                        "arousal": round(s.arousal, 3), "verdicts": s.verdicts}
                             for s in taste.shifts.values()}
        summary["preferences"] = [{"kind": p.kind, "name": p.label, "region": p.region,
                                   "weight": round(p.weight, 3)} for p in taste.preferences()]
        print(json.dumps(summary))
        return EXIT_OK
    print(f"taste ({path}): {taste.verdicts} verdicts, evidence {taste.evidence:.1f}"
          + ("" if cfg.taste.enabled else "; taste.enabled is false: kept, not used"))
    h = taste.household
    print(f"  household shift: valence {h.valence:+.3f}, arousal {h.arousal:+.3f}")
    if h.limit > 0:  # the limit (docs/taste.md): why the shift is at least this large
        print(f"  limit: what it turned down reaches {h.limit:.2f} "
              f"{toward(h.valence, h.arousal)}, so the shift goes {LIMIT_MARGIN:.2f} beyond it")
    strength = lean_strength(h.size, cfg.taste.max_shift)
    if strength > 0:  # leaning: what the shift's direction does to the ranking (docs/taste.md)
        way, back = toward(h.valence, h.arousal), toward(-h.valence, -h.arousal)
        print(f"  leaning: fitting tracks {back} than the moved target rank lower (up to "
              f"{LEAN_CAP:.1f}); {way} ones rank nearer by {strength * h.one_sided:.0%} of how far "
              f"{way} they lie (one-sided {h.one_sided:.2f}: 1 when nothing turned down lay "
              f"{way} than the shift)")
    for s in sorted(taste.shifts.values(), key=lambda s: -s.size):
        print(f"  {s.region} photos: shift valence {s.valence:+.3f}, arousal {s.arousal:+.3f} "
              f"({s.verdicts} verdicts of its own)")
    for kind in ("genre", "artist", "track"):
        for sign, word in ((1, "liked"), (-1, "disliked")):
            names = [f"{p.label} ({p.weight:+.1f}, {p.region})" for p in taste.preferences()
                     if p.kind == kind and p.weight * sign > 0][:5]
            if names:
                print(f"  {word} {kind}s: {', '.join(names)}")
    excluded = sum(len(v) for v in taste.excluded.values())
    if excluded:
        print(f"  {excluded} tracks judged doesn't fit twice, not chosen again in their region")
    return EXIT_OK


def _open_index(cfg: Config):
    from frame_daemon.music.index import TrackIndex

    return TrackIndex(TrackIndex.default_path(cfg.make_state_directory()))


def _index_unusable(cfg: Config, exc: sqlite3.Error) -> str:
    """What to say when the track index fails after it opened: damaged inside (a bad sector, a
    write cut short), full, or locked; opening it checks only its first page."""
    from frame_daemon.music.index import TrackIndex
    from frame_daemon.music.index_file import describe_storage_error
    from frame_daemon.sqlite_schema import is_corrupt

    path = TrackIndex.default_path(cfg.state_directory)
    if is_corrupt(exc):
        return f"{path}: cannot use the track index ({exc}); delete it to rebuild"
    return f"{path}: cannot use the track index: {describe_storage_error(exc) or exc}"


def cmd_index(args: argparse.Namespace) -> int:
    from frame_daemon.music.audio.runner import AnalysisProgress, analyse_pending
    from frame_daemon.music.index_worker import (
        describe,
        describe_shared,
        music_folder,
        read_shared,
        refresh_index,
        share_analyses,
    )
    from frame_daemon.music.mpd.client import MpdLink

    # Needs only [mpd] and [state]: no broker, no photo source, so it also runs on the machine
    # that holds the music (the server role), where it analyses for every frame on that MPD.
    cfg = _load_config_or_exit(args.config, "index")
    with contextlib.suppress(OSError):
        os.nice(10)  # background work, beside MPD and a frame that shows photos
    link = MpdLink(cfg.mpd.host, cfg.mpd.port, cfg.mpd.password, cfg.mpd.timeout_s,
                   keepalive_s=cfg.mpd.keepalive_s)
    tty = sys.stderr.isatty()
    shared_now = 0

    started = time.monotonic()

    def tag_progress(done: int, total: int) -> None:
        # Done, rate and ETA, like the analysis: a big library on a NAS takes a while to read.
        if done % (50 if tty else 5000) and done != total:
            return
        elapsed = time.monotonic() - started
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = f"{(total - done) / rate:.0f} s" if rate > 0 else "?"
        line = f"reading tags: {done}/{total} tracks, {rate:.0f} tracks/s, ETA {eta}"
        if tty:
            print(f"\r{line}   ", end="", file=sys.stderr, flush=True)
        else:
            log.info("%s", line)

    def analysis_progress(p: AnalysisProgress) -> None:
        nonlocal shared_now
        if p.done % 100 == 0 or p.done == p.total:  # other frames get results as they come
            shared_now += share_analyses(index, link)
        # A live line on a terminal; one log line per 100 tracks under systemd or in a pipe.
        if tty:
            print(f"\r{p.line()}   ", end="", file=sys.stderr, flush=True)
        elif p.done % 100 == 0 or p.done == p.total:
            log.info("%s", p.line())

    try:
        with _open_index(cfg) as index:
            stats = refresh_index(index, link, cfg.mpd.music_directory, tag_progress)
            if tty:
                print(file=sys.stderr)
            for uri, reason in stats.failed:
                print(f"frame-daemon index: {uri}: {reason}", file=sys.stderr)
            print(f"index {index.path}: {len(index)} tracks ({describe(stats)})", flush=True)
            shared = read_shared(index, link)
            print(f"shared analysis: {describe_shared(shared)}", flush=True)
            folder = music_folder(cfg.mpd.music_directory)
            if args.no_analysis or folder is None:
                return EXIT_OK
            shared_now += share_analyses(index, link)  # what an interrupted run did not share
            try:
                result = analyse_pending(index, folder, workers=args.workers,
                                         progress=analysis_progress)
            except KeyboardInterrupt:
                if tty:
                    print(file=sys.stderr)
                done, _ = index.analysis_counts()
                left = len(index.needs_analysis())
                print(f"interrupted: {done} tracks analysed so far, {left} left; run "
                      "'frame-daemon index' again to resume", file=sys.stderr)
                return 130
            if tty and result.total:
                print(file=sys.stderr)
            shared_now += share_analyses(index, link)
            size, current, older = index.analysis_status()
            print(f"audio analysis: {result.done - result.failed} analysed now "
                  f"({result.failed} unreadable); {current} of {size} tracks analysed in all"
                  + (f" ({older} more by an older model, which keep their mood until redone)"
                     if older else "")
                  + (f"; {shared_now} shared through MPD's stickers" if shared_now else ""))
    except FrameDaemonError as exc:
        print(f"frame-daemon index: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except sqlite3.Error as exc:
        print(f"frame-daemon index: {_index_unusable(cfg, exc)}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        link.close()
    return EXIT_OK


def cmd_analyse(args: argparse.Namespace) -> int:
    from frame_daemon.music.audio.cli import run_analyse

    return run_analyse([str(p) for p in args.files], args.json)


def cmd_match(args: argparse.Namespace) -> int:
    from frame_daemon.music.controller import selection_params
    from frame_daemon.music.placement import PhotoReference, place
    from frame_daemon.music.select import TrackPool
    from frame_daemon.music.taste import choose
    from frame_daemon.vision.model import MoodModel

    cfg = _load_config_or_exit(args.config, "match")
    try:
        model = MoodModel.load(args.model or cfg.model.path or None, threads=cfg.model.threads)
        with _open_index(cfg) as index:
            pool = TrackPool.from_rows(index.rows())  # as the daemon builds it
    except FrameDaemonError as exc:  # ModelError included
        print(f"frame-daemon match: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except sqlite3.Error as exc:
        print(f"frame-daemon match: {_index_unusable(cfg, exc)}", file=sys.stderr)
        return EXIT_FAILED
    reference = PhotoReference.from_model_meta(model.meta)
    params = selection_params(cfg, seed=args.seed)
    if args.n:
        params = dataclasses.replace(params, count=args.n)
    try:
        taste = _learned_taste(cfg)  # the household's, exactly as the daemon applies it
    except Exception as exc:
        print(f"frame-daemon match: the taste file cannot be read ({exc}); matching without it",
              file=sys.stderr)
        taste = None
    failed = False
    for photo in args.photos:
        try:
            result = model.score(photo, max_pixels=cfg.model.max_pixels)
        except FrameDaemonError as exc:  # PhotoError: this photo only
            print(f"frame-daemon match: {exc}", file=sys.stderr)
            failed = True
            continue
        placement = place(result.mood, pool.shape, cfg.follow.library_fit, reference)
        tasted = choose(taste, pool, placement.target, params)
        picks = sorted(tasted.picks, key=lambda p: p.distance)
        if args.json:
            print(json.dumps({**result.as_dict(), "target": {
                "photo": _point(placement.photo), "library": _point(placement.relative),
                "blend": _point(placement.target), "library_fit": placement.library_fit,
                "max_distance": params.max_distance,
                "taste_shift": {"valence": round(tasted.shift.valence, 3),
                                "arousal": round(tasted.shift.arousal, 3)},
                "tasted": _point(tasted.target)}, "tracks": [
                {"uri": p.track.uri, "title": p.track.title, "artist": p.track.artist,
                 "genre": p.track.genre, "valence": round(p.track.mood.valence, 3),
                 "arousal": round(p.track.mood.arousal, 3),
                 "confidence": round(p.track.mood.confidence, 3), "source": str(p.track.source),
                 "distance": round(p.distance, 3), "fits": p.fits, "why": p.why,
                 "taste": p.why.partition("; taste: ")[2] or None}
                for p in picks]}), flush=True)
            continue
        print(_format_line(result.as_dict()))
        t = placement.target
        print(f"  target: photo (v {placement.photo.valence:+.2f}, a {placement.photo.arousal:+.2f}); "
              f"its rank in this library (v {placement.relative.valence:+.2f}, "
              f"a {placement.relative.arousal:+.2f}); blend {placement.library_fit:.2f} -> "
              f"{t.word} (v {t.valence:+.2f}, a {t.arousal:+.2f}); tracks within "
              f"{params.max_distance:.2f}")
        if taste is not None and not taste.empty:
            print(f"  taste ({taste.verdicts} verdicts): target moved by (v "
                  f"{tasted.shift.valence:+.2f}, a {tasted.shift.arousal:+.2f}) to "
                  f"{tasted.target.word} (v {tasted.target.valence:+.2f}, a "
                  f"{tasted.target.arousal:+.2f})")
        if not picks:
            print("  (no tracks in the index: run 'frame-daemon index' first)")
        for p in picks:
            print(f"  {p.distance:.2f}  {p.track.label}  (v {p.track.mood.valence:+.2f}, "
                  f"a {p.track.mood.arousal:+.2f}; {p.track.why})"
                  + ("" if p.fits else "  [beyond the cap: nothing nearer]")
                  + (f"  [taste: {p.why.partition('; taste: ')[2]}]" if "; taste: " in p.why
                     else ""))
    return EXIT_FAILED if failed else EXIT_OK


def _point(mood: Mood) -> dict[str, float | str]:
    return {"valence": round(mood.valence, 3), "arousal": round(mood.arousal, 3), "mood": mood.word}


def cmd_album(args: argparse.Namespace) -> int:
    from frame_daemon import album
    from frame_daemon.music.controller import selection_params
    from frame_daemon.music.mpd.client import MpdLink
    from frame_daemon.music.placement import PhotoReference, place
    from frame_daemon.music.select import TrackPool
    from frame_daemon.vision.model import MoodModel

    cfg = _load_config_or_exit(args.config, "album")
    folder = args.folder.expanduser().absolute()
    if not folder.is_dir():
        print(f"frame-daemon album: {folder}: not a folder", file=sys.stderr)
        return EXIT_FAILED
    if not args.playlist.strip() or "/" in args.playlist or "\n" in args.playlist:
        print("frame-daemon album: --playlist: a name without '/' or line breaks", file=sys.stderr)
        return EXIT_USAGE
    if args.length <= 0:
        print("frame-daemon album: --length: minutes, more than 0", file=sys.stderr)
        return EXIT_USAGE
    tty = sys.stderr.isatty()

    def progress(done: int, total: int) -> None:
        if tty:
            print(f"\rscoring photos: {done}/{total}", end="", file=sys.stderr, flush=True)

    def skipped(exc: PhotoError) -> None:
        print(f"{os.linesep if tty else ''}frame-daemon album: skipped {exc}", file=sys.stderr)

    link = MpdLink(cfg.mpd.host, cfg.mpd.port, cfg.mpd.password, cfg.mpd.timeout_s,
                   keepalive_s=cfg.mpd.keepalive_s)
    record = album.PlaylistRecord(cfg.state_directory)
    try:
        # Refuse before the long work: a name taken by someone else's playlist.
        problem = album.refuse_to_overwrite(args.playlist, link.stored_playlists(), record.load(),
                                            args.force)
        if problem:
            print(f"frame-daemon album: {problem}", file=sys.stderr)
            return EXIT_FAILED
        with _open_index(cfg) as index:
            pool = TrackPool.from_rows(index.rows())  # as the daemon builds it
        if not len(pool):
            print("frame-daemon album: the track index is empty: run 'frame-daemon index' "
                  "first", file=sys.stderr)
            return EXIT_FAILED
        model = MoodModel.load(cfg.model.path or None, threads=cfg.model.threads)
        photos = album.score_album(folder, model, max_pixels=cfg.model.max_pixels,
                                   max_decode_bytes=cfg.model.max_decode_mb * 2**20,
                                   progress=progress, skipped=skipped)
        if tty:
            print(file=sys.stderr)
        if not photos:
            print(f"frame-daemon album: no readable photos in {folder}", file=sys.stderr)
            return EXIT_FAILED
        reference = PhotoReference.from_model_meta(model.meta)
        choices = album.plan_soundtrack(
            photos, pool, args.length * 60.0, selection_params(cfg, seed=args.seed),
            lambda mood: place(mood, pool.shape, cfg.follow.library_fit, reference).target)
        link.save_playlist(args.playlist, [c.pick.track.uri for c in choices])
        record.add(args.playlist, folder)
    except FrameDaemonError as exc:  # MPD unavailable, model or index problems
        print(f"frame-daemon album: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except sqlite3.Error as exc:
        print(f"frame-daemon album: {_index_unusable(cfg, exc)}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        link.close()
    if args.json:
        print(json.dumps(album.as_json(folder, args.playlist, args.length * 60.0, photos, choices)))
        return EXIT_OK
    print(f"mood arc of {folder} ({len(photos)} photos, by date taken, then name):")
    for p in photos:
        print(f"  {p.path.name}  {p.taken or '(no date)'}  {p.mood.word} "
              f"(v {p.mood.mood.valence:+.2f}, a {p.mood.mood.arousal:+.2f})")
    total = sum(c.pick.track.duration or album.UNKNOWN_DURATION_S for c in choices)
    print(f"playlist '{args.playlist}': {len(choices)} tracks, {album.format_time(total)}:")
    for c in choices:
        print(f"  {album.format_time(c.start_s):>7}  at {c.photo.path.name} ({c.arc.word}): "
              f"{c.pick.track.label}  (distance {c.pick.distance:.2f})")
    return EXIT_OK


def _format_line(result: dict) -> str:
    scenes = ", ".join(s["label"] for s in result["scenes"])
    faces = result.get("faces", {})
    count = faces.get("count", 0)
    shown = ", ".join(f["expression"] for f in faces.get("examined", []))
    people = (f"; {count} face{'s' if count != 1 else ''}" + (f" ({shown})" if shown else "")
              if count else "")
    return (f"{result['photo']}: {result['mood']} (valence {result['valence']:+.2f}, "
            f"arousal {result['arousal']:+.2f}, confidence {result['confidence']:.2f})"
            + (f"; looks like {scenes}" if scenes else "") + people)


def cmd_doctor(args: argparse.Namespace) -> int:
    from frame_daemon.doctor import run_doctor

    return run_doctor(args.config, server=args.server)


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


def _at_least(low: float, kind: type = int) -> Callable[[str], Any]:
    """An argparse type: a finite number of `kind`, at least `low` (argparse says what is wrong)."""
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not (math.isfinite(value) and value >= low):
            raise argparse.ArgumentTypeError(f"must be at least {low:g}, got {text}")
        return value

    return parse


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
                       help=f"model metadata JSON (default: the shipped {DEFAULT_MOOD_MODEL})")
    score.add_argument("--threads", type=_at_least(1), default=1, help="inference threads (default 1)")
    score.add_argument("--runtime", choices=["auto", "ai-edge-litert", "tflite-runtime"],
                       default="auto", help="TFLite runtime (default: auto)")
    score.set_defaults(func=cmd_score)

    def with_config(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument("--config", "-c", type=Path, required=True, help="TOML config file")
        return p

    run = with_config("run", "run the daemon: watch the photo, make MPD's music follow it")
    run.set_defaults(func=cmd_run)
    index = with_config("index", "build or update the track index from MPD's library, and "
                                 "analyse the audio of new tracks (resumable: Ctrl-C and rerun)")
    index.add_argument("--workers", type=_at_least(1), default=os.cpu_count() or 1,
                       help="analysis processes (default: one per core)")
    index.add_argument("--no-analysis", action="store_true", help="tags only, no audio analysis")
    index.set_defaults(func=cmd_index)
    analyse = sub.add_parser("analyse", help="analyse audio files: tempo, key, mode, energy, mood",
                             description="Print each file's audio features and valence/arousal. "
                                         "Exit 1 if any file could not be analysed.")
    analyse.add_argument("files", nargs="+", type=Path, metavar="AUDIO")
    analyse.add_argument("--json", action="store_true", help="one JSON object per line")
    analyse.set_defaults(func=cmd_analyse)
    match = with_config("match", "show what would be queued for each photo, nearest first "
                                 "(touches nothing)")
    match.add_argument("photos", type=Path, nargs="+", metavar="PHOTO")
    match.add_argument("-n", type=_at_least(0), default=0, help="how many tracks (default: follow.tracks)")
    match.add_argument("--json", action="store_true", help="one JSON object")
    match.add_argument("--seed", type=int, default=0, help="selection seed (default 0)")
    match.add_argument("--model", type=Path, default=None, help="model metadata JSON")
    match.set_defaults(func=cmd_match)
    soundtrack = with_config("album", "make an MPD playlist whose music follows the mood of a "
                                      "photo album, in photo order (date taken, else name)")
    soundtrack.add_argument("folder", type=Path, metavar="DIR", help="the album's folder")
    soundtrack.add_argument("--playlist", required=True, help="the MPD stored playlist to save")
    soundtrack.add_argument("--length", type=_at_least(1, float), default=60.0, metavar="MINUTES",
                            help="the playlist's length (default 60)")
    soundtrack.add_argument("--json", action="store_true", help="one JSON object")
    soundtrack.add_argument("--force", action="store_true",
                            help="replace a playlist of that name that frame-daemon did not make")
    soundtrack.add_argument("--seed", type=int, default=0, help="selection seed (default 0)")
    soundtrack.set_defaults(func=cmd_album)
    feedback = with_config("feedback", "tell the running frame whether the music fits the photo "
                                       "on show (through the MQTT broker, as the Home Assistant "
                                       "buttons do); doesn't fit also moves the music on")
    feedback.add_argument("verdict", choices=["fits", "doesnt-fit"])
    feedback.set_defaults(func=cmd_feedback)
    taste = with_config("taste", "show what the frame learned about this household's taste "
                                 "(the shift per mood region, liked and disliked genres, artists, "
                                 "tracks, the evidence), or forget it")
    taste.add_argument("--json", action="store_true", help="one JSON object")
    taste.add_argument("--reset", action="store_true", help="forget every verdict")
    taste.set_defaults(func=cmd_taste)
    remove = with_config("ha-remove", "remove this frame's device from Home Assistant (clears "
                                      "its retained discovery and state)")
    remove.set_defaults(func=cmd_ha_remove)
    check = with_config("check-config", "validate a config file; exit 78 if it has problems")
    check.set_defaults(func=cmd_check_config)
    doctor = with_config("doctor", "check the installation: config, model, photo source, MPD, "
                                   "music folder, MQTT, state folder, service, ffmpeg; exit 1 if "
                                   "anything failed")
    doctor.add_argument("--server", action="store_true",
                        help="check the server role instead (install.sh --server: the index "
                             "timer beside MPD; no model, photo source or MQTT)")
    doctor.set_defaults(func=cmd_doctor)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # A file name that is not UTF-8 reaches us with its bytes as surrogates; in a UTF-8 locale
    # (en_GB.UTF-8 on Raspberry Pi OS) stdout would refuse to print it: give the bytes back as
    # they are, as Python does in the C locale.
    with contextlib.suppress(AttributeError, ValueError):  # a replaced or closed stdout
        sys.stdout.reconfigure(errors="surrogateescape")  # type: ignore[union-attr]
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s [%(threadName)s] %(name)s: %(message)s")
    if args.verbose:  # our own debug lines; the libraries' are too chatty
        logging.getLogger("frame_daemon").setLevel(logging.DEBUG)
    # python-mpd2 logs every command at INFO ("Calling MPD connect..."): keep it quiet.
    logging.getLogger("mpd").setLevel(logging.WARNING)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
