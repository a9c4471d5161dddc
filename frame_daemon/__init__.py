"""frame-daemon: a photo frame's photo sets the mood of the house's music."""

__version__ = "0.1.0"
