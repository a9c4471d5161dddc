"""Audio analysis of one track: decode an excerpt, measure what carries its mood, place it on the plane.

`analyse_file(path)` decodes EXCERPT_S seconds from a third of the way in (intros and outros are
often quieter or sparser than the body of a track) at ANALYSIS_RATE Hz mono, measures tempo and
pulse clarity, key and mode with key clarity (Krumhansl-Schmuckler), loudness and its spread,
brightness, onset rate, spectral flux and flatness, roughness, harmonic change and tonal spread, and
maps them to valence/arousal with the small calibrated model of `frame_daemon.music.audio_model`.
Decoding uses `soundfile` (libsndfile: MP3, FLAC, Ogg Vorbis/Opus, WAV, AIFF) and falls back to
`ffmpeg` when soundfile cannot read a file. The signal processing is numpy alone: scipy.signal
takes seconds to import on a Pi.

Every failure to read or analyse a file is a TrackError(path, reason); nothing else escapes.
"""

from __future__ import annotations

import logging
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
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from frame_daemon.errors import TrackError
from frame_daemon.mood import Mood
from frame_daemon.music import audio_model
from frame_daemon.music.track import MoodEstimate, MoodSource

log = logging.getLogger(__name__)

ANALYSIS_RATE = 11025  # Hz: keeps everything up to 5.5 kHz, enough for pitch, onsets and brightness
EXCERPT_S = 30.0  # seconds analysed: long enough for a stable tempo and key, short enough to be quick
EXCERPT_AT = 1 / 3  # where the excerpt starts, as a share of the track
MIN_SECONDS = 5.0  # below this neither tempo nor key means anything
SILENCE_DB = -70.0  # dBFS: blocks quieter than this are not music (the EBU R 128 absolute gate)
FFMPEG_TIMEOUT_S = 60.0
_PREROLL_S = 0.25
_STDERR_LOCK = threading.Lock()
# What libmpg123 prints: "[src/libmpg123/layer3.c:...():1774] error: ...", "Note: ...", "Warning: ...".
_MPG123_CHATTER = re.compile(rb"^(\[[^\]]*\] (error|warning|note)|Note|Warning|Error): ")

KEY_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
# Key profiles for Krumhansl-Schmuckler key finding, tonic first: Temperley's (Kostka-Payne corpus;
# D. Temperley, "What's key for key?", Music Perception 17, 1999). They separate major from minor
# better than Krumhansl & Kessler's probe-tone ratings on recordings: on emotify-dev the mode
# strength they give tracks valence at r = 0.28 against 0.18 with Krumhansl & Kessler's.
_MAJOR_PROFILE = np.array([0.748, 0.060, 0.488, 0.082, 0.670, 0.460, 0.096, 0.715, 0.104, 0.366, 0.057,
                           0.400])
_MINOR_PROFILE = np.array([0.712, 0.084, 0.474, 0.618, 0.049, 0.460, 0.105, 0.747, 0.404, 0.067, 0.133,
                           0.330])

# Short-time analysis: 93 ms frames every 23 ms for onsets and the spectrum (~43 frames/s, the rate
# beat trackers commonly use); 370 ms frames for chroma, where low notes a semitone apart must fall
# into different bins (2.7 Hz resolution).
_FRAME, _HOP = 1024, 256
_CHROMA_FRAME, _CHROMA_HOP = 4096, 2048
_CHROMA_BAND = (80.0, 2000.0)  # Hz: bass to upper melody; above it partials blur the pitch classes
_BRIGHT_CUTOFF = 1500.0  # Hz: "brightness" = energy share above this (Juslin 2000; MIRtoolbox)
_MEL_BANDS = 40
_PARTIALS = 20  # spectral peaks per frame whose pairs are summed for roughness
_TEMPO_RANGE = (40.0, 240.0)  # BPM considered
_TEMPO_PRIOR_BPM, _TEMPO_PRIOR_OCTAVES = 120.0, 1.0  # log-normal preference against octave errors
_SMOOTH = np.hanning(7)[1:-1] / np.hanning(7)[1:-1].sum()  # 5 frames, ~116 ms


