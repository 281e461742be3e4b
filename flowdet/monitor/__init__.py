"""Counts where monitoring lives: a database of counted items, Prometheus metrics, MQTT, a dashboard.

Torch-free, and never imported by :mod:`flowdet.runtime` itself: ``flowdet stream`` builds a
:class:`~flowdet.monitor.recorder.Recorder` only when ``--db``, ``--metrics-port`` or ``--mqtt`` is
given and hands it to the multi-source loop, which calls it as a plain object. Each sink needs its
pip extra (``store``, ``metrics``, ``mqtt``, ``serve``); the edge install needs none of them.

- ``events.py``    what a sink receives (:class:`CountedItem`, :class:`IntervalRollup`) and the :class:`Sink` protocol
- ``recorder.py``  the loop's hook: tracker + counter → events with wall-clock times → every sink
- ``schema.py``    the database tables and their versioned migrations (SQLAlchemy Core)
- ``store.py``     SQLite / PostgreSQL: checked before a run, written by one thread, bounded and retried
- ``metrics.py``   Prometheus ``/metrics`` (prometheus_client)
- ``mqtt.py``      a QoS-1 message per item and per interval (paho-mqtt), bounded while the broker is away
- ``build.py``     the CLI's flags → a Recorder with its sinks, all opened before any source
- ``counts.py``    ``flowdet counts``: per hour / day per source, CSV, SVG chart
- ``serve.py``     ``flowdet serve``: the dashboard (Flask; ``static/`` holds every asset)
"""
