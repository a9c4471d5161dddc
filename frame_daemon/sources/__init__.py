"""Where "the photo on show" comes from, and the frame's own screen.

`watch` follows a file, symlink or folder another program rewrites. The built-in slideshow is the
rest: `slideshow` (the pygame render thread, one more photo source), `photo_library` (the photos,
cached in SQLite, and their order), `frame_image` and `slideshow_overlay` (what is drawn), and
`display_schedule` and `display_power` (when the screen is on, and switching it). None of them
touches the loop's state: they post events.
"""
