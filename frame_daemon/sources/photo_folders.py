"""Whether the slideshow's photo folders are there, and still the same folders.

A photo stick can go away in three ways the folder's path alone does not show: its folder vanishes
(the stick was mounted above it), an empty mount point is left behind (the stick was mounted on the
folder itself), or another stick, or another folder of that name, takes its place between two looks.
So each look compares the folder's identity (device and inode) and whether it is a mount point with
the last look: a folder that was a mount point and is not one any more is gone (the empty mount
point holds none of its photos), and a folder with another identity is back, to be scanned again.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

Identity = tuple[int, int]  # (st_dev, st_ino)


@dataclass(frozen=True, slots=True)
class FolderChange:
    folder: Path
    here: bool  # False: gone; True: back (or another folder in its place)
    replaced: bool = False  # back without having been seen gone: another filesystem or folder


def identity(folder: Path) -> Identity | None:
    """The folder's (device, inode), following symlinks; None if it is not a folder now."""
    try:
        st = os.stat(folder)
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISDIR(st.st_mode) else None


def _is_mount_point(folder: Path) -> bool:
    # Through a symlink (/media/photos -> /mnt/usb): ismount() says False for any symlink.
    return os.path.ismount(os.path.realpath(folder))


class PhotoFolders:
    """What was seen of each folder at the last `look()`. Used by one thread (the render thread);
    `unchanged()` only stats, so another thread may call it."""

    def __init__(self, folders: Iterable[Path]) -> None:
        self.folders = tuple(folders)
        self._seen: dict[Path, Identity | None] = {}
        self._mount_points: set[Path] = set()  # folders seen with a filesystem mounted on them

    def _now(self, folder: Path) -> Identity | None:
        ident = identity(folder)
        if ident is None:
            return None
        if _is_mount_point(folder):
            self._mount_points.add(folder)
        elif folder in self._mount_points:
            return None  # unmounted: the empty mount point is not the photo folder
        return ident

    def look(self) -> list[FolderChange]:
        """Look at every folder; the changes since the last look. At the first look a missing
        folder counts as gone, one that is there as no change."""
        changes = []
        for folder in self.folders:
            first = folder not in self._seen
            was = self._seen.get(folder)
            now = self._seen[folder] = self._now(folder)
            if now == was and not first:
                continue
            if now is None:
                changes.append(FolderChange(folder, here=False))
            elif not first:
                changes.append(FolderChange(folder, here=True, replaced=was is not None))
        return changes

    def present(self) -> list[Path]:
        """The folders that were there at the last look."""
        return [f for f in self.folders if self._seen.get(f) is not None]

    def unchanged(self, path: str) -> bool:
        """Whether the folder holding `path` is there and is the one seen at the last look: then a
        photo missing from it was deleted, not taken away with its stick."""
        for folder in self.folders:
            if path.startswith(f"{folder}{os.sep}"):
                seen = self._seen.get(folder)
                return seen is not None and identity(folder) == seen and (
                    folder not in self._mount_points or _is_mount_point(folder))
        return False
