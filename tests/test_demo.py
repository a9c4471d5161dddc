"""The demo's promises, without running it whole: its summary says what 'why' says, its photos
have a contrast the model sees, a person's folders are checked and only read."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from frame_daemon.follow import FollowMode
from frame_daemon.loop_state import Choice, LoopState
from frame_daemon.mood import Mood
from frame_daemon.music.placement import Placement
from frame_daemon.music.select import Pick
from frame_daemon.music.track import MoodSource, Track
from frame_daemon.state_payload import state_payload
from frame_daemon.vision.model import PhotoMood

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import demo  # noqa: E402
from demo_photos import PHOTOS, demo_order  # noqa: E402

# The demo's case: the tag says 'nostalgic', whose point on the plane is named 'neutral'; the
# photo's mood and the target it was placed at in the library differ, so distances to the one
# and to the other differ too.
OLD_TAPES = Track("Aerial/nostalgic_tape.flac", "Old Tapes", "Aerial", mood=Mood(0.05, -0.11, 0.9),
                  source=MoodSource.TAG, why="mood tag 'nostalgic'")
HIGHWAY = Track("Iron_Teeth/genre_only_rock.flac", "Highway", "Iron Teeth",
                mood=Mood(-0.17, -0.70, 0.35), source=MoodSource.GENRE, why="genre 'Rock' (prior)")
PHOTO = Mood(0.19, 0.01, 0.24)
TARGET = Mood(0.10, -0.05, 0.24)


def _state() -> LoopState:
    st = LoopState(mode=FollowMode.FOLLOW, threshold=0.2)
    st.photo = PhotoMood("/frame/current.jpg", PHOTO, PHOTO.word, {}, [("bobsled", 0.3)])
    st.photo_path, st.photo_seq = "/frame/current.jpg", 5
    placement = Placement(PHOTO, Mood(0.01, -0.11, 0.24), TARGET, 0.5)
    d_tapes = OLD_TAPES.mood.distance(TARGET)
    d_highway = HIGHWAY.mood.distance(TARGET)
    picks = (Pick(OLD_TAPES, d_tapes, d_tapes + 0.05, "", order="before the nearer 'X'"),
             Pick(HIGHWAY, d_highway, d_highway + 0.3, ""))
    st.choice = Choice(5, "mood moved → play now", placement, picks, (11, 12))
    st.track = {"uri": OLD_TAPES.uri, "title": "Old Tapes", "artist": "Aerial"}
    st.track_id, st.player = 11, "play"
    return st


def test_the_summary_gives_the_words_and_distances_that_why_gives():
    payload = state_payload(_state(), datetime(2026, 12, 6, tzinfo=UTC))
    why, summary = payload["why"], demo.summary_rows("astronaut", payload)
    # The word of the track's mood with its source, and the distance to the target, in both.
    assert "'Old Tapes – Aerial' (neutral, mood tag 'nostalgic')" in why
    assert "Old Tapes – Aerial (neutral, mood tag 'nostalgic')" in summary
    tapes = f"{OLD_TAPES.mood.distance(TARGET):.2f} from the target"
    assert tapes in why and tapes in summary.splitlines()[1]
    assert f"{OLD_TAPES.mood.distance(PHOTO):.2f}" not in summary.splitlines()[1]  # not to the photo
    # The target is named the same way: why's coordinates are the summary's.
    assert f"({TARGET.word} in this library: v {TARGET.valence:.2f}, a {TARGET.arousal:.2f})" in why
    assert f"target {TARGET.word} {TARGET.valence:+.2f}/{TARGET.arousal:+.2f}" in summary
    # The order is explained where a pick plays before a nearer one.
    assert summary.splitlines()[1].endswith("; before the nearer 'X'")
    assert summary.splitlines()[2].startswith("   2. Highway – Iron Teeth (weary, genre 'Rock'")


@pytest.fixture(scope="module")
def story_photos(demo_photos) -> list[Path]:
    """The demo's photos in its order (fetching any that an older cache lacks)."""
    if not all(p.exists() for p in demo_order(demo_photos)):
        subprocess.run([sys.executable, str(ROOT / "scripts" / "demo_photos.py"), str(demo_photos)],
                       check=True, capture_output=True)
    return demo_order(demo_photos)