@dataclass(frozen=True, slots=True)
class AudioFeatures:
    """What the analysis measured on one excerpt; the model's inputs and the `analyse` output."""

    tempo: float  # beats per minute (40-240)
    key: str  # tonic, e.g. "A" or "Eb"
    mode: str  # "major" or "minor"
    key_clarity: float  # correlation of the chroma with the best key profile (-1..1; > 0.7 is clear)
    mode_strength: float  # best major minus best minor key correlation (> 0 leans major)
    loudness_db: float  # gated mean power, dB relative to full scale (an unweighted LUFS)
    loudness_spread: float  # dB between the 10th and 95th percentile of 1-s loudness (LRA-like)
    brightness: float  # share of spectral energy above 1500 Hz (0..1)
    onset_rate: float  # note/drum onsets per second
    pulse_clarity: float  # height of the beat's autocorrelation peak (0..1): how clear the beat is
    flux: float  # mean rise of the mel spectrum between frames, dB: how busy the sound is
    flatness: float  # spectral flatness, dB (0 = noise, -30 = pure tones): noisy vs tonal sound
    dissonance: float  # sensory roughness of the strongest partials (0 = none; ~0.2-0.6 in music)
    harmonic_change: float  # mean change of the pitch-class profile every 186 ms (0..2)
    tonal_spread: float  # entropy of the pitch-class profile, bits (3.58 = all twelve alike)
    seconds: float  # length of the excerpt analysed

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values, rounded to what they mean."""
        d = asdict(self)
        for name, digits in (("tempo", 1), ("key_clarity", 3), ("mode_strength", 3), ("loudness_db", 1),
                             ("loudness_spread", 1), ("brightness", 3), ("onset_rate", 2),
                             ("pulse_clarity", 3), ("flux", 3), ("flatness", 2), ("dissonance", 3),
                             ("harmonic_change", 3), ("tonal_spread", 3), ("seconds", 1)):
            d[name] = round(d[name], digits)
        return d

    @property
    def key_name(self) -> str:
        """'A minor'."""
        return f"{self.key} {self.mode}"


@dataclass(frozen=True, slots=True)
class Analysis:
    """One file's analysis: what was measured and where it puts the track on the plane."""

    path: Path
    features: AudioFeatures
    estimate: MoodEstimate

    def as_dict(self) -> dict[str, Any]:
        m = self.estimate.mood
        return {"file": str(self.path), "valence": round(m.valence, 3), "arousal": round(m.arousal, 3),
                "confidence": round(m.confidence, 3), "mood": m.word, **self.features.as_dict(),
                "detail": self.estimate.detail}


class _Unreadable(Exception):
    """soundfile could not decode the file; the message says why, for the TrackError."""


# --- decoding -----------------------------------------------------------------------------------------

def decode_excerpt(path: str | os.PathLike[str], *, start_at: float = EXCERPT_AT,
                   seconds: float = EXCERPT_S, rate: int = ANALYSIS_RATE) -> tuple[np.ndarray, int]:
    """Decode `seconds` of `path` from `start_at` (a share of its length) as float32 mono at `rate`.

    A track shorter than the excerpt is decoded whole; the excerpt is moved earlier where it would
    run past the end. Only the excerpt is decoded (soundfile seeks), so a 4-minute MP3 costs the
    same as a 30-second one. Raises TrackError naming the reason if the file cannot be decoded.
    """
    path = Path(path)
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
        samples, native_rate = _decode_ffmpeg(ffmpeg, path, start_at, seconds, rate, str(e))
    return _resample(samples, native_rate, rate), rate


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
    padded = np.pad(x.astype(np.float32), (pad, pad + seg))
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


# --- features -----------------------------------------------------------------------------------------

def _frames(x: np.ndarray, size: int, hop: int) -> np.ndarray:
    """Overlapping frames of x as rows (a strided view; the window multiply makes the copy)."""
    if x.size < size:
        x = np.pad(x, (0, size - x.size))
    return np.lib.stride_tricks.sliding_window_view(x, size)[::hop]


@lru_cache(maxsize=4)
def _window(size: int) -> np.ndarray:
    return np.hanning(size).astype(np.float32)


def _power_spectrogram(x: np.ndarray, size: int, hop: int) -> np.ndarray:
    spec = np.fft.rfft(_frames(x, size, hop) * _window(size), axis=1)
    return (spec.real ** 2 + spec.imag ** 2).astype(np.float32)


