"""Read the mood-relevant tags (mood, BPM, genre, key) and the names of one audio file with mutagen.

Formats are told apart by their tag container, not their extension: ID3 (MP3, AIFF, WAV), Vorbis
comments (FLAC, Ogg Vorbis/Opus/Speex), MP4 atoms (M4A, ALAC), APEv2 (WavPack, Musepack, Monkey's)
and ASF (WMA). Several values of one tag are joined with '; ', the form the lexicon splits again.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import mutagen
from mutagen.asf import ASFTags
from mutagen.id3 import ID3
from mutagen.mp4 import MP4Tags

from frame_daemon.errors import TrackError
from frame_daemon.file_kind import kind

log = logging.getLogger(__name__)

_MULTI = "; "

# Keys per container, tried in order; keys of dict-like containers are matched case-blind because
# taggers disagree ('----:com.apple.iTunes:MOOD' vs ':mood', 'INITIALKEY' vs 'initialkey').
_ID3_FRAMES: dict[str, tuple[str, ...]] = {
    "mood": ("TMOO", "TXXX:MOOD"),  # TMOO is ID3v2.4; v2.3 writers use a TXXX frame
    "bpm": ("TBPM", "TXXX:BPM"),
    "genre": ("TCON",),
    "key": ("TKEY", "TXXX:INITIALKEY", "TXXX:KEY"),
    "title": ("TIT2",),
    "artist": ("TPE1",),
    "album": ("TALB",),
}
# Vorbis comments and APEv2 use the same plain names.
_PLAIN_KEYS: dict[str, tuple[str, ...]] = {
    "mood": ("mood",),
    "bpm": ("bpm", "tempo"),
    "genre": ("genre",),
    "key": ("initialkey", "key"),
    "title": ("title",),
    "artist": ("artist",),
    "album": ("album",),
}
_MP4_KEYS: dict[str, tuple[str, ...]] = {
    "mood": ("----:com.apple.itunes:mood",),
    "bpm": ("tmpo", "----:com.apple.itunes:bpm"),
    "genre": ("©gen", "----:com.apple.itunes:genre"),
    "key": ("----:com.apple.itunes:initialkey", "----:com.apple.itunes:key"),
    "title": ("©nam",),
    "artist": ("©art",),
    "album": ("©alb",),
}
_ASF_KEYS: dict[str, tuple[str, ...]] = {
    "mood": ("wm/mood",),
    "bpm": ("wm/beatsperminute",),
    "genre": ("wm/genre",),
    "key": ("wm/initialkey",),
    "title": ("title",),
    "artist": ("author", "wm/albumartist"),
    "album": ("wm/albumtitle",),
}

_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")


@dataclass(frozen=True, slots=True)
class FileTags:
    """The tags of one file that the index uses; empty strings / None where the file has none."""

    path: Path
    mood: str = ""
    bpm: float | None = None
    genre: str = ""
    key: str = ""
    title: str = ""
    artist: str = ""
    album: str = ""


def parse_bpm(value: str | float | int | None) -> float | None:
    """A tempo from a BPM tag ('120', '127.5', '128 BPM', 96), or None if it holds no sane number."""
    if value is None:
        return None
    if isinstance(value, int | float):
        bpm = float(value)
    else:
        match = _NUMBER.search(value)
        if not match:
            return None
        bpm = float(match.group(0).replace(",", "."))
    return bpm if 0.0 < bpm < 1000.0 else None


def _clean(values: Iterable[str]) -> list[str]:
    return [v.strip() for v in values if v and v.strip()]


def _text(value: Any) -> list[str]:
    """The text values of one tag entry, whatever container it came from."""
    if isinstance(value, list | tuple):
        return [s for item in value for s in _text(item)]
    if isinstance(value, bytes):  # MP4 freeform atoms hold UTF-8 bytes
        return _clean([value.decode("utf-8", "replace")])
    if isinstance(value, str):
        return _clean(value.split("\0"))  # APEv2 and ID3v2.4 separate several values with NUL
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [str(value)]
    inner = getattr(value, "value", None)  # ASF attributes
    if inner is not None and inner is not value:
        return _text(inner)
    return _clean(str(value).split("\0"))  # APEv2 text values


def _id3_values(tags: ID3, frame_key: str) -> list[str]:
    frame_id, _, desc = frame_key.partition(":")
    values: list[str] = []
    for frame in tags.getall(frame_id):
        if desc and getattr(frame, "desc", "").lower() != desc.lower():
            continue
        # TCON.genres resolves ID3v1 numbers like '(17)' to 'Rock'.
        texts = frame.genres if frame_id == "TCON" else frame.text
        values.extend(_clean(str(t) for t in texts))
    return values


def _fields_from_id3(tags: ID3) -> dict[str, list[str]]:
    fields = {}
    for name, keys in _ID3_FRAMES.items():
        for key in keys:
            values = _id3_values(tags, key)
            if values:
                fields[name] = values
                break
    return fields


def _fields_from_mapping(tags: Any, table: dict[str, tuple[str, ...]]) -> dict[str, list[str]]:
    by_lower = {str(k).lower(): k for k in tags.keys()}  # noqa: SIM118  (not all containers iterate keys)
    fields = {}
    for name, keys in table.items():
        for key in keys:
            if key in by_lower:
                values = _text(tags[by_lower[key]])
                if values:
                    fields[name] = values
                    break
    return fields


def _fields(tags: Any) -> dict[str, list[str]]:
    if tags is None:
        return {}
    if isinstance(tags, ID3):
        return _fields_from_id3(tags)
    if isinstance(tags, MP4Tags):
        return _fields_from_mapping(tags, _MP4_KEYS)
    if isinstance(tags, ASFTags):
        return _fields_from_mapping(tags, _ASF_KEYS)
    if hasattr(tags, "keys"):  # Vorbis comments (FLAC, Ogg) and APEv2
        return _fields_from_mapping(tags, _PLAIN_KEYS)
    log.debug("unknown tag container %s", type(tags).__name__)
    return {}


def _os_reason(err: OSError) -> str:
    if isinstance(err, FileNotFoundError):
        return "no such file"
    if isinstance(err, PermissionError):
        return "permission denied"
    if isinstance(err, IsADirectoryError):
        return "is a directory, not an audio file"
    return f"cannot read ({err.strerror or err})"


def refuse_special_file(path: Path) -> None:
    """TrackError for a FIFO, device or socket under a music name: opening a FIFO waits for a
    writer (forever), a device never ends. A missing file or a folder is left to the caller."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise TrackError(path, f"is {kind(mode)}, not an audio file")


