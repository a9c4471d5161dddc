"""Transitions you hear: follow fades out and starts the new music, gentle waits, off never touches
the music, a person's music is never cut short, and the user's volume always comes back exactly,
also when MPD, the connection or the daemon dies mid-fade. Real MPD (software mixer), real broker."""

from __future__ import annotations

import contextlib
import signal

import pytest

from harness import TEST_FOLLOW, DaemonProcess, make_servers, mpd_queue, mpd_status, wait_for, write_config
from rig import STATE, two_photos_and_a_frame
from servers import MqttRecorder, TcpProxy

USER_VOLUME = 73
FADE_S = 2.0


@pytest.fixture
def fade_rig(tmp_path, model_json, demo_photos):
    """Like `rig`, but MPD has a volume (software mixer) and the daemon reaches it via a proxy."""
    mpd, broker = make_servers(tmp_path, mixer="software")
    proxy = TcpProxy(mpd.port)
    photos, current = two_photos_and_a_frame(tmp_path, demo_photos)
    recorder = MqttRecorder(broker.port, ["frame-daemon/#"])
    rig = type("FadeRig", (), dict(mpd=mpd, broker=broker, proxy=proxy, photos=photos,
                                   current=current, recorder=recorder, tmp=tmp_path, daemon=None))

    def start(mode: str = "follow", fade_s: float = FADE_S) -> None:
        follow = TEST_FOLLOW.replace("fade_s = 1.0", f"fade_s = {fade_s}")
        config = write_config(tmp_path / "frame.toml", photo=current, mpd=mpd, mqtt=broker,
                              state_dir=tmp_path / "state", mode=mode, follow=follow,
                              mpd_port=proxy.port)
        rig.daemon = DaemonProcess(config, tmp_path / "daemon.log")
        rig.daemon.start()

    rig.start = start
    yield rig
    if rig.daemon and rig.daemon.alive():
        rig.daemon.stop(signal.SIGKILL)
    recorder.close()
    proxy.close()
    for server in (mpd, broker):
        with contextlib.suppress(Exception):  # best-effort cleanup
            server.stop()


def mpd_call(rig, name: str, *args):
    c = rig.mpd.client()
    try:
        return getattr(c, name)(*args)
    finally:
        c.disconnect()


def volume(rig) -> int:
    return int(mpd_status(rig.mpd)["volume"])


def show(rig, name: str) -> None:
    from harness import show_photo

    show_photo(rig.current, rig.photos / name)


def playing_first_tracks(rig) -> dict:
    """Start following: wait until the first tracks play, then set the user's volume."""
    s = wait_for(lambda: (s := rig.recorder.json(STATE)) and s.get("queued") and s, 30,
                 what="first tracks queued")
    wait_for(lambda: mpd_status(rig.mpd)["state"] == "play", 10, what="MPD playing")
    mpd_call(rig, "setvol", USER_VOLUME)
    return s


def new_tracks(rig, first: dict) -> dict:
    return wait_for(lambda: (s := rig.recorder.json(STATE)) and s["queued"] != first["queued"] and s,
                    20, what="new tracks for the new photo")


def into_a_fade(rig) -> dict:
    """Start following, show a photo of another mood, and return once the fade to its tracks is
    under way (the first photo's state, as `playing_first_tracks` gave it)."""
    rig.start()
    first = playing_first_tracks(rig)
    show(rig, "bright.jpg")
    new_tracks(rig, first)
    wait_for(lambda: volume(rig) < USER_VOLUME * 0.7, 10, interval=0.02, what="fade under way")
    return first


def holds(condition, seconds: float, what: str) -> None:
    """Assert `condition` stays true for a whole window (longer than a fade would take)."""
    import time

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        assert condition(), f"no longer true: {what}"
        time.sleep(0.05)


def playing_uri(rig) -> str | None:
    return (mpd_call(rig, "currentsong") or {}).get("file")


def test_follow_fades_out_then_plays_the_new_music_at_the_users_exact_volume(fade_rig):
    rig = fade_rig
    rig.start()
    first = playing_first_tracks(rig)
    before = playing_uri(rig)
    show(rig, "bright.jpg")
    s = new_tracks(rig, first)
    # During the fade the old track keeps playing, ever quieter.
    quiet = wait_for(lambda: (v := volume(rig)) < USER_VOLUME // 2 and v + 1, 10, interval=0.02,
                     what="volume ramping down")
    assert quiet - 1 < USER_VOLUME // 2 and playing_uri(rig) == before
    # Then the first new track starts and the volume is the user's again, exactly.
    wait_for(lambda: playing_uri(rig) == s["queued"][0], 10, what="first new track playing")
    wait_for(lambda: volume(rig) == USER_VOLUME, 5, what="volume restored")
    assert mpd_status(rig.mpd)["state"] == "play"
    # And Home Assistant's "why" is about the track that now plays.
    why = wait_for(lambda: (st := rig.recorder.json(STATE)) and st["why"].startswith("playing") and st,
                   10, what="why about the playing track")["why"]
    assert why.startswith("playing '") and why.split("'")[1].split(" – ")[0] == \
        mpd_call(rig, "currentsong")["title"]


@pytest.mark.parametrize("how", ["mpd restarts", "connection drops", "daemon stops"])
def test_the_users_volume_comes_back_when_the_fade_is_cut_short(fade_rig, how):
    rig = fade_rig
    into_a_fade(rig)
    if how == "mpd restarts":
        rig.mpd.stop()  # MPD saves the half-faded volume in its state file...
        rig.mpd.start()
        assert volume(rig) < USER_VOLUME  # ...and comes back with it
    elif how == "connection drops":
        rig.proxy.cut()
    else:
        assert rig.daemon.stop(signal.SIGTERM) == 0
    wait_for(lambda: volume(rig) == USER_VOLUME, 20, what="the user's volume restored")
    if how != "daemon stops":
        assert rig.daemon.alive()
        # And it stays: no half-finished ramp carries on afterwards.
        wait_for(lambda: (st := rig.recorder.json(STATE)) and st["mpd"] == "connected", 20,
                 what="MPD connected again")
        assert volume(rig) == USER_VOLUME


