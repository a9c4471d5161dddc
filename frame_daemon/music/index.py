"""The track index: every MPD track with its tags and every mood estimate, kept in SQLite.

Keyed by MPD URI. A refresh walks MPD's `listallinfo()` and re-reads only tracks whose MPD
last-modified time, or the file's mtime and size, changed since the last refresh. Each track keeps
one estimate per source (tag, analysis, genre, neutral) in its own table, so `match` can show why a
track was chosen; the track's combined mood is the most trusted estimate present (MoodSource order).
An analysis may also come from MPD's sticker database, made by another machine that reads the files
(`apply_shared`); `unshared` lists the analyses made here that MPD does not hold yet.

Threading: a TrackIndex has no lock of its own. Use it from one thread at a time (the daemon's
loop, or a worker that owns it while it runs); the connection is opened with
check_same_thread=False only so that it may be handed from one such owner to the next.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from frame_daemon.errors import TrackError
from frame_daemon.mood import Mood
from frame_daemon.music.lexicon import NEUTRAL, estimates_from_tags
from frame_daemon.music.shared_analysis import ANALYSIS_VERSION, SharedAnalysis
from frame_daemon.music.tags import FileTags, read_tags
from frame_daemon.music.track import MoodEstimate, MoodSource, Track
from frame_daemon.sqlite_schema import SchemaTooNew, Step, add_column, connect, migrate

log = logging.getLogger(__name__)


def _add_analysis_version(conn: sqlite3.Connection) -> None:
    """The analysis model's version on each estimate ('' for other sources). Analyses made before
    versions were kept came from the first versioned model, "audio-1"."""
    add_column("estimates", "version", "TEXT NOT NULL DEFAULT ''")(conn)
    conn.execute(f"UPDATE estimates SET version = 'audio-1' WHERE source = '{MoodSource.ANALYSIS}'")


# The schema, step by step (frame_daemon/sqlite_schema.py): a file's user_version is the number
# of steps it has; a step is never changed once released, only followed by another.
_STEPS: tuple[Step, ...] = (
    f"""
