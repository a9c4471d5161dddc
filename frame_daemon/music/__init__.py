"""The music side: track index, tag/genre lexicon, selection, and the MPD adapter."""
