"""The MQTT connection (paho-mqtt): availability with a Last Will, retained state, commands in.

The broker is treated as forgetful: the Last Will is set before connecting; every (re)connect
re-publishes availability and every retained value we own, and re-subscribes. Publishing while
disconnected is a logged no-op: the value is kept and goes out on the next connect. Paho's network
thread only calls our callbacks; `CommandRouter` turns what arrives on a command topic into a
validated `Command` and hands it to the loop via `post`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import ssl
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from frame_daemon.commands import CommandError, CommandTable
from frame_daemon.config import MqttConfig
from frame_daemon.errors import FrameDaemonError
from frame_daemon.events import Command, CommandName, Event
from frame_daemon.file_kind import NotRegularFile, open_regular
from frame_daemon.homeassistant import Topics

log = logging.getLogger(__name__)


class CommandRouter:
    """Routes each command topic to its command (one dict built at start-up); runs on paho's
    thread, so it only validates and posts: the loop acts."""

    def __init__(self, topics: Topics, commands: CommandTable,
                 post: Callable[[Event], None]) -> None:
        self.ha_status = topics.ha_status
        self.routes = {topics.command(name): name for name in commands.accepted()}
        self.commands = commands
        self._post = post
        self._retained_seen: set[str] = set()

    @property
    def topics(self) -> list[str]:
        """Every topic to subscribe to."""
        return [*self.routes, self.ha_status]

    def __call__(self, topic: str, payload: bytes, retained: bool = False) -> None:
        if topic == self.ha_status:
            if payload.strip() == b"online":
                self._post(Command(CommandName.ANNOUNCE, "Home Assistant is back online"))
            return
        name = self.routes.get(topic)
        if name is None:
            return
        if retained:
            # Left on the broker by a publisher with the retain flag, it would act again at every
            # start (skip a track, undo a newer setting). Settings persist in the state directory.
            if topic not in self._retained_seen:
                self._retained_seen.add(topic)
                log.warning("ignoring a retained command on %s; clear it with: mosquitto_pub -r "
                            "-n -t %s", topic, topic)
            return
        try:
            self._post(self.commands.parse(name, payload))
        except CommandError as exc:
            self._post(Command(CommandName.REJECTED, f"command {name}: {exc}"))


class MqttLink:
    """Owns one paho client; `start()` connects in the background, `stop()` says goodbye."""

    def __init__(self, cfg: MqttConfig, availability_topic: str, *,
                 on_message: Callable[[str, bytes, bool], None] | None = None,
                 client_factory: Callable[..., paho.Client] = paho.Client,
                 will: bytes = b"offline", online: bytes | None = b"online",
                 role: str = "") -> None:
        """will: the availability topic's payload when we are gone (b"": clear it); online: its
        payload on every connect (None: none); role: names a second connection of one frame."""
        self.cfg = cfg
        self._will, self._online = will, online
        self.availability_topic = availability_topic
        self._on_message_cb = on_message
        self._retained: dict[str, bytes] = {}
        self._subscriptions: set[str] = set()
        self._lock = threading.Lock()  # guards _retained between the loop and paho's thread
        self._connected = threading.Event()
        self._last_failure = ""  # the connect failure last logged: each cause is logged once
        self.connect_failures = 0  # failed attempts since the last successful connect
        self.connects = 0  # successful connects so far: a change means the connection broke
        self._stopping = False
        self._answered = False  # the broker answered (CONNACK) since the last disconnect
        self.client = client_factory(CallbackAPIVersion.VERSION2,
                                     client_id=f"frame-daemon-{cfg.device_id}{role}-{os.getpid()}")
        if cfg.username:
            self.client.username_pw_set(cfg.username, broker_password(cfg) or None)
        if cfg.tls:
            try:
                self.client.tls_set(ca_certs=cfg.ca_file or None, certfile=cfg.cert_file or None,
                                    keyfile=cfg.key_file or None)
            except (OSError, ValueError) as exc:
                raise FrameDaemonError(f"mqtt TLS setup failed: {exc}") from exc
        self.client.will_set(self.availability_topic, will, qos=1, retain=True)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.on_connect = self._on_connect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def start(self) -> None:
        # connect_async + loop_start: the network thread connects and reconnects with backoff,
        # so a broker that is down at start-up does not stop the daemon.
        self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive_s)
        self.client.loop_start()
        self.client._thread.name = "mqtt"  # for %(threadName)s in the log

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def wait_answer(self, timeout: float) -> str | None:
        """For a one-shot command: None once connected; else why not, as soon as the first try
        fails (a refused login, no broker there), or after `timeout` without an answer."""
        deadline = time.monotonic() + timeout
        while not self._connected.wait(0.05):
            if self._last_failure:
                return self._last_failure
            if time.monotonic() >= deadline:
                return f"no answer within {timeout:g} s"
        return None

    def stop(self, timeout: float = 1.0, goodbye: bool = True) -> None:
        self._stopping = True  # our own disconnect is no lost connection
        if goodbye and self.connected:
            info = self.client.publish(self.availability_topic, self._will, qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout)
        self.client.disconnect()
        self.client.loop_stop()

    def subscribe(self, topic: str) -> None:
        with self._lock:
            self._subscriptions.add(topic)
        if self.connected:
            self.client.subscribe(topic, qos=1)

    def remember(self, topic: str, payload: str | bytes | dict[str, Any]) -> bytes:
        """Keep a retained value to send on every (re)connect, without sending it now."""
        data = _encode(payload)
        with self._lock:
            self._retained[topic] = data
        return data

    def publish_retained(self, topic: str, payload: str | bytes | dict[str, Any]) -> None:
        """Publish and remember a retained value; it is re-published on every reconnect."""
        self._publish(topic, self.remember(topic, payload), retain=True)

    def publish(self, topic: str, payload: str | bytes | dict[str, Any]) -> None:
        self._publish(topic, _encode(payload), retain=False)

    def republish_retained(self) -> None:
        """Send every remembered retained value again (Home Assistant came back)."""
        with self._lock:
            retained = list(self._retained.items())
        for topic, data in retained:
            self._publish(topic, data, retain=True)

    def clear_retained(self, topic: str, timeout: float = 2.0) -> None:
        """Delete a retained message from the broker (an empty retained payload); waits up to
        `timeout` for the broker to take it (0: not at all, for the loop)."""
        with self._lock:
            self._retained.pop(topic, None)
        if self.connected:
            info = self.client.publish(topic, b"", qos=1, retain=True)
            if timeout > 0:
                with contextlib.suppress(RuntimeError, ValueError):
                    info.wait_for_publish(timeout)

    def _publish(self, topic: str, data: bytes, retain: bool) -> None:
        if not self.connected:
            log.debug("MQTT not connected; %s will be sent on reconnect", topic)
            return
        info = self.client.publish(topic, data, qos=1, retain=retain)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            log.warning("MQTT publish to %s failed: %s", topic, paho.error_string(info.rc))

    # paho's network thread from here on
    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason_code: Any,
                    properties: Any) -> None:
        self._answered = True  # a refusal is said here; the disconnect after it is no news
        if reason_code.is_failure:
            self._connect_failed(f"the broker refused us: {reason_code}")
            return
        self.connects += 1
        self._connected.set()
        self._last_failure = ""
        self.connect_failures = 0
        log.info("connected to MQTT broker %s:%s", self.cfg.host, self.cfg.port)
        if self._online is not None:
            client.publish(self.availability_topic, self._online, qos=1, retain=True)
        with self._lock:
            retained = list(self._retained.items())
            subscriptions = sorted(self._subscriptions)
        for topic in subscriptions:
            client.subscribe(topic, qos=1)
        for topic, data in retained:
            client.publish(topic, data, qos=1, retain=True)

    def _on_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        # paho calls this from inside its `except OSError:`, and passes no exception: take it
        # from there, so that the log says why (refused, unreachable, TLS) at once.
        self._connect_failed(describe_connect_error(sys.exception()))

    def _connect_failed(self, cause: str) -> None:
        self.connect_failures += 1
        if cause != self._last_failure:
            self._last_failure = cause
            log.error("cannot connect to the MQTT broker %s:%s: %s; retrying with backoff (up to "
                      "30 s)", self.cfg.host, self.cfg.port, cause)

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason_code: Any,
                       properties: Any) -> None:
        was = self._connected.is_set()
        self._connected.clear()
        answered, self._answered = self._answered, False
        if self._stopping:
            log.info("disconnected from the MQTT broker")
        elif was:
            log.warning("MQTT broker connection lost (%s); reconnecting", reason_code)
        elif not answered:  # connected at TCP, then dropped without an answer: not a broker
            self._connect_failed("it closed the connection before accepting us: is it an MQTT "
                                 "broker's port, and is mqtt.tls set as that port expects?")

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        if self._on_message_cb is not None:
            # retain is set on a message the broker kept and replays to a new subscriber.
            self._on_message_cb(message.topic, message.payload, bool(message.retain))


def describe_connect_error(exc: BaseException | None) -> str:
    """One clear line for why a connection attempt failed."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS: the broker's certificate is not trusted ({exc.verify_message}); check " \
               "mqtt.ca_file and that mqtt.host matches the certificate"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed ({exc.reason or exc}); is the port a TLS listener?"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the broker running, and on this port?)"
    if isinstance(exc, TimeoutError):
        return "no answer (timed out): is the host reachable?"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc) or type(exc).__name__
    return str(exc) if exc else "unknown reason"


