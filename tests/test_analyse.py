"""Audio analysis on real audio files the tests synthesize: known tempo, key and mode, energy, errors."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from frame_daemon.errors import TrackError
from frame_daemon.music.audio.analyse import analyse_file
from frame_daemon.music.audio.cli import run_analyse
from frame_daemon.music.audio.decode import ANALYSIS_RATE, decode_excerpt
from frame_daemon.music.audio.features import AudioFeatures
from frame_daemon.music.track import MoodSource

RATE = 22050
NOTES = {name: i for i, name in enumerate(("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"))}
FORMATS = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16"), ".ogg": ("OGG", "VORBIS"),
           ".opus": ("OGG", "OPUS"), ".mp3": ("MP3", "MPEG_LAYER_III")}
needs_mp3 = pytest.mark.skipif("MP3" not in sf.available_formats(), reason="libsndfile without MP3")


def write_audio(path: Path, x: np.ndarray, rate: int = RATE) -> Path:
    """Write mono float audio in the format the suffix names, in blocks (libsndfile's Vorbis encoder
    crashes on very large single writes)."""
    fmt, subtype = FORMATS[path.suffix]
    with sf.SoundFile(path, "w", rate, 1, subtype, format=fmt) as f:
        for i in range(0, x.size, 32768):
            f.write(x[i:i + 32768].astype(np.float32))
    return path


def note(freq: float, seconds: float, harmonics: int = 6, decay: float = 1.0, rate: int = RATE) -> np.ndarray:
    """A plucked tone: a few harmonics under a fast attack and an exponential decay."""
    t = np.arange(int(seconds * rate)) / rate
    x = sum(np.sin(2 * np.pi * freq * h * t) / h for h in range(1, harmonics + 1))
    return x * np.minimum(1.0, t / 0.01) * np.exp(-decay * t)


def normalised(x: np.ndarray, peak: float) -> np.ndarray:
    return (peak * x / np.abs(x).max()).astype(np.float32)


def drums(bpm: float, seconds: float = 12.0, hats_per_beat: int = 2, seed: int = 0) -> np.ndarray:
    """Kick on 1 and 3, snare on 2 and 4, soft hi-hats on subdivisions, over a quiet chord pad."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    x = 0.15 * sum(np.sin(2 * np.pi * f * t) for f in (130.8, 164.8, 196.0))
    kick = note(55.0, 0.3, harmonics=2, decay=15.0)
    snare_len, hat_len = int(0.15 * RATE), int(0.03 * RATE)
    snare = rng.standard_normal(snare_len) * np.exp(-np.arange(snare_len) / RATE * 30)
    hat = np.diff(rng.standard_normal(hat_len) * np.exp(-np.arange(hat_len) / RATE * 150), prepend=0)
    step = 60.0 / bpm / hats_per_beat
    for i in range(int(seconds / step) + 1):
        start = round(i * step * RATE)
        hits = [(hat, 0.15)]
        if i % (2 * hats_per_beat) == 0:
            hits.append((kick, 1.0))
        elif i % (2 * hats_per_beat) == hats_per_beat:
            hits.append((snare, 0.6))
        for sound, gain in hits:
            part = sound[: max(0, n - start)] * gain
            x[start:start + part.size] += part
    return normalised(x, 0.5)


def progression(key: str, mode: str, seconds: float = 12.0) -> np.ndarray:
    """I-IV-V-I in major, i-iv-V-i in (harmonic) minor: chords with the root doubled in the bass."""
    tonic = NOTES[key]
    third = 4 if mode == "major" else 3
    chords = [(0, third), (5, third), (7, 4), (0, third)]
    parts = []
    while sum(p.size for p in parts) < seconds * RATE:
        for root, chord_third in chords:
            f0 = 261.63 * 2 ** (((tonic + root) % 12) / 12)
            chord = sum(note(f0 * 2 ** (iv / 12), 1.0, decay=0.8) for iv in (0, chord_third, 7))
            parts.append(chord + 0.8 * note(f0 / 2, 1.0, decay=0.8))
    return normalised(np.concatenate(parts)[: int(seconds * RATE)], 0.5)


