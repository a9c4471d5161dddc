"""What the loop knows, in one place: plain data, owned by the loop thread alone.

`Daemon` changes it as events arrive; `state_payload.py` turns it into what Home Assistant and
systemd are told.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from frame_daemon.follow import Decision, FollowMode, FollowState
from frame_daemon.music.placement import Placement
from frame_daemon.music.select import Pick
from frame_daemon.vision.model import PhotoMood

HISTORY = 1000  # recently queued uris, for the no-repeat window


@dataclass(frozen=True)
class Choice:
    """The last music change carried out: for which photo, which tracks, and why each."""

    photo_seq: int  # LoopState.photo_seq when it was made
    reason: str  # the follow policy's line
    placement: Placement
    picks: tuple[Pick, ...]
    ids: tuple[int, ...] = ()  # MPD's queue id of each pick, once queued

    @property
    def uris(self) -> list[str]:
        return [p.track.uri for p in self.picks]


@dataclass
class LoopState:
    """Everything the loop knows; owned by the loop thread alone."""

    mode: FollowMode
    threshold: float  # the follow policy's, as set now (config, or Home Assistant)
    follow: FollowState = field(default_factory=FollowState.initial)
    suspended_until: float | None = None  # monotonic deadline; inf = until resumed
    suspended_reason: str = ""
    photo: PhotoMood | None = None
    photo_path: str = ""
    photo_seq: int = 0  # counts photos scored, so a choice knows which photo it was made for
    follow_reason: str = ""  # the follow policy's line for the latest photo
    choice: Choice | None = None  # the music change `queued`, `why` and `track` describe
    why: str = ""  # what to say while there is no choice (no tracks yet, MPD away)
    pending: Decision | None = None  # a decision MPD was not there to receive
    history: deque[str] = field(default_factory=lambda: deque(maxlen=HISTORY))
    track: dict[str, str] = field(default_factory=dict)
    track_id: int | None = None  # MPD queue id of what plays
    player: str = "stop"  # MPD's play | pause | stop
    remaining_s: float | None = None  # of the current track, when last looked
    error: str | None = None
    last_error: str | None = None
    mpd_up: bool = False
    index_size: int = 0
    index_analysed: int = 0  # of index_size, tracks analysed by the current audio model
    photo_taken: str | None = None
    diversity: float = 0.3
    include_genres: tuple[str, ...] = ()
    exclude_genres: tuple[str, ...] = ()
    announce_at: float | None = None  # when to announce discovery again
    announce_why: str = ""  # Home Assistant came back online, the albums changed, ...
    household: dict[str, object] = field(default_factory=dict)  # the group and who steers

    @property
    def following(self) -> bool:
        return self.suspended_until is None and self.mode != FollowMode.OFF