def test_the_demo_goes_from_a_calm_photo_to_a_lively_one(mood_model, story_photos):
    moods = {p.stem: mood_model.score(p).mood for p in story_photos}
    assert [p.stem for p in story_photos][:2] == ["flower", "cat-closeup"]
    # The contrast the demo is there to show: a model that reads these alike takes its story
    # away, and should fail here rather than in a demo nobody watches.
    assert moods["flower"].arousal < -0.3
    lively = moods["cat-closeup"]
    assert lively.valence > 0.3 and lively.arousal > 0.05  # livelier than 4 photos in 5
    assert lively.arousal - moods["flower"].arousal > 0.5
    assert moods["tesla"].arousal > 0.15  # and an energetic, unpleasant one later


def test_a_missing_or_empty_folder_is_refused_with_a_clear_reason(tmp_path, capsys):
    assert demo.main([str(tmp_path / "nope")]) == 2
    assert f"photo folder {tmp_path / 'nope'} does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert demo.main([str(tmp_path / "empty")]) == 2
    assert "holds no photo files" in capsys.readouterr().err
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.jpg").write_bytes(b"")
    (tmp_path / "music").mkdir()
    (tmp_path / "music" / "notes.txt").write_text("no music here")
    assert demo.main([str(tmp_path / "photos"), str(tmp_path / "music")]) == 2
    assert "music folder" in capsys.readouterr().err and not (tmp_path / "work").exists()


def test_own_photos_are_copied_calm_first_and_left_as_they_were(tmp_path, story_photos):
    mine = tmp_path / "mine"
    (mine / "sub").mkdir(parents=True)
    for p in story_photos[:4]:
        (mine / "sub" / p.name).write_bytes(p.read_bytes())
    (mine / "broken.jpg").write_bytes(b"not a photo")
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in mine.rglob("*") if p.is_file()}
    found = demo.check_folder(mine, "photo", demo.PHOTO_SUFFIXES)
    copies = demo.choose_own_photos(found, tmp_path / "run" / "photos", 3)
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in mine.rglob("*")
            if p.is_file()} == before
    assert len(copies) == 3 and all(c.parent == tmp_path / "run" / "photos" for c in copies)
    from frame_daemon.vision.model import MoodModel

    model = MoodModel.load()
    arousal = [model.score(c).mood.arousal for c in copies]
    assert arousal == sorted(arousal)  # calm first
    assert copies[0].name.endswith("flower.jpg") and copies[-1].name.endswith("tesla.jpg")


def test_every_demo_photo_names_its_licence_source():
    doc = (ROOT / "scripts" / "demo_photos.py").read_text()
    for spec, _, member, _, _ in PHOTOS:
        assert spec.split("==")[0].replace("-", "") in doc.replace("-", "").lower()
        assert Path(member).name in doc or Path(member).stem in doc


def _snapshot(folder: Path) -> dict[Path, tuple[bytes, int]]:
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_own_music_is_only_read_and_a_folder_mpd_cannot_play_is_refused(tmp_path):
    from servers import write_library

    music = tmp_path / "music"
    write_library(music, seconds=2.0, library=demo.DEMO_LIBRARY[:2])
    before = _snapshot(music)
    mpd, broker = demo.start_servers(tmp_path / "run", music)
    try:
        assert mpd.update_and_wait() == 2
    finally:
        mpd.stop()
        broker.stop()
    assert _snapshot(music) == before  # MPD's database and state live in the run folder
    assert (tmp_path / "run" / "mpd" / "database").exists()

    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "song.mp3").write_text("not music")
    with pytest.raises(demo.DemoError, match="MPD found no music it can play"):
        demo.start_servers(tmp_path / "run2", fake)
