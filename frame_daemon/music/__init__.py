"""The music side: track index, tag/genre lexicon, placement and selection.

Two subpackages hold the rest: `audio` (decoding and measuring audio, and the model that places a
track on the plane from it) and `mpd` (everything that speaks to MPD).
"""