def broker_password(cfg: MqttConfig) -> str:
    """The environment variable, else the first line of password_file, else the TOML value."""
    if os.environ.get("FRAME_DAEMON_MQTT_PASSWORD"):
        return os.environ["FRAME_DAEMON_MQTT_PASSWORD"]
    if cfg.password_file:
        try:
            fd = open_regular(cfg.password_file)  # a FIFO must not hold the start-up
            # utf-8-sig: a byte-order mark (Windows Notepad) is no part of the password.
            with open(fd, encoding="utf-8-sig") as f:
                return f.readline(4096).rstrip("\r\n")  # /dev/zero has no first line
        except NotRegularFile:
            raise FrameDaemonError(f"mqtt.password_file {cfg.password_file}: not a regular "
                                   "file") from None
        except OSError as exc:
            raise FrameDaemonError(f"mqtt.password_file {cfg.password_file}: cannot read: "
                                   f"{exc.strerror}") from exc
        except UnicodeDecodeError:  # the decoder's message would show a byte of the password
            raise FrameDaemonError(f"mqtt.password_file {cfg.password_file}: not UTF-8 text; "
                                   "save it as UTF-8") from None
    return cfg.password


def _encode(payload: str | bytes | dict[str, Any]) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, dict):
        payload = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    try:
        return payload.encode()
    except UnicodeEncodeError:
        # A file name that is not UTF-8 comes from the OS with its bytes as surrogates ('\udce9'):
        # sent as U+FFFD, so the state (photo name and all) still goes out as valid UTF-8.
        return payload.encode("utf-8", "surrogateescape").decode("utf-8", "replace").encode() \
            if _only_escaped(payload) else payload.encode("utf-8", "replace")


