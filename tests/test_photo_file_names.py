"""A photo whose file name is not UTF-8 (a Latin-1 camera or an old zip): Python hands such a
name over with surrogates, which neither MQTT's JSON nor SQLite can carry. It must cost at most
that photo, never the published state or the slideshow's scan."""

from __future__ import annotations

import os
import shutil

from frame_daemon.sources.photo_library import PhotoLibrary
from rig import wait_state

LATIN1 = b"\xc9t\xe9.jpg"  # 'Été.jpg' as Latin-1


def test_the_state_of_a_photo_whose_name_is_not_utf8_is_published(rig):
    # The folder source: the frame software's newest photo has such a name.
    shutil.copy(rig.photos / "bright.jpg", os.fsencode(rig.photos) + b"/" + LATIN1)
    text = rig.config.read_text().replace('kind = "file"', 'kind = "folder"')
    rig.config.write_text(text.replace(f'path = "{rig.current}"', f'path = "{rig.photos}"'))
    rig.daemon.start()
    state = wait_state(rig, lambda s: s.get("photo_name") and s.get("queued"),
                       "the photo's state published, with the music queued for it")
    assert state["photo_name"] == "\ufffdt\ufffd.jpg"
    log = rig.daemon.log()
    assert "internal error" not in log and "Traceback" not in log, log[-3000:]


def test_the_slideshow_leaves_out_a_photo_whose_name_is_not_utf8_and_shows_the_rest(tmp_path,
                                                                                   caplog):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in (b"a.jpg", LATIN1, b"b.jpg", b"\xe9t\xe9 2.jpg"):  # a whole Latin-1 album, say
        (folder / os.fsdecode(name)).write_bytes(b"not decoded here")
    library = PhotoLibrary(tmp_path / "slideshow.sqlite", [folder], order="name")
    try:
        assert library.scan() == 2
        assert library.next() == str(folder / "a.jpg")
        assert library.next(str(folder / "a.jpg")) == str(folder / "b.jpg")
        library.add(str(folder / os.fsdecode(LATIN1)), 1.0)  # as the folder watch hands it on
        assert library.count() == 2
    finally:
        library.close()
    warnings = [r.getMessage() for r in caplog.records if "not UTF-8" in r.getMessage()]
    assert len(warnings) == 1, warnings  # once a folder, not once a photo nor at every scan