def energetic(seconds: float = 12.0) -> np.ndarray:
    """Loud, bright and dense: fast drums with sixteenth hats under bright sawtooth stabs, mastered
    loud (soft-clipped, as much pop and rock is)."""
    t = np.arange(int(seconds * RATE)) / RATE
    saw = sum(((f * t) % 1.0) - 0.5 for f in (220.0, 277.2, 329.6, 440.0))
    gate = ((t * 150 / 60 * 2) % 1.0) < 0.5  # eighth-note stabs at 150 BPM
    return normalised(np.tanh(3.0 * (drums(150, seconds, hats_per_beat=4, seed=1) + 0.5 * saw * gate)), 0.9)


def calm(seconds: float = 12.0) -> np.ndarray:
    """Quiet, dark and sparse: slow, soft sine chords, one every two seconds."""
    parts = []
    for f0 in (196.0, 174.6, 164.8, 196.0, 174.6, 164.8):
        t = np.arange(int(2.0 * RATE)) / RATE
        env = np.minimum(1.0, t / 0.5) * np.exp(-0.5 * t)
        parts.append(env * sum(np.sin(2 * np.pi * f0 * r * t) for r in (1.0, 1.26, 1.5)))
    return normalised(np.concatenate(parts)[: int(seconds * RATE)], 0.05)


def dominant_hz(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.fft.rfftfreq(x.size, 1 / rate)[np.argmax(spectrum)])


@pytest.fixture(scope="module")
def audio(tmp_path_factory) -> Path:
    """Good and bad audio files, each named after what it is."""
    d = tmp_path_factory.mktemp("audio")
    write_audio(d / "drums90.mp3" if "MP3" in sf.available_formats() else d / "drums90.wav", drums(90))
    write_audio(d / "drums120.flac", drums(120))
    write_audio(d / "drums140.ogg", drums(140))
    for key, mode in (("C", "major"), ("A", "minor"), ("E", "major"), ("D", "minor")):
        write_audio(d / f"{key}-{mode}.wav", progression(key, mode))
    write_audio(d / "energetic.flac", energetic())
    write_audio(d / "calm.flac", calm())
    (d / "garbage.mp3").write_bytes(np.random.default_rng(0).bytes(4000))
    (d / "text.wav").write_text("this is a text file with a .wav name\n")
    (d / "empty.flac").write_bytes(b"")
    good_flac = (d / "drums120.flac").read_bytes()
    (d / "truncated.flac").write_bytes(good_flac[:200])
    (d / "fake.m4a").write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(200))
    (d / "a-directory.mp3").mkdir()
    write_audio(d / "short.wav", progression("C", "major", seconds=2.0))
    write_audio(d / "silent.wav", np.zeros(10 * RATE, dtype=np.float32))
    damaged = calm(10.0)
    damaged[::1000] = np.nan  # a float WAV may hold NaN samples: it was called "silent"
    sf.write(d / "nan.wav", damaged, RATE, subtype="FLOAT")
    return d


# --- decoding -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", list(FORMATS))
def test_decodes_each_supported_format_to_mono_at_the_analysis_rate(tmp_path, suffix):
    if FORMATS[suffix][0] not in sf.available_formats():
        pytest.skip(f"libsndfile without {FORMATS[suffix][0]}")
    rate = 48000 if suffix == ".opus" else RATE  # Opus only runs at 8-48 kHz, 48 kHz is its own
    path = write_audio(tmp_path / f"tone{suffix}", normalised(note(440.0, 8.0, harmonics=3, decay=0.1,
                                                                    rate=rate), 0.5), rate)
    samples, rate_out = decode_excerpt(path)
    assert rate_out == ANALYSIS_RATE and samples.dtype == np.float32 and samples.ndim == 1
    assert samples.size == pytest.approx(8.0 * ANALYSIS_RATE, rel=0.02)  # shorter than the excerpt: whole
    assert dominant_hz(samples, rate_out) == pytest.approx(440.0, abs=3.0)


