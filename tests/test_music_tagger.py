"""The music tagger (musicnn MSD, TFLite): its numpy front end, its tags on real audio, both runtimes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_analyse import calm, energetic, progression, write_audio

from conftest import ROOT
from frame_daemon.errors import ModelError
from frame_daemon.music.audio import tagger as music_tagger
from frame_daemon.music.audio.cli import run_analyse
from frame_daemon.music.audio.decode import decode_excerpt
from frame_daemon.music.audio.tagger import MusicTagger, log_mel, mel_filterbank, top_tags

SECONDS = 15.0


@pytest.fixture(scope="module")
def tagger() -> MusicTagger:
    return MusicTagger.load()


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    """Real audio files (22.05 kHz WAV): a loud drum loop under sawtooth stabs, a piano-like chord
    progression, and slow soft chords (tests/test_analyse.py makes them)."""
    d = tmp_path_factory.mktemp("tagger")
    return {"energetic": write_audio(d / "energetic.wav", energetic(SECONDS)),
            "piano": write_audio(d / "piano.wav", progression("C", "major", seconds=SECONDS)),
            "calm": write_audio(d / "calm.wav", calm(SECONDS))}


def excerpt_16k(path: Path) -> np.ndarray:
    """The track as the analysis reads it: decoded and resampled to 16 kHz by frame-daemon."""
    return decode_excerpt(path, rate=music_tagger.SAMPLE_RATE)[0]


# --- the front end ------------------------------------------------------------------------------------

def test_filterbank_is_librosas_slaney_mel():
    # librosa.filters.mel(sr=16000, n_fft=512, n_mels=96) (htk=False, norm="slaney"), librosa 0.11.
    fb = mel_filterbank()
    assert fb.shape == (96, 257) and fb.dtype == np.float32
    for (band, bin_), want in PINNED_FILTERBANK.items():
        assert fb[band, bin_] == pytest.approx(want, rel=1e-5, abs=1e-9), (band, bin_)


def test_log_mel_of_a_tone_matches_musicnns_front_end():
    # A 1 kHz sine at amplitude 0.5, 1 s at 16 kHz: log10(10000 * mel + 1) of librosa's
    # melspectrogram (float32) in the frame at 0.5 s, in the bands pinned here.
    t = np.arange(16000) / 16000
    spec = log_mel((0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32))
    assert spec.shape == (63, 96) and spec.dtype == np.float32
    for band, want in PINNED_TONE.items():
        assert spec[31, band] == pytest.approx(want, abs=1e-4), band


def test_patches_are_evenly_spaced_and_cover_a_30_s_excerpt():
    frames = 1 + 30 * 16000 // 256
    starts = music_tagger.patch_starts(frames, 10)
    assert starts[0] == 0 and starts[-1] == frames - music_tagger.PATCH_FRAMES and len(starts) == 10
    assert music_tagger.patch_starts(frames, 1) == [(frames - music_tagger.PATCH_FRAMES) // 2]
    assert music_tagger.patch_starts(music_tagger.PATCH_FRAMES - 1, 5) == []


# --- the tags -----------------------------------------------------------------------------------------

def test_silence_gives_no_confident_tags(tagger):
    tags = tagger.tags(np.zeros(int(SECONDS * 16000), np.float32))
    assert max(tags.values()) < SILENCE_MAX


@pytest.mark.parametrize("name", ["energetic", "piano", "calm"])
def test_tags_of_real_clips_match_musicnn(tagger, clips, name):
    """Pinned: what musicnn's own front end (librosa, float32) and graph (TF) give the same 16 kHz
    samples on the same patches (`scripts/convert_music_tagger.py --pins x.npy`, the samples saved
    from excerpt_16k). A wrong mel, scaling or frame order, or a silent input, moves the top tags
    and their probabilities well past the tolerance (float16 weights: within 0.003)."""
    tags = tagger.tags(excerpt_16k(clips[name]), patches=PINNED_PATCHES)
    want = PINNED_TAGS[name]
    got = top_tags(tags, len(want))
    assert [t for t, _ in got[:3]] == [t for t, _ in want[:3]], got
    for tag, p in want:
        assert tags[tag] == pytest.approx(p, abs=TAG_TOLERANCE), (tag, got)


def test_analyse_json_names_the_top_five_tags(clips, capsys):
    assert run_analyse([str(clips["energetic"]), str(clips["calm"])], as_json=True) == 0
    out, err = capsys.readouterr()
    records = [json.loads(line) for line in out.splitlines()]
    assert err == "" and len(records) == 2
    for record, name in zip(records, ("energetic", "calm"), strict=True):
        tags = record["tags"]
        assert len(tags) == 5 and [p for _, p in tags] == sorted((p for _, p in tags), reverse=True)
        assert tags[0][0] == PINNED_TAGS[name][0][0]
    assert run_analyse([str(clips["piano"])], as_json=False) == 0
    assert "; tags: indie 0.3" in capsys.readouterr().out


def test_short_excerpts_are_refused(tagger):
    with pytest.raises(ValueError, match="too short"):
        tagger.tags(np.zeros(16000, np.float32))


def test_metadata_names_the_tags_front_end_and_licence(tagger):
    meta = tagger.meta
    assert len(meta["tags"]) == 50 and {"happy", "sad", "Mellow", "chill", "party"} <= set(meta["tags"])
    assert meta["input"]["shape"] == [1, 187, 96]
    assert meta["quantization"] in ("int8", "int8-weights", "float16", "float32")
    models = ROOT / "models"
    assert "ISC" in (models / "LICENSE-musicnn.txt").read_text()
    assert (models / meta["file"]).stat().st_size <= 3_500_000


def test_malformed_metadata_is_a_model_error(tmp_path, tagger):
    meta = dict(tagger.meta)
    (tmp_path / meta["file"]).write_bytes((ROOT / "models" / meta["file"]).read_bytes())
    meta["front_end"] = dict(meta["front_end"], n_mels=128)
    (tmp_path / "t.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="front end"):
        MusicTagger.load(tmp_path / "t.json")
    (tmp_path / "g.json").write_text("{not json")
    with pytest.raises(ModelError, match="unreadable"):
        MusicTagger.load(tmp_path / "g.json")
    # A kernel whose centres do not have one value per input, or a kernel term without one alpha
    # per centre, cannot be read.
    head = json.loads(json.dumps(tagger.meta["mood_head"]))
    head["valence"]["kernel"]["centres"][0] = head["valence"]["kernel"]["centres"][0][:-1]
    (tmp_path / "k.json").write_text(json.dumps(dict(tagger.meta, mood_head=head)))
    with pytest.raises(ModelError, match="malformed mood head"):
        MusicTagger.load(tmp_path / "k.json")
    head = json.loads(json.dumps(tagger.meta["mood_head"]))
    head["valence"]["kernel"]["terms"][-1]["alphas"].pop()
    (tmp_path / "a.json").write_text(json.dumps(dict(tagger.meta, mood_head=head)))
    with pytest.raises(ModelError, match="malformed mood head"):
        MusicTagger.load(tmp_path / "a.json")


PARITY_SCRIPT = """
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from frame_daemon.music.audio.tagger import MusicTagger
t = MusicTagger.load(sys.argv[2], runtime=sys.argv[3])
print(json.dumps({"runtime": t.runtime,
                  "tags": [t.tag_vector(np.load(p)).tolist() for p in sys.argv[4:]]}))
