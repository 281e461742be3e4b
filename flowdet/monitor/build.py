"""``flowdet stream --db / --metrics-port / --mqtt``: parse and open every monitor sink *before* any
source opens, so a malformed URL, an unreachable server or a port in use is one line (exit 2)
and nothing half-started is left behind."""
from __future__ import annotations

import uuid
from typing import Any

from flowdet.monitor.recorder import Recorder, parse_start_time


def build_recorder(db: str | None = None, start_time: str | None = None, metrics_port: int | None = None,
                   mqtt: str | None = None, model: str = "", sources: dict[str, str] | None = None,
                   metrics_host: str = "0.0.0.0") -> Recorder:
    """The run's :class:`Recorder` with a sink per flag given. Order: everything that only parses
    first, then what binds or connects; on a failure the sinks already made are closed again."""
    start = parse_start_time(start_time)
    run_id = str(uuid.uuid4())
    made: list[Any] = []
    engine = None
    try:
        mqtt_target = None
        if mqtt:
            from flowdet.monitor.mqtt import parse_mqtt_url

            mqtt_target = parse_mqtt_url(mqtt)
        if db:
            from flowdet.monitor.store import open_store

            engine = open_store(db)
        if metrics_port is not None:
            from flowdet.monitor.metrics import MetricsSink

            made.append(MetricsSink(metrics_port, model=model, host=metrics_host))
        if mqtt_target is not None:
            from flowdet.monitor.mqtt import MqttSink

            made.append(MqttSink(mqtt_target, run_id))
        if engine is not None:   # last: it records the run
            from flowdet.monitor.store import StoreSink

            made.append(StoreSink(engine, run_id, model=model, sources=sources))
    except BaseException:
        for s in made:
            s.close()
        if engine is not None:
            engine.dispose()
        raise
    return Recorder(made, run_id=run_id, start_time=start)
