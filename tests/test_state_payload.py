"""The state Home Assistant reads, built from a LoopState alone: no broker, MPD or model."""

from __future__ import annotations

from datetime import UTC, datetime

from frame_daemon.follow import Action, Decision, FollowMode
from frame_daemon.loop_state import Choice, LoopState
from frame_daemon.mood import Mood
from frame_daemon.music.placement import Placement
from frame_daemon.music.select import Pick
from frame_daemon.music.track import MoodSource, Track
from frame_daemon.state_payload import state_payload, status_line, why_line
from frame_daemon.vision.model import PhotoMood

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
CALM = Track("calm.mp3", "Still Water", "Lake Trio", mood=Mood(0.4, -0.6, 0.8),
             source=MoodSource.TAG, why="tagged calm")
BRIGHT = Track("bright.mp3", "Sun Up", "Brass Band", mood=Mood(0.7, 0.6, 0.8),
               source=MoodSource.GENRE, why="genre Funk")
SERENE = Mood(0.45, -0.5, 0.7)


def _state(**changes) -> LoopState:
    st = LoopState(mode=FollowMode.FOLLOW, threshold=0.6)
    st.photo = PhotoMood("/photos/beach.jpg", SERENE, SERENE.word, {}, [("seashore", 0.8)])
    st.photo_path, st.photo_seq = "/photos/beach.jpg", 1
    for key, value in changes.items():
        setattr(st, key, value)
    return st


def _choice(photo_seq: int = 1, ids: tuple[int, ...] = (7, 8)) -> Choice:
    placement = Placement(SERENE, SERENE, SERENE, 0.0)
    picks = (Pick(CALM, 0.12, 0.2, "near"), Pick(BRIGHT, 1.1, 1.2, "far", fits=False))
    return Choice(photo_seq, "mood changed → play now", placement, picks, ids)


def test_the_payload_describes_photo_music_and_settings():
    st = _state(choice=_choice(), track={"uri": "calm.mp3", "title": "Still Water",
                                         "artist": "Lake Trio"}, track_id=7, mpd_up=True,
                include_genres=("Jazz", "Folk"))
    payload = state_payload(st, NOW, {"album": "Holidays"})
    assert payload["photo_name"] == "beach.jpg" and payload["mood"] == "serene"
    assert payload["valence"] == 0.45 and payload["scenes"] == ["seashore"]
    assert payload["now_playing"] == "Still Water – Lake Trio"
    assert payload["queued"] == ["calm.mp3", "bright.mp3"]
    assert payload["include_genres"] == "Jazz, Folk" and payload["threshold"] == 0.6
    assert payload["following"] is True and payload["follow"] == "follow"
    assert payload["mpd"] == "connected" and payload["last_error"] == ""
    assert payload["updated"] == "2026-12-01T12:00:00+00:00" and payload["album"] == "Holidays"


def test_why_names_the_playing_pick_by_its_queue_entry():
    # The same file also plays from before (id 3): that entry is not the choice's.
    st = _state(choice=_choice(), track={"uri": "calm.mp3", "title": "Still Water"}, track_id=3,
                player="play", remaining_s=41.6)
    assert why_line(st).startswith("next, after 'Still Water' ends, in about 42 s: 'Still Water")
    st.track_id = 7
    assert why_line(st) == ("playing 'Still Water – Lake Trio' (serene, tagged calm) for the "
                            "serene photo (v 0.45, a -0.50), 0.12 from the target (the photo's own mood)")


def test_why_says_when_music_was_kept_and_when_nothing_fits():
    st = _state(choice=_choice(photo_seq=1), photo_seq=2, follow_reason="small change → keep",
                track={"uri": "bright.mp3"}, track_id=8)
    line = why_line(st)
    assert line.startswith("kept (small change): playing 'Sun Up – Brass Band'")
    assert line.endswith("(nothing fits better)")


def test_why_during_a_fade_and_while_a_decision_waits():
    st = _state(choice=_choice(), track={"uri": "old.mp3"}, player="play")
    assert why_line(st, fading_s=2.5).startswith("next, after a 2.5 s fade-out: ")
    st.pending = Decision(Action.PLAY_NOW, SERENE, "mood changed → play now")
    st.why = "mood changed; MPD unavailable, will queue when it is back"
    assert why_line(st) == st.why  # not the last change's line


def test_suspension_and_off_read_as_not_following():
    st = _state(suspended_until=float("inf"), suspended_reason="a person chose music")
    payload = state_payload(st, NOW)
    assert payload["following"] is False and payload["follow"] == "suspended"
    assert payload["suspended_reason"] == "a person chose music"
    st = _state(mode=FollowMode.OFF)
    assert state_payload(st, NOW)["following"] is False


def test_long_texts_are_clipped_for_home_assistant_and_the_status_line_has_the_error():
    st = _state(last_error="x" * 400, error="MPD unavailable")
    payload = state_payload(st, NOW)
    assert len(payload["last_error"]) == 255 and payload["last_error"].endswith("…")
    assert status_line(st) == "serene; follow; nothing playing; error: MPD unavailable"
