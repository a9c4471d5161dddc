"""`frame-daemon feedback` through a real broker, and `frame-daemon taste` on the daemon's file."""

from __future__ import annotations

import json
import time

from frame_daemon.cli import main
from frame_daemon.mood import Mood
from frame_daemon.music.taste import Arrival, Verdict
from frame_daemon.music.taste_store import TasteStore
from servers import Mosquitto, MqttRecorder, wait_for


def write_config(tmp_path, port: int = 1) -> str:
    path = tmp_path / "frame.toml"
    path.write_text(f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\ndevice_id = "den"\n'
                    f'[state]\ndirectory = "{tmp_path / "state"}"\n')
    return str(path)


def test_feedback_publishes_the_verdict_and_leaves_availability_alone(tmp_path, capsys):
    broker = Mosquitto(tmp_path / "mqtt")
    broker.start()
    recorder = MqttRecorder(broker.port, ["frame-daemon/den/#"])
    try:
        config = write_config(tmp_path, broker.port)
        assert main(["feedback", "doesnt-fit", "--config", config]) == 0
        wait_for(lambda: recorder.text("frame-daemon/den/set/feedback") == "doesnt_fit")
        assert main(["feedback", "fits", "--config", config]) == 0
        wait_for(lambda: recorder.count("frame-daemon/den/set/feedback") == 2)
        assert recorder.text("frame-daemon/den/set/feedback") == "fits"
        assert recorder.count("frame-daemon/den/availability") == 0  # the frame's, not ours
    finally:
        recorder.close()
        broker.stop()
    capsys.readouterr()
    assert main(["feedback", "fits", "--config", write_config(tmp_path, 1)]) == 1
    assert "cannot reach the MQTT broker at 127.0.0.1:1" in capsys.readouterr().err


def test_taste_shows_what_was_learned_and_reset_forgets_it(tmp_path, capsys):
    config = write_config(tmp_path)
    (tmp_path / "state").mkdir()
    with TasteStore.in_directory(tmp_path / "state") as store:
        for i in range(3):
            store.add(Verdict(False, Arrival.BUTTON, time.time() - 60 * i, Mood(0.7, -0.8),
                              Mood(0.7, -0.8),
                              f"jazz/{i}.mp3", Mood(0.7, -0.7, 0.9), "Jazz", f"Player {i}"))
    assert main(["taste", "--config", config, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["verdicts"] == 3 and shown["disliked_genres"] == ["jazz"]
    assert main(["taste", "--config", config]) == 0
    assert "disliked genres: jazz" in capsys.readouterr().out
    assert main(["taste", "--config", config, "--reset"]) == 0
    assert "forgot 3 verdicts" in capsys.readouterr().out
    assert main(["taste", "--config", config, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["verdicts"] == 0


def test_taste_says_how_the_learned_direction_ranks_the_tracks(tmp_path, capsys):
    # Calmer tracks fitted, livelier ones did not, and nothing calmer was turned down.
    config = write_config(tmp_path)
    (tmp_path / "state").mkdir()
    calm = Mood(0.7, -0.6)
    with TasteStore.in_directory(tmp_path / "state") as store:
        for i in range(40):
            fits = i % 2 == 0
            track = Mood(0.7, calm.arousal + (-0.3 if fits else 0.1) + 0.005 * (i % 5), 0.9)
            store.add(Verdict(fits, Arrival.BUTTON, time.time() - 60 * i, calm, calm,
                              f"folk/{i}.mp3", track, "Folk", f"Player {i % 4}"))
    assert main(["taste", "--config", config]) == 0
    out = capsys.readouterr().out
    assert ("leaning: fitting tracks livelier than the moved target rank lower (up to 1.0); "
            "calmer ones rank nearer by 100% of how far calmer they lie (one-sided 1.00:") in out, out
    assert main(["taste", "--config", config, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["household_shift"]["one_sided"] == 1.0


def test_taste_says_where_the_turned_down_music_stops(tmp_path, capsys):
    # Judged tracks near the target; only those 0.08 calmer and more fitted: the limit.
    config = write_config(tmp_path)
    (tmp_path / "state").mkdir()
    calm = Mood(0.7, -0.6)
    with TasteStore.in_directory(tmp_path / "state") as store:
        for i in range(31):
            track = Mood(0.7 + 0.01 * (i % 7), calm.arousal - 0.147 + 0.01 * i, 0.9)
            store.add(Verdict(track.arousal < calm.arousal - 0.08, Arrival.BUTTON,
                              time.time() - 60 * i, calm, calm, f"folk/{i}.mp3", track, "Folk"))
    assert main(["taste", "--config", config]) == 0
    out = capsys.readouterr().out
    assert main(["taste", "--config", config, "--json"]) == 0
    shift = json.loads(capsys.readouterr().out)["household_shift"]
    assert 0.07 < shift["limit"] < 0.09 and abs(shift["arousal"] + shift["limit"] + 0.1) < 0.002
    assert (f"limit: what it turned down reaches {shift['limit']:.2f} calmer, so the shift goes "
            "0.10 beyond it") in out, out