@needs_mp3
def test_excerpt_is_taken_from_a_third_of_the_way_in(tmp_path):
    # 220 Hz for 0-20 s, 440 Hz for 20-50 s, 880 Hz for 50-60 s: a 30-s excerpt from a third in (20 s)
    # hears 440 Hz from its first second to its last.
    x = np.concatenate([note(f, s, harmonics=1, decay=0.0) for f, s in ((220, 20), (440, 30), (880, 10))])
    path = write_audio(tmp_path / "three-parts.mp3", normalised(x, 0.5))
    samples, rate = decode_excerpt(path)
    assert samples.size == pytest.approx(30 * rate, rel=0.01)
    for part in (samples[rate // 2: rate], samples[-rate:]):
        assert dominant_hz(part, rate) == pytest.approx(440.0, abs=5.0)
    late, _ = decode_excerpt(path, start_at=0.9, seconds=5.0)  # would run past the end: moved earlier
    assert late.size == pytest.approx(5 * rate, rel=0.01)
    assert dominant_hz(late, rate) == pytest.approx(880.0, abs=5.0)


# --- features -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bpm", [90, 120, 140])
def test_recovers_the_tempo_within_two_percent(audio, bpm):
    features = analyse_file(next(audio.glob(f"drums{bpm}.*"))).features  # MP3, FLAC, Ogg Vorbis
    assert features.tempo == pytest.approx(bpm, rel=0.02)
    assert features.pulse_clarity > 0.5  # a drum machine has a very clear beat


@pytest.mark.parametrize(("key", "mode"), [("C", "major"), ("A", "minor"), ("E", "major"), ("D", "minor")])
def test_recovers_key_and_mode_of_clear_progressions(audio, key, mode):
    features = analyse_file(audio / f"{key}-{mode}.wav").features
    assert (features.key, features.mode) == (key, mode)
    assert features.key_clarity > 0.7
    assert (features.mode_strength > 0) == (mode == "major")


def test_loud_bright_dense_music_is_more_aroused_than_quiet_dark_sparse(audio):
    loud, quiet = analyse_file(audio / "energetic.flac"), analyse_file(audio / "calm.flac")
    f, g = loud.features, quiet.features
    assert f.loudness_db > g.loudness_db + 20
    assert f.brightness > g.brightness and f.onset_rate > g.onset_rate and f.flux > g.flux
    assert loud.estimate.mood.arousal > quiet.estimate.mood.arousal + 0.2
    assert "loud" in loud.estimate.detail and "quiet" in quiet.estimate.detail


def test_the_estimate_is_an_analysis_with_its_reasons(audio):
    result = analyse_file(audio / "A-minor.wav")
    assert result.estimate.source is MoodSource.ANALYSIS
    assert 0.0 < result.estimate.mood.confidence <= 0.6
    assert result.estimate.detail.startswith("analysis: ") and "A minor" in result.estimate.detail
    record = json.loads(json.dumps(result.as_dict()))
    assert {"file", "valence", "arousal", "confidence", "mood", "tempo", "key", "mode"} <= record.keys()
    assert set(AudioFeatures.__dataclass_fields__) <= record.keys()
    assert record["file"] == str(audio / "A-minor.wav") and -1 <= record["valence"] <= 1


# --- errors ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "says"), [
    ("garbage.mp3", ""), ("text.wav", ""), ("truncated.flac", ""), ("fake.m4a", ""),
    ("empty.flac", "empty file"), ("missing.mp3", "no such file"), ("a-directory.mp3", "directory"),
    ("short.wav", "too short"), ("silent.wav", "silent"), ("nan.wav", "NaN or infinite samples"),
])
def test_unreadable_files_raise_a_track_error_naming_the_reason(audio, capfd, name, says):
    with pytest.raises(TrackError) as caught:
        analyse_file(audio / name)
    error = caught.value
    assert error.path == audio / name
    assert error.reason and "\n" not in error.reason and says in error.reason
    assert "Traceback" not in error.reason
    assert capfd.readouterr().err == ""  # libmpg123's own complaints are not passed on