"""


@pytest.mark.skipif(not os.environ.get("FRAME_DAEMON_TFLITE_PYTHON"),
                    reason="set FRAME_DAEMON_TFLITE_PYTHON to a venv python with tflite-runtime 2.14")
def test_litert_and_tflite_runtime_agree(tmp_path, clips):
    from frame_daemon.vision.model_files import model_path

    model_json = model_path(music_tagger.DEFAULT_TAGGER)
    arrays = []
    for name, path in clips.items():
        arrays.append(tmp_path / f"{name}.npy")
        np.save(arrays[-1], excerpt_16k(path))
    out = {}
    for python, runtime in ((sys.executable, "ai-edge-litert"),
                            (os.environ["FRAME_DAEMON_TFLITE_PYTHON"], "tflite-runtime")):
        proc = subprocess.run([python, "-c", PARITY_SCRIPT, str(ROOT), str(model_json), runtime,
                               *map(str, arrays)],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        out[runtime] = json.loads(proc.stdout)
        assert out[runtime]["runtime"] == runtime
    a, b = (np.array(out[r]["tags"]) for r in ("ai-edge-litert", "tflite-runtime"))
    assert np.abs(a - b).max() <= RUNTIME_TOLERANCE


# Pinned figures (see the tests above for where each comes from).
PINNED_FILTERBANK: dict[tuple[int, int], float] = {
    (0, 1): 0.03199922293424606, (10, 10): 0.001585724181495607, (10, 11): 0.030413499101996422,
    (30, 30): 0.004757172428071499, (30, 31): 0.02724204957485199, (60, 79): 0.004132087342441082,
    (60, 81): 0.010932313278317451, (95, 241): 0.00046491858665831387,
    (95, 248): 0.0039845602586865425}
PINNED_TONE: dict[int, float] = {29: 0.0, 30: 5.44554, 31: 6.05898, 32: 5.66719, 33: 4.54174}
PINNED_TAGS: dict[str, list[tuple[str, float]]] = {
    "energetic": [("electronic", 0.821), ("electro", 0.669), ("dance", 0.577), ("House", 0.195),
                  ("electronica", 0.136)],
    "piano": [("indie", 0.311), ("instrumental", 0.147), ("folk", 0.125), ("alternative", 0.095),
              ("beautiful", 0.063)],
    "calm": [("ambient", 0.381), ("electronic", 0.189), ("experimental", 0.139),
             ("instrumental", 0.103), ("chillout", 0.066)],
}
PINNED_PATCHES = 5  # convert_music_tagger.py --pins --patches 5
# Silence is not confidently anything (its highest tag, "rock", is at 0.20).
SILENCE_MAX = 0.25
TAG_TOLERANCE = 0.01
# Both runtimes run the same float kernels: measured 9e-8 apart on these clips.
RUNTIME_TOLERANCE = 1e-4


# --- the mood head reads the tags ------------------------------------------------------------------

def test_the_mood_head_reads_the_tags_of_the_clip_itself(tagger, clips):
    """The analysis's mood is the tag head fed this clip's own tags (not a silent clip's, not none),
    and the tags move it: the energetic clip's features with the piano's tags (indie, instrumental,
    folk) read about 0.6 calmer, with a silent clip's about 0.3 calmer."""
    from frame_daemon.music.audio.analyse import analyse_file
    from frame_daemon.music.audio.mood import predict, tag_words
    from frame_daemon.music.shared_analysis import ANALYSIS_VERSION

    head = tagger.head
    assert head is not None and head.version == ANALYSIS_VERSION
    own = {name: tagger.tags(excerpt_16k(clips[name])) for name in ("energetic", "piano")}
    silent = tagger.tags(np.zeros(int(SECONDS * 16000), np.float32))
    for name, tags in own.items():
        a = analyse_file(clips[name], tagger)
        features = a.features.as_dict()
        m = a.estimate.mood
        assert a.version == ANALYSIS_VERSION
        assert (m.valence, m.arousal) == pytest.approx(head(features, tags), abs=1e-6)
        assert abs(m.arousal - head(features, silent)[1]) > 0.15  # a silent clip's tags differ
        # and so does the features-only model's (valence, arousal)
        assert np.hypot(*np.subtract((m.valence, m.arousal), predict(features))) > 0.05
        assert a.estimate.detail.startswith(f"analysis: {', '.join(tag_words(tags))}; ")
    energetic = analyse_file(clips["energetic"], tagger).features.as_dict()
    assert head(energetic, own["energetic"])[1] - head(energetic, own["piano"])[1] > 0.3
    assert head(energetic, own["energetic"])[1] - head(energetic, silent)[1] > 0.15


def test_a_kernel_term_adds_the_likeness_to_the_calibration_excerpts():
    """With a kernel, an axis is the mean of the linear map and the kernel terms (one per width, on
    the same centres), all on the same standardized, clipped inputs; far from every centre the
    kernel adds nothing."""
    import math

    from frame_daemon.music.audio.mood import KernelTerm, LinearAxis

    kernel = KernelTerm(widths=(1.0,), centres=((1.0, 0.0), (-1.0, 0.0)), alphas=((0.4, -0.2),))
    axis = LinearAxis(("a", "b"), 0.3, 2.0, (10.0, 0.0), (2.0, 1.0), (0.1, 0.05), kernel)
    # a = 12, b = 0: z = (1, 0), on the first centre and 4 (squared) from the second
    assert axis({"a": 12.0, "b": 0.0}) == pytest.approx(0.3 + 2.0 * (0.1 + 0.4 - 0.2 * math.exp(-4)) / 2)
    # b far out is clipped to 3 SD: z = (0, 3), 10 from both centres
    assert axis({"a": 10.0, "b": 1e6}) == pytest.approx(0.3 + 2.0 * (0.05 * 3) / 2, abs=1e-4)
    # A second width adds its own term on the same centres: exp(-d2 / 4) with its own alphas.
    two = KernelTerm((1.0, 4.0), kernel.centres, ((0.4, -0.2), (0.1, 0.3)))
    axis2 = LinearAxis(("a", "b"), 0.3, 2.0, (10.0, 0.0), (2.0, 1.0), (0.1, 0.05), two)
    assert axis2({"a": 12.0, "b": 0.0}) == pytest.approx(
        0.3 + 2.0 * (0.1 + 0.4 - 0.2 * math.exp(-4) + 0.1 + 0.3 * math.exp(-1)) / 2)
    linear = LinearAxis(("a", "b"), 0.3, 2.0, (10.0, 0.0), (2.0, 1.0), (0.1, 0.05))
    assert linear({"a": 12.0, "b": 0.0}) == pytest.approx(0.3 + 2.0 * 0.1)


def test_the_valence_head_reads_tag_logits_and_its_kernel(tagger, clips):
    """The shipped valence head reads the tags as logits, and its kernel terms (one per width) are
    not idle on music: the soft chords sound enough like some calibration excerpts to move their
    valence (measured -0.05: the kernel terms -0.045 times half the gain 2.38)."""
    import dataclasses

    from frame_daemon.music.audio.analyse import analyse_file
    from frame_daemon.music.audio.mood import head_inputs

    head = tagger.head
    assert head is not None and head.valence.kernel is not None and len(head.valence.kernel.widths) > 1
    assert sum(name.startswith("logit:") for name in head.valence.inputs) == 50
    a = analyse_file(clips["calm"], tagger)
    tags = tagger.tags(excerpt_16k(clips["calm"]))
    values = head_inputs(a.features.as_dict(), tags, head.points)
    assert values["logit:rock"] == pytest.approx(np.log(tags["rock"] / (1 - tags["rock"])), rel=1e-4)
    assert a.estimate.mood.valence == pytest.approx(head.valence(values), abs=1e-6)
    kernel = head.valence.kernel
    idle = dataclasses.replace(kernel, alphas=tuple((0.0,) * len(a) for a in kernel.alphas))
    assert head.valence(values) - dataclasses.replace(head.valence, kernel=idle)(values) < -0.015