@lru_cache(maxsize=4)
def _mel_filters(rate: int, size: int, bands: int = _MEL_BANDS) -> np.ndarray:
    """Triangular mel filters (bands x bins): onsets are judged on a perceptual frequency scale."""
    def mel(f: np.ndarray | float) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    edges_mel = np.linspace(mel(30.0), mel(rate / 2), bands + 2)
    edges = 700.0 * (10 ** (edges_mel / 2595.0) - 1.0)
    freqs = np.fft.rfftfreq(size, 1.0 / rate)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs - lo) / (mid - lo)
    down = (hi - freqs) / (hi - mid)
    return np.maximum(0.0, np.minimum(up, down)).astype(np.float32)


@lru_cache(maxsize=4)
def _chroma_bins(rate: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The FFT bins inside _CHROMA_BAND and their pitch in semitones above A440 (fractional)."""
    freqs = np.fft.rfftfreq(size, 1.0 / rate)
    inside = np.flatnonzero((freqs >= _CHROMA_BAND[0]) & (freqs <= _CHROMA_BAND[1]))
    return inside, 12.0 * np.log2(freqs[inside] / 440.0)


def _loudness(x: np.ndarray, rate: int) -> tuple[float, float]:
    """Gated mean loudness (dBFS) and its spread (dB), in the manner of EBU R 128 without K-weighting.

    Loudness averages 400 ms blocks every 100 ms above SILENCE_DB and above (ungated mean - 20 dB),
    so pauses do not pull it down; the spread is the 10th-95th percentile range of 1-s blocks that pass
    the same gates (EBU's loudness range uses 3-s blocks, too long for a 30-s excerpt).
    """
    step = rate // 10
    n = x.size // step
    power = (x[: n * step].astype(np.float64).reshape(n, step) ** 2).mean(axis=1)
    cum = np.concatenate(([0.0], np.cumsum(power)))

    def blocks(width: int) -> np.ndarray:
        return (cum[width:] - cum[:-width]) / width

    short = blocks(4)
    audible = short[short > 10 ** (SILENCE_DB / 10)]
    if audible.size == 0:
        raise ValueError(f"silent: nothing above {SILENCE_DB:.0f} dBFS to analyse")
    gate = audible.mean() * 10 ** (-20 / 10)
    loudness = 10 * math.log10(audible[audible > gate].mean())
    long = blocks(min(10, n))
    long = long[(long > gate) & (long > 10 ** (SILENCE_DB / 10))]
    if long.size < 2:
        return loudness, 0.0
    db = 10 * np.log10(long)
    lo, hi = np.percentile(db, [10, 95])
    return loudness, float(hi - lo)


def _onset_envelope(power: np.ndarray, rate: int) -> np.ndarray:
    """Spectral flux: the mean rise, in dB, of 40 mel bands from one frame to the next."""
    mel = power @ _mel_filters(rate, _FRAME).T
    db = 10 * np.log10(np.maximum(mel, 1e-10))
    db = np.maximum(db, db.max() - 80.0)  # 80 dB below the peak is noise floor, not music
    return np.maximum(0.0, np.diff(db, axis=0)).mean(axis=1)


def _parabolic_peak(y: np.ndarray, i: int) -> float:
    """Sub-sample position of the peak at index i, from a parabola through its neighbours."""
    if i <= 0 or i >= y.size - 1:
        return float(i)
    a, b, c = y[i - 1], y[i], y[i + 1]
    denominator = a - 2 * b + c
    return i + (0.5 * (a - c) / denominator if denominator < 0 else 0.0)


def _tempo(envelope: np.ndarray, fps: float) -> tuple[float, float]:
    """Tempo (BPM) and pulse clarity from the autocorrelation of the onset envelope.

    The beat period is the lag with the highest autocorrelation weighted by a log-normal prior
    around 120 BPM (a click at 60 BPM also repeats at 120 and 30: the prior settles which the ear
    picks). The period is then refined from the peaks at its multiples up to 8 s, fitted together:
    their spacing is measured over many beats, far finer than one frame.
    """
    # Smoothing widens each onset to ~100 ms, so a beat period between two whole frames still
    # shows as one peak in the autocorrelation instead of two half-height ones.
    o = np.convolve(envelope, _SMOOTH, mode="same")
    o -= o.mean()
    n = o.size
    spectrum = np.fft.rfft(o, 2 * n)
    ac = np.fft.irfft(spectrum.real ** 2 + spectrum.imag ** 2)[:n]
    if ac[0] <= 0:
        return 0.0, 0.0
    ac = ac / ac[0]
    lo = max(1, int(fps * 60 / _TEMPO_RANGE[1]))
    hi = min(n - 2, math.ceil(fps * 60 / _TEMPO_RANGE[0]))
    if hi <= lo + 1:
        return 0.0, 0.0
    lags = np.arange(lo, hi + 1)
    bpm = 60 * fps / lags
    prior = np.exp(-0.5 * (np.log2(bpm / _TEMPO_PRIOR_BPM) / _TEMPO_PRIOR_OCTAVES) ** 2)
    # A beat also repeats at twice its period; counting that half as much favours the true beat
    # over a lag that only lines up with off-beat subdivisions (1.5 beats, say).
    doubled = np.interp(2 * lags, np.arange(n), ac, right=0.0)
    best = int(lags[np.argmax(np.maximum(ac[lags] + 0.5 * doubled, 0) * prior)])
    clarity = float(max(0.0, ac[best]))
    period = _parabolic_peak(ac, best)
    longest = min(n - 2, int(8 * fps))
    sum_kp, sum_kk = period, 1.0
    for k in range(2, int(longest / period) + 1):
        guess = k * period
        reach = max(2, int(0.05 * period))
        a, b = int(guess) - reach, min(longest, int(guess) + reach + 1)
        if a <= 0 or b - a < 3:
            break
        i = a + int(np.argmax(ac[a:b]))
        if i in (a, b - 1):  # no peak inside the window: the beat does not repeat this far
            break
        sum_kp += k * _parabolic_peak(ac, i)
        sum_kk += k * k
        period = sum_kp / sum_kk  # least-squares period through the multiples found so far
    return 60 * fps / period, clarity


def _onset_rate(envelope: np.ndarray, fps: float) -> float:
    """Onsets per second: envelope peaks that are the highest within ±70 ms and stand out from the
    mean of the surrounding half second by a margin (a floor in dB, so steady noise counts none)."""
    if envelope.size < 8:
        return 0.0
    reach = max(1, round(0.07 * fps))
    padded = np.pad(envelope, reach, mode="edge")
    local_max = np.lib.stride_tricks.sliding_window_view(padded, 2 * reach + 1).max(axis=1)
    width = max(3, round(0.5 * fps)) | 1
    local_mean = np.convolve(np.pad(envelope, width // 2, mode="edge"), np.ones(width) / width, "valid")
    margin = max(0.5, 0.5 * float(envelope.std()))
    peaks = (envelope >= local_max) & (envelope > local_mean + margin)
    return float(np.count_nonzero(peaks)) / (envelope.size / fps)


def _chroma(power: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame pitch-class profiles, log-compressed and plain (rows sum to 1), and each frame's
    share of the energy; frames without energy in the band are left out.

    Each bin's magnitude goes to its pitch class after measuring the tuning (a band tuned to 432 Hz
    would otherwise straddle semitone borders). The log-compressed profile is for key and harmonic
    change: the log keeps a loud bass note from outvoting the chord above it. The plain one is for
    tonal spread, which the log would flatten. Normalising each frame keeps loud passages from
    outvoting quiet ones.
    """
    bins, semitones = _chroma_bins(rate, _CHROMA_FRAME)
    band = power[:, bins]
    # Tuning: the power-weighted circular mean of every bin's distance to the nearest semitone.
    weight = band.sum(axis=0, dtype=np.float64)
    tuning = float(np.angle(np.sum(weight * np.exp(2j * np.pi * semitones)))) / (2 * np.pi)
    pitch_class = (np.round(semitones - tuning).astype(int) + 9) % 12  # +9: A is pitch class 9
    mag = np.sqrt(band)
    energy = band.sum(axis=1, dtype=np.float64)
    voiced = energy > 0
    if not voiced.any():
        return np.zeros((0, 12)), np.zeros((0, 12)), np.zeros(0)
    mag, energy = mag[voiced], energy[voiced]
    compressed = np.log1p(100.0 * mag / float(mag.max()))
    profiles = []
    for m in (compressed, mag):
        chroma = np.stack([m[:, pitch_class == pc].sum(axis=1) for pc in range(12)], axis=1)
        profiles.append(chroma / np.maximum(chroma.sum(axis=1, keepdims=True), 1e-20))
    return profiles[0], profiles[1], energy / energy.sum()


def _key(profile: np.ndarray) -> tuple[int, str, float, float]:
    """Tonic (0 = C), mode, key clarity and mode strength by Krumhansl-Schmuckler key finding.

    The excerpt's mean chroma is correlated with the 24 rotated key profiles; the best is the key,
    its correlation the key clarity (as MIRtoolbox's mirkeystrength), and the best major minus the
    best minor correlation the mode strength (as mirmode).
    """
    scores = np.array([[_correlation(profile, np.roll(p, tonic)) for tonic in range(12)]
                       for p in (_MAJOR_PROFILE, _MINOR_PROFILE)])
    mode_index, tonic = np.unravel_index(int(np.argmax(scores)), scores.shape)
    mode_strength = float(scores[0].max() - scores[1].max())
    return int(tonic), ("major", "minor")[mode_index], float(scores.max()), mode_strength


def _dissonance(power: np.ndarray, rate: int) -> float:
    """Mean sensory roughness of each frame's strongest partials (Sethares 1993, after Plomp & Levelt).

    Every pair of the _PARTIALS loudest spectral peaks adds roughness that peaks when they are about
    a quarter of a critical band apart; a frame's sum is divided by its partials' total power, so the
    figure says how rough the sound is, not how loud.
    """
    freqs = np.fft.rfftfreq(_CHROMA_FRAME, 1.0 / rate)
    band = (freqs >= 50.0) & (freqs <= 4000.0)
    mag = np.sqrt(power[:, band])
    f = freqs[band]
    is_peak = np.zeros_like(mag, dtype=bool)
    is_peak[:, 1:-1] = (mag[:, 1:-1] > mag[:, :-2]) & (mag[:, 1:-1] >= mag[:, 2:])
    peaks = np.where(is_peak, mag, 0.0)
    count = min(_PARTIALS, peaks.shape[1])
    top = np.argpartition(-peaks, count - 1, axis=1)[:, :count]
    amp = np.take_along_axis(peaks, top, axis=1)
    loudest = amp.max(axis=1, keepdims=True)
    keep = loudest[:, 0] > 0
    if not keep.any():
        return 0.0
    amp, hz = amp[keep] / loudest[keep], f[top[keep]]
    i, j = np.triu_indices(count, 1)
    low = np.minimum(hz[:, i], hz[:, j])
    gap = np.abs(hz[:, i] - hz[:, j]) * (0.24 / (0.0207 * low + 18.96))
    rough = np.minimum(amp[:, i], amp[:, j]) * (np.exp(-3.5 * gap) - np.exp(-5.75 * gap))
    return float(np.mean(rough.sum(axis=1) / (amp ** 2).sum(axis=1)))


def _flatness(power: np.ndarray, rate: int) -> float:
    """Spectral flatness in dB (0 = white noise, very negative = pure tones), energy-weighted over
    frames: how noisy (distorted guitars, cymbals, breath) rather than tonal the sound is."""
    freqs = np.fft.rfftfreq(_FRAME, 1.0 / rate)
    band = power[:, (freqs >= 100.0) & (freqs <= 5000.0)].astype(np.float64) + 1e-12
    flatness_db = 10 * (np.log10(band).mean(axis=1) - np.log10(band.mean(axis=1)))
    energy = band.sum(axis=1)
    return float((flatness_db * energy).sum() / energy.sum())


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denominator = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum()) / denominator if denominator > 0 else 0.0


def analyse_samples(samples: np.ndarray, rate: int) -> AudioFeatures:
    """Measure the features of a mono excerpt at `rate` Hz (any rate from 8 kHz up works; the
    calibration used ANALYSIS_RATE). Raises ValueError, saying why, if it is too short or silent."""
    x = np.asarray(samples, dtype=np.float32)
    if x.size < MIN_SECONDS * rate:
        raise ValueError(f"too short to analyse ({x.size / rate:.1f} s of audio; needs {MIN_SECONDS:.0f} s)")
    loudness, spread = _loudness(x, rate)
    power = _power_spectrogram(x, _FRAME, _HOP)
    spectrum = power.sum(axis=0, dtype=np.float64)
    freqs = np.fft.rfftfreq(_FRAME, 1.0 / rate)
    brightness = float(spectrum[freqs > _BRIGHT_CUTOFF].sum() / max(spectrum.sum(), 1e-20))
    fps = rate / _HOP
    envelope = _onset_envelope(power, rate)
    tempo, clarity = _tempo(envelope, fps)
    chroma_power = _power_spectrogram(x, _CHROMA_FRAME, _CHROMA_HOP)
    chroma, plain, weight = _chroma(chroma_power, rate)
    if chroma.shape[0] == 0:
        raise ValueError("no sound between 80 and 2000 Hz to analyse")
    tonic, mode, key_clarity, mode_strength = _key(chroma.mean(axis=0))
    change = float(np.abs(np.diff(chroma, axis=0)).sum(axis=1).mean()) if chroma.shape[0] > 1 else 0.0
    entropy = -(plain * np.log2(np.maximum(plain, 1e-12))).sum(axis=1)
    return AudioFeatures(tempo=tempo, key=KEY_NAMES[tonic], mode=mode, key_clarity=key_clarity,
                         mode_strength=mode_strength, loudness_db=loudness, loudness_spread=spread,
                         brightness=brightness, onset_rate=_onset_rate(envelope, fps),
                         pulse_clarity=clarity, flux=float(envelope.mean()),
                         flatness=_flatness(power, rate), dissonance=_dissonance(chroma_power, rate),
                         harmonic_change=change, tonal_spread=float((entropy * weight).sum()),
                         seconds=x.size / rate)


# --- mood ---------------------------------------------------------------------------------------------

# Where _describe starts calling a track bright, loud, ... : about the 15th and 85th percentiles of
# the emotify-dev excerpts, so the words single out what stands out among ordinary music.
_DARK, _BRIGHT = 0.012, 0.08
_QUIET_DB, _LOUD_DB = -22.0, -11.0
_SPARSE, _DENSE = 2.2, 4.5  # onsets per second
_CLEAR_KEY = 0.5
_CLEAR_BEAT = 0.1  # pulse clarity; 95% of the emotify-dev excerpts are above it


def _describe(f: AudioFeatures) -> str:
    """'analysis: 128 BPM, A minor, bright, dense onsets': the features a person would recognise."""
    words = [f"{f.tempo:.0f} BPM" if f.pulse_clarity >= _CLEAR_BEAT else "no clear beat",
             f.key_name if f.key_clarity >= _CLEAR_KEY else "no clear key"]
    if f.brightness >= _BRIGHT:
        words.append("bright")
    elif f.brightness < _DARK:
        words.append("dark")
    if f.loudness_db >= _LOUD_DB:
        words.append("loud")
    elif f.loudness_db < _QUIET_DB:
        words.append("quiet")
    if f.onset_rate >= _DENSE:
        words.append("dense onsets")
    elif f.onset_rate < _SPARSE:
        words.append("sparse onsets")
    return "analysis: " + ", ".join(words)


def estimate_mood(features: AudioFeatures) -> MoodEstimate:
    """Place measured features on the plane with audio_model's calibrated linear model."""
    valence, arousal = audio_model.predict(features.as_dict())
    confidence = audio_model.CONFIDENCE * min(1.0, features.seconds / EXCERPT_S) ** 0.5
    return MoodEstimate(MoodSource.ANALYSIS, Mood.clipped(valence, arousal, confidence),
                        _describe(features))


def analyse_file(path: str | os.PathLike[str]) -> Analysis:
    """Decode an excerpt of one audio file, measure it and estimate its mood.

    Raises TrackError(path, reason) if the file cannot be read or decoded, or is too short or
    silent to analyse.
    """
    path = Path(path)
    samples, rate = decode_excerpt(path)
    try:
        features = analyse_samples(samples, rate)
    except ValueError as e:
        raise TrackError(path, str(e)) from None
    except Exception as e:  # a bug, but it must cost one file, not the run (traceback at debug level)
        log.debug("analysis of %s failed", path, exc_info=True)
        raise TrackError(path, f"analysis failed ({type(e).__name__}: {e})") from None
    return Analysis(path, features, estimate_mood(features))
