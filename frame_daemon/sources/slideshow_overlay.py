"""The slideshow's optional overlay: the photo's name and date, the music now playing and its
mood word, in a corner; it shows on every change and fades out after a few seconds."""

from __future__ import annotations

import pygame

FADE_OUT_S = 1.0
MARGIN = 0.025  # of the screen height
TEXT = (245, 245, 245)
SHADE = (0, 0, 0, 150)


class Overlay:
    def __init__(self, screen_size: tuple[int, int], visible_s: float) -> None:
        self.visible_s = visible_s
        self._height = screen_size[1]
        self._font = pygame.font.Font(None, max(18, screen_size[1] // 28))
        self._photo: tuple[str, ...] = ()
        self._music: tuple[str, ...] = ()
        self._since = float("-inf")
        self._panel: pygame.Surface | None = None

    def set_photo(self, name: str, taken: str | None, now: float) -> None:
        """A new photo: its name and, if the camera said, the day it was taken."""
        self._photo = (name, taken.replace("T", " ")[:16]) if taken else (name,)
        self._changed(now)

    def set_music(self, lines: tuple[str, ...], now: float) -> None:
        """What plays and the mood word (from the daemon's loop, through a command)."""
        if lines != self._music:
            self._music = lines
            self._changed(now)

    def _changed(self, now: float) -> None:
        self._since = now
        self._panel = None

    def alpha(self, now: float) -> int:
        shown = now - self._since
        if shown < self.visible_s:
            return 255
        return max(0, round(255 * (1 - (shown - self.visible_s) / FADE_OUT_S)))

    def animating(self, now: float) -> bool:
        """True while the overlay fades out (the screen must be redrawn)."""
        return self.visible_s <= now - self._since < self.visible_s + FADE_OUT_S

    def _render(self) -> pygame.Surface:
        lines = [line for line in (*self._photo, *self._music) if line]
        rendered = [self._font.render(line, True, TEXT) for line in lines]
        pad = self._font.get_linesize() // 2
        width = max((r.get_width() for r in rendered), default=0) + 2 * pad
        height = sum(r.get_height() for r in rendered) + 2 * pad
        panel = pygame.Surface((width, height), pygame.SRCALPHA)
        panel.fill(SHADE)
        y = pad
        for r in rendered:
            panel.blit(r, (pad, y))
            y += r.get_height()
        return panel

    def draw(self, screen: pygame.Surface, now: float) -> None:
        alpha = self.alpha(now)
        if alpha == 0 or not (self._photo or self._music):
            return
        if self._panel is None:
            self._panel = self._render()
        self._panel.set_alpha(alpha)
        margin = round(self._height * MARGIN)
        screen.blit(self._panel, (margin, screen.get_height() - margin - self._panel.get_height()))