# mutagen holds a file's whole tag block in memory, several times over (a 150 MB cover picture in
# an MP3 took 600 MB): past this, MPD's tags are used. Covers are a few MB; 16 MB leaves room.
MAX_TAG_BYTES = 16 << 20
_MAX_HEADERS = 1000  # FLAC metadata blocks or MP4 top-level atoms looked at


def tag_block_size(path: Path) -> int:
    """The bytes of the ID3v2 tag and FLAC metadata blocks at the start of the file, or of an MP4's
    moov atom (where pictures are kept), read from their headers alone; 0 for other formats."""
    size = 0
    try:
        with open(path, "rb") as f:
            head = f.read(10)
            if head[4:8] == b"ftyp":
                return _mp4_moov_size(f)
            if head[:3] == b"ID3" and len(head) == 10:
                size = 10 + sum((b & 0x7F) << (7 * (3 - i)) for i, b in enumerate(head[6:10]))
                f.seek(size)  # a FLAC may follow its ID3 tag
                head = f.read(4)
            if head[:4] == b"fLaC":
                f.seek(size + 4)
                for _ in range(_MAX_HEADERS):  # a file has a handful; crafted, millions
                    if size > MAX_TAG_BYTES:
                        break
                    block = f.read(4)
                    if len(block) < 4:
                        break
                    length = int.from_bytes(block[1:4], "big")
                    size += 4 + length
                    f.seek(length, os.SEEK_CUR)
                    if block[0] & 0x80:  # the last metadata block
                        break
    except OSError:
        return 0  # mutagen says why
    return size


def _mp4_moov_size(f: IO[bytes]) -> int:
    """The size of the top-level moov atom (mutagen reads its tags, cover included, whole)."""
    where = 0
    for _ in range(_MAX_HEADERS):
        f.seek(where)
        header = f.read(16)
        if len(header) < 8:
            return 0
        size = int.from_bytes(header[:4], "big")
        if size == 1 and len(header) == 16:  # a 64-bit size follows the type
            size = int.from_bytes(header[8:16], "big")
        if header[4:8] == b"moov":
            return size
        if size < 8:  # 0: to the end of the file; less: damaged (mutagen says so)
            return 0
        where += size
    return 0


def read_tags(path: str | os.PathLike[str]) -> FileTags:
    """Read one audio file's tags; raise TrackError naming the file if it cannot be read as audio."""
    path = Path(path)
    refuse_special_file(path)
    if (size := tag_block_size(path)) > MAX_TAG_BYTES:
        raise TrackError(path, f"its tags take {size / 2**20:.0f} MB (embedded pictures?), more "
                               f"than the {MAX_TAG_BYTES >> 20} MB read here")
    try:
        audio = mutagen.File(path)
    except (mutagen.MutagenError, OSError) as e:
        # mutagen wraps the OSError of opening the file in its own error; say which it was.
        cause = e if isinstance(e, OSError) else (e.__cause__ or e.__context__)
        if isinstance(cause, OSError):
            raise TrackError(path, _os_reason(cause)) from e
        raise TrackError(path, f"unreadable or corrupt audio file ({e})") from e
    except Exception as e:
        # mutagen's parsers can fail on corrupt data with any error (struct.error, IndexError, ...);
        # one bad file must become one logged, skipped track, never a traceback.
        raise TrackError(path, f"corrupt audio file ({type(e).__name__}: {e})") from e
    if audio is None:
        raise TrackError(path, "not an audio format mutagen recognises")
    fields = _fields(audio.tags)

    def first(name: str) -> str:
        return fields.get(name, [""])[0]

    return FileTags(
        path=path,
        mood=_MULTI.join(fields.get("mood", [])),
        bpm=parse_bpm(first("bpm") or None),
        genre=_MULTI.join(fields.get("genre", [])),
        key=first("key"),
        title=first("title"),
        artist=first("artist"),
        album=first("album"),
    )
