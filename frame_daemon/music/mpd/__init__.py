"""The MPD adapter: everything that speaks to MPD and nothing that decides what to play.

`client` is the loop's command connection (every connection problem becomes MpdUnavailable),
`session` connects and reconnects it off the loop, `idle` watches MPD's idle notifications on a
socket of its own, `queue_keeper` edits the queue without touching the user's entries, and `fade`
ramps the volume down before new music starts. The choices themselves are made elsewhere (the
pure `frame_daemon.music.select` and `frame_daemon.follow`); this package only carries them out.
"""
