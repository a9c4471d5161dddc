"""The household's MQTT adapter: our presence on the group's topic, the others' presences in.

A connection of its own, so that its Last Will can clear our retained presence (the frame's main
connection has its Last Will on its availability topic): when a frame dies, the broker clears
its presence and the others hear that it is gone at once. Paho's thread only posts
`HouseholdNews`; the loop (`MusicController`) runs the election (`household.py`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import socket
from collections.abc import Callable
from pathlib import Path

from frame_daemon.config import Config, device_id_check
from frame_daemon.events import AdapterFailed, Event, HouseholdNews
from frame_daemon.homeassistant import TOPIC_ROOT
from frame_daemon.mqtt_link import MqttLink
from frame_daemon.music.household import Presence

log = logging.getLogger(__name__)

# Our own presence comes back to us (we listen to the whole group) at once: one that has not come
# back this long after connecting was not passed on by the broker (an ACL that leaves the group's
# topic out: mosquitto grants the subscription all the same, and drops what is said there).
ECHO_WAIT_S = 10.0


def local_mpd(host: str) -> bool:
    """Whether `host` names an MPD on this machine: the same name on another frame is another
    MPD (each Pi with a speaker of its own, all set to the default `localhost`)."""
    h = host.strip().lower()
    return (h in ("localhost", "localhost.localdomain", "ip6-localhost", "::1", "0.0.0.0")
            or h.startswith(("127.", "/", "@", "~")) or h.endswith(".localhost"))


def machine_id(root: Path = Path("/")) -> str:
    """This machine: systemd's id, joined with the board's serial number or its network
    addresses, else its host name. The hardware part tells apart two Pis whose SD cards were
    cloned from one (they share the machine id and often the host name); every process on one
    machine reads the same."""
    system = ""
    for path in ("etc/machine-id", "var/lib/dbus/machine-id"):
        try:
            text = (root / path).read_text(encoding="ascii", errors="replace").strip()
        except OSError:
            continue
        if re.fullmatch(r"[0-9a-f]{32}", text):
            system = text
            break
    hardware = _hardware_id(root)
    if not system and not hardware:
        return re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:18] or "this-machine"
    if not hardware:
        return system[:12]
    return hashlib.sha256(f"{system}/{hardware}".encode()).hexdigest()[:12]


def _hardware_id(root: Path) -> str:
    """The board's serial number (a Pi's, from the device tree), else the sorted addresses of
    its network hardware (interfaces with a `device`: not loopback, bridges or a container's
    virtual ones, whose addresses are made up anew); "" where neither is readable."""
    try:
        serial = (root / "sys/firmware/devicetree/base/serial-number").read_bytes()
        serial = serial.rstrip(b"\0").decode("ascii", "replace").strip()
        if serial.strip("0"):
            return serial
    except OSError:
        pass
    addresses = []
    try:
        interfaces = sorted((root / "sys/class/net").iterdir())
    except OSError:
        return ""
    for interface in interfaces:
        try:
            address = (interface / "address").read_text(encoding="ascii").strip().lower()
        except (OSError, UnicodeDecodeError):
            continue
        if (interface / "device").exists() and address.strip("0:"):
            addresses.append(address)
    return ",".join(addresses)


def group_name(cfg: Config, machine: Callable[[], str] = machine_id) -> str:
    """`household.group`, else one made of MPD's host and port (the same MPD, the same group);
    for an MPD on this machine, of this machine too."""
    if cfg.household.group:
        return cfg.household.group
    name = "mpd-" + re.sub(r"[^A-Za-z0-9_-]", "_", f"{cfg.mpd.host}-{cfg.mpd.port}")
    if local_mpd(cfg.mpd.host):
        return f"{name[:38]}-on-{machine()[:18]}"
    return name[:64]


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
        # Which process says it: two frames given one device_id share our topic (see _twin).
        self._instance = os.urandom(6).hex()
        self._twin_told = False
        self.heard_own = False  # our presence came back from the broker (set on paho's thread)
        self.link = MqttLink(cfg.mqtt, self.topic, on_message=self._on_message, will=b"",
                             online=None, role="-household")
        self.link.subscribe(self._prefix + "+")

    def start(self) -> None:
        self.link.start()
        self.link.client._thread.name = "household"  # for %(threadName)s in the log

    def stop(self) -> None:
        self.link.stop()

    def forget(self, device_id: str) -> None:
        """Clear a member's retained presence (its Last Will was lost): a frame that starts
        later would take it for a member, and a steerer, until it too found it silent. A frame
        that is there after all says its presence again at its next heartbeat."""
        self.link.clear_retained(self._prefix + device_id, timeout=0)

    def say(self, presence: Presence) -> None:
        """Publish our presence (retained; re-sent on every reconnect)."""
        self.link.publish_retained(self.topic, presence.to_json() | {"instance": self._instance})

    def _on_message(self, topic: str, payload: bytes, retained: bool) -> None:
        device_id = topic.removeprefix(self._prefix)
        if device_id == self.me:
            instance = _instance(payload)
            if instance == self._instance:
                self.heard_own = True
            elif not retained:  # (a retained one may be our own, from before a restart)
                self._twin(instance)
        elif device_id_check(device_id) is None:
            self._post(HouseholdNews(device_id, payload))
        else:  # no frame has such an id ("" means nobody steers): the music would go to nobody
            log.debug("household: ignoring %s, which no frame's device_id can be", topic[:200])

    def _twin(self, instance: str | None) -> None:
        """Another process says something on our topic: two frames were given one device_id
        (both set up from the example config). Each would take the other's words for its own
        echo and steer alone, taking the other's queue entries for a person's."""
        if instance and not self._twin_told:
            self._twin_told = True
            message = (f"another frame uses mqtt.device_id '{self.me}' on this broker: give each "
                       "frame its own (docs/household.md)")
            log.error("%s", message)
            self._post(AdapterFailed("household", message))


def _instance(payload: bytes) -> str | None:
    """Which process said a presence (None: not a presence of ours, or none at all)."""
    try:
        instance = json.loads(payload).get("instance") if payload else None
    except (ValueError, AttributeError, RecursionError):
        return None
    return instance if isinstance(instance, str) else None
