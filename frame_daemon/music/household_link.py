"""The household's MQTT adapter: our presence on the group's topic, the others' presences in.

A connection of its own, so that its Last Will can clear our retained presence (the frame's main
connection has its Last Will on its availability topic): when a frame dies, the broker clears
its presence and the others hear that it is gone at once. Paho's thread only posts
`HouseholdNews`; the loop (`MusicController`) runs the election (`household.py`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from frame_daemon.config import Config
from frame_daemon.events import Event, HouseholdNews
from frame_daemon.homeassistant import TOPIC_ROOT
from frame_daemon.mqtt_link import MqttLink
from frame_daemon.music.household import Presence

log = logging.getLogger(__name__)


def group_name(cfg: Config) -> str:
    """`household.group`, else one made of MPD's host and port (the same MPD, the same group)."""
    if cfg.household.group:
        return cfg.household.group
    return "mpd-" + re.sub(r"[^A-Za-z0-9_-]", "_", f"{cfg.mpd.host}-{cfg.mpd.port}")[:60]


def group_topic(group: str) -> str:
    return f"{TOPIC_ROOT}/household/{group}"


class HouseholdLink:
    """`start()`, `stop()` (a goodbye clears our presence), `say(presence)`."""

    def __init__(self, cfg: Config, post: Callable[[Event], None]) -> None:
        self.group = group_name(cfg)
        self.me = cfg.mqtt.device_id
        self._prefix = group_topic(self.group) + "/"
        self.topic = self._prefix + self.me
        self._post = post
        self.link = MqttLink(cfg.mqtt, self.topic, on_message=self._on_message, will=b"",
                             online=None, role="-household")
        self.link.subscribe(self._prefix + "+")

    def start(self) -> None:
        self.link.start()
        self.link.client._thread.name = "household"  # for %(threadName)s in the log

    def stop(self) -> None:
        self.link.stop()

    def say(self, presence: Presence) -> None:
        """Publish our presence (retained; re-sent on every reconnect)."""
        self.link.publish_retained(self.topic, presence.to_json())

    def _on_message(self, topic: str, payload: bytes, retained: bool) -> None:
        device_id = topic.removeprefix(self._prefix)
        if device_id != self.me and "/" not in device_id:
            self._post(HouseholdNews(device_id, payload))
