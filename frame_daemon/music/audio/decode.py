"""Decode an excerpt of an audio file as mono float32 at the analysis rate.

`decode_excerpt(path)` decodes EXCERPT_S seconds from a third of the way in (intros and outros are
often quieter or sparser than the body of a track) at ANALYSIS_RATE Hz mono. Decoding uses
`soundfile` (libsndfile: MP3, FLAC, Ogg Vorbis/Opus, WAV, AIFF) and falls back to `ffmpeg` when
soundfile cannot read a file; what libmpg123 prints on fd 2 meanwhile is dropped. Resampling is
numpy alone: scipy.signal takes seconds to import on a Pi.

Every failure to read or decode a file is a TrackError(path, reason); nothing else escapes.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import soundfile as sf

from frame_daemon.errors import TrackError
from frame_daemon.music.tags import refuse_special_file

ANALYSIS_RATE = 11025  # Hz: keeps everything up to 5.5 kHz, enough for pitch, onsets and brightness
EXCERPT_S = 30.0  # seconds analysed: long enough for a stable tempo and key, short enough to be quick
EXCERPT_AT = 1 / 3  # where the excerpt starts, as a share of the track
FFMPEG_TIMEOUT_S = 60.0
_PREROLL_S = 0.25
_STDERR_LOCK = threading.Lock()
# What libmpg123 prints: "[src/libmpg123/layer3.c:...():1774] error: ...", "Note: ...", "Warning: ...".
_MPG123_CHATTER = re.compile(rb"^(\[[^\]]*\] (error|warning|note)|Note|Warning|Error): ")


class _Unreadable(Exception):
    """soundfile could not decode the file; the message says why, for the TrackError."""


def decode_excerpt(path: str | os.PathLike[str], *, start_at: float = EXCERPT_AT,
                   seconds: float = EXCERPT_S, rate: int = ANALYSIS_RATE) -> tuple[np.ndarray, int]:
    """Decode `seconds` of `path` from `start_at` (a share of its length) as float32 mono at `rate`
    (see decode_excerpt_at)."""
    return decode_excerpt_at(path, (rate,), start_at=start_at, seconds=seconds)[0], rate


def decode_excerpt_at(path: str | os.PathLike[str], rates: tuple[int, ...], *,
                      start_at: float = EXCERPT_AT, seconds: float = EXCERPT_S) -> list[np.ndarray]:
    """The same excerpt at each of `rates`, decoded once: the features read 11.025 kHz, the tagger
    16 kHz, and a second decode of an MP3 cost about as much as the resampling it saves.

    A track shorter than the excerpt is decoded whole; the excerpt is moved earlier where it would
    run past the end. Only the excerpt is decoded (soundfile seeks), so a 4-minute MP3 costs the
    same as a 30-second one. Raises TrackError naming the reason if the file cannot be decoded.
    """
    path = Path(path)
    refuse_special_file(path)
    try:
        with open(path, "rb") as f:
            if not f.read(1):
                raise TrackError(path, "empty file")
    except FileNotFoundError:
        raise TrackError(path, "no such file") from None
    except IsADirectoryError:
        raise TrackError(path, "is a directory, not an audio file") from None
    except OSError as e:
        raise TrackError(path, f"cannot open ({e.strerror or e})") from None
    try:
        samples, native_rate = _decode_soundfile(path, start_at, seconds)
    except _Unreadable as e:
        ffmpeg = shutil.which("ffmpeg")
        if ffmpeg is None:
            raise TrackError(path, f"{e}; install ffmpeg to try other decoders") from None
        top = max(rates)
        samples, native_rate = _decode_ffmpeg(ffmpeg, path, start_at, seconds, top, str(e))
    return [_resample(samples, native_rate, rate) for rate in rates]


def _libsndfile_says(e: Exception) -> str:
    text = getattr(e, "error_string", None) or str(e)
    return text.strip().rstrip(".").lower()


_BLOCK_FRAMES = 65536  # ~1.5 s at 44.1 kHz per read while decoding


def _decode_soundfile(path: Path, start_at: float, seconds: float) -> tuple[np.ndarray, int]:
    with _decoder_chatter_dropped():
        try:
            f = sf.SoundFile(path)
        except (RuntimeError, ValueError, TypeError) as e:  # LibsndfileError is a RuntimeError
            # The file opened fine a moment ago, so whatever libsndfile says ("file does not exist
            # or is not a regular file" for some garbage), it did not recognise the contents.
            says = _libsndfile_says(e)
            says = "" if "does not exist" in says else f"; libsndfile: {says}"
            raise _Unreadable("not a recognised audio format (soundfile reads MP3, FLAC, Ogg "
                              f"Vorbis/Opus, WAV and AIFF{says})") from None
        try:
            with f:
                native = f.samplerate
                want = int(seconds * native)
                total = f.frames
                preroll = 0
                if f.seekable() and total > want:
                    start = int(min(total * start_at, total - want))
                    # Decode a little before the excerpt and drop it: an MP3 frame right after a
                    # seek can lack the bit-reservoir data it refers to and come out as a glitch.
                    preroll = min(start, int(_PREROLL_S * native))
                    try:
                        f.seek(start - preroll)
                    except (RuntimeError, ValueError):  # a length estimate (VBR MP3) past the end
                        f.seek(0)
                        preroll = 0
                if preroll:
                    f.read(preroll, dtype="float32", always_2d=True)
                # Read in blocks, folding each to mono at once: the whole stereo excerpt would
                # double the worker's peak memory for nothing (mood does not depend on stereo
                # placement, and mono is half the work).
                mono = np.empty(want, dtype=np.float32)
                got = 0
                while got < want:
                    block = f.read(min(_BLOCK_FRAMES, want - got), dtype="float32",
                                   always_2d=True)
                    if block.shape[0] == 0:
                        break
                    mono[got:got + block.shape[0]] = block.mean(axis=1, dtype=np.float32)
                    got += block.shape[0]
        except (RuntimeError, ValueError, TypeError) as e:
            raise _Unreadable(f"corrupt or truncated {f.format} file ({_libsndfile_says(e)})") from None
    if got == 0:
        raise _Unreadable(f"corrupt or truncated {f.format} file (no audio could be decoded)")
    return mono[:got], native


@contextmanager
def _decoder_chatter_dropped() -> Iterator[None]:
    """Drop what libmpg123 (inside libsndfile) prints straight to file descriptor 2 meanwhile.

    After a seek it may print "part2_3_length (...) too large for available bit count" for the one
    frame it cannot fully decode, and on damaged files "Note: Trying to resync...". Harmless (a
    damaged file is reported by the TrackError that follows), but it would break the one line per
    failed file of `frame-daemon analyse` and litter the journal, and libsndfile offers no way to
    silence it. So fd 2 points at a temporary file while soundfile decodes, and whatever else was
    written there meanwhile (another thread's log line) is passed on afterwards. The lock keeps two
    decoding threads from swapping fd 2 under each other.
    """
    with _STDERR_LOCK:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError, AttributeError):  # no usable fd 2: nothing to protect
            saved = None
        if saved is None:
            yield
            return
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                sink.seek(0)
                kept = [line for line in sink.read().splitlines(keepends=True)
                        if not _MPG123_CHATTER.match(line)]
                if kept:
                    os.write(2, b"".join(kept))


def _media_seconds(ffmpeg: str, path: Path) -> float | None:
    """The length ffprobe reports (it ships with ffmpeg), or None: then the excerpt starts at 0."""
    ffprobe = shutil.which("ffprobe") or str(Path(ffmpeg).with_name("ffprobe"))
    try:
        out = subprocess.run([ffprobe, "-v", "error", "-show_entries", "format=duration", "-of",
                              "default=noprint_wrappers=1:nokey=1", f"file:{path}"],
                             capture_output=True, text=True, timeout=FFMPEG_TIMEOUT_S, check=True)
        return float(out.stdout.strip())
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def _decode_ffmpeg(ffmpeg: str, path: Path, start_at: float, seconds: float, rate: int,
                   why_not_soundfile: str) -> tuple[np.ndarray, int]:
    total = _media_seconds(ffmpeg, path)
    start = max(0.0, min(total * start_at, total - seconds)) if total else 0.0
    # "file:" keeps a name that starts with "-" or holds a colon from reading as an option or protocol.
    cmd = [ffmpeg, "-nostdin", "-v", "error", "-ss", f"{start:.3f}", "-t", f"{seconds:.3f}", "-i",
           f"file:{path}", "-vn", "-ac", "1", "-ar", str(rate), "-f", "f32le", "-"]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=FFMPEG_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise TrackError(path, f"ffmpeg took over {FFMPEG_TIMEOUT_S:.0f} s to decode it") from None
    except OSError as e:
        raise TrackError(path, f"cannot run ffmpeg ({e.strerror or e})") from None
    samples = np.frombuffer(proc.stdout, dtype="<f4").astype(np.float32)
    if proc.returncode != 0 or samples.size == 0:
        lines = proc.stderr.decode(errors="replace").strip().splitlines()
        said = lines[-1] if lines else f"exit status {proc.returncode}"
        raise TrackError(path, f"cannot decode (soundfile: {why_not_soundfile}; ffmpeg: {said})")
    return samples, rate


def _fft_resample(x: np.ndarray, n_out: int) -> np.ndarray:
    spectrum = np.fft.rfft(x)
    keep = min(spectrum.size, n_out // 2 + 1)
    y = np.fft.irfft(spectrum[:keep], n_out)
    y *= n_out / x.size
    return y


def _resample(x: np.ndarray, src: int, dst: int) -> np.ndarray:
    """Band-limited resampling by FFT (exact for any pair of rates; scipy.signal is slow to import).

    Done in overlapping segments of about 1.5 s (some 65536 samples): one FFT over a 30 s excerpt
    held some 40 MB of float64/complex buffers, the largest part of an analysis worker's memory.
    Each segment gets
    0.1 s of real signal on both sides so the FFT's wrap-around stays in the margins we drop.
    """
    if src == dst or x.size == 0:
        return np.ascontiguousarray(x, dtype=np.float32)
    g = math.gcd(src, dst)
    unit_in, unit_out = src // g, dst // g  # segment lengths must be whole multiples of these
    # A power-of-two number of units per FFT keeps pocketfft on its fast path.
    total = unit_in * max(4, 1 << max(0, (65536 // unit_in).bit_length() - 1))
    pad = min(total // 4, max(1, -(-(src // 10) // unit_in)) * unit_in)
    seg = total - 2 * pad
    n_out = max(1, round(x.size * dst / src))
    if x.size <= seg + 2 * pad:
        return _fft_resample(x.astype(np.float64), n_out).astype(np.float32)
    out = np.empty(n_out, dtype=np.float32)
    padded = np.pad(x.astype(np.float32, copy=False), (pad, pad + seg))
    pad_out = pad // unit_in * unit_out
    seg_out = seg // unit_in * unit_out
    for k, start in enumerate(range(0, x.size, seg)):
        chunk = padded[start:start + seg + 2 * pad].astype(np.float64)
        y = _fft_resample(chunk, (seg + 2 * pad) // unit_in * unit_out)
        o = k * seg_out
        take = min(seg_out, n_out - o)
        if take <= 0:
            break
        out[o:o + take] = y[pad_out:pad_out + take]
    return out