CREATE TABLE IF NOT EXISTS tracks (
    uri TEXT PRIMARY KEY,
    title TEXT NOT NULL DEFAULT '',
    artist TEXT NOT NULL DEFAULT '',
    album TEXT NOT NULL DEFAULT '',
    genre TEXT NOT NULL DEFAULT '',
    duration REAL NOT NULL DEFAULT 0,
    mpd_modified TEXT NOT NULL DEFAULT '',
    file_mtime_ns INTEGER,          -- NULL: the music directory was not readable, or no such file
    file_size INTEGER,
    tag_mood TEXT NOT NULL DEFAULT '',
    tag_bpm REAL,
    tag_key TEXT NOT NULL DEFAULT '',
    -- the combined mood, kept here so listing tracks needs no join
    valence REAL NOT NULL DEFAULT 0,
    arousal REAL NOT NULL DEFAULT 0,
    confidence REAL NOT NULL DEFAULT 0,
    source TEXT NOT NULL DEFAULT '{MoodSource.NEUTRAL}',
    why TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS estimates (
    uri TEXT NOT NULL REFERENCES tracks(uri) ON DELETE CASCADE,
    source TEXT NOT NULL,
    valence REAL NOT NULL,
    arousal REAL NOT NULL,
    confidence REAL NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (uri, source)
);
""",
    # Why audio analysis failed for this version of the file ('' = not tried or fine). Files of
    # version 1 written after the column came (without a step of its own) have it already.
    add_column("tracks", "analysis_error", "TEXT NOT NULL DEFAULT ''"),
    # Analyses shared through MPD's stickers (frame_daemon/music/shared_analysis.py).
    _add_analysis_version,
    # shared = 1: the estimate was read from MPD's sticker, not made here.
    add_column("estimates", "shared", "INTEGER NOT NULL DEFAULT 0"),
    # Our sticker's value in MPD as last read or written ('' = none): what is left to share.
    add_column("tracks", "sticker", "TEXT NOT NULL DEFAULT ''"),
    # The music tagger's top tags of an analysis ("mellow, acoustic, chill"; '' before audio-2).
    add_column("estimates", "tags", "TEXT NOT NULL DEFAULT ''"),
)
SCHEMA_VERSION = len(_STEPS)

_PRIORITY = {source: rank for rank, source in enumerate(MoodSource)}
_TRACK_COLUMNS = "uri, title, artist, album, genre, duration, valence, arousal, confidence, source, why"


@dataclass(frozen=True, slots=True)
class RefreshStats:
    """What one refresh did; `failed` lists (uri, reason) for files whose tags could not be read."""

    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    partial: bool = False  # MPD was scanning its library: the tracks it did not list were kept


@dataclass(frozen=True, slots=True)
class SharedStats:
    """What one read of MPD's stickers brought: `found` values, `used` as analyses (`stale` of
    them from another model or an older file; `new` of them not in use before), `unreadable`
    not in our format."""

    found: int = 0
    used: int = 0
    stale: int = 0
    unreadable: int = 0
    new: int = 0


@dataclass(frozen=True, slots=True)
class MpdSong:
    """The parts of one `listallinfo()` entry the index keeps (`parse`: from MPD's dict; a
    library is listed as these, `MpdLink.list_all(keep=MpdSong.parse)`, so that MPD's dicts of
    100,000 songs never all sit in memory)."""

    uri: str
    title: str
    artist: str
    album: str
    genre: str
    duration: float
    modified: str
    mood: str

    @classmethod
    def parse(cls, song: Mapping[str, Any]) -> MpdSong:
        duration = _float(_first(song.get("duration"))) or _float(_first(song.get("time")))
        return cls(uri=_first(song["file"]), title=_first(song.get("title")),
                   artist=_first(song.get("artist")), album=_first(song.get("album")),
                   genre=_joined(song.get("genre")), duration=duration or 0.0,
                   modified=_first(song.get("last-modified")), mood=_joined(song.get("mood")))


def _values(value: Any) -> list[str]:
    """MPD repeats a tag by giving a list; python-mpd2 passes a single value as a plain string."""
    if value is None:
        return []
    items = value if isinstance(value, list | tuple) else [value]
    return [str(v).strip() for v in items if str(v).strip()]


def _first(value: Any) -> str:
    values = _values(value)
    return values[0] if values else ""


def _joined(value: Any) -> str:
    return "; ".join(dict.fromkeys(_values(value)))


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _is_local(uri: str) -> bool:
    # Stream URLs and absolute paths are not files under the music directory.
    return "://" not in uri and not uri.startswith("/")


SHARED_PAGE = 5_000  # tracks taken in from MPD's stickers at a time (`apply_shared`)
_INSERT_ESTIMATE = ("INSERT OR REPLACE INTO estimates (uri, source, valence, arousal, confidence, detail, "
                    "version, shared, tags) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
# TrackIndex._recombine in one statement, for many tracks at once: the most trusted estimate.
_RECOMBINE = f"""
UPDATE tracks SET (valence, arousal, confidence, source, why) = (
    SELECT valence, arousal, confidence, source, detail FROM estimates e WHERE e.uri = tracks.uri
    ORDER BY CASE source {" ".join(f"WHEN '{s}' THEN {r}" for s, r in _PRIORITY.items())} END
    LIMIT 1)
