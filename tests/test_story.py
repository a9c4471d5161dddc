"""The user's test, as a black box: "change the photo, hear the music follow".

A 12-track library tagged by mood (4 calm, 4 lively and happy, 2 sad, 2 angry), the shipped default
follow settings, a slideshow of 3 calm pleasant photos and then 3 lively pleasant ones (OASIS
development photos, 20 s each), a real MPD (software mixer) and mosquitto. Calm photos must get at
least 60% calm tracks, lively ones at least 60% lively tracks, and a lively track must be *playing*
within dwell_s + 10 s of the first lively photo in follow mode, or right after the current track in
gentle mode. Home Assistant's `why` must name the track that plays.

Two ways of choosing the photos:
- `model`: pleasant to people and to the model, calm/lively as the model reads them. This tests the
  daemon's part: given what the model sees, does the music follow?
- `human`: pleasant, and the calmest / liveliest by human arousal ratings alone, as the issue's
  black-box run chose them. The photo model must tell those calm photos from the lively ones: if it
  cannot (a model or preprocessing regression), the test fails at once with the model's readings,
  before the daemon runs.
"""

from __future__ import annotations

import contextlib
import csv
import shutil
import signal
import time
from pathlib import Path

import pytest

from frame_daemon.config import FollowConfig
from harness import DaemonProcess, mpd_status, show_photo, wait_for, write_config
from servers import Mosquitto, Mpd, MqttRecorder, write_library

ROOT = Path(__file__).resolve().parents[1]
OASIS = ROOT.parent / "shared" / "data" / "oasis-dev"
STATE = "frame-daemon/frame/state"
PHOTO_S = 20.0
TRACK_S = 20.0

# (file stem, title, artist, genre, mood tag, bpm, tone Hz): the kind is the stem's first word.
STORY_LIBRARY = [
    ("calm_lake", "Still Water", "Lake Trio", "Ambient", "calm", 60, 220.0),
    ("calm_evening", "Evening Hush", "Nightfall", "New Age", "peaceful", 64, 246.9),
    ("calm_sofa", "Sunday Sofa", "Lake Trio", "Lounge", "relaxed", 70, 261.6),
    ("calm_cloud", "Cloud Drift", "Aerial", "Ambient", "serene", 68, 293.7),
    ("lively_sun", "Sunny Side", "The Brights", "Pop", "happy", 118, 392.0),
    ("lively_dance", "Dance All Day", "Disco Kids", "Disco", "cheerful", 124, 440.0),
    ("lively_run", "Full Speed", "Turbo", "Electronic", "energetic", 140, 493.9),
    ("lively_party", "Party Lights", "The Brights", "Dance", "excited", 128, 523.3),
    ("sad_letter", "Last Letter", "Rosa Vale", "Blues", "sad", 66, 698.5),
    ("sad_piano", "Nocturne in Grey", "Quartet No. 5", "Piano", "melancholy", 58, 740.0),
    ("angry_riff", "Riot", "Iron Teeth", "Metal", "angry", 170, 587.3),
    ("angry_punk", "No Future Now", "Safety Pins", "Punk", "aggressive", 180, 622.3),
]


def kind(uri: str) -> str:
    return Path(uri).stem.split("_")[0]


def share(uris: list[str], wanted: str) -> float:
    return sum(kind(u) == wanted for u in uris) / len(uris)


@pytest.fixture(scope="module")
def oasis_moods(mood_model) -> list[dict]:
    if not (OASIS / "ratings.csv").is_file():
        pytest.skip(f"development photos not found at {OASIS} (the OASIS-dev split)")
    rows = []
    with open(OASIS / "ratings.csv", newline="") as f:
        for row in csv.DictReader(f):
            path = OASIS / "images" / row["file"]
            mood = mood_model.score(path).mood
            rows.append({"path": path, "human_v": (float(row["Valence_mean"]) - 4) / 3,
                         "human_a": (float(row["Arousal_mean"]) - 4) / 3, "mood": mood})
    return rows


def choose_photos(rows: list[dict], how: str) -> tuple[list[dict], list[dict]]:
    if how == "model":
        pleasant = [r for r in rows if r["human_v"] >= 0.3 and r["mood"].valence >= 0.3
                    and r["mood"].confidence >= 0.5]
        by = sorted(pleasant, key=lambda r: r["mood"].arousal)
    else:
        pleasant = [r for r in rows if r["human_v"] >= 0.3 and r["path"].name.split()[0] not in
                    ("Nude", "BDSM")]
        by = sorted(pleasant, key=lambda r: r["human_a"])
    return by[:3], by[-3:][::-1]