def test_gentle_lets_the_current_track_finish(fade_rig):
    rig = fade_rig
    rig.start("gentle")
    first = playing_first_tracks(rig)
    before = mpd_call(rig, "currentsong")
    show(rig, "bright.jpg")
    s = new_tracks(rig, first)
    files = [e["file"] for e in mpd_queue(rig.mpd)]
    pos = int(before["pos"])
    assert files[pos + 1:pos + 1 + len(s["queued"])] == s["queued"]  # next, after the current one
    assert s["why"].startswith(f"next, after '{before['title']}' ends")
    holds(lambda: mpd_call(rig, "currentsong")["id"] == before["id"] and volume(rig) == USER_VOLUME,
          FADE_S + 2, "the current track plays on at the user's volume")


def test_off_never_touches_the_music(fade_rig):
    rig = fade_rig
    for uri in ("Lake_Trio/calm_lake.flac", "Iron_Teeth/angry_riff.flac"):
        mpd_call(rig, "add", uri)
    mpd_call(rig, "play")
    mpd_call(rig, "setvol", USER_VOLUME)
    queue = mpd_queue(rig.mpd)
    song = mpd_status(rig.mpd)["songid"]
    rig.start("off")
    wait_for(lambda: (s := rig.recorder.json(STATE)) and s.get("mood") and s["follow"] == "off", 30,
             what="first photo scored")
    count = rig.recorder.count(STATE)
    show(rig, "bright.jpg")
    wait_for(lambda: rig.recorder.count(STATE) > count, 20, what="second photo published")
    holds(lambda: mpd_queue(rig.mpd) == queue and mpd_status(rig.mpd)["songid"] == song
          and volume(rig) == USER_VOLUME, FADE_S + 2, "the music untouched")


def test_a_persons_track_is_never_faded_or_cut_short_and_their_queue_stays(fade_rig):
    rig = fade_rig
    theirs = ["Lake_Trio/calm_lake.flac", "Iron_Teeth/angry_riff.flac", "Turbo/excited_run.flac"]
    their_ids = [mpd_call(rig, "addid", uri) for uri in theirs]
    mpd_call(rig, "play", 0)
    mpd_call(rig, "setvol", USER_VOLUME)
    song = mpd_status(rig.mpd)["songid"]
    rig.start("follow")
    first = wait_for(lambda: (s := rig.recorder.json(STATE)) and s.get("queued") and s, 30,
                     what="first tracks queued")
    show(rig, "bright.jpg")
    s = new_tracks(rig, first)
    files = [e["file"] for e in mpd_queue(rig.mpd)]
    # The new music waits after their track; their entries are all there, in their order.
    assert files[1:1 + len(s["queued"])] == s["queued"]
    # (By queue id: the frame may choose one of their tracks too, as an entry of its own.)
    assert [e["id"] for e in mpd_queue(rig.mpd) if e["id"] in their_ids] == their_ids
    assert s["why"].startswith("next, after 'Still Water' ends")
    holds(lambda: mpd_status(rig.mpd)["songid"] == song and volume(rig) == USER_VOLUME, FADE_S + 2,
          "their track plays on at their volume")


def killed_mid_fade(rig) -> int:
    """Start following, start a fade, SIGKILL the daemon half-way; the volume MPD is left with."""
    into_a_fade(rig)
    rig.daemon.stop(signal.SIGKILL)  # no `finally`, no goodbye: as a power cut would
    low = volume(rig)
    assert low < USER_VOLUME
    return low


def test_the_users_volume_comes_back_after_the_daemon_is_killed_mid_fade(fade_rig):
    rig = fade_rig
    killed_mid_fade(rig)
    rig.start()
    wait_for(lambda: volume(rig) == USER_VOLUME, 30, what="the user's volume restored at start")
    assert "volume restored to 73" in rig.daemon.log()
    assert not (rig.tmp / "state" / "owed_volume.json").exists()  # paid, and so forgotten


def test_a_volume_a_person_set_after_the_crash_is_theirs(fade_rig):
    rig = fade_rig
    low = killed_mid_fade(rig)
    theirs = low + 20  # not where the ramp left it (nor the step before)
    mpd_call(rig, "setvol", theirs)
    rig.start()
    wait_for(lambda: "set by someone else since the fade was cut short" in rig.daemon.log(), 30,
             what="the person's volume recognised at start")
    wait_for(lambda: (st := rig.recorder.json(STATE)) and st["mpd"] == "connected", 20,
             what="MPD connected")
    assert volume(rig) == theirs and f"volume restored to {USER_VOLUME}" not in rig.daemon.log()


@pytest.mark.parametrize("damaged", ['{"owed": 1e999, "ramp": [40]}', "[" * 3000])
def test_a_damaged_owed_volume_file_is_ignored_and_the_daemon_starts(fade_rig, damaged):
    # A power cut mid-write, a disk error: the file is only a promise, so it is dropped with one
    # line; it must not stop every start (systemd would restart a dying daemon for ever).
    rig = fade_rig
    (rig.tmp / "state").mkdir()
    (rig.tmp / "state" / "owed_volume.json").write_text(damaged)
    rig.start()
    playing_first_tracks(rig)
    log = rig.daemon.log()
    assert "owed volume file" in log and "unreadable" in log and "Traceback" not in log, log[-3000:]
    assert not (rig.tmp / "state" / "owed_volume.json").exists()
