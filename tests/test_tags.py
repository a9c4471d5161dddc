"""Reading mood, BPM, genre and key from real audio files that the tests write and tag."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from mutagen.flac import FLAC, Picture
from mutagen.id3 import APIC, ID3, TBPM, TCON, TIT2, TKEY, TMOO, TPE1, TXXX
from mutagen.mp4 import MP4, MP4Cover
from mutagen.oggvorbis import OggVorbis

from frame_daemon.errors import FrameDaemonError, TrackError
from frame_daemon.music.tags import MAX_TAG_BYTES, FileTags, parse_bpm, read_tags, tag_block_size

SAMPLE_RATE = 8000
CAN_WRITE_MP3 = "MP3" in sf.available_formats()


def write_tone(path: Path, seconds: float = 0.5, freq: float = 440.0) -> Path:
    """A short sine tone in the format the file name says (.flac, .ogg, .mp3)."""
    t = np.arange(int(SAMPLE_RATE * seconds)) / SAMPLE_RATE
    fmt = {".flac": "FLAC", ".ogg": "OGG", ".mp3": "MP3"}[path.suffix]
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, (0.2 * np.sin(2 * np.pi * freq * t)).astype(np.float32), SAMPLE_RATE, format=fmt)
    return path


def write_tagged(path: Path, **tags: str | list[str]) -> Path:
    """A tone file with Vorbis comments (FLAC or Ogg Vorbis): write_tagged(p, MOOD='calm', BPM='72')."""
    write_tone(path)
    audio = FLAC(path) if path.suffix == ".flac" else OggVorbis(path)
    for key, value in tags.items():
        audio[key] = value
    audio.save()
    return path


def test_flac_vorbis_comments(tmp_path):
    path = write_tagged(tmp_path / "a.flac", TITLE="Slow Water", ARTIST="Nobody", ALBUM="Tides",
                        GENRE="Ambient", MOOD="calm", BPM="72", INITIALKEY="Am")
    assert read_tags(path) == FileTags(path=path, mood="calm", bpm=72.0, genre="Ambient", key="Am",
                                       title="Slow Water", artist="Nobody", album="Tides")


def test_ogg_multi_valued_and_lower_case_keys(tmp_path):
    path = write_tagged(tmp_path / "b.ogg", title="Two", mood=["happy", "energetic"],
                        genre=["Rock", "Pop"], bpm="127.5 BPM", artist=["First", "Second"])
    tags = read_tags(path)
    assert tags.mood == "happy; energetic"
    assert tags.genre == "Rock; Pop"
    assert tags.bpm == 127.5
    assert tags.artist == "First"  # the first of repeated names, like MPD
    assert tags.key == ""


def test_untagged_file_reads_empty(tmp_path):
    path = write_tone(tmp_path / "plain.flac")
    assert read_tags(path) == FileTags(path=path)


@pytest.mark.skipif(not CAN_WRITE_MP3, reason="this libsndfile cannot write MP3, so no MP3 to tag")
def test_mp3_id3_frames(tmp_path):
    path = write_tone(tmp_path / "c.mp3")
    id3 = ID3()
    id3.add(TMOO(encoding=3, text=["melancholy"]))
    id3.add(TBPM(encoding=3, text=["64"]))
    id3.add(TCON(encoding=3, text=["(0)"]))  # an ID3v1 genre number: 0 is Blues
    id3.add(TKEY(encoding=3, text=["Dm"]))
    id3.add(TIT2(encoding=3, text=["Low"]))
    id3.add(TPE1(encoding=3, text=["Someone"]))
    id3.save(path)
    assert read_tags(path) == FileTags(path=path, mood="melancholy", bpm=64.0, genre="Blues", key="Dm",
                                       title="Low", artist="Someone")


@pytest.mark.skipif(not CAN_WRITE_MP3, reason="this libsndfile cannot write MP3, so no MP3 to tag")
def test_mp3_id3v23_mood_in_txxx(tmp_path):
    path = write_tone(tmp_path / "d.mp3")
    id3 = ID3()
    id3.add(TXXX(encoding=3, desc="MOOD", text=["dreamy"]))
    id3.save(path, v2_version=3)
    assert read_tags(path).mood == "dreamy"


@pytest.mark.parametrize(("name", "content", "reason"), [
    ("garbage.flac", b"\x00garbage, not audio" * 50, "corrupt"),
    ("garbage.mp3", b"\x00garbage, not audio" * 50, "corrupt"),
    ("notes.txt", b"just some text\n", "not an audio format"),
    ("empty.flac", b"", "corrupt"),
])
def test_unreadable_files_raise_track_error(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(TrackError, match=reason) as info:
        read_tags(path)
    assert info.value.path == path
    assert str(path) in str(info.value)
    assert isinstance(info.value, FrameDaemonError)


def test_tags_too_large_to_hold_are_not_read_and_say_so(tmp_path):
    # mutagen holds the whole tag block, several times over: a 150 MB cover in an MP3 took 600 MB
    # more of the daemon's memory while it indexed (most of a small Pi's).
    cover = Picture()
    cover.type, cover.mime, cover.data = 3, "image/png", bytes(10 << 20)
    flac = write_tagged(tmp_path / "booklet.flac", TITLE="Big Cover", MOOD="calm")
    audio = FLAC(flac)
    audio.add_picture(cover)
    audio.add_picture(cover)  # a booklet: a FLAC block holds 16 MB at most
    audio.save()
    with pytest.raises(TrackError, match=r"its tags take 20 MB \(embedded pictures\?\), more "
                                          r"than the 16 MB read here"):
        read_tags(flac)
    cover.data = bytes(1 << 20)  # a large cover, but a cover
    audio.clear_pictures()
    audio.add_picture(cover)
    audio.save()
    assert read_tags(flac).mood == "calm"
    assert 1 << 20 < tag_block_size(flac) < 2 << 20  # read from the blocks' headers
    if CAN_WRITE_MP3:
        mp3 = write_tone(tmp_path / "big.mp3")
        id3 = ID3()
        id3.add(APIC(encoding=3, mime="image/png", type=3, desc="", data=bytes(MAX_TAG_BYTES)))
        id3.save(mp3)
        with pytest.raises(TrackError, match="its tags take 16 MB"):
            read_tags(mp3)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
def test_an_m4a_whose_cover_is_too_large_to_hold_is_not_read(tmp_path):
    path = tmp_path / "tone.m4a"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i",
                    "sine=frequency=440:duration=1", "-c:a", "aac", str(path)], check=True, timeout=60)
    audio = MP4(path)
    audio["\xa9nam"] = ["Big Cover"]
    audio["covr"] = [MP4Cover(bytes(MAX_TAG_BYTES), MP4Cover.FORMAT_PNG)]
    audio.save()
    with pytest.raises(TrackError, match="its tags take 16 MB"):
        read_tags(path)
    audio["covr"] = [MP4Cover(bytes(1 << 20), MP4Cover.FORMAT_PNG)]
    audio.save()
    assert read_tags(path).title == "Big Cover"


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(TrackError, match="no such file"):
        read_tags(tmp_path / "gone.flac")
    with pytest.raises(TrackError, match="directory"):
        read_tags(tmp_path)


@pytest.mark.parametrize(("text", "bpm"), [
    ("120", 120.0), ("127.5", 127.5), ("128 BPM", 128.0), ("96,5", 96.5), (140, 140.0),
    ("fast", None), ("", None), ("0", None), (None, None), ("99999", None),
])
def test_parse_bpm(text, bpm):
    assert parse_bpm(text) == bpm
