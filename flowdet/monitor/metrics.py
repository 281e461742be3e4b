"""``--metrics-port N``: Prometheus metrics on ``http://0.0.0.0:N/metrics`` (official
``prometheus_client``; the ``metrics`` extra). Names follow Prometheus' conventions (``_total``
counters, seconds):

- ``flowdet_items_total{source,class}``            counted items (one per counted track)
- ``flowdet_frame_latency_seconds{source}``        histogram: capture → outputs written
- ``flowdet_frames_processed_total{source}``, ``flowdet_frames_dropped_total{source}``,
  ``flowdet_reconnects_total{source}``, ``flowdet_source_up{source}`` (1 = connected),
  ``flowdet_source_fps{source}``, ``flowdet_last_frame_age_seconds{source}``  (from each status)
- ``flowdet_monitor_errors_total{sink}``, ``flowdet_monitor_dropped_total{sink}``: a database or
  broker that went away (writes failed / events dropped)
- ``flowdet_model_info{model,flowdet_version}``

Per-source values come from the run's latest status (every ``--status-every`` seconds); items and
latencies as they happen. Each sink has its own registry (no process-global state).
"""
from __future__ import annotations

import threading
from typing import Any

from flowdet import __version__
from flowdet.errors import FlowdetError
from flowdet.monitor.events import CountedItem, IntervalRollup
from flowdet.utils import require

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UP_STATES = ("connected",)


class MetricsError(FlowdetError):
    """The metrics port cannot be served (in use, not allowed)."""


class _StatusCollector:
    """Per-source metrics read from the latest status at scrape time."""

    def __init__(self) -> None:
        self.status: dict[str, Any] = {}
        self.lock = threading.Lock()

    def collect(self) -> Any:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        with self.lock:
            st = self.status
        fams = {
            "frames": CounterMetricFamily("flowdet_frames_processed", "Frames through inference", labels=["source"]),
            "dropped": CounterMetricFamily("flowdet_frames_dropped", "Live frames replaced by a newer one before "
                                           "inference", labels=["source"]),
            "reconnects": CounterMetricFamily("flowdet_reconnects", "Source reconnects", labels=["source"]),
        }
        up = GaugeMetricFamily("flowdet_source_up", "1 while the source delivers frames (connected)", labels=["source"])
        fps = GaugeMetricFamily("flowdet_source_fps", "Processed frames per second (recent)", labels=["source"])
        age = GaugeMetricFamily("flowdet_last_frame_age_seconds", "Seconds since the source's last frame",
                                labels=["source"])
        for name, s in st.get("sources", {}).items():
            for key, fam in fams.items():
                fam.add_metric([name], float(s.get(key) or 0))
            up.add_metric([name], 1.0 if s.get("state") in UP_STATES else 0.0)
            fps.add_metric([name], float(s.get("fps") or 0.0))
            if s.get("last_frame_age_s") is not None:
                age.add_metric([name], float(s["last_frame_age_s"]))
        errors = CounterMetricFamily("flowdet_monitor_errors", "Failed writes of a monitor sink (database, broker)",
                                     labels=["sink"])
        dropped = CounterMetricFamily("flowdet_monitor_dropped", "Events a monitor sink dropped (queue full, "
                                      "rejected)", labels=["sink"])
        for sink, h in (st.get("monitor") or {}).items():
            if isinstance(h, dict):
                errors.add_metric([sink], float(h.get("errors") or 0))
                dropped.add_metric([sink], float(h.get("dropped") or 0))
        yield from [*fams.values(), up, fps, age, errors, dropped]


class MetricsSink:
    """Serves ``/metrics`` from construction (a port in use is a :class:`MetricsError` before any
    source opens) until :meth:`close`."""

    kind = "metrics"

    def __init__(self, port: int, model: str = "", host: str = "0.0.0.0"):
        pc = require("prometheus_client", "metrics")
        self.registry = pc.CollectorRegistry()
        self.items = pc.Counter("flowdet_items", "Counted items (one per counted track)", ["source", "class"],
                                registry=self.registry)
        self.latency = pc.Histogram("flowdet_frame_latency_seconds", "Capture to outputs written", ["source"],
                                    buckets=LATENCY_BUCKETS, registry=self.registry)
        info = pc.Info("flowdet_model", "The model this run detects with", registry=self.registry)
        info.info({"model": str(model), "flowdet_version": __version__})
        self.status = _StatusCollector()
        self.registry.register(self.status)
        try:
            self.server, self.thread = pc.start_http_server(port, addr=host, registry=self.registry)
        except OSError as e:
            raise MetricsError(f"port {port}: cannot serve metrics ({e.strerror or e})", field="--metrics-port") from None
        self.port = self.server.server_port

    def on_start(self, sources: list[str], names: list[str]) -> None:
        """Every source × class series exists from the start (at 0), not only after its first item."""
        for src in sources:
            for name in names:
                self.items.labels(src, name)

    def on_item(self, item: CountedItem) -> None:
        self.items.labels(item.source, item.class_name).inc()

    def on_interval(self, rollup: IntervalRollup) -> None:
        pass

    def on_frame_done(self, source: str, latency_s: float) -> None:
        self.latency.labels(source).observe(latency_s)

    def on_health(self, status: dict[str, Any]) -> None:
        with self.status.lock:
            self.status.status = status

    def health(self) -> dict[str, Any]:
        return {"port": self.port}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
