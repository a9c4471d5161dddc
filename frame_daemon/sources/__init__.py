"""Where "the photo on show" comes from: a watched file, symlink or folder."""
