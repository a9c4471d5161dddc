"""Home Assistant over MQTT: the topics and the device discovery payload.

Builds payloads (pure) and hands them to the MQTT link as retained values (`announce`,
`publish_state`); `mqtt_link.py` moves the bytes, `commands.py` parses what comes back and
`daemon.py` acts. One device-based discovery message (`<prefix>/device/<device_id>/config`)
announces every entity; they all read the one retained state topic, so a reconnect republishes
everything at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from frame_daemon import __version__
from frame_daemon.config import MqttConfig
from frame_daemon.follow import FollowMode
from frame_daemon.mood import MOOD_WORDS

TOPIC_ROOT = "frame-daemon"
SUPPORT_URL = "https://github.com/frame-daemon/frame-daemon"
MAX_STATE_LEN = 255  # Home Assistant rejects longer entity states


@dataclass(frozen=True, slots=True)
class Topics:
    """Every topic of one frame; unique per device_id so several frames share a broker."""

    device_id: str
    discovery_prefix: str = "homeassistant"

    @property
    def base(self) -> str:
        return f"{TOPIC_ROOT}/{self.device_id}"

    @property
    def availability(self) -> str:
        return f"{self.base}/availability"

    @property
    def state(self) -> str:
        return f"{self.base}/state"

    @property
    def image(self) -> str:
        return f"{self.base}/image"

    @property
    def discovery(self) -> str:
        return f"{self.discovery_prefix}/device/{self.device_id}/config"

    @property
    def ha_status(self) -> str:
        return f"{self.discovery_prefix}/status"

    def command(self, name: str) -> str:
        return f"{self.base}/set/{name}"


def device_display_name(cfg: MqttConfig) -> str:
    """The frame's name in Home Assistant: `mqtt.name`, else the device id in title case
    ("living-room" -> "Living Room"); every entity's name starts with it."""
    name = cfg.name or cfg.device_name
    return name.strip() or " ".join(cfg.device_id.replace("_", "-").split("-")).title()


