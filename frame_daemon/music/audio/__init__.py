"""Understanding audio: from an audio file to where its track lies on the valence-arousal plane.

`decode` turns a file into a mono excerpt, `features` measures it (tempo, key, loudness, ...),
`mood` maps those measurements to valence/arousal with a small calibrated model, `tagger` names
the excerpt's music tags with a pretrained network (musicnn), and `analyse` ties them together for
one file. `runner` runs analyses for the index in low-priority worker
processes and `cli` is `frame-daemon analyse`. Nothing here touches MPD, SQLite or the loop; the
modules import nothing heavy at package level, so analysis workers start light.
"""