def test_unsupported_formats_say_what_is_supported(audio):
    with pytest.raises(TrackError) as caught:
        analyse_file(audio / "fake.m4a")
    reason = caught.value.reason
    # Without ffmpeg, soundfile's formats are listed; with it, ffmpeg's verdict is given too.
    assert "MP3, FLAC, Ogg Vorbis/Opus, WAV" in reason


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
def test_ffmpeg_decodes_what_soundfile_cannot(tmp_path):
    path = tmp_path / "tone.m4a"  # AAC in MP4: not a libsndfile format
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i",
                    "sine=frequency=440:duration=8", "-c:a", "aac", str(path)], check=True, timeout=60)
    samples, rate = decode_excerpt(path)
    assert rate == ANALYSIS_RATE and samples.size == pytest.approx(8 * rate, rel=0.05)
    assert dominant_hz(samples, rate) == pytest.approx(440.0, abs=3.0)
    (tmp_path / "bad.m4a").write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(200))
    with pytest.raises(TrackError, match="ffmpeg"):
        decode_excerpt(tmp_path / "bad.m4a")


# --- `frame-daemon analyse` -----------------------------------------------------------------------------

def test_run_analyse_prints_json_lines_and_one_error_line_per_bad_file(audio, capsys):
    paths = [str(audio / "C-major.wav"), str(audio / "garbage.mp3"), str(audio / "drums120.flac"),
             str(audio / "missing.mp3")]
    assert run_analyse(paths, as_json=True) == 1
    out, err = capsys.readouterr()
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["file"] for r in records] == [paths[0], paths[2]]
    for r in records:
        assert {"file", "valence", "arousal", "tempo", "key", "mode"} <= r.keys()
    assert records[0]["key"] == "C" and records[0]["mode"] == "major"
    assert records[1]["tempo"] == pytest.approx(120, rel=0.02)
    errors = err.splitlines()
    assert len(errors) == 2
    for line, bad in zip(errors, (paths[1], paths[3]), strict=True):
        assert line.startswith("frame-daemon analyse: ") and bad in line


def test_run_analyse_all_good_exits_zero_with_plain_lines(audio, capsys):
    paths = [str(audio / "E-major.wav"), str(audio / "calm.flac")]
    assert run_analyse(paths, as_json=False) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 2 and err == ""
    assert lines[0].startswith(paths[0]) and "valence" in lines[0] and "E major" in lines[0]


def test_a_fifo_named_like_music_is_refused_without_waiting_for_a_writer(tmp_path):
    # Opening a FIFO blocks until someone writes to it: an analysis or a tag read stuck for good.
    import os
    import threading

    from frame_daemon.music.tags import read_tags

    fifo = tmp_path / "song.flac"
    os.mkfifo(fifo)
    for read in (analyse_file, read_tags):
        outcome: list[BaseException] = []

        def attempt(read=read, outcome=outcome) -> None:
            try:
                read(fifo)
            except BaseException as exc:  # the test looks at it
                outcome.append(exc)

        thread = threading.Thread(target=attempt, daemon=True)
        thread.start()
        thread.join(10)
        if thread.is_alive():  # the old code: let it go, then fail
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            thread.join(10)
            pytest.fail(f"{read.__name__} waited for a writer to the FIFO")
        assert isinstance(outcome[0], TrackError) and "is a FIFO" in outcome[0].reason, outcome
