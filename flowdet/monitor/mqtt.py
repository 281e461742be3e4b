"""``--mqtt mqtt://[user[:password]@]host[:port]/topic``: one JSON message per counted item and per
closed interval (paho-mqtt; the ``mqtt`` extra).

Topics: ``<topic>/<source>/item`` and ``<topic>/<source>/interval``; payloads are the
:class:`CountedItem` / :class:`IntervalRollup` fields (``run_id``, ``source``, ``track_id``, ``time``
in UNIX seconds, …). QoS 1 (at least once: a subscriber dedups by ``run_id`` + ``track_id``).
The client connects in the background and reconnects by itself with backoff; a broker that is down
(at start or mid-run) never stops the counting: messages wait in paho's queue, bounded by
``queue_max``; beyond it they are dropped and counted (status.json ``monitor.mqtt``, metrics).
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from flowdet import log
from flowdet.errors import FlowdetError
from flowdet.monitor.events import CountedItem, IntervalRollup
from flowdet.utils import require

DEFAULT_PORT = 1883
QUEUE_MAX = 10_000
CLOSE_DRAIN_S = 5.0


class MqttError(FlowdetError):
    """--mqtt is malformed."""


@dataclass
class MqttTarget:
    host: str
    port: int
    topic: str
    username: str | None = None
    password: str | None = None


def parse_mqtt_url(text: str) -> MqttTarget:
    """``mqtt://host[:port]/topic`` (user:password@ optional) → :class:`MqttTarget`; else one error line."""
    try:
        u = urlsplit(text)
        port = u.port
    except ValueError as e:
        raise MqttError(f"malformed MQTT URL ({e})", field="--mqtt") from None
    if u.scheme != "mqtt":
        raise MqttError(f"expected mqtt://host[:port]/topic, got scheme {u.scheme or 'none'!r}", field="--mqtt")
    topic = unquote(u.path.lstrip("/")).rstrip("/")
    if not u.hostname or not topic:
        raise MqttError("expected mqtt://host[:port]/topic (a host and a topic)", field="--mqtt")
    if any(c in topic for c in "+#") or "#" in text:   # urlsplit reads '#' as a fragment
        raise MqttError(f"the topic may not hold the wildcards + or #: {topic!r}", field="--mqtt")
    return MqttTarget(u.hostname, port or DEFAULT_PORT, topic, unquote(u.username) if u.username else None,
                      unquote(u.password) if u.password else None)


class MqttSink:
    """Publishes from the loop's thread into paho's bounded queue; paho's own thread sends."""

    kind = "mqtt"

    def __init__(self, target: MqttTarget, run_id: str, queue_max: int = QUEUE_MAX, max_delay_s: float = 30.0):
        mqtt = require("paho.mqtt.client", "mqtt")
        self.target, self.run_id, self.mqtt, self.queue_max = target, run_id, mqtt, queue_max
        self.sent = self.published = self.dropped = self.disconnects = 0   # sent: accepted into the queue
        self.connected = False
        self.last_error: str | None = None
        self._lock = threading.Lock()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"flowdet-{run_id[:8]}")
        if target.username:
            c.username_pw_set(target.username, target.password)
        c.max_queued_messages_set(queue_max)
        c.reconnect_delay_set(1, max(1, int(max_delay_s)))
        c.on_connect, c.on_disconnect, c.on_publish = self._on_connect, self._on_disconnect, self._on_publish
        self.client = c
        try:
            c.connect_async(target.host, target.port, keepalive=30)
        except (OSError, ValueError) as e:
            raise MqttError(f"{target.host}:{target.port}: {e}", field="--mqtt") from None
        c.loop_start()

    # -- paho callbacks (its thread) ---------------------------------------------------------------
    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any = None) -> None:
        if getattr(reason, "is_failure", False):
            self.last_error = f"connect refused: {reason}"
            return
        if self.disconnects:
            log.info(f"mqtt: connected again to {self.target.host}:{self.target.port}")
        self.connected = True

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any = None) -> None:
        if self.connected:
            self.disconnects += 1
            log.warn(f"mqtt: lost {self.target.host}:{self.target.port} ({reason}); counting goes on, "
                     f"messages wait (at most {self.queue_max})")
        self.connected = False
        self.last_error = str(reason)

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any = None, properties: Any = None) -> None:
        with self._lock:   # never held while calling paho: its thread holds its own lock when calling us
            self.published += 1

    # -- the Sink protocol -------------------------------------------------------------------------
    def _publish(self, source: str, kind: str, payload: dict[str, Any]) -> None:
        info = self.client.publish(f"{self.target.topic}/{source}/{kind}", json.dumps(payload), qos=1)
        if info.rc == self.mqtt.MQTT_ERR_QUEUE_SIZE:
            self.dropped += 1
        else:
            self.sent += 1

    def on_item(self, item: CountedItem) -> None:
        self._publish(item.source, "item", item.as_dict())

    def on_interval(self, rollup: IntervalRollup) -> None:
        self._publish(rollup.source, "interval", rollup.as_dict())

    def on_health(self, status: dict[str, Any]) -> None:
        pass

    def health(self) -> dict[str, Any]:
        with self._lock:
            pending = self.sent - self.published
        return {"connected": self.connected, "published": self.published, "queued": pending,
                "dropped": self.dropped, "errors": self.disconnects, "last_error": self.last_error}

    def close(self) -> None:
        """Give queued messages a moment to go out (a connected broker), then disconnect."""
        end = time.monotonic() + CLOSE_DRAIN_S
        while self.connected and time.monotonic() < end:
            with self._lock:
                if self.published >= self.sent:
                    break
            time.sleep(0.05)
        with self._lock:
            left = self.sent - self.published
        if left:
            log.warn(f"mqtt: {left} message(s) not delivered at exit")
        self.client.disconnect()
        self.client.loop_stop()