WHERE uri = ? AND EXISTS (SELECT 1 FROM estimates e WHERE e.uri = tracks.uri)"""


def _estimate_row(uri: str, estimate: MoodEstimate, version: str = "",
                  shared: bool = False, tags: str = "") -> tuple[Any, ...]:
    m = estimate.mood
    return (uri, str(estimate.source), m.valence, m.arousal, m.confidence, estimate.detail, version,
            int(shared), tags)


class TrackIndex:
    """SQLite index of MPD's tracks and their mood estimates (see the module docstring)."""

    batch_size: int = 200  # tracks written per transaction: an interrupted refresh loses at most this

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            self._db = connect(self.path)
        except (OSError, sqlite3.Error) as e:
            raise TrackError(self.path, f"cannot open the track index ({e})") from e
        try:
            self._open()
            self.inode = os.stat(self.path).st_ino  # to notice the file being replaced
        except TrackError:
            self._db.close()
            raise
        except sqlite3.Error as e:
            self._db.close()
            raise TrackError(self.path, f"cannot use the track index ({e}); delete it to rebuild") from e

    def _open(self) -> None:
        try:
            migrate(self._db, _STEPS)
        except SchemaTooNew as exc:
            raise TrackError(self.path, f"track index {exc}; upgrade frame-daemon, or delete the "
                             "file to rebuild the index") from None
        # WAL lets a reader (a CLI `match`) look while the daemon writes; NORMAL sync is safe under
        # WAL and spares the Pi's SD card an fsync per commit.
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.execute("PRAGMA foreign_keys = ON")

    @staticmethod
    def default_path(state_dir: Path) -> Path:
        """Where the daemon keeps its index inside its state directory."""
        return Path(state_dir) / "tracks.sqlite3"

    # --- refresh ------------------------------------------------------------------------------------

    def refresh(self, songs: Iterable[Mapping[str, Any] | MpdSong], music_directory: Path | None,
                progress: Callable[[int, int], None] | None = None,
                partial: bool = False) -> RefreshStats:
        """Bring the index in line with MPD's `listallinfo()`; read file tags where they changed.

        `songs` are `MpdSong`s, or MPD's own dicts, of which only entries with a 'file' key are
        songs (directories and playlists are skipped). With a readable `music_directory` the
        files' own tags are read and override MPD's; a file that fails to read is listed in
        `failed` and indexed from MPD's tags. Tracks MPD no longer lists are removed, unless the
        list is `partial` (MPD was still scanning its library). `progress(done, total)` is called
        after each song.
        """
        entries = [s if isinstance(s, MpdSong) else MpdSong.parse(s) for s in songs
                   if isinstance(s, MpdSong) or (isinstance(s, Mapping) and s.get("file"))]
        root = self._readable_root(music_directory)
        known = {row[0]: (row[1], row[2], row[3]) for row in self._db.execute(
            "SELECT uri, mpd_modified, file_mtime_ns, file_size FROM tracks")}
        added = updated = unchanged = 0
        failed: list[tuple[str, str]] = []
        seen: set[str] = set()
        in_batch = 0
        self._db.execute("BEGIN")
        try:
            for done, song in enumerate(entries, 1):
                if song.uri not in seen:
                    seen.add(song.uri)
                    stat = self._stat(root, song.uri)
                    old = known.get(song.uri)
                    if old is not None and self._unchanged(old, song.modified, stat, root is not None):
                        unchanged += 1
                    else:
                        self._index_song(song, root, stat, failed)
                        if old is None:
                            added += 1
                        else:
                            updated += 1
                        in_batch += 1
                        if in_batch >= self.batch_size:
                            self._db.execute("COMMIT")
                            self._db.execute("BEGIN")
                            in_batch = 0
                if progress is not None:
                    progress(done, len(entries))
            gone = [] if partial else [uri for uri in known if uri not in seen]
            self._db.executemany("DELETE FROM tracks WHERE uri = ?", ((uri,) for uri in gone))
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        stats = RefreshStats(added, updated, len(gone), unchanged, failed, partial)
        log.debug("track index refreshed: %d added, %d updated, %d removed, %d unchanged, %d unreadable",
                 stats.added, stats.updated, stats.removed, stats.unchanged, len(stats.failed))
        return stats

    @staticmethod
    def _readable_root(music_directory: Path | None) -> Path | None:
        if music_directory is None:
            return None
        root = Path(music_directory)
        if root.is_dir() and os.access(root, os.R_OK | os.X_OK):
            return root
        log.warning("music directory %s is not readable: indexing from MPD's tags only", root)
        return None

    @staticmethod
    def _stat(root: Path | None, uri: str) -> tuple[int, int] | None:
        if root is None or not _is_local(uri):
            return None
        try:
            st = (root / uri).stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    @staticmethod
    def _unchanged(old: tuple[str, int | None, int | None], modified: str, stat: tuple[int, int] | None,
                   looked: bool) -> bool:
        if old[0] != modified:
            return False
        # Without the music directory only MPD's time can be compared; the stored file state stays.
        # So too without the file in it: a share not mounted yet (an empty mount point at boot)
        # must not turn every track into MPD's tags alone and drop its analysis; MPD still has it.
        return not looked or stat is None or (old[1], old[2]) == stat

    def _index_song(self, song: MpdSong, root: Path | None, stat: tuple[int, int] | None,
                    failed: list[tuple[str, str]]) -> None:
        tags = FileTags(path=Path(song.uri))
        if root is not None and _is_local(song.uri):
            try:
                tags = read_tags(root / song.uri)
            except TrackError as e:
                # debug, not warning: the caller reports `failed` once, capped, for a big broken library
                log.debug("track %s: %s; indexing it from MPD's tags", song.uri, e.reason)
                failed.append((song.uri, e.reason))
        mood, genre = tags.mood or song.mood, tags.genre or song.genre
        self._db.execute(
            """INSERT INTO tracks (uri, title, artist, album, genre, duration, mpd_modified,
                                   file_mtime_ns, file_size, tag_mood, tag_bpm, tag_key)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (uri) DO UPDATE SET
                   title = excluded.title, artist = excluded.artist, album = excluded.album,
                   genre = excluded.genre, duration = excluded.duration,
                   mpd_modified = excluded.mpd_modified, file_mtime_ns = excluded.file_mtime_ns,
                   file_size = excluded.file_size, tag_mood = excluded.tag_mood,
                   tag_bpm = excluded.tag_bpm, tag_key = excluded.tag_key,
                   analysis_error = '', sticker = ''""",
            (song.uri, tags.title or song.title, tags.artist or song.artist, tags.album or song.album,
             genre, song.duration, song.modified, *(stat or (None, None)), mood, tags.bpm, tags.key))
        # A re-read track has changed, so every estimate goes, audio analysis included (it is stale),
        # and its sticker is looked at afresh (sticker = '' above).
        self._db.execute("DELETE FROM estimates WHERE uri = ?", (song.uri,))
        for estimate in estimates_from_tags(mood, genre, tags.bpm):
            self._put_estimate(song.uri, estimate)
        self._recombine(song.uri)

    # --- estimates ----------------------------------------------------------------------------------

    def _put_estimate(self, uri: str, estimate: MoodEstimate, version: str = "",
                      shared: bool = False, tags: str = "") -> None:
        self._db.execute(_INSERT_ESTIMATE, _estimate_row(uri, estimate, version, shared, tags))

    def _recombine(self, uri: str) -> None:
        best = min(self.estimates(uri), key=lambda e: _PRIORITY[e.source], default=NEUTRAL)
        m = best.mood
        self._db.execute(
            "UPDATE tracks SET valence = ?, arousal = ?, confidence = ?, source = ?, why = ? WHERE uri = ?",
            (m.valence, m.arousal, m.confidence, str(best.source), best.detail, uri))

    def set_estimate(self, uri: str, estimate: MoodEstimate, version: str | None = None,
                     tags: str = "") -> None:
        """Store one source's estimate for a track (audio analysis, usually) and recombine its mood.

        An analysis is stored with the version of the model that made it (ANALYSIS_VERSION unless
        `version` says otherwise) and its top tags ("mellow, acoustic, chill").

        Replaces that track's earlier estimate from the same source; raises TrackError if the track
        is not in the index (it may have been removed while it was being analysed).
        """
        self._db.execute("BEGIN")
        try:
            if self._db.execute("SELECT 1 FROM tracks WHERE uri = ?", (uri,)).fetchone() is None:
                raise TrackError(uri, "not in the track index")
            if estimate.source is not MoodSource.ANALYSIS:
                version, tags = "", ""
            elif version is None:
                version = ANALYSIS_VERSION
            self._put_estimate(uri, estimate, version, tags=tags)
            self._recombine(uri)
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:  # SQLite already rolled back after "disk is full"
                self._db.execute("ROLLBACK")
            raise

    # --- audio analysis bookkeeping --------------------------------------------------------------

    def needs_analysis(self, limit: int | None = None) -> list[str]:
        """URIs of readable local files with no current analysis (and no failed try): first those
        with none at all, by URI, then those analysed by an older model (ANALYSIS_VERSION).

        An analysis of an older model keeps its mood until it is redone: an upgraded index is
        re-analysed in the background, never emptied. A result shared through MPD counts when it is
        current (this model, this version of the file); a stale one is listed, to be redone here. An
        interrupted analysis run resumes here: what was stored stays, the rest is listed.
        """
        sql = (f"SELECT t.uri FROM tracks t LEFT JOIN estimates e ON e.uri = t.uri AND "
               f"e.source = '{MoodSource.ANALYSIS}' WHERE t.file_mtime_ns IS NOT NULL AND "
               "t.analysis_error = '' AND (e.uri IS NULL OR e.version != ?) "
               "ORDER BY e.uri IS NOT NULL, t.uri")
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [row[0] for row in self._db.execute(sql, (ANALYSIS_VERSION,))]

    def set_analysis_error(self, uri: str, reason: str) -> None:
        """Remember that this version of the file could not be analysed, so it is not retried."""
        self._db.execute("UPDATE tracks SET analysis_error = ? WHERE uri = ?",
                         (reason or "failed", uri))

    def analysis_status(self) -> tuple[int, int, int]:
        """(tracks, analysed by this model, analysed by an older one and waiting to be redone)."""
        return self._db.execute(
            "SELECT (SELECT count(*) FROM tracks), count(*) FILTER (WHERE version = ?), "
            "count(*) FILTER (WHERE version != ?) FROM estimates WHERE source = ?",
            (ANALYSIS_VERSION, ANALYSIS_VERSION, str(MoodSource.ANALYSIS))).fetchone()

    def analysis_tags(self, uri: str) -> str:
        """The tagger's top tags of a track's analysis ('' if none)."""
        row = self._db.execute("SELECT tags FROM estimates WHERE uri = ? AND source = ?",
                               (uri, str(MoodSource.ANALYSIS))).fetchone()
        return row[0] if row else ""

    def analysis_counts(self) -> tuple[int, int]:
        """(tracks with an analysis, tracks whose analysis failed)."""
        done = self._db.execute("SELECT count(*) FROM estimates WHERE source = ?",
                                (str(MoodSource.ANALYSIS),)).fetchone()[0]
        failed = self._db.execute("SELECT count(*) FROM tracks WHERE analysis_error != ''"
                                  ).fetchone()[0]
        return done, failed

    # --- analyses shared through MPD's stickers ----------------------------------------------------

    def apply_shared(self, stickers: Mapping[str, str], among: Iterable[str] | None = None
                     ) -> SharedStats:
        """Take in our sticker values as MPD holds them now (uri -> value; a track not in the
        mapping has none), for every track or only those `among` (the ones that were read).

        A track without an analysis made here uses the shared one: as it is when it is of this
        model and this version of the file, else with less confidence (and `needs_analysis` lists
        it where the file is readable). A track whose own tags this machine could not read (MPD 0.23
        passes no mood tag on) uses the shared mood and BPM tags. A value not in our format is
        skipped. Only values that changed since the last call are looked at.
        """
        read = None if among is None else set(among)
        unreadable = new = 0
        from_tags: dict[tuple[str, str, float | None], list[MoodEstimate]] = {}
        # The tracks in pages of SHARED_PAGE (by URI), each page collected first and written in
        # bulk: a frame's first read may bring 100,000 tracks, and all of them at once would
        # cost some 100 MB for a moment, and a process seldom gives such memory back.
        after = ""
        self._db.execute("BEGIN")
        try:
            while True:
                rows = self._db.execute(
                    "SELECT t.uri, t.mpd_modified, t.sticker, t.genre, t.tag_mood, t.tag_bpm, e.shared "
                    f"FROM tracks t LEFT JOIN estimates e ON e.uri = t.uri AND e.source = "
                    f"'{MoodSource.ANALYSIS}' WHERE t.uri > ? ORDER BY t.uri LIMIT {SHARED_PAGE}",
                    (after,)).fetchall()
                if not rows:
                    break
                after = rows[-1][0]
                page = self._shared_page(stickers, [r for r in rows if read is None or r[0] in read],
                                         from_tags)
                unreadable += page[0]
                new += page[1]
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        used, stale = self._db.execute(
            "SELECT count(*), count(*) FILTER (WHERE version != ?) FROM estimates WHERE source = ? "
            "AND shared = 1", (ANALYSIS_VERSION, str(MoodSource.ANALYSIS))).fetchone()
        return SharedStats(len(stickers), used, stale, unreadable, new)

    def _shared_page(self, stickers: Mapping[str, str], rows: list[tuple[Any, ...]],
                     from_tags: dict[tuple[str, str, float | None], list[MoodEstimate]]
                     ) -> tuple[int, int]:
        """`apply_shared` for one page of tracks; (values unreadable, tracks changed)."""
        unreadable = 0
        seen: list[tuple[str, str]] = []
        retagged: list[tuple[str]] = []
        estimates: list[tuple[Any, ...]] = []
        changed: list[tuple[str]] = []
        for uri, modified, known, genre, tag_mood, tag_bpm, shared in rows:
            value = stickers.get(uri, "")
            if value == known:
                continue  # taken in already (or ours, written from here)
            seen.append((value, uri))
            if not value:
                continue  # a shared result in use stays when its sticker goes
            found = SharedAnalysis.decode(value)
            if found is None:
                unreadable += 1
                continue
            estimate = found.estimate(modified)
            before = len(estimates)
            if estimate is not None and shared != 0:  # never over an analysis made here
                version = found.version if found.current(modified) else ""
                estimates.append(_estimate_row(uri, estimate, version, shared=True, tags=found.tags))
            if (found.tag_mood or found.tag_bpm is not None) and not tag_mood and tag_bpm is None:
                retagged.append((uri,))
                key = (found.tag_mood, genre, found.tag_bpm)
                if key not in from_tags:  # a library repeats its tags: read each once
                    from_tags[key] = [
                        MoodEstimate(e.source, e.mood, f"{e.detail} (shared by MPD)"
                                     if e.source is MoodSource.TAG else e.detail)
                        for e in estimates_from_tags(*key)]
                estimates += [_estimate_row(uri, e) for e in from_tags[key]]
            if len(estimates) > before:
                changed.append((uri,))
        self._db.executemany("UPDATE tracks SET sticker = ? WHERE uri = ?", seen)
        self._db.executemany(f"DELETE FROM estimates WHERE uri = ? AND source != "
                             f"'{MoodSource.ANALYSIS}'", retagged)
        self._db.executemany(_INSERT_ESTIMATE, estimates)
        self._db.executemany(_RECOMBINE, changed)
        return unreadable, len(changed)

    def unshared(self) -> list[tuple[str, str]]:
        """(uri, sticker value) for each track this machine has analysed (or tried to) from its
        file, where MPD holds no current result yet.

        A current result from another machine is left alone (two machines that read the files
        would otherwise overwrite each other's in turn: ffmpeg and libsndfile decode a little
        differently), and a value without an analysis never replaces one with.
        """
        rows = self._db.execute(
            "SELECT t.uri, t.mpd_modified, t.sticker, t.tag_mood, t.tag_bpm, e.valence, e.arousal, "
            "e.confidence, e.detail, e.version, e.tags FROM tracks t LEFT JOIN estimates e ON e.uri = t.uri "
            f"AND e.source = '{MoodSource.ANALYSIS}' AND e.shared = 0 WHERE t.file_mtime_ns IS NOT NULL "
            "AND (e.uri IS NOT NULL OR t.analysis_error != '') ORDER BY t.uri")
        wanted = []
        for (uri, modified, known, tag_mood, tag_bpm, valence, arousal, confidence, detail, version,
             tags) in rows:
            if valence is None and not tag_mood and tag_bpm is None:
                continue  # analysis failed and no tags: nothing to share
            mood = Mood.clipped(valence, arousal, confidence) if valence is not None else None
            # Tags alone (the analysis failed here) are labelled with this software's version.
            version = ANALYSIS_VERSION if version is None else version
            value = SharedAnalysis(version, modified, mood, detail or "", tag_mood, tag_bpm,
                                   tags or "").encode()
            held = SharedAnalysis.decode(known) if known else None
            if value == known or (held is not None and (
                    (held.mood is not None and mood is None)  # even a stale analysis beats none
                    or (held.current(modified) and (held.mood is not None or mood is None)))):
                continue
            wanted.append((uri, value))
        return wanted

    def mark_shared(self, written: Iterable[tuple[str, str]]) -> None:
        """Remember the sticker values now in MPD."""
        self._db.execute("BEGIN")
        try:
            self._db.executemany("UPDATE tracks SET sticker = ? WHERE uri = ?",
                                 ((value, uri) for uri, value in written))
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    def lacking_current_analysis(self) -> list[str]:
        """Tracks without an analysis of this model: what a new sticker read could still bring."""
        return [row[0] for row in self._db.execute(
            "SELECT uri FROM tracks WHERE uri NOT IN (SELECT uri FROM estimates WHERE "
            f"source = '{MoodSource.ANALYSIS}' AND version = ?)", (ANALYSIS_VERSION,))]

    def estimates(self, uri: str) -> list[MoodEstimate]:
        """Every estimate stored for a track, most trusted first (empty if the track is unknown)."""
        rows = self._db.execute(
            "SELECT source, valence, arousal, confidence, detail FROM estimates WHERE uri = ?", (uri,))
        found = [MoodEstimate(MoodSource(s), Mood.clipped(v, a, c), d) for s, v, a, c, d in rows]
        return sorted(found, key=lambda e: _PRIORITY[e.source])

    # --- reading ------------------------------------------------------------------------------------

    @staticmethod
    def _track(row: tuple[Any, ...]) -> Track:
        uri, title, artist, album, genre, duration, v, a, c, source, why = row
        return Track(uri=uri, title=title, artist=artist, album=album, genre=genre, duration=duration,
                     mood=Mood.clipped(v, a, c), source=MoodSource(source), why=why or NEUTRAL.detail)

    def tracks(self) -> list[Track]:
        """Every indexed track with its combined mood, ordered by URI."""
        rows = self._db.execute(f"SELECT {_TRACK_COLUMNS} FROM tracks ORDER BY uri")
        return [self._track(row) for row in rows]

    def rows(self) -> Iterator[tuple[str, str, str, str, str, float, float, float, float, str, str]]:
        """Every indexed track as a plain row, ordered by URI, one at a time (a pool of 100,000
        tracks is built from these without a `Track` object each): uri, title, artist, album,
        genre, duration, valence, arousal, confidence (within the plane), source, why."""
        for row in self._db.execute(f"SELECT {_TRACK_COLUMNS} FROM tracks ORDER BY uri"):
            uri, title, artist, album, genre, duration, v, a, c, source, why = row
            m = Mood.clipped(v, a, c)
            yield (uri, title, artist, album, genre, duration, m.valence, m.arousal, m.confidence,
                   source, why or NEUTRAL.detail)

    def uris(self) -> list[str]:
        """Every indexed track's URI."""
        return [row[0] for row in self._db.execute("SELECT uri FROM tracks")]

    def get(self, uri: str) -> Track | None:
        """One track by MPD URI, or None."""
        row = self._db.execute(f"SELECT {_TRACK_COLUMNS} FROM tracks WHERE uri = ?", (uri,)).fetchone()
        return self._track(row) if row else None

    def __len__(self) -> int:
        return self._db.execute("SELECT count(*) FROM tracks").fetchone()[0]

    def close(self) -> None:
        """Close the database; safe to call twice."""
        self._db.close()

    def __enter__(self) -> TrackIndex:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
