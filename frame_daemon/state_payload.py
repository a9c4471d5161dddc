"""What the frame tells the house: the retained MQTT state and systemd's status line.

Pure functions of `LoopState` (and the time and any fade under way, passed in), so what Home
Assistant shows can be checked for any state without a broker, MPD or model.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from frame_daemon.homeassistant import clip_state
from frame_daemon.loop_state import Choice, LoopState
from frame_daemon.music.select import Pick


def state_payload(st: LoopState, updated: datetime, extra: Mapping[str, Any] | None = None,
                  fading_s: float | None = None) -> dict[str, Any]:
    """The one retained state message every entity reads. `extra`: a source's own fields (the
    slideshow's); `fading_s`: the length of the fade-out under way, if one is (the fader's)."""
    photo = st.photo
    return {
        "photo": st.photo_path or None,
        "photo_name": Path(st.photo_path).name if st.photo_path else None,
        "photo_taken": st.photo_taken,
        "valence": round(photo.mood.valence, 3) if photo else None,
        "arousal": round(photo.mood.arousal, 3) if photo else None,
        "mood": photo.word if photo else None,
        "confidence": round(photo.mood.confidence, 3) if photo else None,
        "scenes": [label for label, _ in photo.scenes] if photo else [],
        "follow": follow_label(st),
        "mode": st.mode.value,
        "following": st.following,
        "suspended_reason": st.suspended_reason or None,
        "track": st.track or None,
        "now_playing": clip_state(now_playing(st.track)),
        "queued": st.choice.uris if st.choice else [],
        # The same picks with the numbers `why` gives: the target is the photo's mood placed in
        # this library (music.placement), and each distance is measured to it.
        "target": target_fields(st.choice),
        "picks": [pick_fields(p) for p in st.choice.picks] if st.choice else [],
        "why": clip_state(why_line(st, fading_s)),
        "error": st.error,
        "last_error": clip_state(st.last_error) or "",
        "threshold": st.threshold,
        "diversity": st.diversity,
        "include_genres": ", ".join(st.include_genres),
        "exclude_genres": ", ".join(st.exclude_genres),
        "mpd": "connected" if st.mpd_up else "unavailable",
        "index_size": st.index_size,
        "updated": updated.isoformat(timespec="seconds"),
        **(extra or {}),
    }


def follow_label(st: LoopState) -> str:
    return "suspended" if st.suspended_until is not None else st.mode.value


def now_playing(track: Mapping[str, str]) -> str | None:
    """'Title – Artist', else whichever of them (or the file) MPD knows."""
    if track.get("title") and track.get("artist"):
        return f"{track['title']} – {track['artist']}"
    return track.get("title") or track.get("uri")


def why_line(st: LoopState, fading_s: float | None = None) -> str | None:
    """Why this music: the playing track's reason if the last change chose it, else what comes
    next and when. Always about the same change as `queued`; short, since Home Assistant keeps
    255 characters of a state."""
    choice = st.choice
    if choice is None or (st.pending is not None and st.why):
        # A decision waits (no fitting tracks, MPD away): say why, not what the last one was.
        return st.why or None
    # The music was chosen for an earlier photo and kept for this one: say so first.
    kept = ("" if choice.photo_seq == st.photo_seq
            else f"kept ({st.follow_reason.removesuffix(' → keep')}): ")
    uri = st.track.get("uri")
    # The queue entry, not just the file: the same track may also be playing from before.
    if choice.ids and st.track_id is not None:
        playing = next((p for p, i in zip(choice.picks, choice.ids, strict=False)
                        if i == st.track_id), None)
    else:
        playing = next((p for p in choice.picks if p.track.uri == uri), None)
    if playing is not None:
        return f"{kept}playing {pick_line(playing, choice)}"
    if fading_s is not None:
        when = f"after a {fading_s:.1f} s fade-out"
    elif st.player == "play" and st.track:
        left = f", in about {st.remaining_s:.0f} s" if st.remaining_s is not None else ""
        when = f"after '{st.track.get('title') or uri}' ends{left}"
    else:
        when = "when playback starts"
    return f"{kept}next, {when}: {pick_line(choice.picks[0], choice)}"


def target_fields(choice: Choice | None) -> dict[str, Any] | None:
    """The mood the last change chose tracks for: the photo's, placed in this library."""
    if choice is None:
        return None
    t = choice.placement.target
    return {"mood": t.word, "valence": round(t.valence, 3), "arousal": round(t.arousal, 3)}


def pick_fields(pick: Pick) -> dict[str, Any]:
    """One chosen track as `why` and the demo's summary both describe it (the same numbers)."""
    mood = pick.track.mood
    return {"uri": pick.track.uri, "label": pick.track.label, "title": pick.track.title,
            "mood": mood.word, "mood_source": pick.track.why, "valence": round(mood.valence, 3),
            "arousal": round(mood.arousal, 3), "confidence": round(mood.confidence, 3),
            "distance": round(pick.distance, 2), "fits": pick.fits, "order": pick.order}


def pick_mood(fields: Mapping[str, Any]) -> str:
    """"neutral, mood tag 'nostalgic'": the word of the track's mood, and where that came from."""
    return f"{fields['mood']}, {fields['mood_source']}"


def from_target(fields: Mapping[str, Any]) -> str:
    return f"{fields['distance']:.2f} from the target"


def pick_line(pick: Pick, choice: Choice) -> str:
    """'Title – Artist' (its mood word and its source) for the photo, how near the target (the
    photo's mood placed in this library) it lies, where the household's taste changed the choice,
    and why it plays before a nearer pick."""
    f, photo = pick_fields(pick), choice.placement.photo
    line = (f"'{f['label']}' ({pick_mood(f)}) for the {photo.word} photo (v {photo.valence:.2f}, "
            f"a {photo.arousal:.2f}), {from_target(f)} ({target_text(choice)})")
    if not pick.fits:
        line += " (nothing fits better)"
    # The household's taste says where it changed the choice (music/taste.py).
    _, taste, note = pick.why.partition("; taste: ")
    if taste:
        line += f" ({note})"
    return line + (f"; {pick.order}" if pick.order else "")


def target_text(choice: Choice) -> str:
    """'lively in this library: v 0.56, a 0.37', or 'the photo's own mood' when it is that."""
    if not choice.placement.library_fit:
        return "the photo's own mood"
    t = choice.placement.target
    return f"{t.word} in this library: v {t.valence:.2f}, a {t.arousal:.2f}"


def status_line(st: LoopState) -> str:
    """systemd's one-line status: the mood, whether following, what plays, any error."""
    mood = st.photo.word if st.photo else "no photo yet"
    track = st.track.get("title") or st.track.get("uri") or "nothing playing"
    return f"{mood}; {follow_label(st)}; {track}" + (f"; error: {st.error}" if st.error else "")