def discovery_payload(topics: Topics, device_name: str, threshold_max: float = 2.0) -> dict[str, Any]:
    """The device discovery message: device, origin and every component.

    threshold_max: the slider's top, follow.jump (a larger threshold is refused).
    """
    uid = f"frame_daemon_{topics.device_id}".replace("-", "_")
    obj = topics.device_id.replace("-", "_").lower()

    def component(platform: str, key: str, name: str | None, **options: Any) -> dict[str, Any]:
        return {"p": platform, "unique_id": f"{uid}_{key}", "default_entity_id":
                f"{platform}.{obj}_{key}", "name": name, **options}

    def value(field: str) -> str:
        return "{{ value_json." + field + " }}"

    state = topics.state
    cmps = {
        "mood": component("sensor", "mood", None, state_topic=state,
                          value_template=value("mood"), device_class="enum",
                          options=list(MOOD_WORDS), icon="mdi:emoticon-outline",
                          json_attributes_topic=state,
                          json_attributes_template="{{ {'valence': value_json.valence, "
                          "'arousal': value_json.arousal, 'confidence': value_json.confidence, "
                          "'scenes': value_json.scenes} | tojson }}"),
        "valence": component("sensor", "valence", "Valence", state_topic=state,
                             value_template=value("valence"), state_class="measurement",
                             suggested_display_precision=2, icon="mdi:emoticon-happy-outline"),
        "arousal": component("sensor", "arousal", "Arousal", state_topic=state,
                             value_template=value("arousal"), state_class="measurement",
                             suggested_display_precision=2, icon="mdi:lightning-bolt-outline"),
        "confidence": component("sensor", "confidence", "Confidence", state_topic=state,
                                value_template="{{ (value_json.confidence * 100) | round(0) "
                                "if value_json.confidence is not none else none }}",
                                unit_of_measurement="%", state_class="measurement",
                                entity_category="diagnostic"),
        "photo": component("sensor", "photo", "Photo", state_topic=state,
                           value_template=value("photo_name"), icon="mdi:image",
                           json_attributes_topic=state,
                           json_attributes_template="{{ {'path': value_json.photo, "
                           "'taken': value_json.photo_taken} | tojson }}"),
        "now_playing": component("sensor", "now_playing", "Now playing", state_topic=state,
                                 value_template=value("now_playing"), icon="mdi:music",
                                 json_attributes_topic=state,
                                 json_attributes_template="{{ {'uri': value_json.track.uri "
                                 "if value_json.track else none} | tojson }}"),
        "why": component("sensor", "why", "Why", state_topic=state, value_template=value("why"),
                         icon="mdi:comment-question-outline"),
        "index_size": component("sensor", "index_size", "Index size", state_topic=state,
                                value_template=value("index_size"), unit_of_measurement="tracks",
                                state_class="measurement", entity_category="diagnostic",
                                icon="mdi:music-box-multiple"),
        "last_error": component("sensor", "last_error", "Last error", state_topic=state,
                                value_template=value("last_error"),
                                entity_category="diagnostic", icon="mdi:alert-circle-outline"),
        "image": component("image", "photo_image", "Photo image", image_topic=topics.image,
                           content_type="image/jpeg"),
        "following": component("switch", "following", "Music follows photo", state_topic=state,
                               value_template="{{ 'ON' if value_json.following else 'OFF' }}",
                               command_topic=topics.command("following"), icon="mdi:music-note"),
        "mode": component("select", "mode", "Follow mode", state_topic=state,
                          value_template=value("mode"), command_topic=topics.command("mode"),
                          options=[m.value for m in FollowMode], entity_category="config"),
        "threshold": component("number", "threshold", "Mood change threshold",
                               state_topic=state, value_template=value("threshold"),
                               command_topic=topics.command("threshold"), min=0.05,
                               max=threshold_max,
                               step=0.05, mode="slider", entity_category="config"),
        "diversity": component("number", "diversity", "Diversity", state_topic=state,
                               value_template=value("diversity"),
                               command_topic=topics.command("diversity"), min=0.0, max=1.0,
                               step=0.05, mode="slider", entity_category="config"),
        "next": component("button", "next", "Next track", command_topic=topics.command("next"),
                          payload_press="PRESS", icon="mdi:skip-next"),
        "rescore": component("button", "rescore", "Re-score photo",
                             command_topic=topics.command("rescore"), payload_press="PRESS",
                             icon="mdi:image-refresh"),
        "refresh_index": component("button", "refresh_index", "Refresh index",
                                   command_topic=topics.command("refresh_index"),
                                   payload_press="PRESS", entity_category="config",
                                   icon="mdi:database-refresh"),
        "resume": component("button", "resume", "Resume following",
                            command_topic=topics.command("resume"), payload_press="PRESS",
                            icon="mdi:play-circle-outline"),
        "clear_error": component("button", "clear_error", "Clear error",
                                 command_topic=topics.command("clear_error"),
                                 payload_press="PRESS", entity_category="diagnostic",
                                 icon="mdi:alert-remove-outline"),
        "reset_settings": component("button", "reset_settings", "Reset settings",
                                    command_topic=topics.command("reset_settings"),
                                    payload_press="PRESS", entity_category="config",
                                    icon="mdi:restore"),
        # The household's taste (docs/taste.md): verdicts about the photo and the track playing.
        "feedback_fits": component("button", "feedback_fits", "Fits",
                                   command_topic=topics.command("feedback"), payload_press="fits",
                                   icon="mdi:thumb-up-outline"),
        "feedback_doesnt_fit": component("button", "feedback_doesnt_fit", "Doesn't fit",
                                         command_topic=topics.command("feedback"),
                                         payload_press="doesnt_fit", icon="mdi:thumb-down-outline"),
        "forget_taste": component("button", "forget_taste", "Forget taste",
                                  command_topic=topics.command("forget_taste"),
                                  payload_press="PRESS", entity_category="config",
                                  icon="mdi:delete-sweep-outline"),
        "taste": component("sensor", "taste", "Taste", state_topic=state,
                           value_template="{{ value_json.taste.verdicts if value_json.taste "
                           "is defined else none }}", unit_of_measurement="verdicts",
                           state_class="measurement", icon="mdi:account-heart-outline",
                           json_attributes_topic=state,
                           json_attributes_template="{{ (value_json.taste or {}) | tojson }}"),
        "include_genres": component("text", "include_genres", "Only genres", state_topic=state,
                                    value_template=value("include_genres"),
                                    command_topic=topics.command("include_genres"), max=255,
                                    entity_category="config"),
        "exclude_genres": component("text", "exclude_genres", "Never genres", state_topic=state,
                                    value_template=value("exclude_genres"),
                                    command_topic=topics.command("exclude_genres"), max=255,
                                    entity_category="config"),
    }
    return {
        "dev": {"ids": [uid], "name": device_name, "mf": "frame-daemon", "mdl": "frame-daemon",
                "sw": __version__},
        "o": {"name": "frame-daemon", "sw": __version__, "url": SUPPORT_URL},
        "availability_topic": topics.availability,
        "payload_available": "online",
        "payload_not_available": "offline",
        "qos": 1,
        "cmps": cmps,
    }


def clip_state(text: str | None) -> str | None:
    """Entity states longer than 255 characters are refused by Home Assistant: shorten them."""
    if text is None or len(text) <= MAX_STATE_LEN:
        return text
    return text[: MAX_STATE_LEN - 1] + "…"


class RetainedLink(Protocol):
    """What publishing needs of the MQTT link (`MqttLink`)."""

    def remember(self, topic: str, payload: str | bytes | dict[str, Any]) -> bytes: ...
    def publish_retained(self, topic: str, payload: str | bytes | dict[str, Any]) -> None: ...
    def republish_retained(self) -> None: ...


def announce(link: RetainedLink, topics: Topics, cfg: MqttConfig, state: dict[str, Any], *,
             threshold_max: float, components: Mapping[str, Any] | None = None) -> None:
    """Discovery (if enabled) and every retained value: after start and Home Assistant restarts.
    components: a source's own entities (the slideshow's)."""
    if cfg.discovery:
        discovery = discovery_payload(topics, device_display_name(cfg), threshold_max=threshold_max)
        discovery["cmps"].update(components or {})
        link.remember(topics.discovery, discovery)
    link.remember(topics.state, state)
    link.republish_retained()  # discovery, state and the photo, each sent once


def publish_state(link: RetainedLink, topics: Topics, state: dict[str, Any]) -> None:
    link.publish_retained(topics.state, state)


def publish_image(link: RetainedLink, topics: Topics, jpeg: bytes) -> None:
    link.publish_retained(topics.image, jpeg)