def _only_escaped(text: str) -> bool:
    """Every surrogate in `text` stands for one byte of a name (what surrogateescape made)."""
    return all(not 0xD800 <= ord(c) <= 0xDFFF or 0xDC80 <= ord(c) <= 0xDCFF for c in text)


def publish_once(cfg: MqttConfig, topic: str, payload: str, timeout: float = 10.0) -> str | None:
    """Connect, publish one message (QoS 1, not retained) and disconnect: for the command line,
    which must not touch the frame's availability (no Last Will, no "online"). Returns why it
    failed, or None."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"frame-daemon-cli-{os.getpid()}")
    try:
        if cfg.username:
            client.username_pw_set(cfg.username, broker_password(cfg) or None)
        if cfg.tls:
            client.tls_set(ca_certs=cfg.ca_file or None, certfile=cfg.cert_file or None,
                           keyfile=cfg.key_file or None)
        client.connect(cfg.host, cfg.port, keepalive=cfg.keepalive_s)
    except (OSError, ValueError, FrameDaemonError) as exc:
        return f"cannot reach the MQTT broker at {cfg.host}:{cfg.port}: " + (
            describe_connect_error(exc) if isinstance(exc, OSError) else str(exc))
    refused: list[str] = []  # the broker's answer to our login, when it says no
    answered = threading.Event()

    def on_connect(client: paho.Client, userdata: Any, flags: Any, reason_code: Any,
                   properties: Any = None) -> None:
        if reason_code.is_failure:
            refused.append(str(reason_code))
        answered.set()

    client.on_connect = on_connect
    client.loop_start()
    try:
        info = client.publish(topic, payload, qos=1, retain=False)
        # A broker that refuses the login drops us: say so at once, not "did not take it" later.
        if not answered.wait(timeout):
            return f"the MQTT broker at {cfg.host}:{cfg.port} did not answer"
        if refused:
            return (f"the MQTT broker at {cfg.host}:{cfg.port} refused the connection: "
                    f"{refused[0]} (check mqtt.username and the password)")
        info.wait_for_publish(timeout)
        if not info.is_published():
            return f"the MQTT broker at {cfg.host}:{cfg.port} did not take the message"
    except (RuntimeError, ValueError) as exc:
        return f"MQTT publish to {topic} failed: {exc}"
    finally:
        client.disconnect()
        client.loop_stop()
    return None