@pytest.fixture
def story(tmp_path):
    music = tmp_path / "music"
    write_library(music, seconds=TRACK_S, library=STORY_LIBRARY)
    mpd = Mpd(tmp_path / "mpd", music, mixer="software")
    mpd.start()
    mpd.update_and_wait()
    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    recorder = MqttRecorder(broker.port, [STATE])
    frame = tmp_path / "frame"
    frame.mkdir()
    rig = type("Story", (), dict(mpd=mpd, broker=broker, recorder=recorder, tmp=tmp_path,
                                 current=frame / "current.jpg", daemon=None))
    yield rig
    if rig.daemon and rig.daemon.alive():
        rig.daemon.stop(signal.SIGKILL)
    recorder.close()
    for server in (mpd, broker):
        with contextlib.suppress(Exception):
            server.stop()


class PlayWatch:
    """Polls MPD while the slideshow runs: when a lively track first plays, and how far the track
    before it had played."""

    def __init__(self, rig) -> None:
        self.rig = rig
        self.lively_at: float | None = None
        self.before_lively_elapsed = 0.0
        self._last_elapsed = 0.0

    def until(self, deadline: float, stop_at_lively: bool = False) -> None:
        while time.monotonic() < deadline:
            if self.lively_at is None:
                status, song = mpd_status(self.rig.mpd), playing(self.rig)
                if kind(song.get("file", "x_")) == "lively":
                    self.lively_at = time.monotonic()
                    self.before_lively_elapsed = self._last_elapsed
                else:
                    self._last_elapsed = float(status.get("elapsed", 0))
            if stop_at_lively and self.lively_at is not None:
                return
            time.sleep(0.05)


def playing(rig) -> dict:
    c = rig.mpd.client()
    try:
        return c.currentsong()
    finally:
        c.disconnect()


@pytest.mark.parametrize(("how", "mode"), [("model", "follow"), ("model", "gentle"),
                                           ("human", "follow")])
def test_calm_then_lively_photos_and_the_music_follows(story, oasis_moods, how, mode):
    calm, lively = choose_photos(oasis_moods, how)
    calm_a = sum(r["mood"].arousal for r in calm) / 3
    lively_a = sum(r["mood"].arousal for r in lively) / 3
    # Measured with mood-v2: about -0.7 and +0.3 for both choices.
    assert lively_a - calm_a >= 0.3, (
        f"the photo model reads the calm photos at arousal {calm_a:+.2f} and the lively ones at "
        f"{lively_a:+.2f}: it cannot tell them apart, so no music could follow")
    rig = story
    dwell_s = FollowConfig().dwell_s
    shutil.copy(calm[0]["path"], rig.current)
    config = write_config(rig.tmp / "frame.toml", photo=rig.current, mpd=rig.mpd, mqtt=rig.broker,
                          state_dir=rig.tmp / "state", mode=mode, follow="")  # shipped defaults
    rig.daemon = DaemonProcess(config, rig.tmp / "daemon.log")
    rig.daemon.start()
    try:
        first = wait_for(lambda: (s := rig.recorder.json(STATE)) and s.get("queued") and s, 60,
                         what="first tracks queued")
        assert share(first["queued"], "calm") >= 0.6, first
        wait_for(lambda: kind(playing(rig).get("file", "x_")) == "calm", 10, what="calm music playing")
        watch = PlayWatch(rig)
        started = time.monotonic()
        for i, photo in enumerate(calm[1:] + lively, start=1):
            watch.until(started + i * PHOTO_S)  # the slideshow's pace, watching what plays
            shown_at = time.monotonic()
            show_photo(rig.current, photo["path"])
            if photo is lively[0]:
                lively_shown = shown_at
            if i < len(calm):
                s = rig.recorder.json(STATE)
                assert share(s["queued"], "calm") >= 0.6, s
        if mode == "follow":
            watch.until(lively_shown + dwell_s + 10, stop_at_lively=True)
            assert watch.lively_at is not None, "no lively track played within dwell_s + 10 s"
            assert watch.lively_at - lively_shown <= dwell_s + 10
        else:
            # Gentle: the calm track plays to its end, then the lively music starts.
            watch.until(lively_shown + dwell_s + 10 + TRACK_S, stop_at_lively=True)
            assert watch.lively_at is not None, "no lively track after the current one"
            assert watch.before_lively_elapsed >= TRACK_S - 1.0, \
                f"the track before the lively one was cut short at {watch.before_lively_elapsed:.1f} s"
        s = wait_for(lambda: (s := rig.recorder.json(STATE)) and s["track"]
                     and kind(s["track"]["uri"]) == "lively" and s, 10, what="state about it")
        assert share(s["queued"], "lively") >= 0.6, s
        # "playing 'X' ...", or "kept (...): playing 'X' ..." once a later photo kept the music.
        assert f"playing '{s['track']['title']} – " in s["why"], s["why"]
    except (AssertionError, TimeoutError):
        print(rig.daemon.log()[-6000:])
        raise
